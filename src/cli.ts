#!/usr/bin/env node
import { serve } from './main.js';

const USAGE = `usage: pod-rebalancer <command>

commands:
  serve    run the webhook service (configuration from the environment, see README)
`;

/** Entry point of the `pod-rebalancer` bin. Exit codes: 0 done, 1 a failure, 2 bad input. */
async function main(argv: string[]): Promise<void> {
  const [command] = argv;
  switch (command) {
    case 'serve':
      await serve(process.env);
      return;
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`pod-rebalancer: unknown command "${command}"\n${USAGE}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(
    `pod-rebalancer: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
