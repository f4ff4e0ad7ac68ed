// The production desk: answers the floor holder's WebRTC offer and shows their video full-bleed with
// their name and stakeholder group, for the room's screens and the livestream (captured by OBS or
// vMix as a browser source).
//
// The link is /s/<session>/desk#code=<join code> (a token with the role `production`).
// `?clean=1` (or `#clean`) is the clean mode: only the video and the name strap on black, no
// controls and no cursor; `?strap=0` leaves out the name strap too (the mixer adds its own).
// In operator mode (not clean) the desk can also publish the floor feed: this computer's camera and
// microphone sent with WHIP to the session's floor channel, for the livestream.

import { setAttr, setText } from './dom.js';
import { renderNotice, renderStatus, renderTitle } from './page-head.js';
import { FloorBoard } from './floor-board.js';
import { SpeakerBlock } from './floor-view.js';
import { initLanguage, onLanguageChange, t } from './i18n.js';
import { sessionIdFromPath, takeCode, tokenStore } from './join.js';
import { groupName } from './qa.js';
import { RoleLink } from './role-link.js';
import { DeskReceiver } from './rtc.js';
import { StreamPublisher } from './stream.js';

const $ = (id) => document.getElementById(id);
const el = {
  title: $('session-title'),
  connection: $('connection-status'),
  media: $('media-status'),
  notice: $('notice'),
  noticeText: $('notice-text'),
  retry: $('notice-retry'),
  sound: $('sound'),
  restart: $('restart'),
  hangup: $('hangup'),
  feed: $('feed'),
  feedStatus: $('feed-status'),
  video: $('desk-video'),
  strap: $('desk-strap'),
  name: $('desk-name'),
  group: $('desk-group'),
  idle: $('desk-idle'),
  language: $('language'),
};

/** The page's options from the query (?clean=1, ?strap=0) and the fragment (#clean). */
function deskOptions(loc = window.location) {
  const query = new URLSearchParams(loc.search);
  const fragment = new URLSearchParams(loc.hash.slice(1));
  const yes = (v) => v !== null && v !== '0' && v !== 'false';
  return {
    clean: yes(query.get('clean')) || yes(fragment.get('clean')),
    strap: query.get('strap') !== '0',
  };
}

const options = deskOptions();
const view = {
  sessionId: sessionIdFromPath(),
  session: null,
  status: 'idle',
  notice: null,
  sound: true, // the speaker is heard unless the browser blocks autoplay with sound
};
const desk = new DeskReceiver();
const floor = new FloorBoard();
const speaker = new SpeakerBlock($('floor-now'), floor);
const tokens = tokenStore(`podium.token.${view.sessionId}.desk`);
// The floor feed: operator mode only (a clean browser source never publishes).
const feed = options.clean ? null : new StreamPublisher({ video: true });

// ---- rendering ----------------------------------------------------------------------------------

/** What the desk's video is doing, as an i18n key and its parameters. */
function mediaState(current) {
  if (!current) {
    if (desk.refusedName) return ['desk.taken', { name: desk.refusedName }];
    if (desk.lastEnded) return ['desk.ended', { name: desk.lastEnded.name }];
    return ['desk.waiting', {}];
  }
  const state = current.state === 'new' ? 'connecting' : current.state;
  const known = ['connecting', 'connected', 'disconnected', 'failed'].includes(state);
  return [`desk.state.${known ? state : 'connecting'}`, { name: current.name }];
}

function render() {
  renderTitle(el, view.session, 'desk.heading');
  renderStatus(el, view.status);
  renderNotice(el, view.notice);

  const current = desk.current();
  const [key, params] = mediaState(current);
  setText(el.media, t(key, params));
  el.media.dataset.state = current ? current.state : 'idle';

  const stream = current ? current.stream : null;
  if (el.video.srcObject !== stream) {
    el.video.srcObject = stream;
    if (stream) play();
  }
  el.video.hidden = !stream;
  el.idle.hidden = Boolean(stream) || options.clean;
  el.strap.hidden = !(stream && options.strap);
  if (current) {
    setText(el.name, current.name);
    setText(el.group, groupName(current.group));
    el.group.hidden = !current.group;
  }
  el.restart.disabled = !(current && current.claimed);
  el.hangup.disabled = !(current && current.claimed);
  setAttr(el.sound, 'aria-pressed', String(view.sound && !el.video.muted));
  speaker.render();
  renderFeed();
}

/** The floor feed's button and state. */
function renderFeed() {
  if (!feed) return;
  setText(el.feed, t(feed.wanted ? 'desk.unpublish' : 'desk.publish'));
  el.feed.disabled = !link.connection;
  const error = feed.error && feed.state !== 'waiting' ? feed.error : null;
  let key = `desk.feed.${feed.state}`;
  if (error) {
    const known = ['camera_denied', 'no_camera', 'insecure'];
    if (error.code === 'channel_busy') key = 'desk.feed.busy';
    else key = known.includes(error.code) ? `desk.feed.${error.code}` : 'desk.feed.error';
  }
  setText(el.feedStatus, t(key, { code: error ? error.code : '' }));
  el.feedStatus.dataset.state = feed.state === 'live' ? 'connected' : error ? 'failed' : 'idle';
}

/** Plays the video with sound, or muted where the browser blocks sound until a click. */
function play() {
  el.video.muted = !view.sound;
  el.video.play().catch(() => {
    el.video.muted = true;
    el.video.play().catch(() => {});
    render();
  });
}

function notify(key, extra = {}) {
  view.notice = { key, ...extra };
  render();
}

// ---- the join flow ------------------------------------------------------------------------------

const link = new RoleLink({
  sessionId: view.sessionId,
  tokens,
  accept: (role) => role === 'production',
  needLink: 'desk.need_link',
  wrongRole: 'desk.not_production',
  notify,
  onSession(session) {
    view.session = session;
  },
  wire(conn) {
    desk.attach(conn);
    if (feed) feed.target(`/whip/${encodeURIComponent(view.sessionId)}/floor`, conn.token);
    conn.addEventListener('status', (e) => {
      view.status = e.detail.status;
      render();
    });
    conn.addEventListener('welcome', (e) => {
      const m = e.detail.message;
      view.session = { ...view.session, ...m.session };
      view.notice = null;
      floor.reset(m);
      desk.rejoined();
      render();
    });
    // After a drop, podium ended the calls with this desk; the speaker's page offers again.
    conn.addEventListener('resumed', () => desk.rejoined());
    conn.addEventListener('event', (e) => {
      if (floor.apply(e.detail.event)) render();
    });
  },
});

// ---- start --------------------------------------------------------------------------------------

document.body.classList.toggle('clean', options.clean);
$('desk-bar').hidden = options.clean;
initLanguage(el.language);
onLanguageChange(render);
desk.addEventListener('change', render);
el.retry.addEventListener('click', () => {
  const retry = view.notice && view.notice.retry;
  view.notice = null;
  render();
  if (retry) retry();
});
el.sound.addEventListener('click', () => {
  view.sound = !(view.sound && !el.video.muted);
  el.video.muted = !view.sound;
  render();
});
// Browsers allow sound after an interaction: a click anywhere turns it on (the clean page has no
// button).
document.addEventListener('pointerdown', (e) => {
  if (e.target === el.sound) return;
  if (view.sound && el.video.muted && el.video.srcObject) {
    el.video.muted = false;
    render();
  }
});
el.restart.addEventListener('click', () => {
  const current = desk.current();
  if (current) desk.restart(current.media);
});
if (feed) {
  feed.addEventListener('change', render);
  el.feed.addEventListener('click', () => {
    if (feed.wanted) feed.release();
    else feed.start();
  });
} else {
  el.feed.hidden = true;
  el.feedStatus.parentElement.hidden = true;
}
el.hangup.addEventListener('click', () => {
  const current = desk.current();
  if (current) desk.hangup(current.media);
});
render();
link.start(takeCode());
