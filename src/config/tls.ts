/**
 * TLS material: CA and client certificates, the client key and its passphrase, each given as pasted PEM or as a path
 * to a PEM file. Everything is read and checked before connecting, so a wrong file, a key that does not belong to its
 * certificate, a wrong passphrase or an expired certificate is reported as a configuration error that names the
 * field, rather than as an obscure handshake failure.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { field } from './spec.js';

export interface TlsOptions {
  /** Trusted authorities; undefined means Node's default (the system roots). */
  readonly ca: string[] | undefined;
  readonly cert: string | undefined;
  /** The client key, decrypted, so no passphrase needs to travel further. */
  readonly key: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly servername: string | undefined;
  readonly ALPNProtocols: string[] | undefined;
}

export interface TlsConfig {
  readonly caCertificate: string | undefined;
  readonly caOnly: boolean;
  readonly clientCertificate: string | undefined;
  readonly clientKey: string | undefined;
  readonly clientKeyPassphrase: string | undefined;
  readonly insecureSkipVerify: boolean;
  readonly serverName: string | undefined;
  readonly alpnProtocols: readonly string[] | undefined;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The PEM text of a field given either as PEM or as a file path; pasted PEM may have literal "\n" for newlines. */
function pemText(key: string, value: string, problems: string[]): string | undefined {
  if (value.includes('-----BEGIN')) return value.replace(/\\r\\n|\\n/g, '\n');
  const path = resolve(process.cwd(), value);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(
      `${field(key)} is not PEM text, and the file ${path} cannot be read ` +
        `(${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
  if (!text.includes('-----BEGIN')) {
    problems.push(`${field(key)}: the file ${path} holds no PEM data`);
    return undefined;
  }
  return text;
}

function certificates(key: string, pem: string, problems: string[]): X509Certificate[] {
  const blocks = [...pem.matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE').map((m) => m[0]);
  if (blocks.length === 0) {
    problems.push(`${field(key)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return [];
  }
  const parsed: X509Certificate[] = [];
  for (const block of blocks) {
    try {
      parsed.push(new X509Certificate(block));
    } catch {
      problems.push(`${field(key)} holds a certificate that cannot be parsed`);
    }
  }
  return parsed;
}

function privateKey(pem: string, passphrase: string | undefined, problems: string[]): KeyObject | undefined {
  // Both PKCS#8 ("ENCRYPTED PRIVATE KEY") and legacy PEM ("Proc-Type: 4,ENCRYPTED") say so in the text; OpenSSL's
  // own error for a missing passphrase is an unhelpful "interrupted or cancelled".
  const encrypted = /ENCRYPTED/.test(pem);
  if (encrypted && passphrase === undefined) {
    problems.push(`${field('tls_client_key')} is encrypted; set ${field('tls_client_key_passphrase')}`);
    return undefined;
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    if (encrypted) {
      problems.push(`${field('tls_client_key_passphrase')} does not decrypt the client key`);
    } else {
      problems.push(`${field('tls_client_key')} cannot be parsed as a PEM private key`);
    }
    return undefined;
  }
}

function describeValidity(cert: X509Certificate, now: Date): string | undefined {
  if (new Date(cert.validTo) < now) return `expired on ${cert.validTo}`;
  if (new Date(cert.validFrom) > now) return `is not valid before ${cert.validFrom}`;
  return undefined;
}

/** Whether any TLS-only field is set; used to catch TLS material given for a plain connection. */
export function hasTlsMaterial(config: TlsConfig): boolean {
  return Boolean(
    config.caCertificate ||
    config.clientCertificate ||
    config.clientKey ||
    config.serverName ||
    config.alpnProtocols?.length,
  );
}

export function loadTls(config: TlsConfig, problems: string[], now = new Date()): TlsOptions {
  let ca: string[] | undefined;
  if (config.caCertificate) {
    const pem = pemText('tls_ca_certificate', config.caCertificate, problems);
    const authorities =
      pem === undefined ? [] : certificates('tls_ca_certificate', pem, problems).map((c) => c.toString());
    // Node replaces its system roots with `ca`; users expect their CA in addition, unless they ask otherwise.
    ca = config.caOnly ? authorities : [...rootCertificates, ...authorities];
  }

  let cert: string | undefined;
  let key: string | undefined;
  const certPem = config.clientCertificate
    ? pemText('tls_client_certificate', config.clientCertificate, problems)
    : undefined;
  const keyPem = config.clientKey ? pemText('tls_client_key', config.clientKey, problems) : undefined;
  if (config.clientCertificate && !config.clientKey)
    problems.push(`${field('tls_client_certificate')} needs its ${field('tls_client_key')}`);
  if (config.clientKey && !config.clientCertificate)
    problems.push(`${field('tls_client_key')} needs its ${field('tls_client_certificate')}`);
  const [clientCert] = certPem === undefined ? [] : certificates('tls_client_certificate', certPem, problems);
  const keyObject = keyPem === undefined ? undefined : privateKey(keyPem, config.clientKeyPassphrase, problems);
  if (clientCert) {
    const validity = describeValidity(clientCert, now);
    if (validity) problems.push(`${field('tls_client_certificate')} ${validity}`);
    cert = certPem;
  }
  if (keyObject) {
    if (clientCert && !clientCert.checkPrivateKey(keyObject)) {
      problems.push(`${field('tls_client_key')} does not belong to ${field('tls_client_certificate')}`);
    }
    key = keyObject.export({ type: 'pkcs8', format: 'pem' }).toString();
  }
  return {
    ca,
    cert,
    key,
    rejectUnauthorized: !config.insecureSkipVerify,
    servername: config.serverName,
    ALPNProtocols: config.alpnProtocols && config.alpnProtocols.length > 0 ? [...config.alpnProtocols] : undefined,
  };
}
