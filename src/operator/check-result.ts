/** One line of `check`: what was checked, whether it holds, and what to do when it does not. */
export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
  fix?: string;
}
