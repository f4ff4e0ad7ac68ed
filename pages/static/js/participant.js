// The participant page: join a session from a link (or as a guest) and follow it live.
//
// The link is /s/<session>#code=<join code>. The code lives only in the fragment, which never
// reaches a server log; the page trades it for a token (POST /api/v1/join), keeps the token in
// sessionStorage for this tab only, and takes the fragment out of the address bar at once.

import { PodiumConnection } from './connection.js';
import {
  formatList,
  formatNumber,
  formatRange,
  initLanguage,
  languageName,
  onLanguageChange,
  t,
  tNodes,
} from './i18n.js';

const SESSION_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const HTTP_TIMEOUT = 10000;

const $ = (id) => document.getElementById(id);
const el = {
  title: $('session-title'),
  room: $('session-room'),
  time: $('session-time'),
  languages: $('session-languages'),
  state: $('session-state'),
  presence: $('presence'),
  online: $('online-count'),
  split: $('online-split'),
  connection: $('connection-status'),
  you: $('you'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  retry: $('notice-retry'),
  guest: $('guest'),
  guestForm: $('guest-form'),
  guestName: $('guest-name'),
  guestError: $('guest-name-error'),
  qna: $('qna'),
  language: $('language'),
};

// What the page knows; render() draws it in the current language, so a language switch is a redraw.
const view = {
  sessionId: decodeURIComponent(window.location.pathname.split('/')[2] || ''),
  session: null,
  state: null,
  presence: null,
  you: null,
  status: 'idle',
  notice: null, // {key, params, retry}
  guestForm: false,
};
let connection = null;

const tokenKey = () => `podium.token.${view.sessionId}`;

function storedToken() {
  try {
    return window.sessionStorage.getItem(tokenKey());
  } catch (err) {
    return null;
  }
}

function storeToken(token) {
  try {
    if (token) window.sessionStorage.setItem(tokenKey(), token);
    else window.sessionStorage.removeItem(tokenKey());
  } catch (err) {
    // Without storage the token lives in this page only; a reload asks again.
  }
}

/** Reads the join code from the fragment and removes the fragment from the address and history. */
function takeCode() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const code = fragment.get('code');
  if (code !== null) {
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, '', pathname + search);
  }
  return code;
}

async function http(method, path, body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HTTP_TIMEOUT);
  try {
    const response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal: abort.signal,
    });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    return { status: response.status, data };
  } finally {
    clearTimeout(timer);
  }
}

// ---- rendering ----------------------------------------------------------------------------------

function setText(node, text) {
  // Writing the same text again would make screen readers announce it again.
  if (node.textContent !== text) node.textContent = text;
}

function renderSession() {
  const s = view.session;
  if (!s) return;
  delete el.title.dataset.i18n; // from now on the heading is the session's title, not "Loading…"
  setText(el.title, s.title);
  document.title = `${s.title} — podium`;
  setText(el.room, s.room || '');
  setText(el.time, formatRange(s.start, s.end));
  setText(el.languages, formatList((s.languages || []).map(languageName)));
}

function renderState() {
  if (!view.state) {
    setText(el.state, '—');
    return;
  }
  el.state.dataset.state = view.state;
  setText(el.state, t(`state.${view.state}`));
}

function renderPresence() {
  const p = view.presence;
  el.presence.hidden = !p;
  if (!p) return;
  setText(el.online, t('presence.online', { n: formatNumber(p.online) }));
  setText(
    el.split,
    t('presence.split', { venue: formatNumber(p.venue), remote: formatNumber(p.remote) }),
  );
}

function renderStatus() {
  el.connection.dataset.status = view.status;
  setText(el.connection, t(`status.${view.status}`));
}

function renderYou() {
  el.you.hidden = !view.you;
  if (!view.you) return;
  const mode = view.you.mode === 'venue' ? 'venue' : 'remote';
  el.you.replaceChildren(...tNodes('you.as', { name: view.you.name }), ` (${t(`mode.${mode}`)})`);
}

function renderNotice() {
  const n = view.notice;
  el.notice.hidden = !n;
  if (!n) return;
  setText(el.noticeText, t(n.key, n.params || {}));
  el.retry.hidden = !n.retry;
}

function render() {
  renderSession();
  renderState();
  renderPresence();
  renderStatus();
  renderYou();
  renderNotice();
  el.guest.hidden = !view.guestForm;
  el.qna.hidden = !view.you;
}

function notify(key, { params, retry } = {}) {
  view.notice = { key, params, retry };
  renderNotice();
}

function clearNotice() {
  view.notice = null;
  renderNotice();
}

// ---- the join flow ------------------------------------------------------------------------------

async function loadSession() {
  const { status, data } = await http('GET', `/api/v1/sessions/${encodeURIComponent(view.sessionId)}`);
  if (status === 404) return null;
  if (status !== 200 || !data) throw new Error(`session lookup answered ${status}`);
  return data;
}

async function redeem(code) {
  const { status, data } = await http('POST', '/api/v1/join', { code });
  if (status === 200 && data && data.token) {
    const sessions = data.sessions || [];
    if (!sessions.includes(view.sessionId) && !sessions.includes('*')) return { error: 'join.wrong_session' };
    return { token: data.token };
  }
  if (status === 429) return { error: 'join.rate_limited' };
  if (status >= 500) throw new Error(`join answered ${status}`);
  return { error: 'join.bad_code' };
}

function offerGuestJoin() {
  const allowed = Boolean(view.session && view.session.guest_access);
  view.guestForm = allowed;
  el.guest.hidden = !allowed;
  return allowed;
}

async function start(code) {
  clearNotice();
  if (!SESSION_ID.test(view.sessionId)) {
    notify('join.unknown_session');
    return;
  }
  try {
    const session = await loadSession();
    if (session === null) {
      notify('join.unknown_session');
      return;
    }
    view.session = session;
    view.state = session.state;
    render();
    let token = null;
    if (code) {
      const result = await redeem(code);
      if (result.token) {
        storeToken(result.token);
        token = result.token;
      } else {
        notify(result.error);
        offerGuestJoin();
        return;
      }
    } else {
      token = storedToken();
    }
    if (token) {
      connect(token);
    } else if (!offerGuestJoin()) {
      notify('join.need_link');
    }
  } catch (err) {
    notify('join.network', { retry: () => start(code) });
  }
}

function connect(token) {
  if (connection) connection.stop();
  view.guestForm = false;
  const conn = new PodiumConnection({ session: view.sessionId, token });
  connection = conn;
  conn.addEventListener('status', (e) => {
    view.status = e.detail.status;
    renderStatus();
  });
  conn.addEventListener('welcome', (e) => {
    const m = e.detail.message;
    view.session = { ...view.session, ...m.session };
    view.state = m.state;
    view.presence = m.presence;
    view.you = m.you;
    view.notice = null;
    render();
  });
  conn.addEventListener('event', (e) => {
    const event = e.detail.event;
    if (event.name === 'session.state' && event.data && event.data.state) {
      view.state = event.data.state;
      renderState();
    }
  });
  conn.addEventListener('presence', (e) => {
    view.presence = e.detail.presence;
    renderPresence();
  });
  conn.addEventListener('closed', (e) => refused(e.detail.error, token));
  render();
  conn.start();
}

function refused(error, token) {
  connection = null;
  view.presence = null;
  const code = (error && error.code) || 'closed';
  if (code === 'token_expired' || code === 'unauthorized' || code === 'session_forbidden') {
    storeToken(null);
    view.you = null;
    render();
    notify(code === 'session_forbidden' ? 'join.wrong_session' : 'join.expired');
    offerGuestJoin();
    return;
  }
  render();
  if (code === 'unknown_session') {
    notify('join.unknown_session');
    return;
  }
  notify('join.refused', { params: { code }, retry: () => connect(token) });
}

async function joinAsGuest(event) {
  event.preventDefault();
  const name = el.guestName.value.split(/\s+/).filter(Boolean).join(' ');
  const valid = name.length >= 1 && name.length <= 60;
  el.guestName.setAttribute('aria-invalid', String(!valid));
  el.guestError.hidden = valid;
  if (!valid) {
    setText(el.guestError, t('guest.name_invalid'));
    el.guestName.focus();
    return;
  }
  const mode = new FormData(el.guestForm).get('mode') === 'venue' ? 'venue' : 'remote';
  const submit = el.guestForm.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    const path = `/api/v1/sessions/${encodeURIComponent(view.sessionId)}/guest`;
    const { status, data } = await http('POST', path, { name, mode });
    if (status === 200 && data && data.token) {
      storeToken(data.token);
      clearNotice();
      connect(data.token);
      el.title.focus(); // the form is gone; take the keyboard to what replaced it
    } else if (status === 400) {
      el.guestName.setAttribute('aria-invalid', 'true');
      el.guestError.hidden = false;
      setText(el.guestError, t('guest.name_invalid'));
      el.guestName.focus();
    } else if (status === 403) {
      view.guestForm = false;
      render();
      notify('guest.closed');
    } else if (status === 429) {
      notify('join.rate_limited');
    } else {
      notify('join.network');
    }
  } catch (err) {
    notify('join.network');
  } finally {
    submit.disabled = false;
  }
}

// ---- start --------------------------------------------------------------------------------------

initLanguage(el.language);
onLanguageChange(() => {
  render();
  if (!el.guestError.hidden) setText(el.guestError, t('guest.name_invalid'));
});
el.guestForm.addEventListener('submit', joinAsGuest);
el.retry.addEventListener('click', () => {
  const retry = view.notice && view.notice.retry;
  clearNotice();
  if (retry) retry();
});
render();
start(takeCode());
