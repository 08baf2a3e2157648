#!/usr/bin/env node
import { serve } from './main.js';
import { BACKTEST_USAGE, backtestCommand } from './operator/backtest.js';
import { CHECK_USAGE, checkCommand } from './operator/check.js';
import {
  CLUSTER_FLAGS,
  CLUSTER_FLAGS_USAGE,
  EXIT,
  packageVersion,
  parseFlags,
  rejectPositionals,
  runCommand,
  type ExitCode,
  type OperatorIo,
} from './operator/command.js';
import { REPLAY_USAGE, replayCommand } from './operator/replay.js';
import { RESUME_USAGE, resumeCommand, STATUS_USAGE, statusCommand } from './operator/status.js';
import { RULES_USAGE, rulesCommand } from './operator/rules-test.js';

const SERVE_USAGE = `usage: pod-rebalancer serve [flags]

Runs the webhook service. Its configuration is the environment (docs/configuration.md).

${CLUSTER_FLAGS_USAGE}`;

/** `pod-rebalancer serve`: flags first, so that a stray word never starts a live service. */
async function serveCommand(argv: string[]): Promise<ExitCode> {
  const { values, positionals } = parseFlags(argv, CLUSTER_FLAGS);
  rejectPositionals(positionals, 'serve');
  await serve(process.env, { file: values.kubeconfig, context: values.context });
  return EXIT.done;
}

const USAGE = `usage: pod-rebalancer <command> [flags]

commands:
  serve      run the webhook service
  replay     run a saved alert (webhook payload or \`amtool alert query -o json\`) through the
             service's pipeline; observe only (writes nothing) unless --execute
  backtest   replay the rule and the service over past CPU history from Prometheus, for several
             thresholds side by side; --report FILE.html draws it
  check      validate the configuration, reach Prometheus and the Kubernetes API, verify every
             permission the service needs
  status     every Deployment with state (cooldown, ineffective actions, stop mark, last
             action) and the action budget left
  resume     NAMESPACE/DEPLOYMENT: clear the stop mark after ineffective actions
  rules      test FILE...: promtool unit tests of your own rules (PrometheusRule manifests
             too), next to the shipped default rule

Every command reads the service's configuration from the environment (docs/configuration.md).
\`pod-rebalancer <command> --help\` shows the command's flags; --version prints the version.

exit codes:
  0  done (check: every check passed)
  1  a failure (Prometheus or the Kubernetes API failed, an alert's handling failed, a check failed)
  2  bad input (unknown flag, unreadable or invalid file or payload, invalid configuration)
`;

const COMMANDS: Record<
  string,
  { usage: string; run: (argv: string[], io: OperatorIo) => Promise<ExitCode> }
> = {
  serve: { usage: SERVE_USAGE, run: (argv) => serveCommand(argv) },
  replay: { usage: REPLAY_USAGE, run: replayCommand },
  backtest: { usage: BACKTEST_USAGE, run: backtestCommand },
  check: { usage: CHECK_USAGE, run: checkCommand },
  status: { usage: STATUS_USAGE, run: statusCommand },
  resume: { usage: RESUME_USAGE, run: resumeCommand },
  rules: { usage: RULES_USAGE, run: rulesCommand },
};

// Before `--`, which ends the flags; a file named --help after it is a file.
const flagsOf = (argv: string[]) =>
  argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
const wantsHelp = (argv: string[]) => flagsOf(argv).some((a) => a === '-h' || a === '--help');
const wantsVersion = (argv: string[]) => flagsOf(argv).includes('--version');

/** Entry point of the `pod-rebalancer` bin. Exit codes: 0 done, 1 a failure, 2 bad input. */
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command === '--version' || (Object.hasOwn(COMMANDS, command) && wantsVersion(rest))) {
    process.stdout.write(`pod-rebalancer ${packageVersion()}\n`);
    return;
  }
  const subcommand = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!subcommand) {
    process.stderr.write(`pod-rebalancer: unknown command "${command}"\n${USAGE}`);
    process.exitCode = EXIT.badInput;
    return;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(`${subcommand.usage}\n\n${USAGE.slice(USAGE.indexOf('exit codes:'))}`);
    return;
  }
  const io: OperatorIo = {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
  };
  process.exitCode = await runCommand(io, () => subcommand.run(rest, io));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(
    `pod-rebalancer: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
