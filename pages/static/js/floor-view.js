// The speakers' list drawn the same way on every page: an entry (name in its own direction, group,
// remote or in the room) and the "now speaking" block with its countdown.

import { h, setAttr, setText } from './dom.js';
import { t, translate } from './i18n.js';
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
 * The "now speaking" block of a page: who has the floor (name, group, remote or in the room) and
 * the time left, counting down every quarter second while someone speaks. It fills the page's
 * #floor-now element (before anything the page put there, such as the console's buttons).
 */
export class SpeakerBlock {
  /**
   * @param {HTMLElement} block  the page's #floor-now element
   * @param {import('./floor-board.js').FloorBoard} board
   * @param {{heading?: string, live?: boolean}} [options]  the tag of the "Now speaking" label (a
   *   heading on the display, where it names its section); whether a new speaker is announced (not
   *   on the console, which says so itself)
   */
  constructor(block, board, { heading = 'p', live = true } = {}) {
    this.board = board;
    const label = h(heading, {
      id: 'floor-now-label',
      class: 'floor-now-label',
      'data-i18n': 'floor.now_speaking',
    });
    this.el = {
      block,
      name: h('bdi', { id: 'floor-now-name', class: 'floor-name', dir: 'auto' }),
      details: h('span', { id: 'floor-now-details', class: 'floor-details muted' }),
      timer: h('span', { id: 'floor-now-timer', class: 'floor-timer', role: 'timer' }),
      expired: h('span', {
        id: 'floor-now-expired',
        class: 'tag tag-held floor-expired-tag',
        'data-i18n': 'floor.expired',
        hidden: true,
      }),
    };
    const left = h('span', { class: 'visually-hidden', 'data-i18n': 'floor.time_left' });
    block.prepend(
      label,
      h(
        'p',
        { class: 'floor-now-who', 'aria-live': live ? 'polite' : null },
        this.el.name,
        ' ',
        this.el.details,
      ),
      h('p', { class: 'floor-timer-line' }, left, this.el.timer, ' ', this.el.expired),
    );
    if (block.tagName === 'SECTION') setAttr(block, 'aria-labelledby', 'floor-now-label');
    translate(block);
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
