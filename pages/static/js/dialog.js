// A modal dialog that asks one thing (a reason, a corrected text, labels, a merge target) and runs
// the action with it. A refusal from the server is shown inside the dialog, which stays open so the
// person can correct their words; Escape or Cancel closes it and focus goes back where it was.

import { setText } from './dom.js';
import { errorText } from './qa-board.js';

export class ActionDialog {
  /** @param {HTMLDialogElement} dialog  the markup of moderate.html's #action-dialog */
  constructor(dialog) {
    const $ = (id) => dialog.querySelector(`#${id}`);
    this.dialog = dialog;
    this.form = dialog.querySelector('form');
    this.title = $('action-title');
    this.quote = $('action-quote');
    this.label = $('action-label');
    this.fields = { text: $('action-text'), line: $('action-line'), select: $('action-select') };
    this.hint = $('action-hint');
    this.error = $('action-error');
    this.submit = $('action-submit');
    this.cancel = $('action-cancel');
    this.current = null;
    this.form.addEventListener('submit', (e) => this._submit(e));
    this.cancel.addEventListener('click', () => this.close());
    dialog.addEventListener('close', () => this._closed());
    // Ctrl/Cmd+Enter sends from a multi-line field, where Enter makes a new line.
    this.fields.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  /**
   * Opens the dialog.
   * @param {object} spec
   * @param {string} spec.title        the dialog's heading
   * @param {object} [spec.question]   the question concerned (quoted, as text, in its direction)
   * @param {'text'|'line'|'select'} spec.kind  the field
   * @param {string} spec.label        the field's label
   * @param {string} [spec.value]      its starting value
   * @param {string} [spec.hint]       a hint under it
   * @param {Array<{value, label, lang}>} [spec.options]  for a select
   * @param {string} spec.submit       the confirm button's words
   * @param {(value: string) => (string|null)} [spec.check]  a local check: an error message or null
   * @param {(value: string) => Promise<void>} spec.run  the action (rejects with a PodiumError)
   * @returns {Promise<boolean>} whether the action ran
   */
  open(spec) {
    if (this.current) this.close();
    this.returnFocus = document.activeElement;
    setText(this.title, spec.title);
    this.quote.hidden = !spec.question;
    if (spec.question) {
      setText(this.quote, spec.question.text);
      this.quote.setAttribute('lang', spec.question.lang || '');
    }
    setText(this.label, spec.label);
    for (const [kind, field] of Object.entries(this.fields)) {
      field.hidden = kind !== spec.kind;
      field.disabled = kind !== spec.kind;
      field.removeAttribute('aria-invalid');
    }
    const field = this.fields[spec.kind];
    this.label.htmlFor = field.id;
    if (spec.kind === 'select') {
      field.replaceChildren(
        ...(spec.options || []).map((o) => {
          const option = document.createElement('option');
          option.value = o.value;
          option.textContent = o.label;
          option.dir = 'auto';
          if (o.lang) option.lang = o.lang;
          return option;
        }),
      );
    }
    if (spec.kind !== 'select' || spec.value) field.value = spec.value || '';
    else field.selectedIndex = 0;
    this.hint.hidden = !spec.hint;
    setText(this.hint, spec.hint || '');
    this.error.hidden = true;
    setText(this.error, '');
    setText(this.submit, spec.submit);
    this.submit.disabled = false;
    return new Promise((resolve) => {
      this.current = { spec, field, resolve, done: false };
      this.dialog.showModal();
      field.focus();
      if (spec.kind !== 'select') field.select();
    });
  }

  close() {
    if (this.dialog.open) this.dialog.close();
    else this._closed();
  }

  _closed() {
    const current = this.current;
    this.current = null;
    if (current) current.resolve(current.done);
    const back = this.returnFocus;
    this.returnFocus = null;
    if (back && back.isConnected && back !== document.body) back.focus({ preventScroll: true });
  }

  _fail(message) {
    if (!this.current) return;
    setText(this.error, message);
    this.error.hidden = false;
    this.current.field.setAttribute('aria-invalid', 'true');
    this.current.field.focus();
  }

  async _submit(event) {
    event.preventDefault();
    const current = this.current;
    if (!current || this.submit.disabled) return;
    const value = current.field.value;
    const problem = current.spec.check ? current.spec.check(value) : null;
    if (problem) {
      this._fail(problem);
      return;
    }
    this.submit.disabled = true;
    try {
      await current.spec.run(value);
      current.done = true;
      this.close();
    } catch (error) {
      if (this.current === current) this._fail(errorText(error));
    } finally {
      this.submit.disabled = false;
    }
  }
}
