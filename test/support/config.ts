import { loadConfig } from '../../src/config.js';

/** What the message of loadConfig's error says for `env`; fails the test if it accepts `env`. */
export function configErrorOf(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected loadConfig to reject the environment');
}
