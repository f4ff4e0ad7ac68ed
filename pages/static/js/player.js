// The participant page's livestream panel: pick the floor or an interpretation language, play it
// with WHEP (or open the channel's external URL), and follow the channels' state live (the
// welcome's parts.stream, then stream.channel and stream.listeners events).

import { setAttr, setText } from './dom.js';
import { formatNumber, languageName, t } from './i18n.js';
import { StreamPlayer } from './stream.js';

const CHOICE_KEY = 'podium.stream.channel';

function storedChoice() {
  try {
    return window.localStorage.getItem(CHOICE_KEY);
  } catch (err) {
    return null;
  }
}

function storeChoice(id) {
  try {
    window.localStorage.setItem(CHOICE_KEY, id);
  } catch (err) {
    // without storage the choice lasts as long as the page
  }
}

/** A channel's name in the current language: the floor, or the language it carries. */
export function channelName(channel) {
  return channel.id === 'floor' ? t('stream.floor') : languageName(channel.language || channel.id);
}

export class StreamPanel {
  constructor(root) {
    this.root = root;
    const $ = (id) => root.querySelector(`#${id}`);
    this.el = {
      select: $('stream-channel'),
      play: $('stream-play'),
      badge: $('stream-badge'),
      listeners: $('stream-listeners'),
      video: $('stream-video'),
      audio: $('stream-audio'),
      status: $('stream-status'),
      external: $('stream-external'),
    };
    this.channels = [];
    this.listeners = {};
    this.selected = storedChoice();
    this.connection = null;
    this.player = new StreamPlayer();
    this.player.addEventListener('change', () => this.render());
    this.el.select.addEventListener('change', () => this.choose(this.el.select.value));
    this.el.play.addEventListener('click', () => this.toggle());
    // Leaving the page ends the WHEP session at once rather than when the node notices.
    window.addEventListener('pagehide', () => {
      if (this.player.session) this.player.stop({ keepalive: true });
    });
  }

  /** The connection whose token plays the stream (a new one after every join). */
  attach(connection) {
    this.connection = connection;
    this.player.setToken(connection.token);
  }

  /** A welcome: the channels and listener totals as they are. */
  welcome(message) {
    const stream = (message.parts && message.parts.stream) || {};
    this.channels = Array.isArray(stream.channels) ? stream.channels : [];
    this.listeners = stream.listeners || {};
    if (!this.channels.some((c) => c.id === this.selected)) {
      this.selected = this.channels.length ? this.channels[0].id : null;
    }
    this._fillSelect();
    const current = this.current();
    if (current) this.player.update(current);
    this.render();
  }

  /** A stream.* event; returns whether it was one. */
  event(event) {
    if (event.name === 'stream.channel' && event.data && event.data.channel) {
      const channel = event.data.channel;
      const i = this.channels.findIndex((c) => c.id === channel.id);
      if (i >= 0) this.channels[i] = channel;
      else this.channels.push(channel);
      this.player.update(channel);
      this.render();
      return true;
    }
    if (event.name === 'stream.listeners' && event.data) {
      this.listeners = event.data.listeners || {};
      this.render();
      return true;
    }
    return false;
  }

  /** The person left (their token is spent): stop playing. */
  leave() {
    if (this.player.wanted) this.player.stop();
  }

  current() {
    return this.channels.find((c) => c.id === this.selected) || null;
  }

  /** The listener picked a channel: remembered, and played at once if something is playing. */
  choose(id) {
    if (!this.channels.some((c) => c.id === id)) return;
    this.selected = id;
    storeChoice(id);
    if (this.player.wanted) this.player.play(this.current(), this.connection && this.connection.token);
    this.render();
  }

  toggle() {
    if (this.player.wanted) {
      this.player.stop();
    } else if (this.current() && this.connection) {
      this.player.play(this.current(), this.connection.token);
    }
  }

  _fillSelect() {
    const select = this.el.select;
    const ids = this.channels.map((c) => c.id).join(' ');
    if (select.dataset.ids !== ids) {
      select.replaceChildren(
        ...this.channels.map((c) => {
          const option = document.createElement('option');
          option.value = c.id;
          if (c.language) option.lang = c.language;
          return option;
        }),
      );
      select.dataset.ids = ids;
    }
    for (const option of select.options) {
      const channel = this.channels.find((c) => c.id === option.value);
      if (channel) setText(option, channelName(channel));
    }
    if (this.selected) select.value = this.selected;
  }

  render() {
    this.root.hidden = this.channels.length === 0;
    if (this.channels.length === 0) return;
    this._fillSelect();
    const channel = this.current();
    const player = this.player;
    const live = channel && channel.state === 'live';
    this.el.badge.dataset.state = live ? 'live' : 'offline';
    setText(this.el.badge, t(live ? 'stream.live' : 'stream.offline'));
    const count = (channel && this.listeners[channel.id]) || 0;
    this.el.listeners.hidden = !count;
    setText(this.el.listeners, t('stream.listeners', { n: formatNumber(count) }));
    setText(this.el.play, t(player.wanted ? 'stream.stop' : 'stream.play'));

    const external = channel && channel.external_url;
    this.el.external.hidden = !external;
    setAttr(this.el.external, 'href', external || null);

    const name = channel ? channelName(channel) : '';
    let key = `stream.state.${player.state}`;
    const params = { channel: name };
    if (player.state === 'offline' && external) key = 'stream.state.offline_external';
    if (player.state === 'waiting') {
      if (player.error && player.error.retryAfter) {
        params.n = formatNumber(Math.max(1, Math.ceil((player.retryAt - Date.now()) / 1000)));
      } else {
        key = 'stream.state.retrying';
      }
    }
    if (player.state === 'failed') params.code = (player.error && player.error.code) || '?';
    if (player.state === 'idle' && !live && external) key = 'stream.state.offline_external';
    setText(this.el.status, t(key, params));
    this.el.status.dataset.state = player.state;

    // The floor is video and sound; a language is sound only.
    const stream = player.stream;
    const video = Boolean(stream && channel && channel.video);
    this._attach(this.el.video, video ? stream : null);
    this._attach(this.el.audio, stream && !video ? stream : null);
  }

  _attach(element, stream) {
    element.hidden = !stream;
    if (element.srcObject === stream) return;
    element.srcObject = stream;
    if (stream) element.play().catch(() => {});
  }
}
