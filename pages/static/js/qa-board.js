// The question queue as one page sees it: the welcome's `parts.qa`, then the `qa.*` events merged
// in.
//
// The server sends each question in the view the reader may see (public, staff or author), so a
// moderator gets a public frame and then a staff frame for the same change: frames are merged by id
// and the later one wins. The board never touches the DOM; pages read it and draw.

import { formatNumber, language, t } from './i18n.js';
import { h } from './dom.js';

export const QUESTION_LANGUAGES = ['ar', 'zh', 'en', 'fr', 'ru', 'es'];
export const PUBLIC = new Set(['approved', 'answered']);
export const LIVE = new Set(['pending', 'approved', 'answered']);
export const ORDERS = ['votes', 'newest', 'moderator', 'balanced'];
const STAFF_ROLES = new Set(['moderator', 'operator']);
const ASKER_ROLES = new Set(['participant', 'speaker', 'moderator', 'operator', 'interpreter']);

/** Whether a role runs the queue. */
export const moderates = (role) => STAFF_ROLES.has(role);
/** Whether a role may ask and vote. */
export const asks = (role) => ASKER_ROLES.has(role);

const byVotes = (a, b) =>
  b.votes - a.votes || a.created - b.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const byNewest = (a, b) => b.created - a.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const byRank = (a, b) =>
  a.rank - b.rank || a.created - b.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Questions in one of the session's orders, exactly as the server orders them
 * (moderation.questions.ordered): the balanced order never gives a stakeholder group two slots in
 * a row while another group has a question waiting.
 */
export function ordered(questions, order) {
  if (order === 'newest') return [...questions].sort(byNewest);
  if (order === 'moderator') return [...questions].sort(byRank);
  const votes = [...questions].sort(byVotes);
  if (order !== 'balanced') return votes;
  const result = [];
  let waiting = votes;
  while (waiting.length) {
    const last = result.length ? result[result.length - 1].group : null;
    const pick = waiting.find((q) => q.group !== last) || waiting[0];
    result.push(pick);
    waiting = waiting.filter((q) => q !== pick);
  }
  return result;
}

export class QnaBoard {
  constructor() {
    this.clear();
  }

  clear() {
    this.questions = new Map();
    this.voted = new Set();
    this.mine = new Set();
    this.pinned = null;
    this.locked = false;
    this.enabled = false;
    this.order = 'votes';
    this.you = null;
    this.staff = false;
  }

  /** Starts over from a welcome message (first join, or after a resync). */
  reset(welcome) {
    this.clear();
    const part = (welcome.parts && welcome.parts.qa) || null;
    this.you = welcome.you || null;
    this.staff = Boolean(this.you && moderates(this.you.role));
    if (!part) return;
    this.enabled = Boolean(part.enabled);
    this.locked = Boolean(part.locked);
    this.pinned = part.pinned || null;
    this.order = ORDERS.includes(part.order) ? part.order : 'votes';
    for (const id of part.voted || []) this.voted.add(id);
    for (const view of part.questions || []) this.upsert(view);
  }

  /** Merges one frame's view of a question into what the board holds. */
  upsert(view) {
    if (!view || typeof view.id !== 'string') return null;
    const merged = { ...(this.questions.get(view.id) || {}), ...view };
    this.questions.set(view.id, merged);
    // Only the asker's own view carries `reason` to a participant; staff views name the author.
    if (this.staff ? this.you && view.author === this.you.sub : 'reason' in view) {
      this.mine.add(view.id);
    }
    return merged;
  }

  /** Applies one event; returns whether it was a Q&A event. */
  apply(event) {
    const data = event.data || {};
    switch (event.name) {
      case 'qa.question':
        this.upsert(data.question);
        return true;
      case 'qa.withdrawn': {
        const q = this.questions.get(data.id);
        if (!q) return true;
        // Staff and the asker keep it (with its new state); everyone else just loses it.
        if (this.staff || this.mine.has(data.id)) q.state = data.state;
        else this.questions.delete(data.id);
        return true;
      }
      case 'qa.votes':
        for (const [id, votes] of Object.entries(data.votes || {})) {
          const q = this.questions.get(id);
          if (q) q.votes = votes;
        }
        return true;
      case 'qa.pinned':
        this.pinned = data.question || null;
        return true;
      case 'qa.locked':
        this.locked = Boolean(data.locked);
        return true;
      case 'qa.merged': {
        const q = this.questions.get(data.source);
        if (q) {
          q.merged_into = data.target;
          q.state = 'archived';
        }
        if (this.voted.has(data.source)) this.voted.add(data.target);
        return true;
      }
      default:
        return false;
    }
  }

  get(id) {
    return this.questions.get(id) || null;
  }

  /** Questions in a state (or states), in an order. */
  inState(states, order = this.order) {
    const wanted = typeof states === 'string' ? new Set([states]) : states;
    return ordered(
      [...this.questions.values()].filter((q) => wanted.has(q.state)),
      order,
    );
  }

  /** The person's own questions, newest first. */
  own() {
    return [...this.questions.values()]
      .filter((q) => this.mine.has(q.id))
      .sort(byNewest);
  }

  /** The question on screen, when the board holds it and it is public. */
  pinnedQuestion() {
    const q = this.pinned ? this.questions.get(this.pinned) : null;
    return q && PUBLIC.has(q.state) ? q : null;
  }

  setVote(id, voted, votes) {
    if (voted) this.voted.add(id);
    else this.voted.delete(id);
    const q = this.questions.get(id);
    if (q && typeof votes === 'number') q.votes = votes;
  }
}

// ---- drawing helpers shared by the pages -------------------------------------------------------

/**
 * A question's words as an element: always text (never markup), in its own language and direction,
 * so Arabic reads right to left inside an English page and the reverse.
 */
export function questionText(q, tag = 'p', className = 'question-text') {
  const node = h(tag, { class: className, dir: 'auto' });
  fillQuestionText(node, q);
  return node;
}

/** Updates a question-text element in place. */
export function fillQuestionText(node, q) {
  if (node.textContent !== q.text) node.textContent = q.text;
  const lang = QUESTION_LANGUAGES.includes(q.lang) ? q.lang : '';
  if (node.getAttribute('lang') !== lang) node.setAttribute('lang', lang);
  node.setAttribute('dir', 'auto');
}

/** "Votes: 12" in the current language. */
export function votesText(n) {
  return t('qna.votes', { n: formatNumber(n || 0) });
}

/** When someone may try again, as words ("in 42 seconds"). */
export function whenText(seconds) {
  const secs = Math.max(1, Math.ceil(Number(seconds) || 1));
  try {
    const format = new Intl.RelativeTimeFormat(language(), { numeric: 'always' });
    if (secs > 90) return format.format(Math.ceil(secs / 60), 'minute');
    return format.format(secs, 'second');
  } catch (err) {
    return `${secs} s`;
  }
}

/** A typed refusal from the server, in words the person can act on (every `err.<code>` string). */
export function errorText(error) {
  const code = (error && error.code) || 'unknown';
  if (code === 'too_many_questions' || code === 'too_many_floor_requests') {
    return t(`err.${code}`, { when: whenText(error.retryAfter || 60) });
  }
  const key = `err.${code}`;
  const words = t(key);
  return words === key ? t('err.unknown', { code }) : words;
}
