import { formatDuration } from '../core/duration.js';
import { humanDuration, NOT_COUNTERFACTUAL, READINESS_APPROXIMATION } from './backtest-format.js';
import type { BacktestResult, DeploymentResult } from './backtest.js';

/** The stddev line; thresholds take the palette in order. Tests look for these in the render. */
export const STDDEV_COLOR = '#1f77b4';
export const THRESHOLD_COLORS = ['#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2'];

const WIDTH = 1100;
const HEIGHT = 340;
const MARGIN = { left: 60, right: 20, top: 30, bottom: 40 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function thresholdColor(index: number): string {
  return THRESHOLD_COLORS[index % THRESHOLD_COLORS.length]!;
}

interface Scale {
  x(ms: number): number;
  y(cores: number): number;
  startMs: number;
  endMs: number;
  maxY: number;
}

function scaleOf(d: DeploymentResult, fromMs: number, toMs: number): Scale {
  let maxY = Math.max(...d.results.map((r) => r.threshold));
  for (const v of d.stats.stddev) if (Number.isFinite(v) && v > maxY) maxY = v;
  maxY *= 1.1;
  const span = Math.max(1, toMs - fromMs);
  return {
    x: (ms) => MARGIN.left + ((ms - fromMs) / span) * PLOT_W,
    y: (cores) => MARGIN.top + PLOT_H - (cores / maxY) * PLOT_H,
    startMs: fromMs,
    endMs: toMs,
    maxY,
  };
}

/**
 * The stddev as polyline segments (a gap where it has no value). With more points than pixels,
 * each pixel column keeps its minimum and maximum so that no spike disappears.
 */
function stddevPaths(d: DeploymentResult, scale: Scale): string[] {
  const { startMs, stepMs } = d.history.timeline;
  const perColumn = Math.max(1, Math.floor(d.stats.stddev.length / PLOT_W));
  const segments: string[][] = [];
  let current: string[] | undefined;
  for (let i = 0; i < d.stats.stddev.length; i += perColumn) {
    const t = startMs + i * stepMs;
    const bucket = Array.from(d.stats.stddev.subarray(i, i + perColumn)).filter(Number.isFinite);
    if (t < scale.startMs || bucket.length === 0) {
      current = undefined;
      continue;
    }
    if (!current) segments.push((current = []));
    const x = scale.x(t).toFixed(1);
    for (const v of new Set([Math.min(...bucket), Math.max(...bucket)]))
      current.push(`${x},${scale.y(v).toFixed(1)}`);
  }
  return segments.map(
    (points) =>
      `<polyline class="stddev" fill="none" stroke="${STDDEV_COLOR}" stroke-width="1.5" points="${points.join(' ')}"/>`,
  );
}

function axes(scale: Scale): string[] {
  const parts = [
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${PLOT_W}" height="${PLOT_H}" fill="#fff" stroke="#999"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = (scale.maxY * k) / 4;
    const y = scale.y(v).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${y}" y2="${y}" stroke="#eee"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${v.toFixed(2)}</text>`,
    );
  }
  for (let k = 0; k <= 6; k++) {
    const t = scale.startMs + ((scale.endMs - scale.startMs) * k) / 6;
    const label = new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    const anchor = k === 0 ? 'start' : k === 6 ? 'end' : 'middle';
    parts.push(
      `<text x="${scale.x(t).toFixed(1)}" y="${HEIGHT - 12}" text-anchor="${anchor}">${label}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${MARGIN.top + PLOT_H / 2}" transform="rotate(-90 14 ${MARGIN.top + PLOT_H / 2})" text-anchor="middle">stddev (cores)</text>`,
  );
  return parts;
}

/** Per threshold: its line, its firing episodes as a band, its predicted actions as markers. */
function thresholdLayers(d: DeploymentResult, scale: Scale): string[] {
  return d.results.flatMap((r, index) => {
    const color = thresholdColor(index);
    const y = scale.y(r.threshold).toFixed(1);
    const bandY = MARGIN.top + PLOT_H - 6 * (index + 1);
    const bands = r.episodes.map((e) => {
      const x1 = scale.x(Math.max(e.firingAt, scale.startMs));
      const x2 = scale.x(Math.min(e.resolvedAt ?? scale.endMs, scale.endMs));
      return `<rect class="firing" data-threshold="${r.threshold}" x="${x1.toFixed(1)}" y="${bandY}" width="${Math.max(1, x2 - x1).toFixed(1)}" height="5" fill="${color}" opacity="0.6"/>`;
    });
    const markers = r.actions.map((a) => {
      const x = scale.x(a.at);
      const pods = a.pods.map((p) => `${p.name} (${p.role}, ${p.cpu.toFixed(3)})`).join(', ');
      const tip = `${new Date(a.at).toISOString()} at ${r.threshold} cores: ${pods}`;
      const top = MARGIN.top - 4 - 7 * index;
      return `<path class="action" data-threshold="${r.threshold}" data-at="${new Date(a.at).toISOString()}" d="M${(x - 5).toFixed(1)},${top - 8} L${(x + 5).toFixed(1)},${top - 8} L${x.toFixed(1)},${top} Z" fill="${color}"><title>${escapeHtml(tip)}</title></path>`;
    });
    return [
      `<line class="threshold" data-threshold="${r.threshold}" x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2" stroke-dasharray="6 4"/>`,
      ...bands,
      ...markers,
    ];
  });
}

function chart(d: DeploymentResult, result: BacktestResult): string {
  const scale = scaleOf(d, result.request.fromMs, result.request.toMs);
  const id = `${d.namespace}/${d.deployment}`;
  return [
    `<svg class="chart" data-deployment="${escapeHtml(id)}" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-size="11" font-family="sans-serif">`,
    ...axes(scale),
    ...stddevPaths(d, scale),
    ...thresholdLayers(d, scale),
    `<line class="cursor" x1="0" x2="0" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" stroke="#555" visibility="hidden"/>`,
    '</svg>',
  ].join('\n');
}

function legend(d: DeploymentResult): string {
  const items = [
    `<span><i style="background:${STDDEV_COLOR}"></i>stddev of per-pod CPU</span>`,
    ...d.results.map(
      (r, index) =>
        `<span><i style="background:${thresholdColor(index)}"></i>${r.threshold} cores: threshold (dashed), firing (band), action (&#9660;)</span>`,
    ),
  ];
  return `<p class="legend">${items.join('')}</p>`;
}

function summaryTable(d: DeploymentResult): string {
  const rows = d.results.map(
    (r) =>
      `<tr><td>${r.threshold} cores</td><td>${r.episodes.length}</td><td>${humanDuration(r.aboveMs)}</td><td>${humanDuration(r.firingMs)}</td><td>${r.notifications}</td><td>${r.actions.length}</td><td>${escapeHtml(
        r.actions
          .flatMap((a) => a.pods.map((p) => p.name))
          .filter((name, i, all) => all.indexOf(name) === i)
          .join(', ') || '-',
      )}</td></tr>`,
  );
  return `<table><tr><th>threshold</th><th>fired</th><th>above</th><th>firing</th><th>notified</th><th>actions</th><th>pods</th></tr>${rows.join('')}</table>`;
}

/** With guards: actions without and with them per threshold, and what they held back. */
function guardTable(d: DeploymentResult): string {
  if (!d.guarded) return '';
  const rows = d.guarded.map((g, i) => {
    const held = g.heldBack ?? [];
    const listed = held
      .slice(0, 20)
      .map((h) => `${new Date(h.at).toISOString()} by ${h.detail}`)
      .join('; ');
    return `<tr><td>${g.threshold} cores</td><td>${d.results[i]!.actions.length}</td><td>${g.actions.length}</td><td>${held.length}</td><td>${escapeHtml(listed || '-')}</td></tr>`;
  });
  return `<h3>With the guards</h3><table><tr><th>threshold</th><th>actions without guards</th><th>with guards</th><th>held back</th><th>held back when, by what</th></tr>${rows.join('')}</table>`;
}

/** The data behind the charts, for the hover readout and for anyone who wants the numbers. */
function embeddedData(result: BacktestResult): string {
  const data = result.deployments.map((d) => ({
    deployment: `${d.namespace}/${d.deployment}`,
    startMs: d.history.timeline.startMs,
    stepMs: d.history.timeline.stepMs,
    fromMs: result.request.fromMs,
    toMs: result.request.toMs,
    stddev: Array.from(d.stats.stddev, (v) =>
      Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : null,
    ),
    thresholds: d.results.map((r) => ({
      threshold: r.threshold,
      actions: r.actions.map((a) => ({ at: a.at, pods: a.pods.map((p) => p.name) })),
    })),
  }));
  // Inside <script>, "<" must not open a tag: escape it.
  return JSON.stringify(data).replace(/</g, '\\u003c');
}

const SCRIPT = `
const data = JSON.parse(document.getElementById('backtest-data').textContent);
document.querySelectorAll('svg.chart').forEach((svg, n) => {
  const d = data[n];
  const readout = svg.parentElement.querySelector('.readout');
  const cursor = svg.querySelector('.cursor');
  svg.addEventListener('mousemove', (event) => {
    const box = svg.getBoundingClientRect();
    const x = ((event.clientX - box.left) * ${WIDTH}) / box.width;
    const t = d.fromMs + ((x - ${MARGIN.left}) / ${PLOT_W}) * (d.toMs - d.fromMs);
    const i = Math.round((t - d.startMs) / d.stepMs);
    if (i < 0 || i >= d.stddev.length || t < d.fromMs) return;
    cursor.setAttribute('x1', x); cursor.setAttribute('x2', x);
    cursor.setAttribute('visibility', 'visible');
    const v = d.stddev[i];
    readout.textContent = new Date(d.startMs + i * d.stepMs).toISOString() + '  stddev ' + (v === null ? 'no data' : v.toFixed(3) + ' cores');
  });
});
`;

const STYLE = `
body { font-family: sans-serif; margin: 20px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 24px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td:first-child, th:first-child, td:last-child, th:last-child { text-align: left; }
.legend span { margin-right: 18px; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
.note { background: #fff6d6; padding: 8px; border-left: 4px solid #e0b000; max-width: 1060px; }
.readout { font-family: monospace; min-height: 1.2em; }
`;

/**
 * The backtest as one self-contained HTML page: inline SVG charts (stddev over time, each
 * threshold's line, firing bands and predicted actions), inline CSS and JS, no network.
 */
export function renderReport(result: BacktestResult): string {
  const { request } = result;
  const sections = result.deployments.map(
    (d) =>
      `<section><h2>${escapeHtml(`${d.namespace}/${d.deployment}`)} <small>(${d.history.pods.length} pods seen)</small></h2>
${legend(d)}
${chart(d, result)}
<div class="readout"></div>
${summaryTable(d)}${guardTable(d)}</section>`,
  );
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pod-rebalancer backtest</title><style>${STYLE}</style></head>
<body>
<h1>pod-rebalancer backtest</h1>
<p>${new Date(request.fromMs).toISOString()} .. ${new Date(request.toMs).toISOString()}, step ${formatDuration(request.stepMs)}; rule from ${escapeHtml(request.rule.source)}: for ${formatDuration(request.rule.forMs)}, at least ${request.rule.minPods} pods.</p>
<p class="note">${escapeHtml(NOT_COUNTERFACTUAL)}<br>${escapeHtml(READINESS_APPROXIMATION)}</p>
${sections.join('\n') || '<p>No Deployment found.</p>'}
<script type="application/json" id="backtest-data">${embeddedData(result)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
