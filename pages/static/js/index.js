// The programme page: the event's sessions by day, each with its current state, in the chosen language.

import { formatDay, formatRange, initLanguage, language, onLanguageChange, t } from './i18n.js';

const REFRESH_MS = 30000; // states move with the schedule; a glance every half minute is plenty

const $ = (id) => document.getElementById(id);
const el = {
  main: $('main'),
  title: $('event-title'),
  venue: $('event-venue'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  retry: $('notice-retry'),
  programme: $('programme'),
  language: $('language'),
};

let event = null;
let failed = false;

async function load() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10000);
  try {
    const response = await fetch('/api/v1/event', { cache: 'no-store', signal: abort.signal });
    if (!response.ok) throw new Error(`event answered ${response.status}`);
    event = await response.json();
    failed = false;
  } catch (err) {
    failed = true;
  } finally {
    clearTimeout(timer);
    el.main.removeAttribute('aria-busy');
  }
  render();
}

/** The day a session starts on, in the viewer's time zone (YYYY-MM-DD, for grouping). */
function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function sessionLink(session) {
  const url = new URL(`/s/${encodeURIComponent(session.id)}`, window.location.origin);
  url.searchParams.set('lang', language());
  return url.pathname + url.search;
}

function sessionItem(session) {
  const item = document.createElement('li');
  item.className = 'session-item';
  const heading = document.createElement('h3');
  const link = document.createElement('a');
  link.href = sessionLink(session);
  link.dir = 'auto';
  link.textContent = session.title;
  heading.append(link);

  const meta = document.createElement('p');
  meta.className = 'session-meta';
  const state = document.createElement('span');
  state.className = 'badge';
  state.dataset.state = session.state;
  state.textContent = t(`state.${session.state}`);
  const time = document.createElement('span');
  time.textContent = formatRange(session.start, session.end);
  const room = document.createElement('span');
  room.className = 'muted';
  room.dir = 'auto';
  room.textContent = session.room || '';
  meta.append(state, time, room);
  if (session.guest_access) {
    const guests = document.createElement('span');
    guests.className = 'muted';
    guests.textContent = t('guest.open');
    meta.append(guests);
  }
  item.append(heading, meta);
  return item;
}

function render() {
  el.notice.hidden = !failed;
  el.noticeText.textContent = failed ? t('index.error') : '';
  if (!event) return;
  delete el.title.dataset.i18n; // the heading is the event's own title from now on
  el.title.textContent = event.title;
  document.title = `${event.title} — podium`;
  el.venue.hidden = !event.venue;
  el.venue.textContent = event.venue || '';

  const sessions = [...(event.sessions || [])].sort((a, b) => new Date(a.start) - new Date(b.start));
  if (sessions.length === 0) {
    const empty = document.createElement('p');
    empty.textContent = t('index.empty');
    el.programme.replaceChildren(empty);
    return;
  }
  const days = new Map();
  for (const session of sessions) {
    const key = dayKey(session.start);
    if (!days.has(key)) days.set(key, []);
    days.get(key).push(session);
  }
  const sections = [];
  for (const [key, list] of days) {
    const section = document.createElement('section');
    section.className = 'day';
    section.setAttribute('aria-labelledby', `day-${key}`);
    const heading = document.createElement('h2');
    heading.id = `day-${key}`;
    heading.textContent = formatDay(list[0].start);
    const ul = document.createElement('ul');
    ul.className = 'sessions';
    ul.append(...list.map(sessionItem));
    section.append(heading, ul);
    sections.push(section);
  }
  el.programme.replaceChildren(...sections);
}

initLanguage(el.language);
onLanguageChange(render);
el.retry.addEventListener('click', load);
load();
setInterval(() => {
  if (document.visibilityState === 'visible') load();
}, REFRESH_MS);
