// The interpreter booth: the interpreter's microphone published with WHIP to the channel of the
// language their token names (its `lang` claim), a level meter, the channel's state and listeners.
//
// The link is /s/<session>/booth#code=<join code> (a token with the role `interpreter`; see
// `podium link --role interpreter --lang fr`). A reload while live goes live again at once: podium
// lets the same person's new connection replace their earlier one, so listeners stay connected.

import { setText } from './dom.js';
import { renderNotice, renderStatus, renderTitle } from './page-head.js';
import { formatNumber, initLanguage, languageName, onLanguageChange, t } from './i18n.js';
import { sessionIdFromPath, takeCode, tokenStore } from './join.js';
import { RoleLink } from './role-link.js';
import { LevelMeter, StreamPublisher, tokenClaims } from './stream.js';

const $ = (id) => document.getElementById(id);
const el = {
  title: $('session-title'),
  channel: $('booth-channel'),
  channelState: $('channel-state'),
  listeners: $('listener-count'),
  connection: $('connection-status'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  retry: $('notice-retry'),
  booth: $('booth'),
  boothTitle: $('booth-channel-title'),
  level: $('booth-level'),
  status: $('booth-status'),
  error: $('booth-error'),
  mic: $('booth-mic'),
  live: $('booth-live'),
  stop: $('booth-stop'),
  language: $('language'),
};

const view = {
  sessionId: sessionIdFromPath(),
  session: null,
  status: 'idle',
  notice: null,
  lang: '', // the channel: the token's lang claim
  channel: null, // its view (parts.stream, stream.channel)
  listeners: {},
  stopped: false, // the interpreter pressed Stop
};
const tokens = tokenStore(`podium.token.${view.sessionId}.booth`);
// Interpreters work with headsets and booth consoles: the browser must not process their voice.
const publisher = new StreamPublisher({
  audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
});
let meter = null;
// Whether this tab was live: a reload goes live again by itself.
const LIVE_KEY = `podium.booth.live.${view.sessionId}`;

function wasLive() {
  try {
    return window.sessionStorage.getItem(LIVE_KEY) === '1';
  } catch (err) {
    return false;
  }
}

function rememberLive(live) {
  try {
    if (live) window.sessionStorage.setItem(LIVE_KEY, '1');
    else window.sessionStorage.removeItem(LIVE_KEY);
  } catch (err) {
    // a reload then waits for Go live
  }
}

// ---- rendering ----------------------------------------------------------------------------------

const ERRORS = {
  channel_busy: 'booth.busy',
  channel_forbidden: 'booth.forbidden',
  camera_denied: 'booth.mic_denied',
  no_camera: 'booth.no_mic',
  insecure: 'booth.insecure',
};

function statusKey() {
  const p = publisher;
  if (p.state === 'waiting') {
    if (p.error && p.error.retryAfter) {
      const n = Math.max(1, Math.ceil((p.retryAt - Date.now()) / 1000));
      return ['stream.state.waiting', { n: formatNumber(n) }];
    }
    return ['booth.state.retrying', {}];
  }
  if (p.state === 'preview' && view.stopped) return ['booth.state.stopped', {}];
  if (p.state === 'failed') return ['booth.state.idle', {}];
  return [`booth.state.${p.state}`, {}];
}

function render() {
  renderTitle(el, view.session, 'booth.heading');
  renderStatus(el, view.status);
  renderNotice(el, view.notice);

  const language = view.lang ? languageName(view.lang) : '';
  setText(el.channel, language);
  el.booth.hidden = !view.channel;
  setText(el.boothTitle, t('booth.channel_name', { language }));
  const live = Boolean(view.channel && view.channel.state === 'live');
  el.channelState.dataset.state = live ? 'live' : 'offline';
  setText(el.channelState, t(live ? 'stream.live' : 'stream.offline'));
  setText(el.listeners, formatNumber(view.listeners[view.lang] || 0));

  const [key, params] = statusKey();
  setText(el.status, t(key, { language, ...params }));
  el.status.dataset.state = publisher.state;
  const error = publisher.error && publisher.state !== 'waiting' ? publisher.error : null;
  el.error.hidden = !error;
  if (error) {
    const known = ERRORS[error.code];
    setText(el.error, t(known || 'booth.error', { language, code: error.code }));
  }
  const sending = publisher.wanted;
  el.mic.hidden = Boolean(publisher.stream);
  el.live.hidden = sending;
  el.stop.hidden = !sending;
}

function notify(key, extra = {}) {
  view.notice = { key, ...extra };
  render();
}

function startMeter() {
  if (meter || !publisher.stream) return;
  try {
    meter = new LevelMeter(publisher.stream, (level) => {
      el.level.value = level;
    });
  } catch (err) {
    meter = null; // no Web Audio: the booth works without its meter
  }
}

// ---- the join flow ------------------------------------------------------------------------------

function applySnapshot(stream) {
  const channels = (stream && stream.channels) || [];
  view.channel = channels.find((c) => c.id === view.lang) || null;
  view.listeners = (stream && stream.listeners) || {};
}

const link = new RoleLink({
  sessionId: view.sessionId,
  tokens,
  accept: (role) => role === 'interpreter',
  needLink: 'booth.need_link',
  wrongRole: 'booth.not_interpreter',
  notify,
  onSession(session) {
    view.session = session;
  },
  wire(conn) {
    view.lang = tokenClaims(conn.token).lang || '';
    publisher.target(`/whip/${encodeURIComponent(view.sessionId)}/${view.lang}`, conn.token);
    conn.addEventListener('status', (e) => {
      view.status = e.detail.status;
      render();
    });
    conn.addEventListener('welcome', (e) => {
      const m = e.detail.message;
      view.session = { ...view.session, ...m.session };
      view.notice = null;
      if (!view.lang) {
        notify('booth.no_lang');
        return;
      }
      applySnapshot(m.parts && m.parts.stream);
      if (!view.channel) {
        notify('booth.no_channel', { params: { language: languageName(view.lang) } });
        return;
      }
      render();
      if (view.channel && wasLive() && !publisher.wanted) goLive();
    });
    conn.addEventListener('event', (e) => {
      const event = e.detail.event;
      if (event.name === 'stream.channel' && event.data && event.data.channel) {
        if (event.data.channel.id === view.lang) view.channel = event.data.channel;
        render();
      } else if (event.name === 'stream.listeners' && event.data) {
        view.listeners = event.data.listeners || {};
        render();
      }
    });
  },
});

async function goLive() {
  view.stopped = false;
  rememberLive(true);
  if (meter) meter.resume();
  await publisher.start();
  startMeter();
  if (!publisher.wanted) rememberLive(false);
}

// ---- start --------------------------------------------------------------------------------------

initLanguage(el.language);
onLanguageChange(render);
publisher.addEventListener('change', () => {
  if (!publisher.wanted && publisher.state !== 'live') rememberLive(false);
  startMeter();
  render();
});
el.retry.addEventListener('click', () => {
  const retry = view.notice && view.notice.retry;
  view.notice = null;
  render();
  if (retry) retry();
});
el.mic.addEventListener('click', async () => {
  await publisher.preview();
  startMeter();
  if (meter) meter.resume();
});
el.live.addEventListener('click', () => {
  goLive();
  // The button gives way to Stop: the keyboard goes with it.
  window.requestAnimationFrame(() => {
    if (!el.stop.hidden) el.stop.focus();
  });
});
el.stop.addEventListener('click', async () => {
  view.stopped = true;
  rememberLive(false);
  await publisher.stop();
  el.live.focus();
});
// Browsers start audio (the meter) only after an interaction.
document.addEventListener('pointerdown', () => meter && meter.resume());
render();
link.start(takeCode());
