// What the moderator console asks before some actions: a reason to reject, the corrected text, the
// labels, a written reply, the question to merge into. Each checks the words locally first (so the
// moderator hears at once what is wrong, in their language), then sends the command.

import { t } from './i18n.js';
import { LIVE } from './qa-board.js';
import { textLength } from './qa.js';

// The server's caps (moderation.questions): checked here only to explain them sooner.
const MAX_REASON = 300;
const MAX_REPLY = 1000;
const MAX_LABELS = 5;
const LABEL = /^[\p{L}\p{N}_-]{1,24}$/u;

/** Labels from what a moderator typed: commas (in any script) or spaces between, '#' optional. */
export function splitLabels(value) {
  const parts = value.split(/[,،、，\s]+/u).map((s) => s.trim().replace(/^#/, ''));
  return [...new Set(parts.filter(Boolean))];
}

/** An error for text that is empty or longer than `max` characters, or null. */
function sizeProblem(value, max, emptyKey) {
  if (!value.trim()) return t(emptyKey);
  return textLength(value) > max ? t('mod.too_long', { max }) : null;
}

/**
 * The console's dialogs, each `(question) => Promise<boolean>` (whether the action ran).
 *
 * @param {object} deps
 * @param {import('./dialog.js').ActionDialog} deps.dialog
 * @param {import('./qa-board.js').QnaBoard} deps.board
 * @param {(action: string, fields: object) => Promise<object>} deps.send  sends one command
 * @param {() => number} deps.maxChars  the session's cap on a question's length
 * @param {(words: string) => void} deps.announce  says something to screen-reader users
 */
export function questionDialogs({ dialog, board, send, maxChars, announce }) {
  return {
    reject: (q) =>
      dialog.open({
        title: t('mod.reject_title'),
        question: q,
        kind: 'text',
        label: t('mod.reason'),
        hint: t('mod.reason_hint', { max: MAX_REASON }),
        submit: t('mod.reject_submit'),
        check: (v) => sizeProblem(v, MAX_REASON, 'mod.reason_required'),
        run: (reason) => send('reject', { question: q.id, reason }),
      }),
    edit: (q) =>
      dialog.open({
        title: t('mod.edit_title'),
        kind: 'text',
        label: t('mod.edit_label'),
        value: q.text,
        hint: t('mod.edit_hint'),
        submit: t('mod.save'),
        check: (v) => sizeProblem(v, maxChars(), 'qna.err_empty'),
        run: (text) => send('edit', { question: q.id, text }),
      }),
    label: (q) =>
      dialog.open({
        title: t('mod.label_title'),
        question: q,
        kind: 'line',
        label: t('mod.labels'),
        value: (q.labels || []).join(', '),
        hint: t('mod.labels_hint', { max: MAX_LABELS }),
        submit: t('mod.save'),
        check: (v) => {
          const labels = splitLabels(v);
          const fine = labels.length <= MAX_LABELS && labels.every((l) => LABEL.test(l));
          return fine ? null : t('mod.labels_hint', { max: MAX_LABELS });
        },
        run: (v) => send('label', { question: q.id, labels: splitLabels(v) }),
      }),
    reply: (q) =>
      dialog.open({
        title: t('mod.reply_title'),
        question: q,
        kind: 'text',
        label: t('mod.reply'),
        value: q.reply || '',
        hint: t('mod.reply_hint'),
        submit: t('mod.send_reply'),
        check: (v) => sizeProblem(v, MAX_REPLY, 'mod.reply_required'),
        run: (text) => send('reply', { question: q.id, text }),
      }),
    merge: (q) => {
      const targets = [...board.questions.values()].filter(
        (x) => x.id !== q.id && LIVE.has(x.state),
      );
      if (!targets.length) {
        announce(t('mod.merge_none'));
        return Promise.resolve(false);
      }
      return dialog.open({
        title: t('mod.merge_title'),
        question: q,
        kind: 'select',
        label: t('mod.merge_into'),
        options: targets.map((x) => ({
          value: x.id,
          label: `${[...x.text].slice(0, 80).join('')} (${t(`lane.${x.state}`)})`,
          lang: x.lang,
        })),
        hint: t('mod.merge_hint'),
        submit: t('mod.merge_submit'),
        run: (target) => send('merge', { source: q.id, target }),
      });
    },
  };
}
