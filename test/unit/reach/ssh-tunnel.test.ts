/**
 * The parts of the SSH tunnel that need no bastion: private key text as forms save it, host key fingerprints as
 * OpenSSH prints them (against fingerprints ssh-keygen printed for fixed keys), pinned fingerprints as users copy
 * them, and how ssh2's failures become typed errors with the right failure type and no secret in them. Keys are
 * generated in process with ssh2's own key generator.
 */
import assert from 'node:assert/strict';
import { type KeyObject, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { ConfigError, type ConnectorError } from '../../../src/errors.js';
import {
  SshAuthenticationError,
  SshBrokerUnreachableError,
  SshForwardRefusedError,
  SshHandshakeError,
  SshHostKeyMismatchError,
  SshHostUnknownError,
  SshKeyError,
  SshTunnel,
  SshUnreachableError,
  type TunnelContext,
  describeForwardError,
  describeSshError,
  forwardTimedOut,
  hostKeyMismatch,
  parsePrivateKey,
} from '../../../src/reach/ssh-tunnel.js';
import { canonicalFingerprint, hostKeyOf, normaliseKeyText } from '../../../src/reach/ssh-keys.js';

const KEY_CONTEXT: TunnelContext = {
  host: 'bastion.example',
  port: 2222,
  user: 'tunnel',
  auth: 'key',
  connectTimeoutMs: 5000,
};
const PASSWORD_CONTEXT: TunnelContext = { ...KEY_CONTEXT, auth: 'password' };

/** An ssh2 error as it reports them: a message with a level, a socket code or a channel reason code. */
function ssh2Error(message: string, extra: Record<string, unknown>): Error {
  return Object.assign(new Error(message), extra);
}

/** The base64 lines of a private key: what no message may hold. */
function secretLines(privateKey: string): string[] {
  return privateKey.split('\n').filter((line) => /^[A-Za-z0-9+/=]{20,}$/.test(line));
}

function assertKeyError(fn: () => unknown, message: RegExp, secrets: readonly string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SshKeyError, String(err));
    assert.equal(err.failureType, 'config_error');
    assert.match(err.message, message);
    for (const secret of secrets) {
      assert.ok(!err.message.includes(secret) && !(err.internalMessage ?? '').includes(secret), err.message);
    }
    return true;
  });
}

describe('private key text', () => {
  const { private: openssh } = ssh2.utils.generateKeyPairSync('ed25519');

  it('puts back line breaks a form saved as literal \\n or \\r\\n, and ends with one', () => {
    assert.equal(normaliseKeyText(openssh.trimEnd().replace(/\n/g, '\\n')), `${openssh.trimEnd()}\n`);
    assert.equal(normaliseKeyText(openssh.trimEnd().replace(/\n/g, '\\r\\n')), `${openssh.trimEnd()}\n`);
    assert.equal(normaliseKeyText(openssh.replace(/\n/g, '\r\n')), `${openssh.trimEnd()}\n`);
    assert.equal(normaliseKeyText(`  \n${openssh}\n\n`), `${openssh.trimEnd()}\n`);
  });

  it('rebuilds a key whose lines were joined with spaces, so that ssh2 can read it', () => {
    const joined = openssh.trim().split('\n').join(' ');
    const lines = normaliseKeyText(joined).split('\n');
    assert.match(lines[0] ?? '', /^-----BEGIN OPENSSH PRIVATE KEY-----$/);
    assert.match(lines[2] ?? '', /^-----END OPENSSH PRIVATE KEY-----$/);
    assert.equal(lines[1], openssh.trim().split('\n').slice(1, -1).join(''));
    assert.equal(parsePrivateKey(joined).type, 'ssh-ed25519');
  });

  it('leaves the body of a PEM key with headers (legacy encryption) as written', () => {
    const legacy = [
      '-----BEGIN RSA PRIVATE KEY-----',
      'Proc-Type: 4,ENCRYPTED',
      'DEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF',
      '',
      'AAAA',
      '-----END RSA PRIVATE KEY-----',
    ].join('\n');
    assert.equal(normaliseKeyText(legacy.replace(/\n/g, '\\n')), `${legacy}\n`);
  });

  it('reads OpenSSH and PEM private keys, pasted with literal \\n as well', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
      type: 'sec1',
      format: 'pem',
    });
    assert.equal(parsePrivateKey(openssh.replace(/\n/g, '\\n')).type, 'ssh-ed25519');
    assert.match(pem.toString(), /BEGIN EC PRIVATE KEY/);
    assert.equal(parsePrivateKey(pem.toString()).type, 'ecdsa-sha2-nistp256');
  });

  it('reads RSA and ECDSA keys in PKCS#8 form, encrypted or not, which ssh2 alone does not', () => {
    const passphrase = 'pkcs8 passphrase';
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    const plain = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();
    const encrypted = (key: KeyObject): string =>
      key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
    assert.match(plain(rsa), /BEGIN PRIVATE KEY/);
    assert.match(encrypted(rsa), /BEGIN ENCRYPTED PRIVATE KEY/);
    assert.equal(parsePrivateKey(plain(rsa)).type, 'ssh-rsa');
    assert.equal(parsePrivateKey(encrypted(rsa), passphrase).type, 'ssh-rsa');
    assert.equal(parsePrivateKey(plain(ec).replace(/\n/g, '\\n')).type, 'ecdsa-sha2-nistp384');
    const secrets = [...secretLines(encrypted(ec)), passphrase];
    assertKeyError(() => parsePrivateKey(encrypted(ec)), /is encrypted with a passphrase/, secrets);
    assertKeyError(() => parsePrivateKey(encrypted(ec), 'wrong'), /passphrase does not decrypt/, secrets);
    // OpenSSH reads no Ed25519 key in PKCS#8 form either.
    const ed = generateKeyPairSync('ed25519').privateKey;
    assertKeyError(() => parsePrivateKey(plain(ed)), /cannot be read as a private key/, secretLines(plain(ed)));
  });

  it('reports an encrypted key without its passphrase, or with a wrong one, without quoting the key', () => {
    const passphrase = 'the passphrase';
    const { private: encrypted } = ssh2.utils.generateKeyPairSync('ed25519', {
      passphrase,
      cipher: 'aes256-ctr',
      rounds: 4,
    });
    const secrets = [...secretLines(encrypted), passphrase];
    assert.equal(parsePrivateKey(encrypted, passphrase).type, 'ssh-ed25519');
    assertKeyError(() => parsePrivateKey(encrypted), /is encrypted with a passphrase/, secrets);
    assertKeyError(() => parsePrivateKey(encrypted, ''), /is encrypted with a passphrase/, secrets);
    assertKeyError(() => parsePrivateKey(encrypted, 'wrong'), /passphrase does not decrypt/, secrets);
  });

  it('reports a public key, or text that is no key, as a key error naming ssh_key', () => {
    const { public: publicKey } = ssh2.utils.generateKeyPairSync('ed25519');
    assertKeyError(() => parsePrivateKey(publicKey), /ssh_key\) is a public key/, []);
    const broken = openssh.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!');
    assertKeyError(() => parsePrivateKey(broken), /cannot be read as a private key/, secretLines(broken));
    assertKeyError(() => parsePrivateKey('not a key'), /cannot be read as a private key/, []);
  });
});

describe('host key fingerprints', () => {
  // Public keys ssh-keygen made, and the fingerprints `ssh-keygen -lf` printed for them.
  const vectors = [
    {
      type: 'ssh-ed25519',
      blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIACZGxY0/erHa7vygIyhbMgMyK5hvbdbeLhFgHTpWZyP',
      fingerprint: 'SHA256:XKLvwHkhZKISFSBc8cHfG1zNPvvnaWZxVkZGQCgJk90',
    },
    {
      type: 'ecdsa-sha2-nistp256',
      blob:
        'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB5TK+kVJ8GVVgS7q/zsRFGhS07jpAbqFebYmo1U+y7kObbyt3k90nhK0' +
        'RkkLa0EefDCHPU7CYcNV9U8GuW1N0M=',
      fingerprint: 'SHA256:0HPVEQIfsenhhgH6wIxNA3iDe0P+DN1EN81l8+EgL6c',
    },
  ];

  it('names a host key by its type and SHA256 fingerprint as ssh-keygen -lf prints them', () => {
    for (const { type, blob, fingerprint } of vectors) {
      assert.deepEqual(hostKeyOf(Buffer.from(blob, 'base64')), { type, fingerprint });
    }
  });

  it('names a blob too short to hold a type "unknown", still with its fingerprint', () => {
    assert.equal(hostKeyOf(Buffer.from([0, 0, 0, 9, 65])).type, 'unknown');
    assert.match(hostKeyOf(Buffer.alloc(0)).fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('takes a pinned fingerprint with or without its prefix, in any case, with padding or spaces around it', () => {
    const pinned = 'SHA256:XKLvwHkhZKISFSBc8cHfG1zNPvvnaWZxVkZGQCgJk90';
    const body = pinned.slice('SHA256:'.length);
    for (const written of [pinned, body, `sha256:${body}`, `${pinned}=`, `  ${pinned}\n`]) {
      assert.equal(canonicalFingerprint(written), pinned, written);
    }
  });

  it('does not take an MD5 fingerprint, a cut one, or one whose base64 changed case, as that pin', () => {
    const pinned = 'SHA256:XKLvwHkhZKISFSBc8cHfG1zNPvvnaWZxVkZGQCgJk90';
    assert.equal(canonicalFingerprint('MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48'), undefined);
    assert.equal(canonicalFingerprint(pinned.slice(0, -1)), undefined);
    assert.notEqual(canonicalFingerprint(pinned.toLowerCase()), pinned);
  });

  it('refuses to build a tunnel whose pin is not a SHA256 fingerprint, naming what was given', () => {
    const settings = { host: 'b', port: 22, user: 'u', auth: { kind: 'password', password: 'p' } as const };
    assert.throws(
      () => new SshTunnel({ ...settings, connectTimeoutMs: 1000, pinnedFingerprint: 'aa:bb:cc' }),
      (err: unknown) => err instanceof ConfigError && /"aa:bb:cc" is not a SHA256 fingerprint/.test(err.message),
    );
    assert.ok(new SshTunnel({ ...settings, connectTimeoutMs: 1000, pinnedFingerprint: '  ' }));
  });
});

describe('SSH failures as typed errors', () => {
  const cases: {
    name: string;
    error: Error;
    context?: TunnelContext;
    type: new (...args: never[]) => ConnectorError;
    failureType: string;
    message: RegExp;
  }[] = [
    {
      name: 'a refused bastion port',
      error: ssh2Error('connect ECONNREFUSED', { code: 'ECONNREFUSED', level: 'client-socket' }),
      type: SshUnreachableError,
      failureType: 'transient_error',
      message: /bastion host at bastion\.example:2222 cannot be reached \(ECONNREFUSED\)/,
    },
    {
      name: 'a bastion that does not answer in time',
      error: ssh2Error('Timed out while waiting for handshake', { level: 'client-timeout' }),
      type: SshUnreachableError,
      failureType: 'transient_error',
      message: /did not complete the SSH login within 5 s/,
    },
    {
      name: 'an unknown bastion host name',
      error: ssh2Error('getaddrinfo ENOTFOUND bastion.example', { code: 'ENOTFOUND', level: 'client-socket' }),
      type: SshHostUnknownError,
      failureType: 'config_error',
      message: /"bastion\.example" could not be resolved; check tunnel_host/,
    },
    {
      name: 'a refused key',
      error: ssh2Error('All configured authentication methods failed', { level: 'client-authentication' }),
      type: SshAuthenticationError,
      failureType: 'config_error',
      message: /refused user "tunnel" with the SSH key \(ssh_key\); check tunnel_user, and that the key's public half/,
    },
    {
      name: 'a refused password',
      error: ssh2Error('All configured authentication methods failed', { level: 'client-authentication' }),
      context: PASSWORD_CONTEXT,
      type: SshAuthenticationError,
      failureType: 'config_error',
      message: /refused user "tunnel" with the password \(tunnel_user_password\)/,
    },
    {
      name: 'a port that does not speak SSH',
      error: ssh2Error('Bad identification start', { level: 'protocol' }),
      type: SshHandshakeError,
      failureType: 'config_error',
      message: /handshake with bastion\.example:2222 failed \(Bad identification start\); check that tunnel_port/,
    },
  ];
  for (const { name, error, context, type, failureType, message } of cases) {
    it(`reports ${name} as ${type.name} (${failureType})`, () => {
      const described = describeSshError(error, context ?? KEY_CONTEXT);
      assert.ok(described instanceof type, described.name);
      assert.equal(described.failureType, failureType);
      assert.match(described.message, message);
      assert.ok(described.internalMessage?.includes(error.message));
    });
  }

  it('writes an IPv6 bastion address in brackets', () => {
    const err = describeSshError(ssh2Error('x', { code: 'ECONNREFUSED' }), { ...KEY_CONTEXT, host: 'fd00::1' });
    assert.match(err.message, /bastion host at \[fd00::1\]:2222/);
  });

  const broker = { host: 'broker.internal', port: 8883 };

  it('says a bastion that forbids forwarding was reached, and which broker it would not forward to', () => {
    const err = describeForwardError(
      ssh2Error('(SSH) Channel open failure: open failed', { reason: 1 }),
      KEY_CONTEXT,
      broker,
    );
    assert.ok(err instanceof SshForwardRefusedError);
    assert.equal(err.failureType, 'config_error');
    assert.match(err.message, /bastion\.example:2222 was reached and accepted user "tunnel", but refused to forward/);
    assert.match(err.message, /broker at broker\.internal:8883.*AllowTcpForwarding/);
  });

  it('says the bastion was reached but the broker was not, when the bastion cannot connect to it', () => {
    const refused = ssh2Error('(SSH) Channel open failure: Connection refused', { reason: 2 });
    for (const err of [describeForwardError(refused, KEY_CONTEXT, broker), forwardTimedOut(KEY_CONTEXT, broker)]) {
      assert.ok(err instanceof SshBrokerUnreachableError);
      assert.equal(err.failureType, 'transient_error');
      assert.match(err.message, /bastion\.example:2222 was reached, but .*broker at broker\.internal:8883/);
    }
  });

  it('names the host key seen and the one expected, saying whether it was pinned or seen first', () => {
    const seen = { type: 'ssh-ed25519', fingerprint: 'SHA256:seen' };
    const pinned = hostKeyMismatch(KEY_CONTEXT, seen, 'SHA256:pin', true);
    assert.ok(pinned instanceof SshHostKeyMismatchError);
    assert.equal(pinned.failureType, 'config_error');
    assert.match(pinned.message, /showed the host key SHA256:seen \(ssh-ed25519\), not the pinned SHA256:pin\./);
    const first = hostKeyMismatch(KEY_CONTEXT, seen, 'SHA256:first', false);
    assert.match(first.message, /not SHA256:first, the key it showed earlier in this run/);
    assert.deepEqual([first.seen, first.expected], [seen, 'SHA256:first']);
  });
});
