// WebRTC between a speaker's page and the production desk, with podium as the signaling relay
// (the rtc.* messages of docs/asyncapi.yaml). Media never passes through podium: the two browsers
// connect directly, or through the TURN relay podium hands out credentials for.
//
// A Publisher is the speaker's end (camera and microphone, the offer, ICE restarts on request);
// a DeskReceiver is the desk's end (it answers every speaker's offer and keeps one peer connection
// per media session). Both only talk to the page through events; neither touches the DOM beyond
// the MediaStreams it hands out.

/** The peer-connection states the server records (rtc.state). */
const REPORTED = new Set(['connected', 'disconnected', 'failed', 'closed']);
/** How long the speaker waits for a desk to answer before offering again. */
const ANSWER_WAIT_MS = 10000;
/** How long a desk lets a connection stay `disconnected` before asking for an ICE restart. */
const DISCONNECTED_GRACE_MS = 3000;

/**
 * Calls `handler(type, message)` for every relayed rtc.* message the connection receives (each
 * keeps its command's type: rtc.offer in, rtc.offer out).
 */
export function onRelay(connection, handler) {
  connection.addEventListener('message', (e) => {
    const m = e.detail.message;
    if (m && typeof m.type === 'string' && m.type.startsWith('rtc.')) handler(m.type, m);
  });
}

/** The ICE servers podium gives this person (STUN, and TURN with short-lived credentials). */
export async function iceServers(connection) {
  const result = await connection.request('rtc.ice');
  return (result.ice_servers || [])
    .filter((s) => s && s.urls)
    .map((s) => {
      const server = { urls: s.urls };
      if (s.username) server.username = s.username;
      if (s.credential) server.credential = s.credential;
      return server;
    });
}

/** A remote candidate frame as RTCIceCandidateInit, or null for the end of candidates. */
function candidateInit(data) {
  if (!data.candidate) return null;
  const init = { candidate: data.candidate };
  if (typeof data.mid === 'string') init.sdpMid = data.mid;
  if (typeof data.mline === 'number') init.sdpMLineIndex = data.mline;
  if (init.sdpMid === undefined && init.sdpMLineIndex === undefined) init.sdpMLineIndex = 0;
  return init;
}

/** A local candidate as the fields of rtc.candidate ("" is the end of candidates). */
function candidateFields(candidate) {
  if (!candidate || !candidate.candidate) return { candidate: '' };
  const fields = { candidate: candidate.candidate };
  if (candidate.sdpMid !== null && candidate.sdpMid !== undefined) fields.mid = candidate.sdpMid;
  if (typeof candidate.sdpMLineIndex === 'number') fields.mline = candidate.sdpMLineIndex;
  return fields;
}

/** Closes a peer connection quietly (closing a closed one is harmless, but say so). */
function closePeer(pc) {
  if (!pc) return;
  pc.onicecandidate = pc.onconnectionstatechange = pc.ontrack = null;
  try {
    pc.close();
  } catch (err) {
    // already closed
  }
}

/**
 * The speaker's end. States: idle → preview (camera on) → connecting (offer sent) → live (media
 * flows) → preview again after stop(); `failed` when the camera or the negotiation failed.
 * Events: `change` (state, stream or error changed). Errors: camera_denied, no_camera, insecure (no
 * camera outside https), or the server's code.
 */
export class Publisher extends EventTarget {
  constructor() {
    super();
    this.connection = null;
    this.stream = null;
    this.pc = null;
    this.media = null;
    this.state = 'idle';
    this.error = null; // {code} of the last failure
    this.wanted = false; // the person pressed Speak and has not pressed Stop
    this.ended = null; // why the desk or podium last ended the call (hangup, revoked, …)
    this._outbox = []; // local candidates waiting for the media id
    this._inbox = []; // relayed frames that arrived before the offer's ack
    this._answerTimer = null;
    this._offerTimer = null; // the next offer, scheduled after a failure or a desk that left
    this._opening = null; // the camera request under way
    this._generation = 0; // bumped by release(): a camera that arrives later is stopped
  }

  /** The connection to signal through (a new one after every rejoin). */
  attach(connection) {
    this.connection = connection;
    onRelay(connection, (type, data) => {
      if (connection === this.connection) this.receive(type, data);
    });
  }

  /** Turns on the camera and microphone (once) and shows them. */
  preview() {
    // One request at a time: a second camera stream would stay on after the turn.
    if (!this._opening) this._opening = this._open().finally(() => (this._opening = null));
    return this._opening;
  }

  async _open() {
    if (this.stream) return this.stream;
    this.error = null;
    if (!navigator.mediaDevices || !window.isSecureContext) {
      this._fail('insecure'); // browsers offer cameras to https pages only
      return null;
    }
    const generation = this._generation;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      });
    } catch (err) {
      const denied = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
      this._fail(denied ? 'camera_denied' : 'no_camera');
      return null;
    }
    if (generation !== this._generation) {
      // The turn ended while the browser was asking: this camera is no longer wanted.
      for (const track of stream.getTracks()) track.stop();
      return null;
    }
    this.stream = stream;
    if (this.state === 'idle' || this.state === 'failed') this._set('preview');
    else this._changed();
    return this.stream;
  }

  /** Starts sending to the desk (Speak). */
  async start() {
    this.wanted = true;
    this.ended = null;
    if (!(await this.preview())) return;
    await this._offer();
  }

  /** Stops sending (Stop): hangs up, keeps the preview. */
  stop() {
    this.wanted = false;
    this.ended = 'stopped';
    this._hangup(true);
    if (this.stream) this._set('preview');
  }

  /** Ends everything: the call and the camera (the turn is over). */
  release() {
    this._generation += 1;
    this.wanted = false;
    this._hangup(true);
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.error = null;
    this._set('idle');
  }

  /** The signaling connection came back: the server forgot our media session, so offer again. */
  rejoined() {
    if (!this.wanted) return;
    this._hangup(false);
    this._later(0);
  }

  /** A relayed rtc.* frame for this speaker. */
  receive(type, data) {
    if (!this.pc) return;
    if (this.media === null) {
      this._inbox.push([type, data]); // the desk was faster than the offer's ack
      return;
    }
    if (data.media !== this.media) return;
    switch (type) {
      case 'rtc.answer':
        clearTimeout(this._answerTimer);
        this.pc.setRemoteDescription({ type: 'answer', sdp: data.sdp }).catch(() => {
          this._retry('sdp_invalid');
        });
        break;
      case 'rtc.candidate':
        this.pc.addIceCandidate(candidateInit(data)).catch(() => {});
        break;
      case 'rtc.restart':
        this._restartIce();
        break;
      case 'rtc.hangup':
        this._hungUp(data.reason || 'hangup');
        break;
      default:
        break;
    }
  }

  // ---- negotiation ------------------------------------------------------------------------------

  async _offer() {
    const connection = this.connection;
    if (!connection || !this.stream || !this.wanted) return;
    this._set('connecting');
    let servers;
    try {
      servers = await iceServers(connection);
    } catch (err) {
      this._fail(err.code || 'unknown');
      return;
    }
    if (!this.wanted || connection !== this.connection) return;
    // One call at a time: a call still open is replaced (podium tells its desk so).
    this._hangup(false);
    const pc = new RTCPeerConnection({ iceServers: servers });
    this.pc = pc;
    this.media = null;
    this._outbox = [];
    this._inbox = [];
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.onicecandidate = (e) => this._candidate(pc, e.candidate);
    pc.onconnectionstatechange = () => this._peerState(pc);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const result = await connection.request('rtc.offer', { sdp: pc.localDescription.sdp });
      if (pc !== this.pc) return;
      this.media = result.media;
    } catch (err) {
      if (pc === this.pc) this._retry(err.code || 'unknown');
      return;
    }
    for (const fields of this._outbox) this._send('rtc.candidate', { ...fields });
    this._outbox = [];
    const early = this._inbox;
    this._inbox = [];
    for (const [type, data] of early) this.receive(type, data);
    clearTimeout(this._answerTimer);
    // No desk answered (none is open yet, or it reloaded): offer again until one does.
    this._answerTimer = setTimeout(() => {
      if (pc === this.pc && !pc.remoteDescription) this._retry(null);
    }, ANSWER_WAIT_MS);
  }

  _candidate(pc, candidate) {
    if (pc !== this.pc) return;
    const fields = candidateFields(candidate);
    if (this.media === null) this._outbox.push(fields);
    else this._send('rtc.candidate', fields);
  }

  async _restartIce() {
    const pc = this.pc;
    if (!pc || this.media === null || pc.signalingState !== 'stable') return;
    try {
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      await this.connection.request('rtc.offer', { media: this.media, sdp: pc.localDescription.sdp });
    } catch (err) {
      if (pc === this.pc) this._retry(err.code || 'unknown');
    }
  }

  _peerState(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    if (REPORTED.has(state) && this.media !== null) this._send('rtc.state', { state });
    if (state === 'connected') {
      this.error = null;
      this._set('live');
    } else if (state === 'failed') {
      this._restartIce();
    }
  }

  /** The desk (or podium) hung up. */
  _hungUp(reason) {
    // `left`: the desk went away (a reload, say) while the speaker still has the floor.
    const again = this.wanted && reason === 'left';
    this._hangup(false);
    if (again) {
      this._set('connecting');
      this._later(1000);
    } else {
      this.wanted = false;
      this.ended = reason;
      this._set(this.stream ? 'preview' : 'idle');
    }
  }

  /** This negotiation failed; start a fresh one a little later while the person still wants to speak. */
  _retry(code) {
    this._hangup(true);
    if (code) this.error = { code };
    if (!this.wanted) {
      this._set(this.stream ? 'preview' : 'idle');
      return;
    }
    if (code === 'not_allowed') {
      // The floor is no longer ours: nothing to retry.
      this.wanted = false;
      this._set(this.stream ? 'preview' : 'idle');
      return;
    }
    this._set('connecting');
    this._later(2000);
  }

  /** Offers again after `ms` (one scheduled offer at most). */
  _later(ms) {
    clearTimeout(this._offerTimer);
    this._offerTimer = setTimeout(() => {
      this._offerTimer = null;
      this._offer();
    }, ms);
  }

  _hangup(tell) {
    clearTimeout(this._answerTimer);
    clearTimeout(this._offerTimer);
    if (tell && this.media !== null) this._send('rtc.hangup', {});
    closePeer(this.pc);
    this.pc = null;
    this.media = null;
    this._outbox = [];
    this._inbox = [];
  }

  _send(type, fields) {
    if (!this.connection || this.media === null) return;
    this.connection.request(type, { media: this.media, ...fields }).catch(() => {});
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
 * The desk's end: one peer connection per media session, each answered as its offer arrives.
 * Events: `change` (a session came, went, got video or changed state).
 * Each session: {media, name, group, stream, state, claimed}; `refusedName` names the last
 * speaker another desk took first.
 */
export class DeskReceiver extends EventTarget {
  constructor() {
    super();
    this.connection = null;
    this.sessions = new Map();
    this._chains = new Map(); // media → the promise of its last step
    this._servers = null; // {list, until}
  }

  attach(connection) {
    this.connection = connection;
    this._servers = null;
    onRelay(connection, (type, data) => {
      if (connection === this.connection) this.receive(type, data);
    });
  }

  /** The signaling connection came back: podium ended our media sessions, the speakers offer again. */
  rejoined() {
    for (const media of [...this.sessions.keys()]) this._close(media, 'left', false);
  }

  /** The session shown on screen: the newest one with video, else the newest one. */
  current() {
    const all = [...this.sessions.values()].reverse();
    return all.find((s) => s.stream) || all[0] || null;
  }

  receive(type, data) {
    const media = data.media;
    if (typeof media !== 'string') return;
    switch (type) {
      case 'rtc.offer':
        this._queue(media, () => this._offer(media, data), true);
        break;
      case 'rtc.candidate':
        this._queue(media, () => {
          const s = this.sessions.get(media);
          return s ? s.pc.addIceCandidate(candidateInit(data)).catch(() => {}) : null;
        });
        break;
      case 'rtc.hangup':
        this._queue(media, () => this._close(media, data.reason || 'hangup', false));
        break;
      case 'rtc.state': {
        const s = this.sessions.get(media);
        if (s) s.remote = data.state;
        break;
      }
      default:
        break;
    }
  }

  /** Asks the speaker for an ICE restart (the operator's button, or a failed connection). */
  restart(media) {
    const s = this.sessions.get(media);
    if (s && s.claimed) this._send('rtc.restart', { media });
  }

  /** Hangs up one session (the operator's button). */
  hangup(media) {
    this._close(media, 'hangup', true);
  }

  // ---- negotiation ------------------------------------------------------------------------------

  /**
   * Runs a step of one media session after the steps before it, so a candidate is added only once
   * the offer it belongs to is set (answering awaits the ICE servers and the browser). Frames of a
   * media session this desk never saw an offer for are not ours.
   */
  _queue(media, step, opens = false) {
    if (!opens && !this._chains.has(media)) return;
    const before = this._chains.get(media) || Promise.resolve();
    this._chains.set(
      media,
      before.then(step).catch(() => this._close(media, 'failed', false)),
    );
  }

  async _offer(media, data) {
    let s = this.sessions.get(media);
    if (!s) {
      const servers = await this._iceServers();
      const pc = new RTCPeerConnection({ iceServers: servers });
      s = {
        media,
        pc,
        name: data.name || '',
        group: data.group || '',
        stream: null,
        state: 'connecting',
        remote: null,
        claimed: false,
        outbox: [],
        graceTimer: null,
      };
      this.sessions.set(media, s);
      pc.onicecandidate = (e) => this._candidate(s, e.candidate);
      pc.ontrack = (e) => {
        s.stream = e.streams[0] || new MediaStream([e.track]);
        this._changed();
      };
      pc.onconnectionstatechange = () => this._peerState(s);
      this._changed();
    } else {
      if (data.name) s.name = data.name;
      if (data.group) s.group = data.group;
    }
    const pc = s.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp: data.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    try {
      await this.connection.request('rtc.answer', { media, sdp: pc.localDescription.sdp });
    } catch (err) {
      if (err.code === 'media_conflict') {
        // Another desk answered first: that speaker is theirs.
        closePeer(pc);
        this.sessions.delete(media);
        this._chains.delete(media);
        this.refusedName = s.name;
        this._changed();
      } else {
        this._close(media, 'failed', false);
      }
      return;
    }
    s.claimed = true;
    for (const fields of s.outbox) this._send('rtc.candidate', { media, ...fields });
    s.outbox = [];
  }

  async _iceServers() {
    const now = Date.now();
    if (this._servers && this._servers.until > now) return this._servers.list;
    try {
      const result = await this.connection.request('rtc.ice');
      const list = (result.ice_servers || [])
        .filter((srv) => srv && srv.urls)
        .map(({ urls, username, credential }) => ({
          urls,
          ...(username ? { username } : {}),
          ...(credential ? { credential } : {}),
        }));
      // Credentials are renewed well before they expire.
      const ttl = Math.max(30, Number(result.ttl) || 300);
      this._servers = { list, until: now + (ttl * 1000) / 2 };
      return list;
    } catch (err) {
      return []; // host candidates still work on one network; the speaker's TURN may reach us
    }
  }

  _candidate(s, candidate) {
    const fields = candidateFields(candidate);
    if (!s.claimed) s.outbox.push(fields);
    else this._send('rtc.candidate', { media: s.media, ...fields });
  }

  _peerState(s) {
    const state = s.pc.connectionState;
    if (REPORTED.has(state) && s.claimed) this._send('rtc.state', { media: s.media, state });
    s.state = state;
    clearTimeout(s.graceTimer);
    if (state === 'failed') this.restart(s.media);
    if (state === 'disconnected') {
      s.graceTimer = setTimeout(() => {
        if (s.pc.connectionState === 'disconnected') this.restart(s.media);
      }, DISCONNECTED_GRACE_MS);
    }
    this._changed();
  }

  _close(media, reason, tell) {
    this._chains.delete(media);
    const s = this.sessions.get(media);
    if (!s) return;
    clearTimeout(s.graceTimer);
    if (tell && s.claimed) this._send('rtc.hangup', { media });
    closePeer(s.pc);
    this.sessions.delete(media);
    this.lastEnded = { name: s.name, reason };
    this._changed();
  }

  _send(type, fields) {
    if (!this.connection) return;
    this.connection.request(type, fields).catch(() => {});
  }

  _changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}
