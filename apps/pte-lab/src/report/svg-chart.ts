import type { ChartSpec } from '../scenarios/scenario.js';
import { withMicroseconds } from './units.js';

/** Colours for series, in order (readable on white, distinct in greyscale too). */
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#7f7f7f'];

const W = 640;
const H = 320;
const LEFT = 72;
const RIGHT = 16;
const TOP = 32;
const BOTTOM = 64;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A short number for axis ticks and tooltips: 3 significant digits, k/M/G suffixes. */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a === 0) return '0';
  if (a >= 1000) return String(Math.round(v));
  return `${+v.toPrecision(3)}`;
}

/** The x categories of a chart: every point label, in first-seen order across the series. */
function categories(spec: ChartSpec): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const s of spec.series) for (const [x] of s.points) if (!seen.has(x)) (seen.add(x), out.push(x));
  return out;
}

/** Linear or log scale from the data range to pixels. */
function yScale(spec: ChartSpec): { y: (v: number) => number; ticks: number[] } {
  const values = spec.series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  const plotH = H - TOP - BOTTOM;
  if (spec.logY === true) {
    const pos = values.filter((v) => v > 0);
    const lo = Math.floor(Math.log10(pos.length > 0 ? Math.min(...pos) : 1));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(pos.length > 0 ? Math.max(...pos) : 10)));
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    return { y: (v) => TOP + plotH - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * plotH, ticks };
  }
  const max = values.length > 0 ? Math.max(0, ...values) : 1;
  const min = values.length > 0 ? Math.min(0, ...values) : 0;
  const span = max - min || 1;
  const step = niceStep(span / 5);
  const top = Math.ceil(max / step) * step;
  const bottom = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let t = bottom; t <= top + step / 2; t += step) ticks.push(+t.toPrecision(12));
  return { y: (v) => TOP + plotH - ((v - bottom) / (top - bottom || 1)) * plotH, ticks };
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/**
 * Render a chart as a self-contained SVG string (no script needed to draw it): grouped bars or
 * lines over categorical x, a y axis with ticks, a legend, and a <title> tooltip on every mark.
 * Every mark carries class "mark" so a test can count what was drawn.
 */
export function renderChart(spec: ChartSpec): string {
  const xs = categories(spec);
  const { y, ticks } = yScale(spec);
  const plotW = W - LEFT - RIGHT;
  const band = plotW / Math.max(1, xs.length);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}">`,
  );
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" class="chart-title">${escapeXml(spec.title)}</text>`);
  const base = y(spec.logY === true ? ticks[0]! : 0);
  for (const t of ticks) {
    const ty = y(t).toFixed(1);
    parts.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${ty}" y2="${ty}" class="grid"/>`);
    parts.push(
      `<text x="${LEFT - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle" class="tick">${shortNumber(t)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${TOP + (H - TOP - BOTTOM) / 2}" transform="rotate(-90 14 ${TOP + (H - TOP - BOTTOM) / 2})" text-anchor="middle" class="axis-label">${escapeXml(withMicroseconds(spec.yLabel))}</text>`,
  );
  xs.forEach((x, i) => {
    parts.push(
      `<text x="${(LEFT + band * (i + 0.5)).toFixed(1)}" y="${H - BOTTOM + 16}" text-anchor="middle" class="tick">${escapeXml(x)}</text>`,
    );
  });
  parts.push(
    `<text x="${LEFT + plotW / 2}" y="${H - BOTTOM + 34}" text-anchor="middle" class="axis-label">${escapeXml(spec.xLabel)}</text>`,
  );
  const n = spec.series.length;
  spec.series.forEach((s, si) => {
    const colour = PALETTE[si % PALETTE.length]!;
    if (spec.kind === 'bar') {
      const bw = (band * 0.8) / Math.max(1, n);
      for (const [x, v] of s.points) {
        const i = xs.indexOf(x);
        const bx = LEFT + band * i + band * 0.1 + bw * si;
        const top = Math.min(y(v), base);
        const h = Math.max(Math.abs(base - y(v)), 0.5);
        parts.push(
          `<rect class="mark" x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}"><title>${escapeXml(`${s.name}, ${x}: ${shortNumber(v)}`)}</title></rect>`,
        );
      }
    } else {
      const pts = s.points.map(([x, v]) => [LEFT + band * (xs.indexOf(x) + 0.5), y(v), x, v] as const);
      if (pts.length > 1)
        parts.push(
          `<polyline class="line" fill="none" stroke="${colour}" stroke-width="2" points="${pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ')}"/>`,
        );
      for (const [px, py, x, v] of pts) {
        parts.push(
          `<circle class="mark" cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${colour}"><title>${escapeXml(`${s.name}, ${x}: ${shortNumber(v)}`)}</title></circle>`,
        );
      }
    }
  });
  // Legend along the bottom.
  let lx = LEFT;
  spec.series.forEach((s, si) => {
    const colour = PALETTE[si % PALETTE.length]!;
    parts.push(
      `<rect x="${lx}" y="${H - 16}" width="10" height="10" fill="${colour}"/><text x="${lx + 14}" y="${H - 7}" class="legend">${escapeXml(s.name)}</text>`,
    );
    lx += 24 + 7 * s.name.length;
  });
  parts.push('</svg>');
  return parts.join('');
}
