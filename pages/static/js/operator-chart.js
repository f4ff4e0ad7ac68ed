// The per-session chart: people online over time (and those in the room) as an SVG line chart,
// drawn with SVG elements and presentation attributes only (the CSP allows no inline styles).

import { formatNumber, formatTime, t } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 220;
const PAD = { top: 12, right: 12, bottom: 28, left: 44 };

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** The y axis' top: a round number at or above the highest figure. */
export function niceMax(max) {
  if (max <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= max) return m * step;
  return 10 * step;
}

/**
 * Draws `samples` ([{at, online, venue, remote}], oldest first) into `root` (an <svg>); returns
 * whether there was anything to draw. The chart's text alternative names the figures now and at most.
 */
export function drawChart(root, samples) {
  root.replaceChildren();
  if (samples.length === 0) {
    root.removeAttribute('aria-label');
    return false;
  }
  const first = samples[0].at;
  const last = samples[samples.length - 1].at;
  const span = Math.max(1, last - first);
  const highest = Math.max(...samples.map((s) => s.online));
  const top = niceMax(highest);
  const x = (at) => PAD.left + ((at - first) / span) * (W - PAD.left - PAD.right);
  const y = (n) => H - PAD.bottom - (n / top) * (H - PAD.top - PAD.bottom);
  root.setAttribute(
    'aria-label',
    t('op.chart_label', {
      now: formatNumber(samples[samples.length - 1].online),
      max: formatNumber(highest),
    }),
  );
  const axes = svg('g', { class: 'op-axes' });
  for (const n of [0, top / 2, top]) {
    axes.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(n), y2: y(n), class: 'op-grid' }));
    axes.append(
      svg('text', { x: PAD.left - 6, y: y(n) + 4, 'text-anchor': 'end', class: 'op-tick' }, formatNumber(n)),
    );
  }
  axes.append(svg('text', { x: PAD.left, y: H - 8, class: 'op-tick' }, formatTime(first)));
  axes.append(
    svg('text', { x: W - PAD.right, y: H - 8, 'text-anchor': 'end', class: 'op-tick' }, formatTime(last)),
  );
  root.append(axes);
  const points = (field) =>
    samples.length === 1
      ? `${x(first)},${y(samples[0][field])} ${W - PAD.right},${y(samples[0][field])}`
      : samples.map((s) => `${x(s.at).toFixed(1)},${y(s[field]).toFixed(1)}`).join(' ');
  root.append(
    svg('polyline', { points: points('venue'), class: 'op-line op-line-venue', fill: 'none' }),
    svg('polyline', { points: points('online'), class: 'op-line op-line-online', fill: 'none' }),
  );
  const now = samples[samples.length - 1];
  root.append(svg('circle', { cx: x(now.at), cy: y(now.online), r: 4, class: 'op-dot' }));
  return true;
}
