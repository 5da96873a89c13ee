/**
 * The trading feature: market data (the sim exchange, a CSV replay, or ccxt, loaded only then), the
 * paper or live broker, the strategy, the protections, one trader per account (a lease in
 * PostgreSQL with DATABASE_URL, the mesh's announcements otherwise), its ledger (PostgreSQL or the
 * peer's SQLite), its subsystem, routes, /status fields, mesh summary and metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { type AccountClaim, accountFingerprint, judgeClaims } from '../actors/trading/account-guard.js';
import type { Broker } from '../actors/trading/broker.js';
import type { CcxtSource } from '../actors/trading/ccxt-source.js';
import { CsvReplaySource } from '../actors/trading/csv-source.js';
import { TradingEngine } from '../actors/trading/engine.js';
import { scrubSecrets } from '../actors/trading/exchange-errors.js';
import { AccountLease } from '../actors/trading/lease.js';
import { LiveBroker } from '../actors/trading/live-broker.js';
import { TRADING_MIGRATIONS } from '../actors/trading/migrations.js';
import { PaperBroker } from '../actors/trading/paper-broker.js';
import type { ProtectionLimits } from '../actors/trading/protections.js';
import { tradingRun } from '../actors/trading/run.js';
import { SimSource } from '../actors/trading/sim-source.js';
import type { MarketSource } from '../actors/trading/source.js';
import { type LedgerStore, TradingStore } from '../actors/trading/store.js';
import { PgTradingStore } from '../actors/trading/store-pg.js';
import { createStrategy } from '../actors/trading/strategy.js';
import { tradingRoutes } from '../http/routes/trading.js';
import type { Feature, FeatureDefinition } from './feature.js';

export const TRADING_FEATURE = 'trading';

export interface TradingFeature extends Feature {
  engine: TradingEngine;
  store: LedgerStore;
}

export function tradingFeature(): FeatureDefinition {
  return {
    name: TRADING_FEATURE,
    migrations: TRADING_MIGRATIONS,
    create(ctx): TradingFeature {
      const cfg = ctx.config.trading;
      const logger = ctx.logger.child({ component: 'trading' });
      const secrets = [cfg.apiKey, cfg.apiSecret];
      const account = accountFingerprint(
        cfg.mode,
        cfg.exchange,
        cfg.mode === 'live' ? cfg.apiKey : cfg.paperAccount,
      );
      const databaseUrl = ctx.config.databaseUrl;
      // With DATABASE_URL the ledger and the right to trade live in the fleet's PostgreSQL. The
      // lease has its own small pool whose statements time out at a third of the lease, so a hung
      // renewal is a failed one (the local deadline stops orders anyway) and never waits behind a
      // ledger flush.
      const shared = databaseUrl ? ctx.queue.shared : undefined;
      const pools = shared
        ? {
            // A flush that hangs longer than a lease fails (and the engine stands by) instead of
            // holding the tick forever.
            ledger: shared.newPool({ max: 3, queryTimeoutMs: cfg.leaseMs }),
            lease: shared.newPool({
              max: 1,
              queryTimeoutMs: Math.floor(cfg.leaseMs / 3),
              connectionTimeoutMs: Math.floor(cfg.leaseMs / 3),
            }),
          }
        : undefined;
      const store: LedgerStore = pools
        ? new PgTradingStore(pools.ledger, account)
        : new TradingStore(ctx.db, account);
      const lease = pools
        ? new AccountLease({
            db: pools.lease,
            account,
            peerId: ctx.peerId,
            bootId: ctx.bootId,
            leaseMs: cfg.leaseMs,
            logger,
          })
        : undefined;
      const limits: ProtectionLimits = {
        maxOrderValue: cfg.maxOrderValue,
        maxPositionValue: cfg.maxPositionValue,
        maxOrdersPerMinute: cfg.maxOrdersPerMinute,
        maxDailyLoss: cfg.maxDailyLoss,
        maxDrawdown: cfg.maxDrawdown,
        maxDataAgeMs: cfg.maxDataAgeMs,
        maxExchangeFailures: cfg.maxExchangeFailures,
      };
      const quote = cfg.symbols[0]?.split('/')[1] ?? 'USDT';
      /** Since when this process wants the account: the earliest claim among linked peers trades it. */
      const since = Date.now();
      const claim = (): AccountClaim => ({ peerId: ctx.peerId, account, since });

      const openSource = async (): Promise<MarketSource> => {
        if (cfg.replayCsv) return new CsvReplaySource(cfg.replayCsv, Date.now);
        if (cfg.exchange === 'sim') return new SimSource(Date.now, {}, cfg.simSpeed);
        // ccxt is loaded here only: a sim peer never pays for it.
        const { openCcxtSource } = await import('../actors/trading/ccxt-source.js');
        return openCcxtSource({
          exchange: cfg.exchange,
          apiUrl: cfg.exchangeApiUrl,
          apiKey: cfg.apiKey,
          secret: cfg.apiSecret,
          onStreamFailure: (err) =>
            logger.warn(
              { err: scrubSecrets(err instanceof Error ? err.message : String(err), secrets) },
              'exchange stream failed: REST answers until it is back',
            ),
        });
      };
      const engine = new TradingEngine({
        openSource,
        broker: (markets, source): Broker =>
          cfg.mode === 'live'
            ? new LiveBroker({
                client: (source as CcxtSource).client,
                store,
                markets,
                quote,
                now: Date.now,
                logger,
                secrets,
                mayPlace: () => !lease || lease.verdict().mayTrade,
              })
            : new PaperBroker(
                store,
                markets,
                quote,
                cfg.paperStartingBalance,
                { maxSlippage: cfg.maxSlippage },
                Date.now,
              ),
        store,
        strategy: createStrategy(cfg.strategy),
        limits,
        symbols: cfg.symbols,
        killSwitchActive: ctx.killSwitchActive,
        now: Date.now,
        logger,
        secrets,
        ...(lease
          ? { lease }
          : { accountGuard: () => judgeClaims(claim(), linkedClaims(ctx.linkedSummaries())) }),
      });

      const summary = () => {
        const v = engine.view();
        return {
          mode: cfg.mode,
          exchange: v.exchange || cfg.exchange,
          state: v.state,
          reason: v.reason?.slice(0, 200) ?? null,
          claim: { account, since },
          standby: v.standby,
          pnl: v.pnl
            ? { total: round(v.pnl.realised + v.pnl.unrealised), equity: round(v.pnl.equity ?? 0) }
            : null,
          positions: v.positions.slice(0, 8).map((p) => ({ symbol: p.symbol, amount: round(p.amount, 8) })),
          tripped: v.protections.filter((p) => p.state === 'tripped').map((p) => p.name),
        };
      };

      return {
        name: TRADING_FEATURE,
        engine,
        store,
        registrations: [
          {
            name: TRADING_FEATURE,
            enabled: ctx.config.botEnabled,
            operates: true,
            run: tradingRun,
            runInput: { engine, tickIntervalMs: cfg.tickIntervalMs },
            describe: `${cfg.mode} trading on ${cfg.replayCsv ? 'a CSV replay' : cfg.exchange} (${cfg.symbols.join(', ')}), strategy ${cfg.strategy}`,
          },
        ],
        routes: tradingRoutes({ engine, store, config: cfg }),
        status: () => {
          const v = engine.view();
          return {
            mode: cfg.mode,
            exchange: v.exchange || cfg.exchange,
            state: v.state,
            reason: v.reason,
            account,
            symbols: v.symbols,
            strategy: v.strategy,
            equity: v.pnl?.equity ?? null,
            pnl: v.pnl,
            positions: v.positions.length,
            openOrders: v.openOrders.length,
            protections: v.protections.map((p) => ({ name: p.name, state: p.state })),
            counters: v.counters,
            // Who trades the account: the PostgreSQL lease, or the mesh's announcements.
            guard: lease ? 'postgres-lease' : 'mesh-announce',
            lease: v.lease,
            standby: v.standby,
          };
        },
        close() {
          // The engine released the lease when it stopped; nothing is in flight any more.
          for (const pool of Object.values(pools ?? {})) void pool.end().catch(() => undefined);
        },
        summary: () => ({ extra: summary() }),
        metrics: (registry: Registry) => tradingMetrics(registry, engine),
      };
    },
  };
}

/** Claims of the peers linked now, from the trading part of their mesh status. */
function linkedClaims(
  peers: readonly { peerId: string; extra: Record<string, unknown> | undefined }[],
): AccountClaim[] {
  const claims: AccountClaim[] = [];
  for (const p of peers) {
    const c = (p.extra?.[TRADING_FEATURE] as { claim?: { account?: unknown; since?: unknown } } | undefined)
      ?.claim;
    if (typeof c?.account === 'string' && typeof c.since === 'number') {
      claims.push({ peerId: p.peerId, account: c.account, since: c.since });
    }
  }
  return claims;
}

function tradingMetrics(registry: Registry, engine: TradingEngine): void {
  const view = () => engine.view();
  new Gauge({
    name: 'qb_trading_equity',
    help: 'Equity of the trading account at the last marks, quote currency',
    registers: [registry],
    collect() {
      this.set(view().pnl?.equity ?? 0);
    },
  });
  new Gauge({
    name: 'qb_trading_protection_tripped',
    help: 'Latched protections (1 = tripped, entries halted until an operator resets it)',
    labelNames: ['protection'],
    registers: [registry],
    collect() {
      for (const p of view().protections) this.set({ protection: p.name }, p.state === 'tripped' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'qb_trading_state',
    help: 'Trading engine state (1 for the current one)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const current = view().state;
      for (const s of ['stopped', 'starting', 'running', 'reconnecting', 'standby', 'blocked']) {
        this.set({ state: s }, s === current ? 1 : 0);
      }
    },
  });
  const events = new Counter({
    name: 'qb_trading_events_total',
    help: 'Trading events since start: ticks, dropped ticks (absurd data), orders placed and refused, exchange errors',
    labelNames: ['event'],
    registers: [registry],
    collect() {
      events.reset();
      for (const [event, n] of Object.entries(view().counters)) events.inc({ event }, n);
    },
  });
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
