// Single-key shortcuts for a page: they never fire while the person types in a field, with a
// modifier held, or while the page says they should not (a dialog is open, say); and they can be
// turned off (WCAG 2.1.4), a choice kept in localStorage.

import { typingIn } from './dom.js';

export class Shortcuts {
  /**
   * @param {string} storageKey  where the on/off choice is kept
   * @param {Object<string, (event: KeyboardEvent) => void>} keys  handlers by KeyboardEvent.key
   * @param {() => boolean} active  whether shortcuts apply right now
   */
  constructor(storageKey, keys, active) {
    this.storageKey = storageKey;
    this.keys = keys;
    this.active = active;
    this._on = this._read();
    this._listener = (event) => this._key(event);
  }

  get on() {
    return this._on;
  }

  set on(value) {
    this._on = Boolean(value);
    try {
      window.localStorage.setItem(this.storageKey, this._on ? 'on' : 'off');
    } catch (err) {
      // the choice then lasts as long as the page
    }
  }

  attach(target = document) {
    target.addEventListener('keydown', this._listener);
  }

  _read() {
    try {
      return window.localStorage.getItem(this.storageKey) !== 'off';
    } catch (err) {
      return true;
    }
  }

  _key(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!this._on || typingIn(event.target) || !this.active()) return;
    const handler = Object.hasOwn(this.keys, event.key) ? this.keys[event.key] : null;
    if (!handler) return;
    event.preventDefault();
    handler(event);
  }
}
