/**
 * Certificates generated at test time with the openssl command: a test CA, a broker certificate for localhost and
 * 127.0.0.1, client certificates (plain, encrypted key, expired), and a second CA nobody trusts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, mosquittoRequired } from './mosquitto.js';

export interface TestCertificates {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** The client key encrypted with `clientKeyPassphrase`. */
  readonly clientKeyEncrypted: string;
  readonly clientKeyPassphrase: string;
  readonly expiredClientCert: string;
  readonly otherCaCert: string;
  /** A client certificate signed by the other CA, which the brokers do not trust. */
  readonly untrustedClientCert: string;
  readonly untrustedClientKey: string;
  /** Paths of the same files, for configurations that point at files. */
  path(name: string): string;
}

export function opensslSkipReason(): string | undefined {
  if (findExecutable('openssl')) return undefined;
  if (mosquittoRequired) throw new Error('openssl is required to generate test certificates but is not installed');
  return 'openssl is not installed: TLS tests skipped';
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function generateCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'certs-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ca = (name: string, cn: string): void =>
    run('req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`);
  const leaf = (name: string, cn: string, signer: string, days: string, ext: string): void => {
    run('req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    execFileSync('sh', ['-c', `printf '%s\\n' "${ext}" > ${name}.ext`], { cwd: dir });
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${signer}.crt`,
      '-CAkey',
      `${signer}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      days,
      '-extfile',
      `${name}.ext`,
    );
  };
  ca('ca', 'destination-mqtt Test CA');
  ca('other-ca', 'Untrusted Test CA');
  leaf('server', 'localhost', 'ca', '2', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  leaf('client', 'airbyte-client', 'ca', '2', 'extendedKeyUsage=clientAuth');
  leaf('expired', 'expired-client', 'ca', '-1', 'extendedKeyUsage=clientAuth');
  leaf('untrusted', 'untrusted-client', 'other-ca', '2', 'extendedKeyUsage=clientAuth');
  const passphrase = 'open sesame';
  run('pkey', '-in', 'client.key', '-aes256', '-passout', `pass:${passphrase}`, '-out', 'client-encrypted.key');
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
  return {
    dir,
    caCert: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    clientKeyEncrypted: read('client-encrypted.key'),
    clientKeyPassphrase: passphrase,
    expiredClientCert: read('expired.crt'),
    otherCaCert: read('other-ca.crt'),
    untrustedClientCert: read('untrusted.crt'),
    untrustedClientKey: read('untrusted.key'),
    path: (name) => join(dir, name),
  };
}
