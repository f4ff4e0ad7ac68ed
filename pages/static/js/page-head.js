// The head every session page shares: the session's title (in the heading and the tab), the
// connection status, and the notice with its optional "try again".

import { setText } from './dom.js';
import { t } from './i18n.js';

/** The session's title; `headingKey` names the page in the tab's title (the display has none). */
export function renderTitle(el, session, headingKey = null) {
  if (!session) return;
  delete el.title.dataset.i18n;
  setText(el.title, session.title);
  const page = headingKey ? `${t(headingKey)}: ` : '';
  document.title = `${page}${session.title} — podium`;
}

/** The connection's status word (connecting, connected, reconnecting…). */
export function renderStatus(el, status) {
  el.connection.dataset.status = status;
  setText(el.connection, t(`status.${status}`));
}

/** The notice ({key, params, retry}) or nothing. */
export function renderNotice(el, notice) {
  el.notice.hidden = !notice;
  if (notice) setText(el.noticeText, t(notice.key, notice.params || {}));
  el.retry.hidden = !(notice && notice.retry);
}
