// The speakers' list as one page sees it: the welcome's `parts.floor`, then the `floor.*` events.
//
// `floor.list` carries the whole public view after every change, so the board simply takes it;
// `floor.ended` and `floor.expired` only say what happened (for words on the pages). The board
// never touches the DOM; pages read it and draw. It also keeps an estimate of the server's clock,
// so a countdown from `speaker.ends` (server epoch seconds) is right on a device whose clock is off.

import { formatClock, t } from './i18n.js';
import { groupName } from './qa.js';

const REQUESTER_ROLES = new Set(['participant', 'speaker']);
const CHAIR_ROLES = new Set(['moderator', 'operator']);

/** Whether a role may ask for the floor. */
export const requests = (role) => REQUESTER_ROLES.has(role);
/** Whether a role runs the speakers' list. */
export const chairs = (role) => CHAIR_ROLES.has(role);

/**
 * The server's clock as seen from here: every live event carries the store's time (`ts`, ms); the
 * largest `ts - now` seen is the best lower bound of the offset (network delay only makes it
 * smaller). Events replayed after a reconnect are old and never raise it.
 */
export class ServerClock {
  constructor(now = () => Date.now()) {
    this.now = now;
    this.offset = null;
  }

  observe(ts) {
    if (typeof ts !== 'number' || !Number.isFinite(ts)) return;
    const sample = ts - this.now();
    if (this.offset === null || sample > this.offset) this.offset = sample;
  }

  /** The server's time in epoch seconds. */
  seconds() {
    return (this.now() + (this.offset || 0)) / 1000;
  }
}

export class FloorBoard {
  constructor(clock = new ServerClock()) {
    this.clock = clock;
    this.clear();
  }

  clear() {
    this.enabled = false; // the session has a speakers' list and the welcome carried it
    this.open = true;
    this.queue = [];
    this.speaker = null;
    this.expired = false;
    this.mine = null; // this person's entry id, queued or speaking
    this.you = null;
    this.settings = { speaking_seconds: 180, remote_speakers: true };
    this.lastEnded = null; // {entry, reason} of the last turn that ended
  }

  /** Starts over from a welcome message (first join, or after a resync). */
  reset(welcome) {
    this.clear();
    this.you = welcome.you || null;
    const floor = (welcome.session && welcome.session.floor) || {};
    this.settings = {
      speaking_seconds: Number(floor.speaking_seconds) || 180,
      remote_speakers: floor.remote_speakers !== false,
    };
    const part = (welcome.parts && welcome.parts.floor) || null;
    if (!part || floor.enabled === false) return;
    this.enabled = true;
    this.take(part);
    this.mine = typeof part.mine === 'string' ? part.mine : null;
  }

  /** Takes a public view of the list (a `floor.list` event's data, or the snapshot part). */
  take(view) {
    this.open = view.open !== false;
    this.queue = Array.isArray(view.queue) ? view.queue.filter(isEntry) : [];
    this.speaker = isEntry(view.speaker) ? view.speaker : null;
    this.expired = Boolean(view.expired) && this.speaker !== null;
    if (this.mine && !this.holds(this.mine)) this.mine = null;
  }

  /** Applies one event; returns whether it concerned the speakers' list. */
  apply(event) {
    if (!event.name || !event.name.startsWith('floor.')) return false;
    this.clock.observe(event.ts);
    const data = event.data || {};
    switch (event.name) {
      case 'floor.list':
        this.take(data);
        return true;
      case 'floor.ended':
        this.lastEnded = { entry: data.entry, reason: data.reason };
        if (this.speaker && this.speaker.entry === data.entry) {
          this.speaker = null;
          this.expired = false;
        }
        if (this.mine === data.entry) this.mine = null;
        return true;
      case 'floor.expired':
        if (this.speaker && this.speaker.entry === data.entry) this.expired = true;
        return true;
      default:
        return true;
    }
  }

  /** Whether the list holds an entry (queued or speaking). */
  holds(entry) {
    return (this.speaker && this.speaker.entry === entry) || this.queue.some((e) => e.entry === entry);
  }

  /** This person's place in the queue (0-based), or -1. */
  place() {
    return this.mine ? this.queue.findIndex((e) => e.entry === this.mine) : -1;
  }

  /** Whether this person has the floor. */
  speaking() {
    return Boolean(this.mine && this.speaker && this.speaker.entry === this.mine);
  }

  /** Seconds of the current turn left (negative once over), or null without a speaker. */
  remaining() {
    if (!this.speaker || typeof this.speaker.ends !== 'number') return null;
    return this.speaker.ends - this.clock.seconds();
  }
}

function isEntry(value) {
  return Boolean(value) && typeof value === 'object' && typeof value.entry === 'string';
}

/** "Civil society · remote" for an entry: its group and, for a remote speaker, where they are. */
export function entryDetails(entry) {
  const parts = [];
  const group = groupName(entry.group);
  if (group) parts.push(group);
  if (entry.mode === 'remote') parts.push(t('floor.remote'));
  return parts.join(' · ');
}

/** The words and state of a countdown: {text, over}. */
export function countdownText(seconds) {
  if (seconds === null) return { text: '', over: false };
  const over = seconds <= 0;
  return { text: over ? formatClock(0) : formatClock(seconds), over };
}

/**
 * Calls `tick()` every quarter second while `running()` says a countdown is shown, and stops by
 * itself otherwise (call `wake()` after every change that may start one).
 */
export class Ticker {
  constructor(tick, running) {
    this.tick = tick;
    this.running = running;
    this.timer = null;
  }

  wake() {
    if (this.timer !== null || !this.running()) return;
    this.timer = setInterval(() => {
      if (!this.running()) {
        clearInterval(this.timer);
        this.timer = null;
        return;
      }
      this.tick();
    }, 250);
  }
}
