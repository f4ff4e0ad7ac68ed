// The participant's Q&A panel: ask (with a live character count, a language and, where the session
// allows it, anonymously), vote and take a vote back, follow one's own questions to their outcome.
//
// The panel binds to the markup of participant.html's #qna section and is driven by the page:
// attach(connection) once per connection, welcome(message) on every snapshot, event(event) on every
// event. Everything it draws from people (questions, replies, reasons, names) goes in as text.

import { AUTONYMS, LANGUAGES, formatNumber, language, onLanguageChange, t } from './i18n.js';
import { h, keepFocus, setAttr, setText, syncList } from './dom.js';
import {
  QnaBoard,
  asks,
  errorText,
  fillQuestionText,
  questionText,
  votesText,
} from './qa-board.js';

const RTL = new Set(['ar']);
const WARN_LEFT = 20; // from here on the count is announced, not just shown

/** The text as the server will keep it (NFC, spaces folded, trimmed), for an honest count. */
export function normalisedText(text) {
  const lines = text
    .normalize('NFC')
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t]+/g, ' ').trim());
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

/** A new key for one question (22 URL-safe characters). */
export function askKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

/** Its length in characters (code points, as the server counts). */
export const textLength = (text) => [...normalisedText(text)].length;

/** A stakeholder group's name in the current language (unknown groups as they are). */
export function groupName(group) {
  if (!group) return '';
  const key = `group.${group}`;
  const name = t(key);
  return name === key ? group : name;
}

/**
 * "Amina · Civil society" (or "Anonymous") for a question's byline, as nodes: the name is isolated
 * in <bdi> so an Arabic name keeps its direction in an English line, and the reverse.
 */
export function byline(q) {
  const anonymous = q.anonymous || !q.author_name;
  const who = anonymous ? t('qna.anonymous_author') : h('bdi', {}, q.author_name);
  const group = q.anonymous ? '' : groupName(q.group);
  return group ? [who, ` · ${group}`] : [who];
}

/** Replaces a byline element's content only when the words change. */
export function fillByline(node, q) {
  const sig = JSON.stringify([q.anonymous, q.author_name, q.group, language()]);
  if (node.dataset.sig === sig) return;
  node.dataset.sig = sig;
  node.replaceChildren(...byline(q));
}

/** A labelled note under a question (a reply, a reason): the label in the page's language, the
 * words in their own direction. */
export function note(className) {
  return h(
    'p',
    { class: `question-note ${className}` },
    h('span', { class: 'note-label' }),
    ' ',
    h('bdi', { class: 'note-text', dir: 'auto' }),
  );
}

export class QnaPanel {
  constructor(root) {
    const $ = (id) => root.querySelector(`#${id}`);
    this.root = root;
    this.el = {
      closed: $('qna-closed'),
      form: $('ask-form'),
      text: $('ask-text'),
      count: $('ask-count'),
      countLive: $('ask-count-live'),
      error: $('ask-error'),
      lang: $('ask-lang'),
      anonymousChoice: $('ask-anonymous-choice'),
      anonymous: $('ask-anonymous'),
      submit: root.querySelector('#ask-form button[type="submit"]'),
      status: $('ask-status'),
      mineSection: $('mine-section'),
      mine: $('mine-list'),
      order: $('public-order'),
      empty: $('public-empty'),
      voteError: $('vote-error'),
      list: $('public-list'),
      answeredSection: $('answered-section'),
      answered: $('answered-list'),
    };
    this.board = new QnaBoard();
    this.connection = null;
    this.settings = { max_chars: 500, anonymous_allowed: false };
    this.langChosen = false;
    this.countBand = 'ok';
    this.sentKey = null;
    this.errorState = null; // {key | error} shown under the text field
    this._fillLanguages();
    this.el.lang.addEventListener('change', () => {
      this.langChosen = true;
    });
    this.el.text.addEventListener('input', () => {
      if (this.sentKey) {
        this.sentKey = null; // the thanks belong to the question already sent
        setText(this.el.status, '');
      }
      this._renderCount(true);
    });
    this.el.form.addEventListener('submit', (e) => this._ask(e));
    this.el.list.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-action="vote"]');
      if (button) this._toggleVote(button.closest('li').dataset.key, button);
    });
    onLanguageChange(() => {
      if (!this.langChosen) this.el.lang.value = language();
      this.render();
    });
  }

  /** The connection requests go through (a new one after every rejoin). */
  attach(connection) {
    this.connection = connection;
  }

  /** A fresh snapshot: start over from it. */
  welcome(message) {
    this.board.reset(message);
    const qna = (message.session && message.session.qna) || {};
    this.settings = {
      max_chars: Number(qna.max_chars) || 500,
      anonymous_allowed: Boolean(qna.anonymous_allowed),
    };
    this.render();
  }

  /** A live event; redraws when it concerns the questions. */
  event(event) {
    if (this.board.apply(event)) this.render();
  }

  render() {
    const board = this.board;
    const role = board.you ? board.you.role : '';
    const closedKey = !board.enabled ? 'qna.disabled' : board.locked ? 'qna.locked' : null;
    this.el.closed.hidden = !closedKey;
    if (closedKey) setText(this.el.closed, t(closedKey));
    this.el.form.hidden = !board.enabled || board.locked || !asks(role);
    this.el.anonymousChoice.hidden = !this.settings.anonymous_allowed;
    this._renderCount(false);
    this._renderError();
    setText(this.el.status, this.sentKey ? t(this.sentKey) : '');
    setText(this.el.order, t(`qna.order.${board.order}`));

    keepFocus(() => {
      const mine = board.own();
      this.el.mineSection.hidden = mine.length === 0;
      const id = (q) => q.id;
      syncList(this.el.mine, mine, id, (q) => this._buildMine(q), (n, q) => this._updateMine(n, q));
      const open = board.inState('approved');
      const done = board.inState('answered');
      this.el.empty.hidden = open.length + done.length > 0;
      const canVote = asks(role);
      syncList(
        this.el.list,
        open,
        id,
        (q) => this._buildPublic(q, true),
        (n, q) => this._updatePublic(n, q, canVote),
      );
      this.el.answeredSection.hidden = done.length === 0;
      syncList(
        this.el.answered,
        done,
        id,
        (q) => this._buildPublic(q, false),
        (n, q) => this._updatePublic(n, q, false),
      );
    });
  }

  // ---- asking -----------------------------------------------------------------------------------

  _fillLanguages() {
    this.el.lang.replaceChildren(
      ...LANGUAGES.map((code) =>
        h(
          'option',
          { value: code, lang: code, dir: RTL.has(code) ? 'rtl' : 'ltr' },
          AUTONYMS[code],
        ),
      ),
    );
    this.el.lang.value = language();
  }

  _renderCount(announce) {
    const max = this.settings.max_chars;
    const n = textLength(this.el.text.value);
    const over = n - max;
    const band = over > 0 ? 'over' : max - n <= WARN_LEFT ? 'near' : 'ok';
    setText(this.el.count, t('qna.count', { n: formatNumber(n), max: formatNumber(max) }));
    this.el.count.dataset.band = band;
    if (announce && band !== this.countBand) {
      const words =
        band === 'over'
          ? t('qna.count_over', { n: formatNumber(over) })
          : band === 'near'
            ? t('qna.count_left', { n: formatNumber(max - n) })
            : '';
      setText(this.el.countLive, words);
    }
    this.countBand = band;
    if (band !== 'over' && this.errorState && this.errorState.key === 'qna.err_long') {
      this.errorState = null;
      this._renderError();
    }
  }

  _renderError() {
    const state = this.errorState;
    this.el.error.hidden = !state;
    setAttr(this.el.text, 'aria-invalid', state && state.field ? 'true' : null);
    if (!state) return;
    const max = this.settings.max_chars;
    const words = state.key ? t(state.key, { max: formatNumber(max) }) : errorText(state.error);
    setText(this.el.error, words);
  }

  _showError(state) {
    this.errorState = state;
    this.sentKey = null;
    setText(this.el.status, '');
    this._renderError();
  }

  async _ask(event) {
    event.preventDefault();
    const text = this.el.text.value;
    const n = textLength(text);
    if (n === 0 || n > this.settings.max_chars) {
      this._showError({ key: n === 0 ? 'qna.err_empty' : 'qna.err_long', field: true });
      this.el.text.focus();
      return;
    }
    if (!this.connection) {
      this._showError({ error: { code: 'not_connected' } });
      return;
    }
    const fields = { text, lang: this.el.lang.value };
    if (this.settings.anonymous_allowed && this.el.anonymous.checked) fields.anonymous = true;
    // One key per question: sending the same question again after a failure (the store may have
    // kept the first try although its answer was lost) reuses it, and the node answers with the
    // question it kept instead of asking it twice.
    if (!this.pendingAsk || this.pendingAsk.text !== text) {
      this.pendingAsk = { text, key: askKey() };
    }
    fields.key = this.pendingAsk.key;
    this.el.submit.disabled = true;
    try {
      const result = await this.connection.request('qa.ask', fields);
      this.pendingAsk = null;
      this.errorState = null;
      const q = this.board.upsert(result.question);
      if (q) this.board.mine.add(q.id);
      this.el.text.value = '';
      this.sentKey = q && q.state === 'pending' ? 'qna.sent_pending' : 'qna.sent_published';
      this.render();
    } catch (error) {
      this._showError({ error, field: error.code === 'text_refused' });
      if (error.code === 'qna_closed') this.board.locked = true;
      this.render();
    } finally {
      this.el.submit.disabled = false;
    }
  }

  // ---- voting -----------------------------------------------------------------------------------

  async _toggleVote(id, button) {
    if (!this.connection || button.getAttribute('aria-busy') === 'true') return;
    const voted = this.board.voted.has(id);
    button.setAttribute('aria-busy', 'true');
    this.el.voteError.hidden = true;
    try {
      const type = voted ? 'qa.unvote' : 'qa.vote';
      const result = await this.connection.request(type, { question: id });
      this.board.setVote(id, Boolean(result.voted), result.votes);
    } catch (error) {
      setText(this.el.voteError, errorText(error));
      this.el.voteError.hidden = false;
    } finally {
      button.removeAttribute('aria-busy');
      this.render();
    }
  }

  // ---- items ------------------------------------------------------------------------------------

  _buildPublic(q, votable) {
    const count = h('span', { class: 'vote-count', id: `votes-${q.id}` });
    const actions = h('div', { class: 'question-actions' });
    if (votable) {
      actions.append(
        h('button', {
          type: 'button',
          class: 'button vote',
          'data-action': 'vote',
          'aria-pressed': 'false',
          'aria-describedby': `votes-${q.id}`,
        }),
      );
    }
    actions.append(count);
    return h(
      'li',
      { class: 'question' },
      h('p', { class: 'question-badges' }),
      questionText(q),
      h('p', { class: 'question-meta muted' }),
      note('question-reply'),
      actions,
    );
  }

  _updatePublic(node, q, canVote) {
    fillQuestionText(node.querySelector('.question-text'), q);
    const badges = [];
    if (this.board.pinned === q.id) badges.push(['pinned', t('qna.on_screen')]);
    if (this.board.mine.has(q.id)) badges.push(['mine', t('qna.yours')]);
    this._badges(node.querySelector('.question-badges'), badges);
    fillByline(node.querySelector('.question-meta'), q);
    node.classList.toggle('is-pinned', this.board.pinned === q.id);
    this._note(node.querySelector('.question-reply'), 'qna.reply', q.reply);
    setText(node.querySelector('.vote-count'), votesText(q.votes));
    const vote = node.querySelector('button[data-action="vote"]');
    if (vote) {
      vote.hidden = !canVote;
      setText(vote, t('qna.upvote'));
      setAttr(vote, 'aria-pressed', String(this.board.voted.has(q.id)));
    }
  }

  _buildMine(q) {
    return h(
      'li',
      { class: 'question mine' },
      h('p', { class: 'question-badges' }),
      questionText(q),
      note('question-reason'),
      note('question-reply'),
      h('p', { class: 'question-merged muted' }),
    );
  }

  _updateMine(node, q) {
    fillQuestionText(node.querySelector('.question-text'), q);
    const state = q.merged_into ? 'merged' : q.state;
    const badge = [`state-${state}`, t(`qstate.${state}`)];
    this._badges(node.querySelector('.question-badges'), [badge]);
    node.dataset.state = state;
    const reason = q.state === 'rejected' ? q.reason : '';
    this._note(node.querySelector('.question-reason'), 'qna.reason', reason);
    this._note(node.querySelector('.question-reply'), 'qna.reply', q.reply);
    const merged = node.querySelector('.question-merged');
    merged.hidden = !q.merged_into;
    if (q.merged_into) setText(merged, t('qna.merged_note'));
  }

  _badges(container, badges) {
    const key = badges.map(([kind, label]) => `${kind}:${label}`).join('|');
    container.hidden = badges.length === 0;
    if (container.dataset.sig === key) return;
    container.dataset.sig = key;
    container.replaceChildren(
      ...badges.map(([kind, label]) => h('span', { class: `tag tag-${kind}` }, label)),
    );
  }

  _note(node, labelKey, text) {
    node.hidden = !text;
    if (!text) return;
    setText(node.querySelector('.note-label'), t(labelKey));
    setText(node.querySelector('.note-text'), text);
  }
}
