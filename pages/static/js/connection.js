// The browser client of podium's wire protocol (docs/asyncapi.yaml), shared by every page.
//
// One PodiumConnection is one session's socket: it authenticates, keeps the stream position
// (epoch, seq), reconnects with full-jitter exponential backoff and resumes from that position,
// drops events it has already seen, and turns acks and errors into resolved and rejected promises.
// A silent network is noticed by its pings (while connected) and by the open timeout (while
// connecting: a socket that is not joined in time is dropped and the next attempt scheduled).
// It never touches the DOM; pages listen to its events:
//
//   status   {status}               connecting | connected | reconnecting | closed
//   welcome  {message}              a fresh snapshot (first join, or after a resync)
//   resumed  {message}              a resume succeeded; missed events follow as `event`
//   resync   {message}              history is gone: drop local state, a `welcome` follows
//   event    {event}                an event frame, each (epoch, seq) once, in order
//   presence {presence}             coalesced online counts
//   closed   {code, reason, error}  the server said not to come back (4500–4999); no more retries
//   error    {error}                an error frame that answers no request
//   message  {message}              any other server frame (for frames later pages add)

const RECONNECT = [4000, 4499];
const FINAL = [4500, 4999];
// Standard codes after which a retry would fail the same way (the client sent something wrong).
const FINAL_STANDARD = new Set([1002, 1003, 1007, 1008, 1009]);

/** The wire error codes of the 4500–4999 close codes, for closes that arrive without an error frame. */
export const CLOSE_REASONS = Object.freeze({
  4500: 'protocol_violation',
  4501: 'auth_timeout',
  4502: 'unauthorized',
  4503: 'token_expired',
  4504: 'session_forbidden',
  4505: 'unknown_session',
  4506: 'flood',
});

/** A typed refusal from the server (an `error` frame) or from the client itself. */
export class PodiumError extends Error {
  constructor(code, message, { retryAfter = null, id = null } = {}) {
    super(message || code);
    this.name = 'PodiumError';
    this.code = code;
    this.retryAfter = retryAfter;
    this.id = id;
  }
}

/** Whether a close code asks the client to reconnect. */
export function shouldReconnect(code) {
  if (code >= RECONNECT[0] && code <= RECONNECT[1]) return true;
  if (code >= FINAL[0] && code <= FINAL[1]) return false;
  return !FINAL_STANDARD.has(code);
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base · 2^attempt)) ms. */
export function backoffDelay(attempt, { base = 500, cap = 30000, random = Math.random } = {}) {
  return random() * Math.min(cap, base * 2 ** attempt);
}

/** The WebSocket URL of the node that served the page. */
export function socketUrl(loc = window.location) {
  return loc.origin.replace(/^http/, 'ws') + '/ws';
}

export class PodiumConnection extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.session  the session id
   * @param {string} options.token    a join token for it
   * @param {string} [options.url]    the socket URL (default: this node's /ws)
   * @param {{base?: number, cap?: number}} [options.backoff]  reconnect delays, ms
   * @param {number} [options.requestTimeout]  ms before a request without an answer fails
   * @param {number} [options.pingInterval]  ms between liveness pings while connected (0: none)
   * @param {number} [options.openTimeout]  ms for an attempt to be joined (welcome or resumed)
   */
  constructor({
    session,
    token,
    url = socketUrl(),
    backoff = {},
    requestTimeout = 10000,
    pingInterval = 25000,
    openTimeout = 15000,
  }) {
    super();
    this.session = session;
    this.token = token;
    this.url = url;
    this.backoff = backoff;
    this.requestTimeout = requestTimeout;
    this.pingInterval = pingInterval;
    this.openTimeout = openTimeout;
    this.status = 'idle';
    this.epoch = null;
    this.seq = -1;
    this.attempt = 0;
    this._ws = null;
    this._authId = null;
    this._ready = false;
    this._nextId = 0;
    this._pending = new Map();
    this._retryTimer = null;
    this._pingTimer = null;
    this._openTimer = null;
    this._retryAfter = 0;
    this._lastError = null;
    this._stopped = false;
    this._onOnline = () => {
      if (this._retryTimer !== null) this._reconnectNow();
    };
  }

  /** Opens the connection (and keeps it open until stop() or a final close). */
  start() {
    this._stopped = false;
    window.addEventListener('online', this._onOnline);
    this._open();
  }

  /** Closes the connection for good. */
  stop() {
    this._stopped = true;
    window.removeEventListener('online', this._onOnline);
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._detach(1000, 'bye');
    this._setStatus('closed');
  }

  /**
   * Sends a command and resolves with its ack's `result` (or the pong), rejects with a PodiumError.
   * Commands are not queued while disconnected: an action must not be replayed behind a person's back.
   */
  request(type, fields = {}, { timeout = this.requestTimeout } = {}) {
    if (!this._ready) {
      return Promise.reject(new PodiumError('not_connected', 'not connected'));
    }
    const id = this._id();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new PodiumError('timeout', `${type} got no answer`, { id }));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer });
      this._send({ ...fields, type, id });
    });
  }

  /** An application-level round trip. */
  ping(options) {
    return this.request('ping', {}, options);
  }

  // ---- socket lifecycle -------------------------------------------------------------------------

  _open() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    clearTimeout(this._openTimer);
    this._openTimer = null;
    this._setStatus(this.attempt === 0 && this.epoch === null ? 'connecting' : 'reconnecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._ready = false;
    this._lastError = null;
    ws.onopen = () => this._authenticate();
    ws.onmessage = (msg) => this._receive(msg.data);
    ws.onclose = (close) => this._closed(close.code, close.reason);
    // An `error` is always followed by `close`; the close decides what happens.
    ws.onerror = () => {};
    // Into a stalled network the browser would wait minutes for the TCP connect to give up.
    if (this.openTimeout) {
      this._openTimer = setTimeout(() => {
        if (this._ws === ws && !this._ready) this._lost();
      }, this.openTimeout);
    }
  }

  _authenticate() {
    this._authId = this._id();
    const auth = { type: 'auth', id: this._authId, token: this.token, session: this.session };
    if (this.epoch !== null && this.seq >= 0) {
      auth.resume = { epoch: this.epoch, seq: this.seq };
    }
    this._send(auth);
  }

  _closed(code, reason) {
    this._detach();
    this._failPending(new PodiumError('disconnected', 'the connection closed'));
    if (this._stopped) return;
    if (shouldReconnect(code)) {
      this._scheduleReconnect();
      return;
    }
    this._stopped = true;
    window.removeEventListener('online', this._onOnline);
    // The server names the error in the close reason; the error frame before it has the message.
    const wire = reason || CLOSE_REASONS[code] || (this._lastError && this._lastError.code) || 'closed';
    const last = this._lastError;
    const error = last && last.code === wire ? last : new PodiumError(wire, reason);
    this._setStatus('closed');
    this._emit('closed', { code, reason, error });
  }

  _scheduleReconnect() {
    if (this._stopped) return;
    const delay = Math.max(backoffDelay(this.attempt, this.backoff), this._retryAfter);
    this.attempt += 1;
    this._retryAfter = 0;
    this._setStatus('reconnecting');
    this._retryTimer = setTimeout(() => this._open(), delay);
  }

  _reconnectNow() {
    this._detach();
    this._open();
  }

  /** Forgets the socket (closing it if still open) so none of its late callbacks reach us. */
  _detach(code = 4000, reason = 'reconnect') {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    clearTimeout(this._openTimer);
    this._openTimer = null;
    this._ready = false;
    const ws = this._ws;
    this._ws = null;
    if (ws === null) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
      try {
        ws.close(code, reason);
      } catch (err) {
        // Closing a socket that is already going away can throw; it is gone either way.
      }
    }
  }

  _startPinging() {
    if (!this.pingInterval) return;
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      // A silent network drop shows up here, long before the TCP stack gives up.
      this.ping({ timeout: Math.min(10000, this.pingInterval) }).catch((err) => {
        if (err.code === 'timeout' && this._ws !== null) this._lost();
      });
    }, this.pingInterval);
  }

  _lost() {
    this._detach();
    this._failPending(new PodiumError('disconnected', 'the connection was lost'));
    this._scheduleReconnect();
  }

  // ---- frames -----------------------------------------------------------------------------------

  _receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (err) {
      return; // the server only sends JSON; a broken frame is not worth tearing the page down
    }
    switch (msg.type) {
      case 'welcome':
        this.epoch = msg.epoch;
        this.seq = msg.seq;
        this._joined();
        this._emit('welcome', { message: msg });
        break;
      case 'resumed':
        // The position stays ours: the missed events that follow move it forward.
        this.epoch = msg.epoch;
        this._joined();
        this._emit('resumed', { message: msg });
        break;
      case 'resync':
        this.epoch = null;
        this.seq = -1;
        this._emit('resync', { message: msg });
        break;
      case 'event':
        this._event(msg);
        break;
      case 'presence':
        this._emit('presence', { presence: msg });
        break;
      case 'ack':
        this._settle(msg.id, (p) => p.resolve(msg.result || {}));
        break;
      case 'pong':
        this._settle(msg.id, (p) => p.resolve({}));
        break;
      case 'error':
        this._error(msg);
        break;
      default:
        this._emit('message', { message: msg });
    }
  }

  _joined() {
    clearTimeout(this._openTimer);
    this._openTimer = null;
    this.attempt = 0;
    this._ready = true;
    this._setStatus('connected');
    this._startPinging();
  }

  _event(msg) {
    if (this.epoch === null) return; // not joined yet, or resyncing: the snapshot will cover it
    if (msg.epoch !== this.epoch) {
      // A new stream under our feet: the position means nothing any more, start over cleanly.
      this.epoch = null;
      this.seq = -1;
      this._emit('resync', { message: { type: 'resync', reason: 'epoch_changed' } });
      this._reconnectNow();
      return;
    }
    if (msg.seq <= this.seq) return;
    this.seq = msg.seq;
    this._emit('event', { event: msg });
  }

  _error(msg) {
    const error = new PodiumError(msg.code, msg.message, {
      retryAfter: msg.retry_after ?? null,
      id: msg.id ?? null,
    });
    if (msg.id && msg.id === this._authId) {
      this._lastError = error; // the close that follows says whether to retry
      if (error.retryAfter) this._retryAfter = error.retryAfter * 1000;
      return;
    }
    if (msg.id && this._pending.has(msg.id)) {
      this._settle(msg.id, (p) => p.reject(error));
      return;
    }
    this._lastError = error;
    this._emit('error', { error });
  }

  _settle(id, action) {
    const pending = this._pending.get(id);
    if (!pending) return;
    this._pending.delete(id);
    clearTimeout(pending.timer);
    action(pending);
  }

  _failPending(error) {
    for (const [id, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(new PodiumError(error.code, error.message, { id }));
    }
    this._pending.clear();
  }

  // ---- helpers ----------------------------------------------------------------------------------

  _send(message) {
    if (this._ws !== null && this._ws.readyState === WebSocket.OPEN) {
      this._ws.send(JSON.stringify(message));
    }
  }

  _id() {
    this._nextId += 1;
    return String(this._nextId);
  }

  _setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this._emit('status', { status });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
