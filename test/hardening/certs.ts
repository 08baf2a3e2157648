import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM files on disk: a certificate and its key. */
export interface CertFiles {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.error) throw new Error(`openssl is not installed: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed certificate authority named `name`, valid for a day. */
export function makeCa(dir: string, name: string): CertFiles {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  openssl(
    [
      'req',
      '-x509',
      '-new',
      ...EC_KEY,
      '-keyout',
      files.key,
      '-out',
      files.cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return files;
}

export interface LeafOptions {
  /** `server` (SAN IP 127.0.0.1, serverAuth) or `client` (clientAuth). */
  usage: 'server' | 'client';
  /** Validity as `openssl ca` dates (YYYYMMDDHHMMSSZ); by default from now, for a day. */
  notBefore?: string;
  notAfter?: string;
}

let serial = 0x1000;

/**
 * A certificate for `name` signed by `ca`. `openssl ca` is used (not `x509 -req`) because only
 * it can set validity dates in the past, which an expired certificate needs.
 */
export function makeLeaf(
  dir: string,
  name: string,
  ca: CertFiles,
  options: LeafOptions,
): CertFiles {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const work = join(dir, `${name}.ca`);
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'index.txt'), '');
  writeFileSync(join(work, 'serial'), (serial++).toString(16).padStart(4, '0'));
  const usage =
    options.usage === 'server'
      ? 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth'
      : 'extendedKeyUsage = clientAuth';
  writeFileSync(
    join(work, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `dir = ${work}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir',
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      'copy_extensions = none',
      'x509_extensions = leaf',
      '[anything]',
      'commonName = supplied',
      '[leaf]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      usage,
    ].join('\n'),
  );
  const csr = join(work, 'request.csr');
  openssl(
    ['req', '-new', ...EC_KEY, '-keyout', files.key, '-out', csr, '-subj', `/CN=${name}`],
    dir,
  );
  const validity = options.notAfter
    ? ['-startdate', options.notBefore ?? '20200101000000Z', '-enddate', options.notAfter]
    : ['-days', '1'];
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-config',
      join(work, 'ca.cnf'),
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-in',
      csr,
      '-out',
      files.cert,
      ...validity,
    ],
    dir,
  );
  return files;
}
