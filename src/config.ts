/**
 * The only reader of the environment. Each slice of the configuration declares its variables once,
 * in its own module under src/config/ (name, default, parser, meaning), and its type is derived from
 * that table; this module puts the slices together. `.env.example` and the README are generated from
 * {@link ENV_VARS} and checked against it by a test. A bad value never reaches a subsystem:
 * {@link loadConfig} throws one {@link ConfigError} that lists every problem, and the process exits
 * before it starts anything. What is suspicious but allowed (a misspelt name, a malformed `.env`
 * line, a duration that reads as old seconds) is returned in `notices.warnings` for the log.
 */
import { resolve } from 'node:path';
import { docsOf, type EnvVarSpec, readTable, type Var, type VarTable } from './config/define.js';
import { readEnvFile } from './config/env-file.js';
import { HTTP_ACCESS_VARS, HTTP_VARS, type HttpAccessConfig, type HttpConfig } from './config/http.js';
import { checkMesh, MESH_VARS, type MeshConfig } from './config/mesh.js';
import { RUNTIME_VARS, type RuntimeConfig } from './config/runtime.js';
import { unknownVariableWarnings } from './config/suggest.js';
import {
  checkSupervision,
  MAX_CONSECUTIVE_FAILURES,
  SUPERVISOR_VARS,
  type SupervisorConfig,
  WORKER_VARS,
  type WorkerConfig,
} from './config/supervision.js';
import { checkTrading, TRADING_VARS, type TradingConfig } from './config/trading.js';
import {
  AI_VARS,
  type AiConfig,
  checkWork,
  DEFAULT_FREELANCE_MAX_JOB_BYTES,
  FREELANCE_VARS,
  type FreelanceConfig,
} from './config/work.js';
import { QbError } from './errors.js';

export type { EnvVarSpec } from './config/define.js';
export { DEFAULT_PORT } from './config/http.js';
export type { Discovery } from './config/mesh.js';
export { MIN_INTERVAL_MS } from './config/parsers.js';
export type { LogLevel } from './config/runtime.js';
export type { SupervisorConfig } from './config/supervision.js';
export { MAX_CONSECUTIVE_FAILURES } from './config/supervision.js';
export type { TradingMode } from './config/trading.js';
export type { AiConfig, FreelanceConfig } from './config/work.js';

/** What loading the configuration noticed, for the start-up log. */
export interface ConfigNotices {
  /** The `.env` file that was read, if any. */
  envFile: string | undefined;
  warnings: string[];
}

export type Config = HttpConfig &
  RuntimeConfig & {
    /** Browser-facing checks (src/http/origin.ts). */
    http: HttpAccessConfig;
    mesh: MeshConfig;
    trading: TradingConfig;
    freelance: FreelanceConfig;
    ai: AiConfig;
    supervisor: SupervisorConfig;
    worker: WorkerConfig;
    /**
     * Set by launchers for the processes they start; not for users. `tokenHint` says where API_TOKEN's
     * value can be read (scripts/cluster.mjs: its cluster.env), for 401 answers and the dashboard.
     */
    internal: { isWorker: boolean; workerRespawns: number; tokenHint: string | undefined };
    notices: ConfigNotices;
  };

type Env = Record<string, string | undefined>;

/** Every slice's table, in documentation order. */
const TABLES: readonly VarTable[] = [
  HTTP_VARS,
  HTTP_ACCESS_VARS,
  RUNTIME_VARS,
  MESH_VARS,
  TRADING_VARS,
  FREELANCE_VARS,
  AI_VARS,
  SUPERVISOR_VARS,
  WORKER_VARS,
];

/** Every variable this program reads, in documentation order. */
export const ENV_VARS: readonly EnvVarSpec[] = TABLES.flatMap(docsOf);

export class ConfigError extends QbError {
  constructor(readonly problems: string[]) {
    super(
      'QB_ERR_CONFIG',
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems
        .map((p) => `  - ${p}`)
        .join('\n')}`,
    );
  }
}

/** Variables the process supervisor sets for its worker; not part of the user's contract. */
export const INTERNAL_ENV = {
  role: 'QB_ROLE',
  respawns: 'QB_WORKER_RESPAWNS',
  tokenHint: 'QB_TOKEN_HINT',
} as const;

/** The environment a worker process gets: this process's, plus the supervisor's markers. */
export function workerEnvironment(respawns: number): NodeJS.ProcessEnv {
  return { ...process.env, [INTERNAL_ENV.role]: 'worker', [INTERNAL_ENV.respawns]: String(respawns) };
}

/**
 * Validates the environment (plus `.env` in `cwd`; the real environment wins) into a deep-frozen
 * Config.
 * @throws ConfigError listing every problem.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Readonly<Config> {
  const file = readEnvFile(cwd);
  const merged: Env = { ...file.values, ...env };
  const problems: string[] = [];
  const warnings: string[] = [...file.malformed];
  const warn = (message: string) => warnings.push(message);

  const read = <T>(v: Var<T>): T => {
    const raw = merged[v.name];
    const source = raw === undefined || raw.trim() === '' ? v.default : raw;
    if (source === undefined) return v.unset;
    try {
      return v.parse(source, v.name, warn);
    } catch (err) {
      problems.push((err as Error).message);
      return v.unset;
    }
  };

  const runtime = readTable(RUNTIME_VARS, read);
  const config: Config = {
    ...readTable(HTTP_VARS, read),
    http: readTable(HTTP_ACCESS_VARS, read),
    ...runtime,
    dataDir: resolve(cwd, runtime.dataDir ?? './data'),
    logDir: resolve(cwd, runtime.logDir ?? './logs'),
    mesh: readTable(MESH_VARS, read),
    trading: readTable(TRADING_VARS, read),
    freelance: { ...readTable(FREELANCE_VARS, read), maxJobBytes: DEFAULT_FREELANCE_MAX_JOB_BYTES },
    ai: readTable(AI_VARS, read),
    supervisor: { ...readTable(SUPERVISOR_VARS, read), maxConsecutiveFailures: MAX_CONSECUTIVE_FAILURES },
    worker: readTable(WORKER_VARS, read),
    internal: {
      isWorker: merged[INTERNAL_ENV.role] === 'worker',
      workerRespawns: Number(merged[INTERNAL_ENV.respawns] ?? 0) || 0,
      tokenHint: merged[INTERNAL_ENV.tokenHint]?.trim() || undefined,
    },
    notices: { envFile: file.path, warnings },
  };

  checkMesh(config.mesh, problems);
  checkTrading(config.trading, problems);
  checkSupervision(config.supervisor, problems);
  checkWork(config.freelance, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  warnings.push(
    ...unknownVariableWarnings(
      ENV_VARS.map((v) => v.name),
      Object.keys(file.values),
      Object.keys(env),
      file.path,
    ),
  );
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A preset for tests: port 0, fast timers, static discovery, everything in `dataDir`. */
export function testConfig(dataDir: string, overrides: Env = {}): Readonly<Config> {
  return loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_DIR: resolve(dataDir, 'logs'),
      LOG_LEVEL: 'silent',
      CONTINUOUS_MODE: 'false',
      HEALTH_CHECK_INTERVAL: '1000',
      MESH_DISCOVERY: 'static',
      SUBSYSTEM_RESTART_BASE_MS: '50',
      SUBSYSTEM_RESTART_MAX_MS: '1000',
      ...overrides,
    },
    dataDir,
  );
}
