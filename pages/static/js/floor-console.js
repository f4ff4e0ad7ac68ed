// The moderator console's speakers' list: who speaks now and for how long, the queue with grant,
// move, skip and remove, ending a turn, adding a speaker in the room who has no device, closing and
// reopening the list. Every other moderator's decision arrives live through `floor.list`.
//
// The panel binds to moderate.html's #floor section; the console drives it like its question
// lanes: attach(connection), welcome(message), event(event). It reports through the console's
// own live region and error box (announce, showError).

import { h, keepFocus, setAttr, setText, syncList } from './dom.js';
import { formatNumber, formatTime, onLanguageChange, t } from './i18n.js';
import { FloorBoard } from './floor-board.js';
import { SpeakerBlock, entryItem, fillEntry } from './floor-view.js';
import { groupName } from './qa.js';

const GROUPS = [
  'government',
  'civil-society',
  'private-sector',
  'academia',
  'international-organization',
  'technical-community',
  'other',
];
const NAME_MAX = 80;
const ACTIONS = ['grant', 'up', 'down', 'skip', 'remove'];

export class FloorConsole {
  /**
   * @param {HTMLElement} root  moderate.html's #floor section
   * @param {{announce: (text: string) => void, showError: (error: object) => void,
   *          clearError: () => void}} report
   */
  constructor(root, report) {
    const $ = (id) => root.querySelector(`#${id}`);
    this.root = root;
    this.report = report;
    this.el = {
      openState: $('floor-open-state'),
      close: $('floor-close'),
      none: $('floor-none'),
      revoke: $('floor-revoke'),
      expiredAlert: $('floor-expired-alert'),
      queueTitle: $('floor-queue-title'),
      empty: $('floor-empty'),
      queue: $('floor-queue'),
      add: $('floor-add'),
      addName: $('floor-add-name'),
      addGroup: $('floor-add-group'),
      addError: $('floor-add-error'),
    };
    this.board = new FloorBoard();
    this.connection = null;
    this.busy = false;
    this.waiters = []; // resolved by the next floor.list
    this.speaker = new SpeakerBlock($('floor-now'), this.board, { live: false });
    this.el.close.addEventListener('click', () => this._toggleOpen());
    this.el.revoke.addEventListener('click', () => this._revoke());
    this.el.queue.addEventListener('click', (e) => {
      const button = e.target.closest('button[data-action]');
      const item = e.target.closest('li[data-key]');
      if (button && item) this._act(item.dataset.key, button.dataset.action);
    });
    this.el.add.addEventListener('submit', (e) => this._add(e));
    onLanguageChange(() => this.render());
  }

  attach(connection) {
    this.connection = connection;
  }

  welcome(message) {
    this.board.reset(message);
    this.render();
  }

  event(event) {
    const speaker = this.board.speaker;
    if (!this.board.apply(event)) return;
    const data = event.data || {};
    if (event.name === 'floor.list') {
      for (const resolve of this.waiters.splice(0)) resolve();
    }
    if (event.name === 'floor.expired' && speaker && speaker.entry === data.entry) {
      // Said once, assertively: the chair decides what follows.
      setText(this.el.expiredAlert, t('floor.expired_for', { name: speaker.name }));
    }
    this.render();
  }

  render() {
    const board = this.board;
    this.root.hidden = !board.enabled;
    if (!board.enabled) return;
    setText(this.el.openState, t(board.open ? 'floor.list_open' : 'floor.list_closed'));
    this.el.openState.dataset.locked = String(!board.open);
    setText(this.el.close, t('floor.close'));
    setAttr(this.el.close, 'aria-pressed', String(!board.open));

    this.speaker.render();
    this.el.none.hidden = Boolean(board.speaker);
    setText(this.el.revoke, t('floor.revoke'));
    this.el.expiredAlert.hidden = !(board.speaker && board.expired);

    const n = board.queue.length;
    setText(this.el.queueTitle, `${t('floor.waiting')} (${formatNumber(n)})`);
    this.el.empty.hidden = n > 0;
    keepFocus(() => {
      syncList(
        this.el.queue,
        board.queue.map((entry, i) => [entry, i]),
        ([entry]) => entry.entry,
        ([entry]) => this._build(entry),
        (node, [entry, i]) => this._update(node, entry, i, n),
      );
    });
    this._fillGroups();
  }

  // ---- queue items ------------------------------------------------------------------------------

  _build(entry) {
    const item = entryItem();
    item.classList.add('floor-entry-console');
    const nameId = `floor-name-${entry.entry}`;
    item.querySelector('.floor-name').id = nameId;
    item.append(
      h('span', { class: 'floor-requested muted' }),
      h(
        'div',
        { class: 'card-actions' },
        ...ACTIONS.map((action) =>
          h('button', {
            type: 'button',
            class: action === 'grant' ? 'button' : 'button button-secondary',
            'data-action': action,
            'aria-describedby': nameId,
          }),
        ),
      ),
    );
    return item;
  }

  _update(node, entry, i, n) {
    fillEntry(node, entry, false);
    const at = typeof entry.requested === 'number' ? formatTime(entry.requested * 1000) : '';
    setText(node.querySelector('.floor-requested'), at ? t('floor.requested_at', { time: at }) : '');
    for (const button of node.querySelectorAll('button[data-action]')) {
      const action = button.dataset.action;
      setText(button, t(`floor.action.${action}`));
      // Moving past an end does nothing; the button says so but stays in the tab order (a disabled
      // button would drop the keyboard focus when the entry reaches the top).
      const inert = (action === 'up' && i === 0) || (action === 'down' && i === n - 1);
      setAttr(button, 'aria-disabled', inert ? 'true' : null);
    }
  }

  _fillGroups() {
    const select = this.el.addGroup;
    const lang = document.documentElement.lang;
    if (select.dataset.lang === lang) return;
    select.dataset.lang = lang;
    const value = select.value;
    select.replaceChildren(
      h('option', { value: '' }, t('floor.add_no_group')),
      ...GROUPS.map((g) => h('option', { value: g }, groupName(g))),
    );
    select.value = value;
  }

  // ---- actions ----------------------------------------------------------------------------------

  async _act(entryId, action) {
    const button = this.el.queue.querySelector(
      `li[data-key="${CSS.escape(entryId)}"] button[data-action="${action}"]`,
    );
    if (button && button.getAttribute('aria-disabled') === 'true') return;
    const i = this.board.queue.findIndex((e) => e.entry === entryId);
    const entry = this.board.queue[i];
    if (!entry) return;
    const commands = {
      grant: ['floor.grant', { entry: entryId }],
      up: ['floor.move', { entry: entryId, position: Math.max(0, i - 1) }],
      down: ['floor.move', { entry: entryId, position: i + 1 }],
      skip: ['floor.skip', { entry: entryId }],
      remove: ['floor.revoke', { entry: entryId }],
    };
    const [type, fields] = commands[action];
    const done = await this._send(type, fields);
    if (!done) return;
    this.report.announce(t(`floor.done.${action}`, { name: entry.name }));
    // Where the keyboard goes: with the moved entry; otherwise to the entry that took its place.
    const moved = action === 'up' || action === 'down';
    const target = moved
      ? entryId
      : (this.board.queue[Math.min(i, this.board.queue.length - 1)] || {}).entry;
    const again = target && this.el.queue.querySelector(`li[data-key="${CSS.escape(target)}"]`);
    const focusable = again && again.querySelector(`button[data-action="${moved ? action : 'grant'}"]`);
    if (focusable) focusable.focus();
    else if (action === 'grant') this.el.revoke.focus();
  }

  async _revoke() {
    const speaker = this.board.speaker;
    if (!speaker) return;
    if (await this._send('floor.revoke', {})) {
      this.report.announce(t('floor.done.revoke', { name: speaker.name }));
    }
  }

  async _toggleOpen() {
    const closed = this.board.open;
    if (await this._send('floor.close', { closed })) {
      this.report.announce(t(closed ? 'floor.list_closed' : 'floor.list_open'));
    }
  }

  async _add(event) {
    event.preventDefault();
    const name = this.el.addName.value.split(/\s+/).filter(Boolean).join(' ');
    const valid = name.length >= 1 && [...name].length <= NAME_MAX;
    setAttr(this.el.addName, 'aria-invalid', valid ? null : 'true');
    this.el.addError.hidden = valid;
    if (!valid) {
      setText(this.el.addError, t('floor.add_invalid', { max: formatNumber(NAME_MAX) }));
      this.el.addName.focus();
      return;
    }
    if (await this._send('floor.add', { name, group: this.el.addGroup.value })) {
      this.el.addName.value = '';
      this.report.announce(t('floor.done.add', { name }));
    }
  }

  /** Sends one command; the `floor.list` that follows redraws. Returns whether it succeeded. */
  async _send(type, fields) {
    if (this.busy) return false;
    if (!this.connection) {
      this.report.showError({ code: 'not_connected' });
      return false;
    }
    this.busy = true;
    try {
      // The ack can overtake the list event (it comes straight back, the event through the
      // store's fan-out): wait briefly for the list, so focus lands on what the moderator sees.
      const listed = new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1500);
      });
      await this.connection.request(type, fields);
      await listed;
      this.report.clearError();
      this.render();
      return true;
    } catch (error) {
      this.report.showError(error);
      return false;
    } finally {
      this.busy = false;
    }
  }
}
