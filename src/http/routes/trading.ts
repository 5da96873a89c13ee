/**
 * GET /trading (the account: balances, positions, orders, PnL, protections), GET /trading/fills and
 * /trading/equity (the dashboard's chart), POST /trading/protections/:name/reset. Every one needs
 * the API token: an account's contents are not part of the fleet summary.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { TradingEngine } from '../../actors/trading/engine.js';
import type { ProtectionName } from '../../actors/trading/protections.js';
import type { LedgerStore } from '../../actors/trading/store.js';
import type { TradingConfig } from '../../config/trading.js';
import { QbError } from '../../errors.js';
import { requireToken } from '../auth.js';

export interface TradingRouteDeps {
  engine: TradingEngine;
  store: LedgerStore;
  config: Readonly<TradingConfig>;
}

const PROTECTIONS: readonly ProtectionName[] = [
  'max-order-size',
  'max-position',
  'max-orders-per-minute',
  'max-daily-loss',
  'max-drawdown',
  'stale-data',
  'exchange-breaker',
];

const Limit = Type.Object(
  { limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })) },
  { additionalProperties: false },
);

export function tradingRoutes(
  deps: TradingRouteDeps,
): FastifyPluginAsync<{ apiToken: string; tokenHint?: string }> {
  return async (fastify, { apiToken, tokenHint }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const auth = requireToken(apiToken, tokenHint ?? "API_TOKEN in the peer's environment");

    app.get('/trading', { onRequest: auth }, async () => ({ mode: deps.config.mode, ...deps.engine.view() }));

    app.get('/trading/fills', { onRequest: auth, schema: { querystring: Limit } }, async (request) => ({
      fills: deps.store.fills(Math.min(1_000, Number(request.query.limit ?? 200))),
    }));

    app.get('/trading/equity', { onRequest: auth, schema: { querystring: Limit } }, async (request) => ({
      equity: deps.store.equityCurve(Math.min(10_080, Number(request.query.limit ?? 1_440))),
    }));

    app.get(
      '/trading/candles',
      {
        onRequest: auth,
        schema: {
          querystring: Type.Object(
            { symbol: Type.String({ minLength: 1, maxLength: 40 }) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => ({
        symbol: request.query.symbol,
        candles: deps.engine.candles(request.query.symbol),
      }),
    );

    app.post(
      '/trading/protections/:name/reset',
      {
        onRequest: auth,
        schema: { params: Type.Object({ name: Type.Union(PROTECTIONS.map((p) => Type.Literal(p))) }) },
      },
      async (request) => {
        const name = request.params.name as ProtectionName;
        const reset = deps.engine.resetProtection(name);
        if (!reset) throw new QbError('QB_ERR_NOT_FOUND', `protection ${name} is not tripped`);
        return { reset: name };
      },
    );
  };
}
