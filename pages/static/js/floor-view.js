// The speakers' list drawn the same way on every page: an entry (name in its own direction, group,
// remote or in the room) and the "now speaking" block with its countdown.

import { h, setText } from './dom.js';
import { t } from './i18n.js';
import { Ticker, countdownText, entryDetails } from './floor-board.js';

/** A queued or speaking person as a list item: the name in its own direction, then the details. */
export function entryItem() {
  return h(
    'li',
    { class: 'floor-entry' },
    h('bdi', { class: 'floor-name', dir: 'auto' }),
    ' ',
    h('span', { class: 'floor-details muted' }),
    h('span', { class: 'tag tag-mine', hidden: true }),
  );
}

/** Fills an entry item (name, group and mode, and a "you" tag for the person's own entry). */
export function fillEntry(node, entry, mine) {
  setText(node.querySelector('.floor-name'), entry.name);
  setText(node.querySelector('.floor-details'), entryDetails(entry));
  const tag = node.querySelector('.tag-mine');
  tag.hidden = !mine;
  if (mine) setText(tag, t('floor.you'));
  node.classList.toggle('is-mine', mine);
}

/**
 * The "now speaking" block of a page (#floor-now with its name, details, timer and expiry tag):
 * who has the floor and the time left, counting down every quarter second while someone speaks.
 */
export class SpeakerBlock {
  constructor(root, board) {
    const $ = (id) => root.querySelector(`#${id}`);
    this.board = board;
    this.el = {
      block: $('floor-now'),
      name: $('floor-now-name'),
      details: $('floor-now-details'),
      timer: $('floor-now-timer'),
      expired: $('floor-now-expired'),
    };
    this.ticker = new Ticker(
      () => this._fill(),
      () => Boolean(this.board.speaker),
    );
  }

  render() {
    this._fill();
    this.ticker.wake();
  }

  _fill() {
    const { board, el } = this;
    const speaker = board.speaker;
    el.block.hidden = !speaker;
    if (!speaker) return;
    setText(el.name, speaker.name);
    setText(el.details, entryDetails(speaker));
    const { text, over } = countdownText(board.remaining());
    setText(el.timer, text);
    const up = over || board.expired;
    el.timer.dataset.over = String(up);
    el.expired.hidden = !up;
  }
}
