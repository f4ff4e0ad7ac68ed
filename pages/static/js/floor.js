// The participant's floor panel: ask for the floor and take the request back, follow the speakers'
// list and one's own place in it, and, once the chair gives the floor to a remote speaker, the
// camera and microphone preview, Speak and Stop, and the countdown of the speaking time.
//
// The panel binds to participant.html's #floor section and is driven by the page like the Q&A
// panel: attach(connection) once per connection, welcome(message) on every snapshot, event(event)
// on every event, rejoined() after a reconnect.

import { setText, syncList } from './dom.js';
import { formatNumber, onLanguageChange, t } from './i18n.js';
import { FloorBoard, requests } from './floor-board.js';
import { SpeakerBlock, entryItem, fillEntry } from './floor-view.js';
import { errorText } from './qa-board.js';
import { Publisher } from './rtc.js';

/** What the speaker's camera and call are doing, in words. */
function mediaWords(p) {
  const code = p.error && p.error.code;
  if (code === 'camera_denied' || code === 'no_camera' || code === 'insecure') {
    return t(`floor.media.${code}`);
  }
  if (p.state === 'failed') return errorText(p.error);
  if (p.state === 'preview' && p.ended) {
    return t(p.ended === 'hangup' ? 'floor.media.ended_desk' : 'floor.media.stopped');
  }
  return t(`floor.media.${p.state}`);
}

export class FloorPanel {
  constructor(root) {
    const $ = (id) => root.querySelector(`#${id}`);
    this.root = root;
    this.el = {
      closed: $('floor-closed'),
      status: $('floor-status'),
      request: $('floor-request'),
      withdraw: $('floor-withdraw'),
      error: $('floor-error'),
      media: $('floor-media'),
      preview: $('floor-preview'),
      mediaStatus: $('floor-media-status'),
      camera: $('floor-camera'),
      speak: $('floor-speak'),
      stop: $('floor-stop'),
      empty: $('floor-empty'),
      queue: $('floor-queue'),
    };
    this.board = new FloorBoard();
    this.publisher = new Publisher();
    this.connection = null;
    this.error = null;
    this.busy = false;
    this.notice = null; // i18n key of the last thing that happened to the person's own entry
    this.lastMine = null; // the person's last entry id, kept after it left the list
    this.speaker = new SpeakerBlock($('floor-now'), this.board);
    this.el.request.addEventListener('click', () => this._request());
    this.el.withdraw.addEventListener('click', () => this._withdraw());
    this.el.camera.addEventListener('click', () => this.publisher.preview());
    this.el.speak.addEventListener('click', () => this.publisher.start());
    this.el.stop.addEventListener('click', () => this.publisher.stop());
    this.publisher.addEventListener('change', () => this._renderMedia());
    onLanguageChange(() => this.render());
  }

  attach(connection) {
    this.connection = connection;
    this.publisher.attach(connection);
  }

  welcome(message) {
    this.board.reset(message);
    if (this.board.speaking()) {
      // A fresh snapshot (a reload, a resync) while holding the floor: the call, if any, is gone.
      this.publisher.rejoined();
      this._showCamera();
    } else {
      this.publisher.release();
    }
    this.render();
  }

  /** The connection came back after a drop: podium ended the media session with it. */
  rejoined() {
    if (this.board.speaking()) this.publisher.rejoined();
  }

  event(event) {
    const before = this.board.mine;
    if (before) this.lastMine = before;
    const speakingBefore = this.board.speaking();
    if (!this.board.apply(event)) return;
    const data = event.data || {};
    if (event.name === 'floor.ended' && data.entry === this.lastMine) {
      // Whether the list that dropped the entry came first or not, the reason is what counts.
      this.notice = `floor.ended.${data.reason}`;
    } else if (event.name === 'floor.expired' && this.board.speaking()) {
      this.notice = 'floor.time_up';
    } else if (before && !this.board.mine && !this.notice) {
      this.notice = 'floor.removed';
    }
    if (!speakingBefore && this.board.speaking()) this.notice = null;
    if (speakingBefore && !this.board.speaking()) this.publisher.release();
    this._showCamera();
    this.render();
  }

  /** Given the floor from afar: the camera comes on at once, so the person sees themselves first. */
  _showCamera() {
    const board = this.board;
    const p = this.publisher;
    if (board.speaking() && board.speaker.mode === 'remote' && !p.stream && p.state !== 'failed') {
      p.preview();
    }
  }

  render() {
    const board = this.board;
    this.root.hidden = !board.enabled;
    if (!board.enabled) return;
    const role = board.you ? board.you.role : '';
    const mode = board.you ? board.you.mode : '';
    const remoteRefused = mode === 'remote' && !board.settings.remote_speakers;
    const closedKey = !board.open ? 'floor.closed' : remoteRefused ? 'floor.no_remote' : null;
    this.el.closed.hidden = !closedKey;
    if (closedKey) setText(this.el.closed, t(closedKey));

    this.speaker.render();

    const place = board.place();
    const speaking = board.speaking();
    let status = '';
    if (speaking) {
      status = t(board.speaker.mode === 'remote' ? 'floor.you_speak_remote' : 'floor.you_speak_venue');
    } else if (place >= 0) {
      status = t('floor.your_place', { n: formatNumber(place + 1) });
    } else if (this.notice) {
      status = t(this.notice);
    }
    if (speaking && board.expired) status = `${status} ${t('floor.time_up')}`;
    setText(this.el.status, status);
    this.el.status.hidden = !status;

    const canRequest = requests(role) && board.open && !remoteRefused;
    const hadFocus = document.activeElement;
    this.el.request.hidden = !(canRequest && !board.mine);
    this.el.withdraw.hidden = !board.mine;
    setText(this.el.request, t('floor.request'));
    setText(this.el.withdraw, t(speaking ? 'floor.yield' : 'floor.withdraw'));
    // The button pressed gave way to its opposite: the keyboard goes there.
    if (hadFocus === this.el.request && this.el.request.hidden && !this.el.withdraw.hidden) {
      this.el.withdraw.focus();
    } else if (hadFocus === this.el.withdraw && this.el.withdraw.hidden && !this.el.request.hidden) {
      this.el.request.focus();
    }
    this.el.error.hidden = !this.error;
    if (this.error) setText(this.el.error, errorText(this.error));

    this._renderMedia();

    const mine = board.mine;
    this.el.empty.hidden = board.queue.length > 0;
    syncList(
      this.el.queue,
      board.queue,
      (entry) => entry.entry,
      () => entryItem(),
      (node, entry) => fillEntry(node, entry, entry.entry === mine),
    );
  }

  _renderMedia() {
    const board = this.board;
    const p = this.publisher;
    const shown = board.speaking() && board.speaker.mode === 'remote';
    this.el.media.hidden = !shown;
    if (!shown) {
      if (this.el.preview.srcObject) this.el.preview.srcObject = null;
      return;
    }
    if (this.el.preview.srcObject !== p.stream) this.el.preview.srcObject = p.stream;
    this.el.preview.hidden = !p.stream;
    const sending = p.state === 'connecting' || p.state === 'live';
    this.el.camera.hidden = Boolean(p.stream);
    this.el.speak.hidden = !p.stream || sending;
    this.el.stop.hidden = !sending;
    setText(this.el.camera, t('floor.camera'));
    setText(this.el.speak, t('floor.speak'));
    setText(this.el.stop, t('floor.stop'));
    setText(this.el.mediaStatus, mediaWords(p));
    this.el.mediaStatus.dataset.state = p.state;
  }

  async _request() {
    await this._send('floor.request', (result) => {
      if (typeof result.entry === 'string') this.board.mine = result.entry;
    });
  }

  async _withdraw() {
    const speaking = this.board.speaking();
    await this._send('floor.withdraw', () => {
      this.board.mine = null;
      this.notice = speaking ? 'floor.ended.yielded' : 'floor.withdrawn';
      if (speaking) this.publisher.release();
    });
  }

  async _send(type, apply) {
    if (this.busy) return;
    if (!this.connection) {
      this.error = { code: 'not_connected' };
      this.render();
      return;
    }
    this.busy = true;
    this.error = null;
    this.notice = null;
    try {
      apply(await this.connection.request(type));
    } catch (error) {
      this.error = error;
    } finally {
      this.busy = false;
      this.render();
    }
  }
}
