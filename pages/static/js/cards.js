// The moderator console's question cards: what a moderator needs to decide (the words in their own
// direction, who asked, the word-filter hits, labels, votes) and the actions the question's state
// allows. A card is rebuilt only when what it shows changes, and gives focus back to the same
// control.

import { formatTime, languageName, t } from './i18n.js';
import { h, setText } from './dom.js';
import { LIVE, PUBLIC, questionText, votesText } from './qa-board.js';
import { groupName, note } from './qa.js';

/** Which actions each state offers: the first row, then the "More actions" menu. */
const PRIMARY = {
  pending: ['approve', 'reject'],
  approved: ['pin', 'answer', 'reject'],
  answered: ['pin'],
  rejected: ['approve'],
};
const MOVABLE = new Set(['pending', 'approved', 'answered']);

/** The actions a state allows (what the shortcuts check before acting). */
export function allowed(q, action) {
  if (!q) return false;
  switch (action) {
    case 'approve':
      return q.state === 'pending' || q.state === 'rejected';
    case 'reject':
      return q.state === 'pending' || q.state === 'approved';
    case 'answer':
      return q.state === 'approved';
    case 'pin':
      return PUBLIC.has(q.state);
    case 'edit':
    case 'reply':
      return q.state !== 'archived';
    case 'merge':
      return LIVE.has(q.state);
    case 'up':
    case 'down':
      return MOVABLE.has(q.state);
    default:
      return q.state !== 'archived';
  }
}

function button(q, action, ctx, primary) {
  const pinned = ctx.pinned === q.id;
  const attrs = {
    type: 'button',
    // A toggle looks like one: outlined when off, filled (and ticked) when on.
    class:
      primary && action !== 'pin'
        ? `button action action-${action}`
        : 'button button-secondary action',
    'data-action': action,
  };
  if (action === 'pin') attrs['aria-pressed'] = String(pinned);
  if (action === 'approve') attrs['aria-keyshortcuts'] = 'A';
  if (action === 'reject') attrs['aria-keyshortcuts'] = 'R';
  if (action === 'edit') attrs['aria-keyshortcuts'] = 'E';
  if (action === 'pin') attrs['aria-keyshortcuts'] = 'P';
  if ((action === 'up' && ctx.first) || (action === 'down' && ctx.last)) attrs.disabled = true;
  if (action === 'pin') {
    // The name stays the same whether pressed or not; the pressed state says which it is.
    return h('button', attrs, t('mod.on_screen_toggle'));
  }
  return h('button', attrs, t(`mod.action.${action}`));
}

function badges(q, ctx) {
  const tags = [];
  if (ctx.pinned === q.id) tags.push(h('span', { class: 'tag tag-pinned' }, t('qna.on_screen')));
  if (q.held && q.held.length) {
    tags.push(
      h('span', { class: 'tag tag-held' }, t('mod.held'), ' ', h('bdi', {}, q.held.join(', '))),
    );
  }
  if (q.edited) tags.push(h('span', { class: 'tag' }, t('mod.edited')));
  if (q.anonymous) tags.push(h('span', { class: 'tag' }, t('mod.anonymous')));
  for (const label of q.labels || []) {
    tags.push(h('span', { class: 'tag tag-label' }, h('bdi', {}, `#${label}`)));
  }
  return tags;
}

/** What a card shows, as one string: the card is rebuilt only when it changes. */
function signature(q, ctx) {
  return JSON.stringify([
    q.text, q.lang, q.state, q.author_name, q.anonymous, q.group, q.held, q.labels, q.reply,
    q.reason, q.edited, q.created, ctx.pinned === q.id, ctx.movable, ctx.first, ctx.last, ctx.lang,
  ]); // prettier-ignore
}

/** An empty card for a question (filled by updateCard). */
export function buildCard() {
  return h('li', { class: 'qcard' });
}

/**
 * Fills or refreshes a card.
 * @param {HTMLElement} node
 * @param {object} q  the question (staff view)
 * @param {{pinned, movable, first, last, lang}} ctx
 */
export function updateCard(node, q, ctx) {
  node.dataset.state = q.state;
  node.classList.toggle('is-pinned', ctx.pinned === q.id);
  const sig = signature(q, ctx);
  if (node.dataset.sig !== sig) {
    node.dataset.sig = sig;
    const focused = node.contains(document.activeElement) ? document.activeElement : null;
    let focusAction = null;
    if (focused) {
      focusAction = focused.dataset.action || (focused.tagName === 'SUMMARY' ? 'more' : 'card');
    }
    const wasOpen = Boolean(node.querySelector('details[open]'));
    node.replaceChildren(body(q, ctx, wasOpen));
    if (focusAction) {
      const target =
        focusAction === 'card'
          ? node.querySelector('.qcard-body')
          : focusAction === 'more'
            ? node.querySelector('summary')
            : node.querySelector(`[data-action="${focusAction}"]`);
      const usable = target && !target.disabled ? target : node.querySelector('.qcard-body');
      usable.focus({ preventScroll: true });
    }
  }
  setText(node.querySelector('.qcard-votes'), votesText(q.votes));
}

function body(q, ctx, open) {
  const textId = `qt-${q.id}`;
  const who = q.author_name || t('qna.anonymous_author');
  const about = [groupName(q.group), languageName(q.lang), formatTime(q.created * 1000)]
    .filter(Boolean)
    .map((part) => ` · ${part}`)
    .join('');
  const primary = (PRIMARY[q.state] || []).map((a) => button(q, a, ctx, true));
  const more = ['edit', 'label', 'reply', 'merge', 'up', 'down', 'archive']
    .filter((a) => allowed(q, a) && ((a !== 'up' && a !== 'down') || ctx.movable))
    .map((a) => button(q, a, ctx, false));
  const text = questionText(q);
  text.id = textId;
  const reason = note('question-reason');
  const reply = note('question-reply');
  for (const [el, key, value] of [
    [reason, 'qna.reason', q.state === 'rejected' ? q.reason : ''],
    [reply, 'qna.reply', q.reply],
  ]) {
    el.hidden = !value;
    setText(el.querySelector('.note-label'), t(key));
    setText(el.querySelector('.note-text'), value || '');
  }
  const tags = badges(q, ctx);
  return h(
    'article',
    { class: 'qcard-body', tabindex: '-1', 'data-qid': q.id, 'aria-labelledby': textId },
    tags.length ? h('p', { class: 'question-badges' }, ...tags) : null,
    text,
    h(
      'p',
      { class: 'question-meta muted' },
      h('bdi', {}, who),
      about,
      ' · ',
      h('span', { class: 'qcard-votes' }),
    ),
    reason,
    reply,
    primary.length ? h('div', { class: 'card-actions' }, ...primary) : null,
    more.length
      ? h(
          'details',
          { class: 'more', open: open || null },
          h('summary', {}, t('mod.more')),
          h('div', { class: 'card-actions' }, ...more),
        )
      : null,
  );
}
