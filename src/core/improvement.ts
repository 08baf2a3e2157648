/**
 * Whether restarting the two chosen pods can help: a spread that removing two pods cannot fix
 * (two camps of ten pods each, say) would be acted on, judged ineffective, and acted on again.
 * Pure: no I/O.
 */
import { describeMeasure, measureOf, type Measure } from './policy.js';
import { computeStats } from './stats.js';

/** The measure today and the one predicted after the action, in the measure's unit. */
export interface Prediction {
  today: number;
  predicted: number;
  /** The share by which the measure falls: (today - predicted) / today; 0 when today is 0. */
  improvement: number;
}

/**
 * The measure that remains if the chosen pods were replaced by pods at the mean of the others:
 * a replacement joins the group's rebalanced work, so it lands near the others' average. With
 * n pods of which k are chosen, the others keep their spread around their own mean and the k
 * newcomers add none: stddev' = sqrt(others' sum of squares / n), mean' = the others' mean.
 */
export function predictImprovement(
  values: readonly number[],
  chosen: readonly number[],
  measure: Measure,
): Prediction {
  const others = withoutChosen(values, chosen);
  const today = measureOf(measure, computeStats(values));
  const rest = computeStats(others);
  const stddev = others.length > 0 ? rest.stddev * Math.sqrt(others.length / values.length) : 0;
  const predicted = measureOf(measure, { mean: others.length > 0 ? rest.mean : 0, stddev });
  const improvement = today > 0 ? (today - predicted) / today : 0;
  return { today, predicted, improvement };
}

/** `values` without one occurrence of each chosen value. */
function withoutChosen(values: readonly number[], chosen: readonly number[]): number[] {
  const others = [...values];
  for (const value of chosen) {
    const at = others.indexOf(value);
    if (at >= 0) others.splice(at, 1);
  }
  return others;
}

/**
 * Undefined when the prediction promises at least `minImprovement` (a share, 0.1 for 10%);
 * otherwise the skip, its detail giving both figures.
 */
export function gateImprovement(
  prediction: Prediction,
  measure: Measure,
  minImprovement: number,
): { reason: 'no-improvement-expected'; detail: string } | undefined {
  if (prediction.improvement >= minImprovement) return undefined;
  return {
    reason: 'no-improvement-expected',
    detail:
      `replacing the two chosen pods by pods at the mean of the others would take the ` +
      `${describeMeasure(measure, prediction.today)} to ${prediction.predicted.toFixed(3)}, ` +
      `${percent(prediction.improvement)} lower; at least ${percent(minImprovement)} is needed`,
  };
}

/** "5.1%": a share as people read it. */
export function percent(share: number): string {
  return `${(share * 100).toFixed(1).replace(/\.0$/, '')}%`;
}
