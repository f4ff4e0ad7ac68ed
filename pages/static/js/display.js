// The room display: a read-only screen for the room, in large type. It shows the session, its
// state, the question the moderators put on screen (in its own script and direction) with its
// votes, and where to join. It never sends anything but its join.
//
// The link is /s/<session>/display#code=<join code> (a token with the role `display`).

import { FloorBoard } from './floor-board.js';
import { SpeakerBlock } from './floor-view.js';
import { initLanguage, onLanguageChange, t } from './i18n.js';
import { setText } from './dom.js';
import { renderNotice, renderStatus, renderTitle } from './page-head.js';
import { sessionIdFromPath, takeCode, tokenStore } from './join.js';
import { QnaBoard, fillQuestionText, votesText } from './qa-board.js';
import { fillByline } from './qa.js';
import { RoleLink } from './role-link.js';

const $ = (id) => document.getElementById(id);
const el = {
  title: $('session-title'),
  state: $('session-state'),
  connection: $('connection-status'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  retry: $('notice-retry'),
  pinned: $('pinned'),
  pinnedText: $('pinned-text'),
  pinnedAuthor: $('pinned-author'),
  pinnedVotes: $('pinned-votes'),
  pinnedNone: $('pinned-none'),
  joinUrl: $('join-url'),
  language: $('language'),
};

const view = {
  sessionId: sessionIdFromPath(),
  session: null,
  state: null,
  status: 'idle',
  notice: null,
};
const board = new QnaBoard();
const floor = new FloorBoard();
const speaker = new SpeakerBlock($('floor-now'), floor, { heading: 'h2' });
const tokens = tokenStore(`podium.token.${view.sessionId}.display`);

function render() {
  renderTitle(el, view.session);
  el.state.dataset.state = view.state || '';
  setText(el.state, view.state ? t(`state.${view.state}`) : '—');
  renderStatus(el, view.status);
  renderNotice(el, view.notice);
  setText(el.joinUrl, `${window.location.origin}/s/${encodeURIComponent(view.sessionId)}`);
  speaker.render();

  const q = board.pinnedQuestion();
  el.pinned.hidden = !q;
  el.pinnedNone.hidden = Boolean(q);
  if (!q) return;
  fillQuestionText(el.pinnedText, q);
  fillByline(el.pinnedAuthor, q);
  setText(el.pinnedVotes, votesText(q.votes));
}

function notify(key, options = {}) {
  view.notice = { key, ...options };
  render();
}

const link = new RoleLink({
  sessionId: view.sessionId,
  tokens,
  accept: () => true,
  needLink: 'display.need_link',
  wrongRole: 'display.need_link',
  notify,
  onSession(session) {
    view.session = session;
    view.state = session.state;
  },
  wire(conn) {
    conn.addEventListener('status', (e) => {
      view.status = e.detail.status;
      render();
    });
    conn.addEventListener('welcome', (e) => {
      const m = e.detail.message;
      view.session = { ...view.session, ...m.session };
      view.state = m.state;
      view.notice = null;
      board.reset(m);
      floor.reset(m);
      render();
    });
    conn.addEventListener('event', (e) => {
      const event = e.detail.event;
      if (event.name === 'session.state' && event.data && event.data.state) {
        view.state = event.data.state;
        render();
      } else if (floor.apply(event) || board.apply(event)) {
        render();
      }
    });
  },
});

initLanguage(el.language);
onLanguageChange(render);
el.retry.addEventListener('click', () => {
  const retry = view.notice && view.notice.retry;
  view.notice = null;
  render();
  if (retry) retry();
});
render();
link.start(takeCode());
