// WHIP (publishing) and WHEP (playing) from a page: the HTTP exchange of RFC 9725 with podium's
// own endpoints (docs/streaming.md), and the two ends the pages use.
//
// A StreamPublisher sends a microphone (a booth) or a camera and microphone (the desk's floor feed)
// to /whip/<session>/<channel>; a StreamPlayer plays a channel from /whep/<session>/<channel>. Both
// keep the resource's Location and DELETE it when they stop, and only talk to the page through
// `change` events (neither touches the DOM beyond the MediaStreams they hand out).

/** How long an offer waits for its ICE candidates before it is sent; later ones are PATCHed. */
const GATHER_MS = 1500;
/** Delays (ms) before trying again after a failure nobody asked to wait for. */
const RETRY_MS = [1000, 2000, 5000, 10000];
const HTTP_TIMEOUT = 15000;

/** A refusal of a WHIP/WHEP request: the HTTP status, podium's code, and Retry-After (seconds). */
export class StreamError extends Error {
  constructor(status, code, message = '', retryAfter = null) {
    super(message || code);
    this.name = 'StreamError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** The claims of a JWT (not checked: podium checks it; the page only reads `lang`, `role`). */
export function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) || {};
  } catch (err) {
    return {};
  }
}

function retryAfter(response) {
  const value = Number(response.headers.get('Retry-After'));
  return Number.isFinite(value) && value > 0 ? value : null;
}

async function refusal(response) {
  let code = `http_${response.status}`;
  let message = '';
  try {
    const body = await response.json();
    if (body && typeof body.code === 'string') code = body.code;
    if (body && typeof body.message === 'string') message = body.message;
  } catch (err) {
    // not JSON: the status says enough
  }
  return new StreamError(response.status, code, message, retryAfter(response));
}

async function send(url, init) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HTTP_TIMEOUT);
  try {
    return await fetch(url, { credentials: 'omit', cache: 'no-store', ...init, signal: abort.signal });
  } catch (err) {
    throw new StreamError(0, 'network', String(err));
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once the peer connection has gathered its candidates, or after `ms`. */
function gathered(pc, ms) {
  return new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      done();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') finish();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/**
 * One WHIP or WHEP session: the offer POSTed to `endpoint`, the answer applied, candidates found
 * after the offer PATCHed (If-Match: the ETag), and DELETE at the end.
 */
export class StreamSession {
  constructor(pc, endpoint, token) {
    this.pc = pc;
    this.endpoint = endpoint;
    this.token = token;
    this.resource = null;
    this.etag = null;
    this._late = []; // candidates found after the offer left, waiting for the resource
    this._sent = false;
    this._closed = false;
    this._patching = Promise.resolve();
  }

  _headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  /** Negotiates; rejects with a StreamError. `query` is added to the endpoint (?takeover=1). */
  async open(query = '') {
    const pc = this.pc;
    pc.addEventListener('icecandidate', (e) => {
      if (this._sent) this._trickle(e.candidate);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_MS);
    this._sent = true;
    // Same-origin redirects (307) keep the method, the body and the Authorization header; a node
    // of another origin is out of the page's reach (CSP connect-src 'self'), so a session's
    // /whip and /whep must reach the node carrying it (docs/streaming.md).
    const response = await send(this.endpoint + query, {
      method: 'POST',
      headers: this._headers({ 'Content-Type': 'application/sdp', Accept: 'application/sdp' }),
      body: pc.localDescription.sdp,
      redirect: 'follow',
    });
    if (response.status !== 201) throw await refusal(response);
    const answer = await response.text();
    const location = response.headers.get('Location');
    this.resource = location ? new URL(location, response.url || window.location.href).href : null;
    this.etag = response.headers.get('ETag');
    if (this._closed) {
      this.close();
      throw new StreamError(0, 'closed');
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    this._flush();
  }

  _trickle(candidate) {
    this._late.push(candidate);
    if (this.resource) this._flush();
  }

  /** PATCHes the candidates found since the offer (one request at a time, in order). */
  _flush() {
    if (!this.resource || !this.etag || this._late.length === 0 || this._closed) return;
    const batch = this._late;
    this._late = [];
    const desc = this.pc.localDescription;
    const ufrag = desc && /a=ice-ufrag:(\S+)/.exec(desc.sdp);
    const pwd = desc && /a=ice-pwd:(\S+)/.exec(desc.sdp);
    const lines = [];
    if (ufrag && pwd) lines.push(`a=ice-ufrag:${ufrag[1]}`, `a=ice-pwd:${pwd[1]}`);
    const byMid = new Map();
    let end = false;
    for (const c of batch) {
      if (!c || !c.candidate) {
        end = true;
        continue;
      }
      const mid = c.sdpMid ?? String(c.sdpMLineIndex ?? 0);
      if (!byMid.has(mid)) byMid.set(mid, []);
      byMid.get(mid).push(c.candidate);
    }
    for (const [mid, candidates] of byMid) {
      lines.push('m=audio 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${mid}`);
      for (const c of candidates) lines.push(`a=${c}`);
    }
    if (end) lines.push('a=end-of-candidates');
    if (byMid.size === 0 && !end) return;
    const body = lines.join('\r\n') + '\r\n';
    this._patching = this._patching.then(() =>
      send(this.resource, {
        method: 'PATCH',
        headers: this._headers({
          'Content-Type': 'application/trickle-ice-sdpfrag',
          'If-Match': this.etag,
        }),
        body,
      }).catch(() => {}),
    );
  }

  /** Ends the session: closes the peer connection and DELETEs the resource (once). */
  close({ keepalive = false } = {}) {
    this._closed = true;
    const pc = this.pc;
    pc.onconnectionstatechange = pc.ontrack = null;
    try {
      pc.close();
    } catch (err) {
      // already closed
    }
    const resource = this.resource;
    this.resource = null;
    if (!resource) return Promise.resolve();
    return send(resource, { method: 'DELETE', headers: this._headers(), keepalive }).catch(() => {});
  }
}

/** The delay before attempt `n` of something that failed by itself. */
function retryDelay(n) {
  return RETRY_MS[Math.min(n, RETRY_MS.length - 1)];
}

/**
 * The publishing end (a booth's microphone, the desk's floor feed).
 * States: idle → preview (media on) → connecting → live, back to preview on stop(); `failed`.
 * `error`: {code, retryAfter} — channel_busy (another publisher), camera_denied, no_camera,
 * insecure, over_capacity/rate_limited (retrying), or the server's code.
 */
export class StreamPublisher extends EventTarget {
  /**
   * @param {object} options
   * @param {boolean} options.video  a camera as well (the floor)
   * @param {MediaStreamConstraints['audio']} [options.audio]  the microphone's constraints
   */
  constructor({ video = false, audio = true } = {}) {
    super();
    this.video = video;
    this.audio = audio;
    this.endpoint = null;
    this.token = null;
    this.stream = null;
    this.session = null;
    this.state = 'idle';
    this.error = null;
    this.wanted = false;
    this.retryAt = null; // when the next attempt starts (ms since the epoch)
    this._timer = null;
    this._attempt = 0;
    this._opening = null;
  }

  /** Where to publish, and with which token (a new token after a rejoin). */
  target(endpoint, token) {
    this.endpoint = endpoint;
    this.token = token;
  }

  /** Turns the microphone (and camera) on, once. */
  preview() {
    if (!this._opening) this._opening = this._open().finally(() => (this._opening = null));
    return this._opening;
  }

  async _open() {
    if (this.stream) return this.stream;
    if (!navigator.mediaDevices || !window.isSecureContext) {
      this._fail('insecure');
      return null;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: this.audio,
        video: this.video
          ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
          : false,
      });
    } catch (err) {
      const denied = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
      this._fail(denied ? 'camera_denied' : 'no_camera');
      return null;
    }
    if (this.state === 'idle' || this.state === 'failed') this._set('preview');
    else this._changed();
    return this.stream;
  }

  /** Goes live (Go live); `takeover` is an operator's forced takeover. */
  async start({ takeover = false } = {}) {
    this.wanted = true;
    this.error = null;
    this._attempt = 0;
    if (!(await this.preview())) {
      this.wanted = false;
      return;
    }
    await this._publish(takeover);
  }

  /** Stops publishing (Stop): DELETEs the WHIP session, keeps the microphone on. */
  async stop() {
    this.wanted = false;
    this._cancel();
    const session = this.session;
    this.session = null;
    if (this.stream) this._set('preview');
    else this._set('idle');
    if (session) await session.close();
  }

  /** Stops publishing and turns the devices off. */
  async release() {
    await this.stop();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this._set('idle');
  }

  async _publish(takeover = false) {
    this._cancel();
    if (!this.wanted || !this.stream || !this.endpoint) return;
    if (this.session) this.session.close();
    this._set('connecting');
    const pc = new RTCPeerConnection();
    for (const track of this.stream.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
    }
    const session = new StreamSession(pc, this.endpoint, this.token);
    this.session = session;
    pc.onconnectionstatechange = () => {
      if (session !== this.session) return;
      if (pc.connectionState === 'connected') {
        this._attempt = 0;
        this.error = null;
        this._set('live');
      } else if (pc.connectionState === 'failed') {
        this._again(null);
      }
    };
    try {
      await session.open(takeover ? '?takeover=1' : '');
    } catch (err) {
      if (session !== this.session) return;
      session.close();
      this.session = null;
      this._refused(err);
    }
  }

  _refused(err) {
    const code = err.code || 'unknown';
    if (['over_capacity', 'rate_limited', 'network', 'http_502', 'http_504'].includes(code)) {
      this._again(err);
      return;
    }
    // Everything else needs a person: another booth, a token, a programme change.
    this.wanted = false;
    this.error = { code, status: err.status || 0 };
    this._set(this.stream ? 'preview' : 'idle');
  }

  /** Tries again later while still wanted (after Retry-After when the server gave one). */
  _again(err) {
    if (!this.wanted) return;
    if (this.session) this.session.close();
    this.session = null;
    const seconds = err && err.retryAfter;
    const ms = seconds ? seconds * 1000 : retryDelay(this._attempt);
    this._attempt += 1;
    this.error = err ? { code: err.code, status: err.status, retryAfter: seconds || null } : null;
    this.retryAt = Date.now() + ms;
    this._set('waiting');
    this._timer = setTimeout(() => this._publish(), ms);
  }

  _cancel() {
    clearTimeout(this._timer);
    this._timer = null;
    this.retryAt = null;
  }

  _fail(code) {
    this.error = { code };
    this._set('failed');
  }

  _set(state) {
    this.state = state;
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}

/**
 * The playing end: one channel at a time. States: idle, connecting, playing, offline (the channel
 * is not live: wait for its stream.channel event), waiting (the node is busy: Retry-After), failed.
 * `stream` is the MediaStream to attach to a media element while playing.
 */
export class StreamPlayer extends EventTarget {
  constructor() {
    super();
    this.token = null;
    this.channel = null; // the channel's view (id, state, video, whep, external_url)
    this.wanted = false;
    this.state = 'idle';
    this.error = null;
    this.stream = null;
    this.session = null;
    this.retryAt = null;
    this._timer = null;
    this._attempt = 0;
  }

  /** Plays `channel` (a view from parts.stream or a stream.channel event) with `token`. */
  play(channel, token) {
    this.wanted = true;
    this.token = token;
    this._attempt = 0;
    this.channel = channel;
    this._connect();
  }

  /** Stops playing and DELETEs the WHEP session. */
  stop({ keepalive = false } = {}) {
    this.wanted = false;
    this._end({ keepalive });
    this.error = null;
    this._set('idle');
  }

  /** The channel's view changed (an event, or a new welcome): follow it. */
  update(channel) {
    if (!this.channel || channel.id !== this.channel.id) return;
    this.channel = channel;
    if (!this.wanted) return;
    if (channel.state !== 'live') {
      this._end();
      this._set('offline');
    } else if (this.state === 'offline' || this.state === 'idle') {
      this._connect(); // it went live: play it
    } else {
      this._changed(); // a takeover or a new external URL: the media go on
    }
  }

  /** A new token after a rejoin. */
  setToken(token) {
    this.token = token;
  }

  async _connect() {
    this._end();
    const channel = this.channel;
    if (!this.wanted || !channel || !this.token) return;
    if (channel.state !== 'live') {
      this._set('offline');
      return;
    }
    this.error = null;
    this._set('connecting');
    const pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction: 'recvonly' });
    if (channel.video) pc.addTransceiver('video', { direction: 'recvonly' });
    const session = new StreamSession(pc, channel.whep, this.token);
    this.session = session;
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      if (session !== this.session) return;
      stream.addTrack(e.track);
      // The node ends a listener's tracks when the channel goes offline.
      e.track.addEventListener('ended', () => {
        if (session === this.session && this.state === 'playing') this._again(null);
      });
      this.stream = stream;
      this._changed();
    };
    pc.onconnectionstatechange = () => {
      if (session !== this.session) return;
      if (pc.connectionState === 'connected') {
        this._attempt = 0;
        this._set('playing');
      } else if (pc.connectionState === 'failed') {
        this._again(null);
      }
    };
    try {
      await session.open();
    } catch (err) {
      if (session !== this.session) return;
      this._end();
      if (err.code === 'channel_offline' || err.status === 409) {
        this._set('offline'); // the stream.channel event that says it is live brings us back
      } else if (['over_capacity', 'rate_limited', 'network'].includes(err.code) || err.status >= 500) {
        this._again(err);
      } else {
        this.wanted = false;
        this.error = { code: err.code, status: err.status };
        this._set('failed');
      }
    }
  }

  _again(err) {
    this._end();
    if (!this.wanted) return;
    const seconds = err && err.retryAfter;
    const ms = seconds ? seconds * 1000 : retryDelay(this._attempt);
    this._attempt += 1;
    this.error = err ? { code: err.code, status: err.status, retryAfter: seconds || null } : null;
    this.retryAt = Date.now() + ms;
    this._set('waiting');
    this._timer = setTimeout(() => this._connect(), ms);
  }

  _end({ keepalive = false } = {}) {
    clearTimeout(this._timer);
    this._timer = null;
    this.retryAt = null;
    const session = this.session;
    this.session = null;
    this.stream = null;
    if (session) session.close({ keepalive });
  }

  _set(state) {
    this.state = state;
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}

/** Reads a microphone's level (0–1, RMS) for a meter; `stop()` frees the audio graph. */
export class LevelMeter {
  constructor(stream, onLevel) {
    const Context = window.AudioContext || window.webkitAudioContext;
    this.context = new Context();
    const source = this.context.createMediaStreamSource(stream);
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    source.connect(this.analyser);
    this.samples = new Float32Array(this.analyser.fftSize);
    this.onLevel = onLevel;
    this.level = 0;
    this._frame = null;
    this._tick = () => {
      this.analyser.getFloatTimeDomainData(this.samples);
      let sum = 0;
      for (const v of this.samples) sum += v * v;
      const rms = Math.sqrt(sum / this.samples.length);
      // Decays slowly, so a word reads as a level rather than a flicker.
      this.level = Math.max(rms * 3, this.level * 0.85);
      this.onLevel(Math.min(1, this.level));
      this._frame = window.requestAnimationFrame(this._tick);
    };
    this._frame = window.requestAnimationFrame(this._tick);
  }

  /** Browsers start audio only after an interaction: call on a click. */
  resume() {
    if (this.context.state === 'suspended') this.context.resume().catch(() => {});
  }

  stop() {
    window.cancelAnimationFrame(this._frame);
    this.context.close().catch(() => {});
  }
}
