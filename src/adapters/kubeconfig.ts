import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config.js';

/** Which kubeconfig and context to use; unset fields fall back to the standard loading order. */
export interface KubeConfigChoice {
  /** `--kubeconfig FILE`: wins over KUBECONFIG. */
  file?: string;
  /** `--context NAME`: wins over the kubeconfig's current-context. */
  context?: string;
}

/**
 * The kubeconfig every command that reaches a cluster uses, in the order kubectl and client-node
 * use: `--kubeconfig`, else KUBECONFIG (a path list, merged), else ~/.kube/config, else the
 * in-cluster service account. Anything unusable is a ConfigError naming the flag or variable,
 * never a raw ENOENT: a missing file, a file that does not parse, an unknown context, no source.
 */
export function loadKubeConfig(
  choice: KubeConfigChoice,
  env: NodeJS.ProcessEnv,
  home: string = homedir(),
): KubeConfig {
  const kubeConfig = new KubeConfig();
  const [source, files] = kubeConfigFiles(choice, env, home);
  if (files.length === 0) {
    if (!env.KUBERNETES_SERVICE_HOST) {
      throw new ConfigError([
        'KUBECONFIG: no kubeconfig found (KUBECONFIG unset, no ~/.kube/config, not in a pod): ' +
          'set KUBECONFIG or pass --kubeconfig',
      ]);
    }
    kubeConfig.loadFromCluster();
  } else {
    loadFiles(kubeConfig, source, files);
  }
  if (choice.context !== undefined) useContext(kubeConfig, choice.context);
  return kubeConfig;
}

function kubeConfigFiles(
  choice: KubeConfigChoice,
  env: NodeJS.ProcessEnv,
  home: string,
): [source: string, files: string[]] {
  if (choice.file !== undefined) return ['--kubeconfig', [choice.file]];
  if (env.KUBECONFIG) {
    return ['KUBECONFIG', env.KUBECONFIG.split(delimiter).filter((file) => file !== '')];
  }
  const own = join(home, '.kube', 'config');
  return ['~/.kube/config', existsSync(own) ? [own] : []];
}

function loadFiles(kubeConfig: KubeConfig, source: string, files: string[]): void {
  // kubectl skips missing entries of a KUBECONFIG list, but not a list where nothing exists.
  const present = files.filter((file) => existsSync(file));
  if (present.length === 0) {
    throw new ConfigError([`${source}: no such file: ${files.join(delimiter)}`]);
  }
  present.forEach((file, index) => {
    const target = index === 0 ? kubeConfig : new KubeConfig();
    try {
      target.loadFromFile(file);
    } catch (error) {
      throw new ConfigError([`${source}: cannot read ${file}: ${firstLine(error)}`]);
    }
    if (target !== kubeConfig) kubeConfig.mergeConfig(target);
  });
  if (!kubeConfig.getCurrentContext() && kubeConfig.getContexts().length === 0) {
    throw new ConfigError([`${source}: ${present.join(delimiter)} defines no context`]);
  }
}

function useContext(kubeConfig: KubeConfig, context: string): void {
  const names = kubeConfig.getContexts().map((c) => c.name);
  if (!names.includes(context)) {
    throw new ConfigError([
      `--context: no context "${context}" in the kubeconfig (it has: ${names.join(', ') || 'none'})`,
    ]);
  }
  kubeConfig.setCurrentContext(context);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/** Where a URL points with any `user:password@` replaced by `***@`. */
function maskedUrl(server: string): string {
  try {
    const url = new URL(server);
    if (url.username || url.password) {
      url.username = '***';
      url.password = '';
    }
    return url.toString().replace(/\/$/, '');
  } catch {
    return server;
  }
}

/**
 * The cluster a kubeconfig points at, in one line an operator can check before anything acts:
 * context, API server URL and user name. No token, key or password is ever part of it.
 */
export function describeCluster(kubeConfig: KubeConfig): string {
  const context = kubeConfig.getCurrentContext() || 'in-cluster';
  const server = kubeConfig.getCurrentCluster()?.server ?? '(no server)';
  const user = kubeConfig.getCurrentUser()?.name;
  return `context ${context}, server ${maskedUrl(server)}${user ? `, user ${user}` : ''}`;
}
