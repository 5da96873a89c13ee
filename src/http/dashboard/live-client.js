// A /live subscriber that reconnects by itself (backoff 250 ms doubling to 10 s, with jitter) after
// the peer restarts or the network drops. Plain ES module: the dashboard uses it in the browser, and
// a Node script can too, by passing a WebSocket class (the `ws` package's, or Node 22's global).

/**
 * @param {object} options
 * @param {string} options.url            ws://host:port/live
 * @param {(msg: object) => void} options.onMessage   every feed message, parsed
 * @param {(status: 'connecting'|'live'|'reconnecting'|'unauthorized', detail?: string) => void} [options.onStatus]
 * @param {() => string|null} [options.token]  API token, sent first when the peer requires it
 * @param {typeof WebSocket} [options.WebSocket]
 * @returns {{ close(): void }}
 */
export function connectLive({
  url,
  onMessage,
  onStatus = () => {},
  token = () => null,
  WebSocket: WS = globalThis.WebSocket,
}) {
  let attempt = 0;
  let socket = null;
  let timer = null;
  let closed = false;

  const open = () => {
    onStatus(attempt === 0 ? 'connecting' : 'reconnecting');
    socket = new WS(url);
    socket.onopen = () => {
      const t = token();
      if (t) socket.send(JSON.stringify({ type: 'auth', token: t }));
    };
    socket.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(typeof event.data === 'string' ? event.data : String(event.data));
      } catch {
        return;
      }
      if (msg.type === 'snapshot') {
        attempt = 0;
        onStatus('live');
      }
      onMessage(msg);
    };
    socket.onclose = (event) => {
      socket = null;
      if (closed) return;
      if (event.code === 4401) onStatus('unauthorized', event.reason);
      attempt += 1;
      const ceiling = Math.min(10_000, 250 * 2 ** Math.min(attempt - 1, 6));
      timer = setTimeout(open, ceiling / 2 + Math.random() * (ceiling / 2));
      onStatus(event.code === 4401 ? 'unauthorized' : 'reconnecting', event.reason);
    };
    socket.onerror = () => {
      // onclose follows and schedules the reconnect.
    };
  };

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.close(1000, 'bye');
    },
  };
}
