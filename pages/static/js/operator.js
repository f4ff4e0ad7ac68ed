// The operator dashboard: every session of the day with its live figures (polled every 2 s), a
// per-session view with the online chart, the status and channel actions, and report downloads.
// Changes people must not miss (questions waiting, a status, a channel going offline) are said in
// a polite live region; the table itself stays quiet so a screen reader is not flooded.

import { h, keepFocus, setAttr, setText, syncList } from './dom.js';
import {
  formatClock,
  formatNumber,
  formatRange,
  initLanguage,
  languageName,
  onLanguageChange,
  t,
  translate,
} from './i18n.js';
import { api, download, operatorToken, tokens } from './operator-api.js';
import { drawChart } from './operator-chart.js';

const POLL_MS = 2000;
const STATES = ['scheduled', 'open', 'live', 'closed', 'archived'];
const MAX_POINTS = 24 * 3600; // a day of live points at most (the series holds the rest)

const $ = (id) => document.getElementById(id);
const el = {
  title: $('event-title'),
  updated: $('updated'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  board: $('board'),
  allDays: $('all-days'),
  caption: $('sessions-caption'),
  rows: $('session-rows'),
  empty: $('empty'),
  detail: $('detail'),
  detailTitle: $('detail-title'),
  detailClose: $('detail-close'),
  detailState: $('detail-state'),
  detailOnline: $('detail-online'),
  detailUnique: $('detail-unique'),
  detailWaiting: $('detail-waiting'),
  detailSpeaker: $('detail-speaker'),
  chart: $('chart'),
  chartEmpty: $('chart-empty'),
  stateForm: $('state-form'),
  stateSelect: $('state-select'),
  channelRows: $('channel-rows'),
  status: $('op-status'),
  language: $('language'),
};

const view = {
  token: null,
  overview: null, // the last overview the server sent
  updatedAt: null, // when it arrived (Date)
  failing: false,
  notice: null, // {key} of a notice that stops the dashboard
  selected: new URLSearchParams(window.location.search).get('session') || null,
  series: [], // the selected session's samples, with live points appended
  timer: null,
};

// ---- helpers ------------------------------------------------------------------------------------

function say(text) {
  // Cleared first, so the same words said twice are announced twice.
  el.status.textContent = '';
  window.setTimeout(() => {
    el.status.textContent = text;
  }, 50);
}

function channelName(id) {
  return id === 'floor' ? t('op.floor_channel') : languageName(id);
}

function timeWithSeconds(date) {
  return new Intl.DateTimeFormat(document.documentElement.lang, {
    hour: 'numeric',
    minute: '2-digit',
    second: '2-digit',
  }).format(date);
}

function speakerText(row) {
  const speaker = row.floor.speaker;
  const waiting = row.floor.requests ? ` · ${t('op.requests', { n: formatNumber(row.floor.requests) })}` : '';
  if (!speaker) return t('op.nobody') + waiting;
  const left =
    speaker.expired || speaker.left <= 0
      ? t('op.time_up')
      : t('op.time_left', { time: formatClock(speaker.left) });
  return `${speaker.name} (${left})${waiting}`;
}

function healthText(channel) {
  const figures = channel.health;
  if (channel.state !== 'live' || !figures) return t('op.no_health');
  return t('op.health', {
    kbps: formatNumber(Math.round((figures.inbound_bitrate_bps || 0) / 1000)),
    lost: formatNumber(figures.packets_lost || 0),
    jitter: formatNumber(figures.jitter_ms || 0),
  });
}

function selectedRow() {
  const sessions = (view.overview && view.overview.sessions) || [];
  return sessions.find((row) => row.id === view.selected) || null;
}

function setSelected(id) {
  view.selected = id;
  const url = new URL(window.location.href);
  if (id) url.searchParams.set('session', id);
  else url.searchParams.delete('session');
  window.history.replaceState(window.history.state, '', url.pathname + url.search);
}

// ---- the table ----------------------------------------------------------------------------------

function buildRow(row) {
  const details = h('button', { type: 'button', class: 'button button-secondary op-open' });
  details.addEventListener('click', () => openDetail(row.id, true));
  return h(
    'tr',
    { dataset: { session: row.id } },
    h('th', { scope: 'row', class: 'op-session' },
      h('span', { class: 'op-session-title', dir: 'auto', dataset: { field: 'title' } }),
      h('span', { class: 'muted op-session-meta', dir: 'auto', dataset: { field: 'meta' } })),
    h('td', { dataset: { field: 'state' } }, h('span', { class: 'badge', dataset: { state: '' } })),
    h('td', { dataset: { field: 'online' } },
      h('span', { class: 'op-figure', dataset: { part: 'total' } }),
      h('span', { class: 'muted op-split', dataset: { part: 'split' } })),
    h('td', { class: 'op-figure', dataset: { field: 'unique' } }),
    h('td', { class: 'op-figure', dataset: { field: 'waiting' } }),
    h('td', { dir: 'auto', dataset: { field: 'speaker' } }),
    h('td', { dataset: { field: 'channels' } }),
    h('td', {}, details),
  );
}

function updateRow(tr, row) {
  const cell = (field) => tr.querySelector(`[data-field="${field}"]`);
  const labels = ['op.col.session', 'op.col.state', 'op.col.online', 'op.col.unique', 'op.col.waiting',
    'op.col.speaker', 'op.col.channels', null];
  [...tr.children].forEach((child, i) => setAttr(child, 'data-label', labels[i] && t(labels[i])));
  setText(cell('title'), row.title);
  setText(cell('meta'), `${row.room} · ${formatRange(row.start, row.end)}`);
  const badge = cell('state').firstElementChild;
  badge.dataset.state = row.state;
  setText(badge, t(`state.${row.state}`));
  setText(cell('online').querySelector('[data-part="total"]'), formatNumber(row.online.total));
  setText(
    cell('online').querySelector('[data-part="split"]'),
    t('op.online_split', { venue: formatNumber(row.online.venue), remote: formatNumber(row.online.remote) }),
  );
  setText(cell('unique'), formatNumber(row.unique));
  setText(cell('waiting'), formatNumber(row.questions.waiting));
  setAttr(cell('waiting'), 'data-waiting', row.questions.waiting > 0 ? 'yes' : null);
  setText(cell('speaker'), speakerText(row));
  const live = row.channels.filter((c) => c.state === 'live').length;
  setText(cell('channels'), t('op.channels_live', { live: formatNumber(live), total: formatNumber(row.channels.length) }));
  const button = tr.querySelector('.op-open');
  setText(button, t('op.details'));
  setAttr(button, 'aria-label', t('op.details_of', { title: row.title }));
  setAttr(button, 'aria-expanded', String(view.selected === row.id));
  setAttr(button, 'aria-controls', 'detail');
}

function renderTable() {
  const overview = view.overview;
  if (!overview) return;
  el.board.hidden = false;
  setText(el.title, overview.event.title);
  document.title = `${t('op.title')}: ${overview.event.title} — podium`;
  setText(
    el.caption,
    overview.all ? t('op.every_day') : t('op.today', { day: new Date(`${overview.day}T12:00:00`).toLocaleDateString(document.documentElement.lang, { weekday: 'long', day: 'numeric', month: 'long' }) }),
  );
  el.allDays.checked = overview.all;
  el.empty.hidden = overview.sessions.length > 0;
  keepFocus(() => syncList(el.rows, overview.sessions, (row) => row.id, buildRow, updateRow));
}

function renderUpdated() {
  if (!view.updatedAt) {
    setText(el.updated, t('op.never'));
    return;
  }
  const time = timeWithSeconds(view.updatedAt);
  setText(el.updated, t(view.failing ? 'op.stale' : 'op.updated', { time }));
  el.updated.dataset.fresh = String(!view.failing);
}

// ---- the per-session view -----------------------------------------------------------------------

async function openDetail(id, focus) {
  setSelected(id);
  view.series = [];
  renderDetail();
  if (focus) el.detailTitle.focus();
  try {
    const { status, data } = await api('GET', `/api/v1/sessions/${encodeURIComponent(id)}/series`, view.token);
    if (status === 200 && view.selected === id) {
      const live = view.series.filter((s) => s.at > (data.samples.at(-1)?.at ?? 0));
      view.series = [...data.samples, ...live];
      renderDetail();
    }
  } catch (err) {
    // The live points keep the chart going; the next opening tries the series again.
  }
}

function closeDetail() {
  const id = view.selected;
  setSelected(null);
  renderDetail();
  renderTable();
  const button = id && el.rows.querySelector(`tr[data-session="${CSS.escape(id)}"] .op-open`);
  if (button) button.focus();
}

function addLivePoint(row, at) {
  const last = view.series.at(-1);
  if (last && at <= last.at) return;
  view.series.push({ at, online: row.online.total, venue: row.online.venue, remote: row.online.remote });
  if (view.series.length > MAX_POINTS) view.series.shift();
}

function buildChannel(channel) {
  const button = h('button', { type: 'button', class: 'button button-secondary op-release' });
  button.addEventListener('click', () => release(channel.id));
  return h(
    'tr',
    { dataset: { channel: channel.id } },
    h('th', { scope: 'row', dataset: { field: 'name' } }),
    h('td', { dataset: { field: 'state' } }),
    h('td', { class: 'op-figure', dataset: { field: 'listeners' } }),
    h('td', { dataset: { field: 'health' } }),
    h('td', {}, button),
  );
}

function updateChannel(tr, channel) {
  const labels = ['op.col.channel', 'op.col.state', 'op.col.listeners', 'op.col.health', null];
  [...tr.children].forEach((child, i) => setAttr(child, 'data-label', labels[i] && t(labels[i])));
  const cell = (field) => tr.querySelector(`[data-field="${field}"]`);
  setText(cell('name'), channelName(channel.id));
  setText(cell('state'), t(channel.state === 'live' ? 'op.live' : 'op.offline'));
  cell('state').dataset.state = channel.state;
  setText(cell('listeners'), formatNumber(channel.listeners));
  setText(cell('health'), healthText(channel));
  const button = tr.querySelector('.op-release');
  setText(button, t('op.release'));
  setAttr(button, 'aria-label', t('op.release_of', { channel: channelName(channel.id) }));
  button.hidden = channel.state !== 'live';
}

function renderDetail() {
  const row = selectedRow();
  el.detail.hidden = !row;
  if (!row) return;
  setText(el.detailTitle, row.title);
  setText(el.detailState, t(`state.${row.state}`));
  setText(
    el.detailOnline,
    `${formatNumber(row.online.total)} · ${t('op.online_split', { venue: formatNumber(row.online.venue), remote: formatNumber(row.online.remote) })}`,
  );
  setText(el.detailUnique, formatNumber(row.unique));
  setText(el.detailWaiting, formatNumber(row.questions.waiting));
  setText(el.detailSpeaker, speakerText(row));
  if (document.activeElement !== el.stateSelect) el.stateSelect.value = row.state;
  el.chartEmpty.hidden = drawChart(el.chart, view.series);
  keepFocus(() => syncList(el.channelRows, row.channels, (c) => c.id, buildChannel, updateChannel));
}

function fillStates() {
  const value = el.stateSelect.value;
  el.stateSelect.replaceChildren(...STATES.map((s) => h('option', { value: s }, t(`state.${s}`))));
  if (value) el.stateSelect.value = value;
}

// ---- actions ------------------------------------------------------------------------------------

async function changeState(event) {
  event.preventDefault();
  const id = view.selected;
  const state = el.stateSelect.value;
  if (!id || !STATES.includes(state)) return;
  try {
    const { status, data } = await api('POST', `/api/v1/sessions/${encodeURIComponent(id)}/state`, view.token, { state });
    if (status === 200) {
      const row = selectedRow();
      if (row && row.id === id) row.state = data.state; // said here, not again by the next poll
      say(t('op.state_done', { state: t(`state.${data.state}`) }));
    }
    else say(t('op.state_refused', { message: (data && data.message) || status }));
  } catch (err) {
    say(t('op.network'));
  }
  await refresh();
}

async function release(channel) {
  const id = view.selected;
  if (!id) return;
  const path = `/api/v1/sessions/${encodeURIComponent(id)}/channels/${encodeURIComponent(channel)}/release`;
  try {
    const { status, data } = await api('POST', path, view.token);
    const name = channelName(channel);
    if (status === 200) {
      const row = selectedRow();
      const known = row && row.id === id && row.channels.find((c) => c.id === channel);
      if (known) known.state = data.channel.state; // said here, not again by the next poll
      say(t(data.released ? 'op.released' : 'op.release_nothing', { channel: name }));
    }
    else say(t('op.release_failed', { message: (data && data.message) || status }));
  } catch (err) {
    say(t('op.network'));
  }
  await refresh();
}

async function saveReport(button) {
  const format = button.dataset.format;
  const session = button.dataset.report === 'session' ? view.selected : null;
  const path = session
    ? `/api/v1/sessions/${encodeURIComponent(session)}/report?format=${format}&download=1`
    : `/api/v1/report?format=${format}&download=1`;
  try {
    const status = await download(path, view.token, `podium-report-${session || 'event'}.${format}`);
    say(status === 200 ? t('op.report_done') : t('op.report_failed', { status }));
  } catch (err) {
    say(t('op.network'));
  }
}

// ---- polling ------------------------------------------------------------------------------------

function changes(before, after) {
  if (!before) return [];
  const old = new Map(before.sessions.map((row) => [row.id, row]));
  const said = [];
  for (const row of after.sessions) {
    const was = old.get(row.id);
    if (!was) continue;
    if (row.questions.waiting > was.questions.waiting) {
      said.push(t('op.said_waiting', { title: row.title, n: formatNumber(row.questions.waiting) }));
    }
    if (row.state !== was.state) said.push(t('op.said_state', { title: row.title, state: t(`state.${row.state}`) }));
    for (const channel of row.channels) {
      const prior = was.channels.find((c) => c.id === channel.id);
      if (prior && prior.state === 'live' && channel.state !== 'live') {
        said.push(t('op.said_offline', { title: row.title, channel: channelName(channel.id) }));
      }
    }
  }
  return said;
}

function showNotice(key) {
  view.notice = key ? { key } : null;
  el.notice.hidden = !key;
  if (key) setText(el.noticeText, t(key));
}

async function refresh() {
  if (!view.token || view.notice) return;
  const path = `/api/v1/overview${el.allDays.checked ? '?all=1' : ''}`;
  try {
    const { status, data } = await api('GET', path, view.token);
    if (status === 401 || status === 403) {
      if (status === 401) tokens.set(null);
      stop();
      showNotice(status === 401 ? 'op.expired' : 'op.wrong_role');
      return;
    }
    if (status !== 200 || !data) throw new Error(`overview answered ${status}`);
    const said = view.overview && view.overview.all === data.all ? changes(view.overview, data) : [];
    view.overview = data;
    view.updatedAt = new Date();
    view.failing = false;
    el.notice.hidden = true;
    const row = selectedRow();
    if (row) addLivePoint(row, data.now);
    renderTable();
    renderDetail();
    if (said.length) say(said.join(' '));
  } catch (err) {
    view.failing = true;
    el.notice.hidden = false;
    setText(el.noticeText, t('op.network'));
  }
  renderUpdated();
}

function stop() {
  if (view.timer) window.clearInterval(view.timer);
  view.timer = null;
}

async function start() {
  try {
    const { token, error } = await operatorToken();
    if (error) {
      showNotice(error);
      return;
    }
    view.token = token;
  } catch (err) {
    showNotice('op.network');
    return;
  }
  renderUpdated();
  await refresh();
  if (view.selected && selectedRow()) await openDetail(view.selected, false);
  view.timer = window.setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, POLL_MS);
}

function retranslate() {
  translate(document);
  fillStates();
  if (view.notice) setText(el.noticeText, t(view.notice.key));
  renderUpdated();
  renderTable();
  renderDetail();
}

initLanguage(el.language);
onLanguageChange(retranslate);
retranslate();
el.allDays.addEventListener('change', refresh);
el.detailClose.addEventListener('click', closeDetail);
el.stateForm.addEventListener('submit', changeState);
for (const button of document.querySelectorAll('[data-report]')) {
  button.addEventListener('click', () => saveReport(button));
}
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && view.selected && el.detail.contains(document.activeElement)) closeDetail();
});
start();
