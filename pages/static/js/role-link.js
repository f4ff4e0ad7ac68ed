// The join flow of a page for one role (the moderator console, the room display, the production
// desk): the session from the HTTP API, a token from the link's code or from this tab, a connection
// that reconnects by itself, a welcome for the wrong role turned away, and words for every refusal.
// The page wires what it draws to each new connection.

import { PodiumConnection } from './connection.js';
import { refusal, sessionAndToken } from './join.js';

export class RoleLink {
  /**
   * @param {object} options
   * @param {string} options.sessionId
   * @param {{get: () => string|null, set: (token: string|null) => void}} options.tokens
   * @param {(role: string) => boolean} options.accept  the roles this page serves
   * @param {string} options.needLink  i18n key: there is no code and no token
   * @param {string} options.wrongRole  i18n key: the link is for another role
   * @param {(key: string, extra?: object) => void} options.notify  shows a notice
   * @param {(session: object) => void} options.onSession  the session as the HTTP API says
   * @param {(conn: PodiumConnection) => void} options.wire  adds the page's listeners
   */
  constructor({ sessionId, tokens, accept, needLink, wrongRole, notify, onSession, wire }) {
    Object.assign(this, { sessionId, tokens, accept, needLink, wrongRole, notify, onSession, wire });
    this.connection = null;
  }

  /** Starts from a link's code (or from this tab's token when there is none). */
  async start(code) {
    try {
      const { session, token, error } = await sessionAndToken(
        this.sessionId,
        this.tokens,
        code,
        this.accept,
      );
      if (session) this.onSession(session);
      if (error) this.notify(error === 'role' ? this.wrongRole : error);
      else if (token) this.connect(token);
      else this.notify(this.needLink);
    } catch (err) {
      this.notify('join.network', { retry: () => this.start(code) });
    }
  }

  connect(token) {
    if (this.connection) this.connection.stop();
    const conn = new PodiumConnection({ session: this.sessionId, token });
    this.connection = conn;
    // First in line: a welcome for a role this page does not serve reaches none of the page's own
    // listeners.
    conn.addEventListener('welcome', (e) => {
      const you = e.detail.message.you;
      if (you && this.accept(you.role)) return;
      e.stopImmediatePropagation();
      this._drop(conn);
      this.tokens.set(null);
      this.notify(this.wrongRole);
    });
    this.wire(conn);
    // Last in line: the page has noted the close before the notice says why.
    conn.addEventListener('closed', (e) => {
      if (this.connection === conn) this.connection = null;
      const { key, params, spent, retry } = refusal(e.detail.error);
      if (spent) this.tokens.set(null);
      this.notify(key, { params, retry: retry ? () => this.connect(token) : null });
    });
    conn.start();
  }

  _drop(conn) {
    conn.stop();
    if (this.connection === conn) this.connection = null;
  }
}
