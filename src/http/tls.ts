import { readFileSync, statSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import {
  createSecureContext,
  type SecureContextOptions,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import type { Logger } from '../adapters/logger.js';
import { changeMark } from '../adapters/secret-file.js';
import { ConfigError } from '../config.js';

/** Where the webhook's certificate, its key and (optionally) the client CA live. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** When set, a client certificate signed by this CA is required (mutual TLS). */
  clientCaFile?: string;
}

/** How often the files are checked for a change (a Secret volume swaps a symlink). */
export const TLS_RECHECK_MS = 1000;

const VARIABLES: Record<keyof TlsFiles, string> = {
  certFile: 'TLS_CERT_FILE',
  keyFile: 'TLS_KEY_FILE',
  clientCaFile: 'TLS_CLIENT_CA_FILE',
};

function entries(files: TlsFiles): [keyof TlsFiles, string][] {
  return (Object.keys(VARIABLES) as (keyof TlsFiles)[]).flatMap((field) => {
    const path = files[field];
    return path ? [[field, path] as [keyof TlsFiles, string]] : [];
  });
}

/**
 * Reads the files into secure-context options and checks that they make a usable context
 * (certificate and key belong together, PEM parses). Throws a ConfigError naming the variable;
 * never echoes a file's content.
 */
export function readTlsMaterial(files: TlsFiles): SecureContextOptions {
  const material: SecureContextOptions = {};
  const problems: string[] = [];
  for (const [field, path] of entries(files)) {
    try {
      const content = readFileSync(path);
      if (field === 'certFile') material.cert = content;
      else if (field === 'keyFile') material.key = content;
      else material.ca = content;
    } catch (error) {
      problems.push(
        `${VARIABLES[field]}: cannot read the file (${(error as NodeJS.ErrnoException).code})`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  try {
    createSecureContext(material);
  } catch (error) {
    throw new ConfigError([
      `TLS_CERT_FILE: the certificate, its key or the client CA is not usable (${(error as Error).message})`,
    ]);
  }
  return material;
}

/**
 * Options for an HTTPS server. With a client CA, a client must present a certificate signed by
 * it: one without, from another CA, or expired is refused in the TLS handshake, before any
 * HTTP (Alertmanager's `http_config.tls_config`).
 */
export function tlsServerOptions(files: TlsFiles): ServerOptions {
  const mutual = files.clientCaFile !== undefined;
  return {
    ...readTlsMaterial(files),
    minVersion: 'TLSv1.2',
    requestCert: mutual,
    rejectUnauthorized: mutual,
  };
}

/** The change marks of all the files, together: any of them changing is a change. */
function signature(files: TlsFiles): string {
  return entries(files)
    .map(([, path]) => {
      try {
        return changeMark(statSync(path));
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

export interface ReloadOptions {
  logger: Logger;
  intervalMs?: number;
}

/**
 * Follows certificate rotation without a restart: the files are checked every `intervalMs`
 * and, when they changed and make a usable context, new connections get it. A half-written
 * rotation (a new certificate with the old key) is not applied; the previous context stays and
 * the check goes on until the files agree. Returns a function that stops watching.
 */
export function reloadOnChange(server: TlsServer, files: TlsFiles, options: ReloadOptions) {
  let applied = signature(files);
  let reported = '';
  const check = () => {
    const current = signature(files);
    if (current === applied) return;
    try {
      server.setSecureContext(readTlsMaterial(files));
      applied = current;
      options.logger.info('TLS certificate reloaded');
    } catch (error) {
      if (reported === current) return;
      reported = current;
      options.logger.warn('TLS files changed but are not usable yet; keeping the previous ones', {
        problems: error instanceof ConfigError ? error.problems : [String(error)],
      });
    }
  };
  const timer = setInterval(check, options.intervalMs ?? TLS_RECHECK_MS);
  timer.unref();
  const stop = () => clearInterval(timer);
  server.once('close', stop);
  return stop;
}

/**
 * Logs each refused handshake with the verification error (e.g. CERT_HAS_EXPIRED), so that a
 * misconfigured Alertmanager certificate shows up in our logs and not only in its own.
 */
export function logRefusedHandshakes(server: TlsServer, logger: Logger): void {
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    logger.warn('TLS handshake refused', {
      reason: socket.authorizationError ?? error.code ?? error.message,
      remoteAddress: socket.remoteAddress,
    });
  });
}
