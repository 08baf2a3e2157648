/**
 * The backtest's request and result, shared by the run (backtest.ts), the text and JSON output
 * (backtest-format.ts) and the HTML report (report-html.ts), so that the arrows run one way.
 */
import type { BacktestGuards } from './backtest-guards.js';
import type { RuleParameters } from './rule-file.js';
import type {
  DeploymentHistory,
  RuleModel,
  ServiceModel,
  StepStats,
  ThresholdResult,
} from './simulate.js';

/** Everything a backtest run was asked for, checked. */
export interface BacktestRequest {
  namespace: string | undefined;
  deployment: string | undefined;
  fromMs: number;
  toMs: number;
  stepMs: number;
  /** Thresholds in cores (stddev): --thresholds, else around the default rule's. */
  thresholds: number[];
  /** Relative thresholds (stddev ÷ mean): --relative-thresholds, else around 0.5. */
  relativeThresholds: number[];
  /** Which lists were given as flags (then they apply to every Deployment as they are). */
  given: { thresholds: boolean; relativeThresholds: boolean };
  rule: RuleParameters;
  service: ServiceModel;
  /** GUARD_QUERY and the rules' guards: simulated side by side with the run without them. */
  guards: BacktestGuards;
  report: string | undefined;
  json: boolean;
}

/**
 * The rule that decides for one Deployment (its own, its namespace's or the default), with the
 * annotations of its alert rule when it came from a rule file (its `pod_rebalancer_guard` among them).
 */
export type AppliedRule = RuleModel & { name: string; annotations?: Record<string, string> };

export interface DeploymentResult {
  namespace: string;
  deployment: string;
  history: DeploymentHistory;
  stats: StepStats;
  rule: AppliedRule;
  /** Stddev thresholds first, then relative ones; the rule's own is among them. */
  results: ThresholdResult[];
  /** With guards configured: the same thresholds with the guards applied. */
  guarded?: ThresholdResult[];
}

export interface BacktestResult {
  request: BacktestRequest;
  deployments: DeploymentResult[];
}
