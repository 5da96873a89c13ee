/**
 * One HTTP request to a peer on 127.0.0.1 with a deadline, for the measurement scripts: never
 * throws; resolves to {status, text, json} (status 0 when nothing answered in time).
 */
import { Agent, request } from 'node:http';

/** Keep-alive, a few sockets per peer: the soak's load and sampling reuse connections. */
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/**
 * @param {string} url
 * @param {{method?: string, body?: unknown, token?: string, timeoutMs?: number}} [o]
 */
export function call(url, { method = 'GET', body, token, timeoutMs = 5_000 } = {}) {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = {};
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const req = request(url, { method, headers, agent, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s) => {
        text += s;
      });
      res.on('end', () => {
        let json;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', () => resolve({ status: 0, text: '', json: undefined }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, text: '', json: undefined }));
    req.end(payload);
  });
}

/** Ends the kept-alive sockets so the script can exit. */
export const closeAgent = () => agent.destroy();
