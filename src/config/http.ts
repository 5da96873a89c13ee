/** The HTTP API, dashboard and mesh endpoint: where it listens and who may use it. */
import { optional, type ValuesOf, withDefault } from './define.js';
import { bool, list, port, text, token } from './parsers.js';

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
    'require the API token to read the fleet summary: /status, /mesh, /live (changes always require it)',
  ),
};

/** Browser-facing checks (src/http/origin.ts); `allowedHosts` undefined: the defaults computed there. */
export const HTTP_ACCESS_VARS = {
  allowedHosts: optional(
    'HTTP_ALLOWED_HOSTS',
    list,
    "Host header names (any port) the API answers; unset: localhost, 127.0.0.1, ::1, this machine's addresses and hostname; * allows any",
  ),
  allowedOrigins: optional(
    'HTTP_ALLOWED_ORIGINS',
    list,
    "extra browser origins (scheme://host:port) allowed to open /live; the page's own origin always is",
    { unset: [] },
  ),
};

export type HttpConfig = ValuesOf<typeof HTTP_VARS>;
export type HttpAccessConfig = ValuesOf<typeof HTTP_ACCESS_VARS>;
