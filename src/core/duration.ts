const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// Units in Prometheus's order, each at most once: 1h30m, not 30m1h.
const DURATION = /^(?=\d)(\d+d)?(\d+h)?(\d+m(?!s))?(\d+s)?(\d+ms)?$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/**
 * Parses a Prometheus-style duration ("30s", "15m", "1h30m", "7d") into milliseconds.
 * Returns undefined for anything else, so callers can name the offending input.
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return total;
}

/** Formats milliseconds the way PromQL range selectors accept them ("5m", "90s"). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
