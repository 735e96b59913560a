/**
 * The two keys of an SSH tunnel as the user sees them: the private key pasted into the form, and the bastion's host
 * key, named by its fingerprint as `ssh-keygen -lf` and `ssh` print it, so that what `check` reports can be compared
 * with what the bastion's administrator reads off the server, and pinned.
 */
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';

// node:crypto is required when a key is looked at, not when this module is loaded: `spec` never needs it otherwise,
// and loading it added 2.5 ms of CPU to a bundled `spec` (Node 20). scripts/bundle.mjs keeps this require lazy.
const require = createRequire(import.meta.url);
let loaded: typeof Crypto | undefined;
function crypto(): typeof Crypto {
  loaded ??= require('node:crypto') as typeof Crypto;
  return loaded;
}

/** The bastion's host key: its type (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...) and SHA256 fingerprint. */
export interface HostKey {
  readonly type: string;
  /** `SHA256:` and the unpadded base64 of the SHA-256 of the key, as OpenSSH prints it. */
  readonly fingerprint: string;
}

const ARMOUR = /^(-----BEGIN [A-Z0-9 ]+-----)\s+([\s\S]*?)\s*(-----END [A-Z0-9 ]+-----)$/;

/**
 * The text of a private key as ssh2 parses it. The form may save a pasted multi-line key with literal `\n` (or
 * `\r\n`) sequences instead of line breaks, and some tools join the lines with spaces; both are put back. A key
 * whose armour carries headers (legacy encrypted PEM: `Proc-Type`, `DEK-Info`) keeps its body as written, since
 * those headers end at line breaks that cannot be guessed.
 */
export function normaliseKeyText(text: string): string {
  const unescaped = text
    .replace(/\\r\\n|\\n|\\r/g, '\n')
    .replace(/\r\n?/g, '\n')
    .trim();
  const armour = ARMOUR.exec(unescaped);
  if (!armour || armour[2]?.includes(':') || armour[2]?.includes('\n')) return `${unescaped}\n`;
  // One line of base64 between the armour lines: ssh2 reads a body without line breaks.
  const body = (armour[2] ?? '').replace(/\s+/g, '');
  return `${armour[1]}\n${body}\n${armour[3]}\n`;
}

const PKCS8 = /-----BEGIN (?:ENCRYPTED )?PRIVATE KEY-----/;

/**
 * A PKCS#8 key (`BEGIN PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`, as `openssl genpkey` writes it and OpenSSH reads
 * it), which ssh2 cannot read, in the older PEM form it reads, decrypted: PKCS#1 for RSA, SEC 1 for ECDSA. undefined
 * for any other text, or another key type (OpenSSH itself reads no Ed25519 key in PKCS#8 form). Throws Node's error
 * for a key it cannot decrypt or parse.
 */
export function fromPkcs8(text: string, passphrase: string | undefined): string | undefined {
  if (!PKCS8.test(text)) return undefined;
  const key = crypto().createPrivateKey({ key: text, format: 'pem', passphrase });
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return key.export({ type: 'pkcs1', format: 'pem' }).toString();
    case 'ec':
      return key.export({ type: 'sec1', format: 'pem' }).toString();
    default:
      return undefined;
  }
}

/** The host key in SSH wire format (as ssh2 hands it to a host verifier) named as OpenSSH names it. */
export function hostKeyOf(blob: Buffer): HostKey {
  // The blob starts with the key type as an SSH string: a 32-bit big-endian length, then that many bytes.
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = length > 0 && length <= blob.length - 4 ? blob.toString('latin1', 4, 4 + length) : 'unknown';
  const fingerprint = `SHA256:${crypto().createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { type, fingerprint };
}

/**
 * A pinned fingerprint in the one form `hostKeyOf` gives, or undefined when it is not a SHA256 fingerprint. The
 * prefix may be missing or in any case, and base64 padding may be left on, as users copy it from different places;
 * the base64 itself is case-sensitive and kept as written.
 */
export function canonicalFingerprint(pin: string): string | undefined {
  const match = /^(?:sha256:)?([A-Za-z0-9+/]{43})=?$/i.exec(pin.trim());
  return match ? `SHA256:${match[1]}` : undefined;
}
