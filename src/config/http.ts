/** The HTTP API, dashboard and mesh endpoint: where it listens and who may use it. */
import { optional, type ValuesOf, withDefault } from './define.js';
import { bool, port, text, token } from './parsers.js';

export const DEFAULT_PORT = 9000;

export const HTTP_VARS = {
  port: withDefault('PORT', String(DEFAULT_PORT), port, 'HTTP API, dashboard and mesh endpoint port'),
  host: withDefault('HOST', '0.0.0.0', text, 'address the HTTP server binds to'),
  apiToken: optional(
    'API_TOKEN',
    token,
    'bearer token for every mutating endpoint; generated into DATA_DIR/api-token (0600) when unset',
    { secret: true },
  ),
  dashboardTokenRequired: withDefault(
    'DASHBOARD_TOKEN_REQUIRED',
    'false',
    bool,
    'require the API token to read the /live feed (changes always require it)',
  ),
};

export type HttpConfig = ValuesOf<typeof HTTP_VARS>;
