/**
 * Summarises a V8 CPU profile (`node --cpu-prof`) as the shares of self time: the top functions,
 * and the time by where the code lives. Shares, not seconds: on a shared machine the absolute
 * times stretch with the load, the shares much less.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Share {
  what: string;
  percent: number;
}

export interface ProfileSummary {
  seconds: number;
  top: Share[];
  byArea: Share[];
  byLayer: Share[];
}

/** Coarse layers of the request path, first match wins; anything else is `other`. */
const LAYERS: [string, RegExp][] = [
  ['socket writes (writev syscall)', /^(writev|writeBuffer|writeUtf8String|writevGeneric)$/],
  ['garbage collector', /^\(garbage collector\)$/],
  ['idle (waiting for requests)', /^\(idle\)$/],
  ['our code (src/)', /^src\//],
  [
    'logging (winston)',
    /^(winston|winston-transport|logform|safe-stable-stringify|readable-stream|@colors\/colors)$/,
  ],
  ['metrics (prom-client)', /^prom-client$/],
  ['schema (ajv)', /^(ajv|ajv-formats|fast-uri|validate\d+)$/],
  ['crypto (token hash)', /^node:internal\/crypto/],
  ['async context (AsyncLocalStorage)', /^node:(internal\/)?async_hooks$/],
  [
    'express, router, body parsing',
    /^(express|router|body-parser|raw-body|type-is|parseurl|content-type|mime-types|mime-db|media-typer|on-finished|iconv-lite|finalhandler|send|qs|path-to-regexp|encodeurl|depd|statuses|http-errors|bytes|unpipe|content-disposition|vary|fresh|etag|cookie|cookie-signature|merge-descriptors|serve-static|range-parser|accepts|negotiator|proxy-addr|forwarded|ipaddr.js|escape-html)$/,
  ],
  ['Node.js http, net, streams, events, timers', /^node:/],
];

function layerOf(area: string): string {
  return LAYERS.find(([, pattern]) => pattern.test(area))?.[0] ?? 'other';
}

/** Where a frame's code lives: our source file, a package, a Node.js module, or V8 itself. */
function areaOf(url: string, functionName: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  const ours = /dist\/bench\/((?:src|bench)\/.*)$/.exec(url)?.[1];
  if (ours) return ours.replace(/\.js$/, '.ts');
  if (url.startsWith('node:')) return url;
  // Syscalls and V8's own entries: (garbage collector), (idle), writev...
  return functionName || '(native)';
}

function place(frame: ProfileNode['callFrame']): string {
  const where = areaOf(frame.url, frame.functionName);
  const name = frame.functionName || '(anonymous)';
  return frame.url ? `${name} ${where}:${frame.lineNumber + 1}` : name;
}

function shares(times: Map<string, number>, total: number, count: number): Share[] {
  return [...times]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([what, t]) => ({ what, percent: Math.round((1000 * t) / total) / 10 }));
}

/** The `count` largest self-time entries of a profile, by function and by area. */
export function summariseProfile(file: string, count = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  const byLayer = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!.callFrame;
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const fn = place(frame);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
    const area = areaOf(frame.url, frame.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + dt);
    const layer = layerOf(area);
    byLayer.set(layer, (byLayer.get(layer) ?? 0) + dt);
  });
  return {
    seconds: total / 1e6,
    top: shares(byFunction, total, count),
    byArea: shares(byArea, total, count),
    byLayer: shares(byLayer, total, LAYERS.length + 1),
  };
}

/**
 * The summary as Markdown, for bench/RESULTS.md: the layers (with microseconds per request, when
 * the number of requests is given), then the top entries.
 */
export function profileTable(title: string, summary: ProfileSummary, requests?: number): string {
  const micros = (percent: number) =>
    requests ? ` ${Math.round(((percent / 100) * summary.seconds * 1e6) / requests)} µs |` : '';
  const layers = summary.byLayer.map((l) => `| ${l.percent} % |${micros(l.percent)} ${l.what} |`);
  const rows = summary.top.map((s, i) => {
    const area = summary.byArea[i];
    return `| ${s.percent} % | \`${s.what}\` | ${area ? `${area.percent} %` : ''} | ${area ? `\`${area.what}\`` : ''} |`;
  });
  return [
    `${title} (${summary.seconds.toFixed(1)} s of samples)`,
    '',
    requests ? '| self | per request | layer |' : '| self | layer |',
    requests ? '| --- | --- | --- |' : '| --- | --- |',
    ...layers,
    '',
    '| self | function | self | area |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
