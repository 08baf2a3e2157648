/**
 * How busy the machine is around a section of the benchmark. A saturated machine squeezes every
 * ratio toward 1 (the load generator and the server both wait for a core), so a section run while
 * the load average exceeded the core count proves nothing: its goals say `void: machine busy`.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** The load average over the last 1, 5 and 15 minutes. */
export interface LoadAverage {
  '1m': number;
  '5m': number;
  '15m': number;
}

/** The load average at one moment, and the cores it is judged against. */
export interface LoadReading {
  cores: number;
  load: LoadAverage;
}

/** What a section records: the machine before and after it, and the bench's own part. */
export interface SectionLoad {
  cores: number;
  before: LoadAverage;
  after: LoadAverage;
  /** Cores the bench's own processes kept busy during the section, on average (Linux only). */
  bench_cores?: number;
  /**
   * The 1-minute load exceeded the core count before or after, or a target was starved of CPU
   * (`starved` says which): nothing measured counts.
   */
  busy: boolean;
  /** A loaded target that got far less than a core, which the load average did not show. */
  starved?: string;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

export function readLoad(): LoadReading {
  const [one, five, fifteen] = loadavg().map(round2) as [number, number, number];
  return { cores: cpus().length, load: { '1m': one, '5m': five, '15m': fifteen } };
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux that matters). */
const TICKS = 100;

/** CPU seconds used by a process from /proc: its own, plus its reaped children's when `self`. */
function procCpuSeconds(pid: number | 'self', withReaped: boolean): number | undefined {
  try {
    // The command name may hold spaces: the fields start after its closing parenthesis.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
    return (utime! + stime! + (withReaped ? cutime! + cstime! : 0)) / TICKS;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of the bench: this process, its children still running, and those it reaped.
 * Undefined where /proc is missing.
 */
export function benchCpuSeconds(children: Iterable<number>): number | undefined {
  const self = procCpuSeconds('self', true);
  if (self === undefined) return undefined;
  let total = self;
  for (const pid of children) total += procCpuSeconds(pid, false) ?? 0;
  return total;
}

/** Runs a section between two readings of the machine's load. */
export async function withLoadReadings(
  run: () => Promise<void> | void,
  children: () => Iterable<number>,
): Promise<SectionLoad> {
  const before = readLoad();
  const cpuBefore = benchCpuSeconds(children());
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = benchCpuSeconds(children());
  const after = readLoad();
  const benchCores =
    cpuBefore === undefined || cpuAfter === undefined
      ? undefined
      : round2((cpuAfter - cpuBefore) / seconds);
  return {
    cores: before.cores,
    before: before.load,
    after: after.load,
    ...(benchCores === undefined ? {} : { bench_cores: benchCores }),
    busy: Math.max(before.load['1m'], after.load['1m']) > before.cores,
  };
}
