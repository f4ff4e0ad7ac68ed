// The moderator console: the question queue in lanes (pending, approved, answered, rejected), each
// question with the actions its state allows, filters, the lock, what is on screen, single-key
// shortcuts, and every other moderator's decisions arriving live.
//
// The link is /s/<session>/moderate#code=<join code>; the token is kept for this tab only.

import { ActionDialog } from './dialog.js';
import { allowed, buildCard, updateCard } from './cards.js';
import { FloorConsole } from './floor-console.js';
import { h, keepFocus, setAttr, setText, syncList } from './dom.js';
import { renderNotice, renderStatus, renderTitle } from './page-head.js';
import {
  AUTONYMS,
  LANGUAGES,
  formatNumber,
  initLanguage,
  language,
  onLanguageChange,
  t,
  tNodes,
} from './i18n.js';
import { sessionIdFromPath, takeCode, tokenStore } from './join.js';
import { ORDERS, QnaBoard, errorText, fillQuestionText, moderates } from './qa-board.js';
import { fillByline } from './qa.js';
import { questionDialogs } from './question-dialogs.js';
import { RoleLink } from './role-link.js';
import { Shortcuts } from './shortcuts.js';

const LANES = ['pending', 'approved', 'answered', 'rejected'];
const NARROW = window.matchMedia('(max-width: 47.99rem)');

const $ = (id) => document.getElementById(id);
const el = {
  title: $('session-title'),
  state: $('session-state'),
  connection: $('connection-status'),
  lockState: $('lock-state'),
  you: $('you'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  retry: $('notice-retry'),
  console: $('console'),
  lock: $('lock'),
  shortcutsOpen: $('shortcuts-open'),
  onscreenNone: $('onscreen-none'),
  onscreenQuestion: $('onscreen-question'),
  onscreenText: $('onscreen-text'),
  onscreenMeta: $('onscreen-meta'),
  unpin: $('unpin'),
  filtersBox: $('filters-box'),
  filtersSummary: $('filters-summary'),
  filters: $('filters'),
  filterText: $('filter-text'),
  filterLang: $('filter-lang'),
  filterLabel: $('filter-label'),
  filterHeld: $('filter-held'),
  sort: $('sort'),
  tabs: $('lane-tabs'),
  status: $('console-status'),
  error: $('console-error'),
  errorText: $('console-error-text'),
  shortcuts: $('shortcuts-dialog'),
  shortcutsEnabled: $('shortcuts-enabled'),
  shortcutsClose: $('shortcuts-close'),
  language: $('language'),
};
const lanes = Object.fromEntries(LANES.map((lane) => [lane, $(`lane-${lane}`)]));
const tabs = Object.fromEntries(LANES.map((lane) => [lane, $(`tab-${lane}`)]));

const view = {
  sessionId: sessionIdFromPath(),
  session: null,
  state: null,
  status: 'idle',
  notice: null,
  ready: false, // a moderator's welcome has arrived
  lane: 'pending', // the lane shown on a narrow screen
  sort: null, // null: the session's order
  filter: { text: '', lang: '', label: '', held: false },
  lastCard: null,
};
const board = new QnaBoard();
const floor = new FloorConsole($('floor'), { announce, showError, clearError });
const dialog = new ActionDialog($('action-dialog'));
const tokens = tokenStore(`podium.token.${view.sessionId}.moderate`);

// ---- rendering ----------------------------------------------------------------------------------

function renderHead() {
  renderTitle(el, view.session, 'mod.heading');
  el.state.dataset.state = view.state || '';
  setText(el.state, view.state ? t(`state.${view.state}`) : '—');
  renderStatus(el, view.status);
  setText(el.lockState, t(board.locked ? 'mod.locked' : 'mod.open'));
  el.lockState.dataset.locked = String(board.locked);
  setAttr(el.lock, 'aria-pressed', String(board.locked));
  el.you.hidden = !board.you;
  if (board.you) el.you.replaceChildren(...tNodes('mod.you', { name: board.you.name }));
  renderNotice(el, view.notice);
  el.console.hidden = !view.ready;
}

function renderOnScreen() {
  const q = board.pinnedQuestion();
  el.onscreenNone.hidden = Boolean(q);
  el.onscreenQuestion.hidden = !q;
  if (!q) return;
  fillQuestionText(el.onscreenText, q);
  fillByline(el.onscreenMeta, q);
}

function fillSelect(select, options, value) {
  const sig = JSON.stringify(options);
  if (select.dataset.sig !== sig) {
    select.dataset.sig = sig;
    select.replaceChildren(
      ...options.map(([v, label, lang]) => h('option', { value: v, lang: lang || null }, label)),
    );
  }
  select.value = value;
}

function renderFilters() {
  const f = view.filter;
  const active = [f.text, f.lang, f.label, f.held].filter(Boolean).length;
  setText(
    el.filtersSummary,
    active ? t('mod.filters_active', { n: formatNumber(active) }) : t('mod.filters'),
  );
  fillSelect(
    el.filterLang,
    [['', t('mod.all_languages')], ...LANGUAGES.map((code) => [code, AUTONYMS[code], code])],
    view.filter.lang,
  );
  const labels = new Set();
  for (const q of board.questions.values()) for (const label of q.labels || []) labels.add(label);
  if (view.filter.label) labels.add(view.filter.label);
  fillSelect(
    el.filterLabel,
    [['', t('mod.all_labels')], ...[...labels].sort().map((label) => [label, `#${label}`])],
    view.filter.label,
  );
  fillSelect(
    el.sort,
    ORDERS.map((order) => [order, t(`qna.order.${order}`)]),
    view.sort || board.order,
  );
}

function matches(q) {
  const f = view.filter;
  if (f.lang && q.lang !== f.lang) return false;
  if (f.label && !(q.labels || []).includes(f.label)) return false;
  if (f.held && !(q.held && q.held.length)) return false;
  if (f.text) {
    const haystack = [q.text, q.author_name || '', ...(q.labels || []), q.reply || '']
      .join('\n')
      .toLocaleLowerCase();
    if (!haystack.includes(f.text)) return false;
  }
  return true;
}

function laneQuestions(lane) {
  return board.inState(lane, view.sort || board.order).filter(matches);
}

function renderLanes() {
  const sort = view.sort || board.order;
  const narrow = NARROW.matches;
  el.tabs.hidden = !narrow;
  // If another moderator's decision takes the focused card out of its lane, the keyboard follows
  // it (or, where it is no longer shown, goes to the card that took its place).
  const focusedCard = currentFocusedCard();
  const fallback = focusedCard && neighbourOf(focusedCard);
  keepFocus(() => {
    for (const lane of LANES) {
      const section = lanes[lane];
      const items = laneQuestions(lane);
      const title = `${t(`lane.${lane}`)} (${items.length})`;
      setText(section.querySelector('.lane-title'), title);
      setText(tabs[lane], title);
      section.querySelector('.lane-empty').hidden = items.length > 0;
      const ctx = (q, i) => ({
        pinned: board.pinned,
        movable: sort === 'moderator',
        first: i === 0,
        last: i === items.length - 1,
        lang: language(),
      });
      syncList(
        section.querySelector('.cards'),
        items.map((q, i) => [q, ctx(q, i)]),
        ([q]) => q.id,
        () => buildCard(),
        (node, [q, c]) => updateCard(node, q, c),
      );
      // On a phone the lanes are tabs: one lane at a time.
      const current = lane === view.lane;
      section.hidden = narrow && !current;
      setAttr(section, 'role', narrow ? 'tabpanel' : null);
      setAttr(section, 'aria-labelledby', narrow ? `tab-${lane}` : `lane-${lane}-title`);
      setAttr(tabs[lane], 'aria-selected', String(current));
      setAttr(tabs[lane], 'tabindex', current ? '0' : '-1');
    }
  });
  if (focusedCard && !document.activeElement.closest('.qcard-body')) {
    const same = bodyOf(focusedCard);
    if (same && same.checkVisibility()) same.focus({ preventScroll: true });
    else if (fallback) focusCard(fallback);
  }
}

/** The question whose card holds the keyboard focus, if any. */
function currentFocusedCard() {
  const active = document.activeElement;
  const body = active && active.closest ? active.closest('.qcard-body') : null;
  return body ? body.dataset.qid : null;
}

function render() {
  renderHead();
  if (!view.ready) return;
  renderOnScreen();
  renderFilters();
  renderLanes();
}

function notify(key, options = {}) {
  view.notice = { key, ...options };
  renderHead();
}

let announceTimer = null;
function announce(text) {
  // Clearing first makes a screen reader say the same words again for a second, identical action.
  el.status.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => setText(el.status, text), 50);
}

function showError(error) {
  el.error.hidden = false;
  setText(el.errorText, errorText(error));
}

function clearError() {
  el.error.hidden = true;
}

// ---- cards and focus ----------------------------------------------------------------------------

const cardBodies = () => [...document.querySelectorAll('.lane:not([hidden]) .qcard-body')];
const bodyOf = (qid) => document.querySelector(`.qcard-body[data-qid="${CSS.escape(qid)}"]`);

function currentCard() {
  const active = document.activeElement;
  const inside = active && active.closest ? active.closest('.qcard-body') : null;
  if (inside) return inside.dataset.qid;
  const last = view.lastCard && bodyOf(view.lastCard);
  return last && last.checkVisibility() ? view.lastCard : null;
}

function focusCard(qid) {
  const body = qid && bodyOf(qid);
  if (!body) return false;
  body.focus();
  body.scrollIntoView({ block: 'nearest' });
  return true;
}

/** Where focus lands when `qid` leaves its lane: the next card, or else the one before. */
function neighbourOf(qid) {
  const body = bodyOf(qid);
  if (!body) return null;
  const siblings = [...body.closest('.cards').querySelectorAll('.qcard-body')];
  const i = siblings.indexOf(body);
  const next = siblings[i + 1] || siblings[i - 1];
  return next ? next.dataset.qid : null;
}

function step(delta) {
  const bodies = cardBodies();
  if (!bodies.length) return;
  const current = currentCard();
  const i = bodies.findIndex((b) => b.dataset.qid === current);
  const last = bodies.length - 1;
  const next = i < 0 ? (delta > 0 ? 0 : last) : Math.min(last, Math.max(0, i + delta));
  focusCard(bodies[next].dataset.qid);
}

// ---- actions ------------------------------------------------------------------------------------

const COMMANDS = {
  approve: 'qa.approve',
  reject: 'qa.reject',
  answer: 'qa.answer',
  archive: 'qa.archive',
  edit: 'qa.edit',
  label: 'qa.label',
  reply: 'qa.reply',
  up: 'qa.move',
  down: 'qa.move',
  pin: 'qa.pin',
  merge: 'qa.merge',
  lock: 'qa.lock',
};

/** Sends one command and applies its result at once (the events that follow agree with it). */
async function send(action, fields) {
  const connection = link.connection;
  if (!connection) throw Object.assign(new Error('not connected'), { code: 'not_connected' });
  const result = await connection.request(COMMANDS[action], fields);
  if (result.question) board.upsert(result.question);
  if ('pinned' in result) board.pinned = result.pinned;
  if ('locked' in result) board.locked = Boolean(result.locked);
  clearError();
  render();
  return result;
}

/** Runs an action on a question and keeps the keyboard where the moderator expects it. */
async function perform(qid, action) {
  const q = board.get(qid);
  if (!allowed(q, action)) {
    announce(t('mod.not_now'));
    return;
  }
  const hadFocus = Boolean(bodyOf(qid) && bodyOf(qid).contains(document.activeElement));
  const neighbour = neighbourOf(qid);
  const before = q.state;
  let done = true;
  try {
    if (action in DIALOGS) done = await DIALOGS[action](q);
    else await send(action, fieldsFor(q, action));
  } catch (error) {
    showError(error);
    return;
  }
  if (!done) return;
  const after = board.get(qid);
  announce(t(`mod.done.${action === 'pin' && board.pinned !== qid ? 'unpin' : action}`));
  if (!hadFocus) return;
  const body = bodyOf(qid);
  if (after && after.state === before && body && body.checkVisibility()) {
    if (!body.contains(document.activeElement)) body.focus();
  } else if (!focusCard(neighbour)) {
    lanes[view.lane].querySelector('.lane-title').setAttribute('tabindex', '-1');
    lanes[view.lane].querySelector('.lane-title').focus();
  }
}

function fieldsFor(q, action) {
  if (action === 'pin') return { question: board.pinned === q.id ? null : q.id };
  if (action === 'up' || action === 'down') return { question: q.id, rank: rankFor(q, action) };
  return { question: q.id };
}

/** A rank that puts the question just before the one above it (or just after the one below). */
function rankFor(q, direction) {
  const all = board.inState(q.state, 'moderator');
  const shown = laneQuestions(q.state);
  const i = shown.findIndex((x) => x.id === q.id);
  const target = shown[direction === 'up' ? i - 1 : i + 1];
  if (!target) return q.rank;
  const j = all.findIndex((x) => x.id === target.id);
  const beyond = all[direction === 'up' ? j - 1 : j + 1];
  if (!beyond || beyond.id === q.id) return target.rank + (direction === 'up' ? -1 : 1);
  return (target.rank + beyond.rank) / 2;
}

const maxChars = () => (view.session && view.session.qna && view.session.qna.max_chars) || 500;
const DIALOGS = questionDialogs({ dialog, board, send, maxChars, announce });

async function toggleLock() {
  try {
    await send('lock', { locked: !board.locked });
    announce(t(board.locked ? 'mod.locked' : 'mod.open'));
  } catch (error) {
    showError(error);
  }
}

// ---- keyboard -----------------------------------------------------------------------------------

/** Acts on the chosen question (focusing it first, so the result is announced in context). */
function onQuestion(action) {
  const qid = currentCard();
  if (!qid) {
    announce(t('mod.pick_first'));
    return;
  }
  if (!bodyOf(qid).contains(document.activeElement)) focusCard(qid);
  perform(qid, action);
}

const shortcuts = new Shortcuts(
  'podium.shortcuts',
  {
    j: () => step(1),
    k: () => step(-1),
    a: () => onQuestion('approve'),
    r: () => onQuestion('reject'),
    p: () => onQuestion('pin'),
    e: () => onQuestion('edit'),
    '?': () => openShortcuts(),
  },
  () => view.ready && !dialog.isOpen && !el.shortcuts.open,
);

function openShortcuts() {
  el.shortcutsEnabled.checked = shortcuts.on;
  el.shortcuts.showModal();
  el.shortcutsClose.focus();
}

function onTabKey(event) {
  const i = LANES.indexOf(event.target.dataset.lane);
  if (i < 0) return;
  const rtl = document.documentElement.dir === 'rtl';
  const moves = {
    ArrowRight: rtl ? -1 : 1,
    ArrowLeft: rtl ? 1 : -1,
    Home: -i,
    End: LANES.length - 1 - i,
  };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const lane = LANES[(i + moves[event.key] + LANES.length) % LANES.length];
  selectLane(lane);
  tabs[lane].focus();
}

function selectLane(lane) {
  view.lane = lane;
  renderLanes();
}

// ---- the join flow ------------------------------------------------------------------------------

const link = new RoleLink({
  sessionId: view.sessionId,
  tokens,
  accept: moderates,
  needLink: 'mod.need_link',
  wrongRole: 'mod.not_moderator',
  notify,
  onSession(session) {
    view.session = session;
    view.state = session.state;
  },
  wire(conn) {
    floor.attach(conn);
    conn.addEventListener('status', (e) => {
      view.status = e.detail.status;
      renderHead();
    });
    conn.addEventListener('welcome', (e) => {
      const m = e.detail.message;
      view.session = { ...view.session, ...m.session };
      view.state = m.state;
      view.notice = null;
      board.reset(m);
      view.ready = true;
      render();
      floor.welcome(m);
    });
    conn.addEventListener('event', (e) => {
      const event = e.detail.event;
      if (event.name === 'session.state' && event.data && event.data.state) {
        view.state = event.data.state;
        renderHead();
      } else if (event.name && event.name.startsWith('floor.')) {
        floor.event(event);
      } else if (board.apply(event)) {
        render();
      }
    });
    conn.addEventListener('closed', () => {
      view.ready = false;
    });
  },
});

// ---- start --------------------------------------------------------------------------------------

initLanguage(el.language);
onLanguageChange(render);
el.retry.addEventListener('click', () => {
  const retry = view.notice && view.notice.retry;
  view.notice = null;
  renderHead();
  if (retry) retry();
});
el.lock.addEventListener('click', toggleLock);
el.unpin.addEventListener('click', async () => {
  try {
    await send('pin', { question: null });
    announce(t('mod.done.unpin'));
  } catch (error) {
    showError(error);
  }
});
el.shortcutsOpen.addEventListener('click', openShortcuts);
el.shortcutsClose.addEventListener('click', () => el.shortcuts.close());
el.shortcutsEnabled.addEventListener('change', () => {
  shortcuts.on = el.shortcutsEnabled.checked;
});
el.filters.addEventListener('submit', (e) => e.preventDefault());
el.filters.addEventListener('input', () => {
  view.filter = {
    text: el.filterText.value.trim().toLocaleLowerCase(),
    lang: el.filterLang.value,
    label: el.filterLabel.value,
    held: el.filterHeld.checked,
  };
  view.sort = el.sort.value === board.order ? null : el.sort.value;
  renderFilters();
  renderLanes();
});
document.querySelector('.lanes').addEventListener('click', (e) => {
  const button = e.target.closest('button[data-action]');
  const body = e.target.closest('.qcard-body');
  if (body) view.lastCard = body.dataset.qid;
  if (button && body && !button.disabled) perform(body.dataset.qid, button.dataset.action);
});
document.querySelector('.lanes').addEventListener('focusin', (e) => {
  const body = e.target.closest('.qcard-body');
  if (body) view.lastCard = body.dataset.qid;
});
el.tabs.addEventListener('click', (e) => {
  const tab = e.target.closest('[role="tab"]');
  if (tab) selectLane(tab.dataset.lane);
});
el.tabs.addEventListener('keydown', onTabKey);
shortcuts.attach();
NARROW.addEventListener('change', () => renderLanes());
// On a phone the filters start folded away, so the questions come first.
if (NARROW.matches) el.filtersBox.open = false;
render();
link.start(takeCode());
