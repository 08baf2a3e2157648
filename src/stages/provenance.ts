import type { GateResult } from '../core/decide.js';
import {
  gateProvenance,
  indexAlerts,
  type IndexedAlerts,
  type ProvenanceMode,
} from '../core/provenance.js';
import { targetKey, type TargetAlert } from '../core/targets.js';
import { UpstreamError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { RuleSource } from '../ports.js';

/** The provenance of one payload's alerts, asked of the rule engine at most once. */
export interface PayloadProvenance {
  /**
   * Undefined when the alert may go further, else `unconfirmed-alert`. Throws UpstreamError
   * when the rule engine cannot be asked (503: Alertmanager retries), except when advisory.
   */
  gate(target: TargetAlert): Promise<GateResult>;
  /** When advisory (replay): what the rule engine says of this alert now, for the report. */
  finding(target: TargetAlert): string | undefined;
}

const TRUSTING: PayloadProvenance = {
  gate: async () => undefined,
  finding: () => undefined,
};

/**
 * The provenance check of one payload. Its one rules request is made lazily, when the first
 * target gets past the gates that read only caches: a storm of repeats inside the cooldown asks
 * nothing, and a payload whose every target was skipped early asks nothing. Every target of
 * the payload shares the answer (and its failure). `advisory` (replay, an operator acting with
 * their own credentials) reports whether each alert is confirmed and never requires it.
 */
export function payloadProvenance(
  targets: readonly TargetAlert[],
  settings: { mode: ProvenanceMode; advisory: boolean },
  deps: { rules: RuleSource; telemetry: Metrics },
): PayloadProvenance {
  if (settings.mode === 'off') return TRUSTING;
  let answer: Promise<IndexedAlerts> | undefined;
  const activeAlerts = () =>
    (answer ??= deps.rules
      .activeAlerts([...new Set(targets.map((t) => t.alertname))])
      .then(indexAlerts));
  if (settings.advisory) return advisoryProvenance(activeAlerts);
  return {
    async gate(target) {
      const gate = gateProvenance(target, await activeAlerts());
      if (gate) deps.telemetry.unconfirmedAlerts.inc({ alertname: target.alertname });
      return gate;
    },
    finding: () => undefined,
  };
}

function advisoryProvenance(activeAlerts: () => Promise<IndexedAlerts>): PayloadProvenance {
  const findings = new Map<string, string>();
  return {
    async gate(target) {
      findings.set(targetKey(target), await describe(target, activeAlerts));
      return undefined;
    },
    finding: (target) => findings.get(targetKey(target)),
  };
}

async function describe(
  target: TargetAlert,
  activeAlerts: () => Promise<IndexedAlerts>,
): Promise<string> {
  try {
    const gate = gateProvenance(target, await activeAlerts());
    return gate
      ? `unconfirmed: ${gate.detail}`
      : 'confirmed: the rule engine has this alert active';
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    return `not checked: ${error.message}`;
  }
}
