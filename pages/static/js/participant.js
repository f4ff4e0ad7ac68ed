// The participant page: join a session from a link (or as a guest), follow it live, ask and vote.
//
// The link is /s/<session>#code=<join code> (see join.js for how the code becomes a token).

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
import {
  SESSION_ID,
  TOKEN_REFUSALS,
  http,
  loadSession,
  redeem,
  sessionIdFromPath,
  takeCode,
  tokenStore,
} from './join.js';
import { FloorPanel } from './floor.js';
import { renderNotice, renderStatus } from './page-head.js';
import { StreamPanel } from './player.js';
import { QnaPanel } from './qa.js';

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
  floor: $('floor'),
  stream: $('stream'),
  language: $('language'),
};

// What the page knows; render() draws it in the current language, so a language switch is a redraw.
const view = {
  sessionId: sessionIdFromPath(),
  session: null,
  state: null,
  presence: null,
  you: null,
  status: 'idle',
  notice: null, // {key, params, retry}
  guestForm: false,
};
let connection = null;
const tokens = tokenStore(`podium.token.${view.sessionId}`);
const qna = new QnaPanel(el.qna);
const floor = new FloorPanel(el.floor);
const stream = new StreamPanel(el.stream);

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


function renderYou() {
  el.you.hidden = !view.you;
  if (!view.you) return;
  const mode = view.you.mode === 'venue' ? 'venue' : 'remote';
  el.you.replaceChildren(...tNodes('you.as', { name: view.you.name }), ` (${t(`mode.${mode}`)})`);
}


function render() {
  renderSession();
  renderState();
  renderPresence();
  renderStatus(el, view.status);
  renderYou();
  renderNotice(el, view.notice);
  el.guest.hidden = !view.guestForm;
  el.qna.hidden = !view.you;
  if (!view.you) el.floor.hidden = true;
  if (!view.you) el.stream.hidden = true;
  else stream.render();
}

function notify(key, { params, retry } = {}) {
  view.notice = { key, params, retry };
  renderNotice(el, view.notice);
}

function clearNotice() {
  view.notice = null;
  renderNotice(el, view.notice);
}

// ---- the join flow ------------------------------------------------------------------------------

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
    const session = await loadSession(view.sessionId);
    if (session === null) {
      notify('join.unknown_session');
      return;
    }
    view.session = session;
    view.state = session.state;
    render();
    let token = null;
    if (code) {
      const result = await redeem(code, view.sessionId);
      if (result.token) {
        tokens.set(result.token);
        token = result.token;
      } else {
        notify(result.error);
        offerGuestJoin();
        return;
      }
    } else {
      token = tokens.get();
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
  qna.attach(conn);
  floor.attach(conn);
  stream.attach(conn);
  conn.addEventListener('status', (e) => {
    view.status = e.detail.status;
    renderStatus(el, view.status);
  });
  conn.addEventListener('welcome', (e) => {
    const m = e.detail.message;
    view.session = { ...view.session, ...m.session };
    view.state = m.state;
    view.presence = m.presence;
    view.you = m.you;
    view.notice = null;
    render();
    qna.welcome(m);
    floor.welcome(m);
    stream.welcome(m);
  });
  conn.addEventListener('resumed', () => floor.rejoined());
  conn.addEventListener('event', (e) => {
    const event = e.detail.event;
    if (event.name === 'session.state' && event.data && event.data.state) {
      view.state = event.data.state;
      renderState();
    } else if (event.name && event.name.startsWith('floor.')) {
      floor.event(event);
    } else if (event.name && event.name.startsWith('stream.')) {
      stream.event(event);
    } else {
      qna.event(event);
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
  stream.leave();
  view.presence = null;
  const code = (error && error.code) || 'closed';
  if (TOKEN_REFUSALS.has(code)) {
    tokens.set(null);
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
      tokens.set(data.token);
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
