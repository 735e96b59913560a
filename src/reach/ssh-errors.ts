/**
 * What went wrong on the way through an SSH bastion, in words the user can act on, each with the Airbyte failure type
 * that fits: a bastion that cannot be reached (or a broker it cannot reach) may be back later; a refused user or key,
 * a host key other than the pinned one, or a bastion that does not forward at all will not change by retrying.
 *
 * ssh2 reports its failures as plain errors with a `level` (client-socket, client-timeout, client-authentication,
 * handshake, protocol), a socket error `code`, or for a refused channel the SSH `reason` code (RFC 4254, 5.1); those
 * decide the class here. No message holds the key, its passphrase or the password: ssh2's own texts (kept as the
 * internal message) never contain them, and nothing here quotes the settings beyond host, port and user.
 */
import { ConfigError, type ConnectorError, TransientError } from '../errors.js';
import type { HostKey } from './ssh-keys.js';

/** The bastion cannot be reached, did not answer in time, or dropped the connection: retrying later may succeed. */
export class SshUnreachableError extends TransientError {}

/** The bastion's host name does not resolve. */
export class SshHostUnknownError extends ConfigError {}

/** The bastion answered, but not as an SSH server the connector can talk to. */
export class SshHandshakeError extends ConfigError {}

/** The bastion refused the user with the key or password given. */
export class SshAuthenticationError extends ConfigError {}

/** The private key cannot be used: not a private key, encrypted without its passphrase, or a wrong passphrase. */
export class SshKeyError extends ConfigError {}

/** The bastion's host key is not the pinned one (or not the one it showed earlier in this run). */
export class SshHostKeyMismatchError extends ConfigError {
  constructor(
    message: string,
    readonly seen: HostKey,
    readonly expected: string,
  ) {
    super(message);
  }
}

/** The bastion was reached and the user accepted, but it does not forward TCP connections for that user. */
export class SshForwardRefusedError extends ConfigError {}

/** The bastion was reached, but it could not connect to the broker (down, or not reachable from the bastion). */
export class SshBrokerUnreachableError extends TransientError {}

/** Where the tunnel goes and as whom, for messages. */
export interface TunnelContext {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly auth: 'key' | 'password';
  readonly connectTimeoutMs: number;
}

/** host:port, with an IPv6 address in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function detailOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { code, level, reason } = err as { code?: unknown; level?: unknown; reason?: unknown };
  const tags = [level, code, reason].filter((t) => typeof t === 'string' || typeof t === 'number');
  return tags.length > 0 ? `${err.message} (${tags.join(', ')})` : err.message;
}

/** The private key could not be parsed; `message` is ssh2's, which names the problem and never quotes the key. */
export function keyProblem(message: string, passphraseGiven: boolean): SshKeyError {
  if (/no passphrase given/i.test(message)) {
    return new SshKeyError(
      'The SSH key (ssh_key) is encrypted with a passphrase; use an unencrypted key for the tunnel.',
      message,
    );
  }
  if (/bad passphrase|integrity check failed|bad decrypt/i.test(message) && passphraseGiven) {
    return new SshKeyError('The passphrase does not decrypt the SSH key (ssh_key).', message);
  }
  return new SshKeyError(
    'The SSH key (ssh_key) cannot be read as a private key: paste the whole private key file, from its ' +
      '-----BEGIN ... PRIVATE KEY----- line to its -----END ... PRIVATE KEY----- line (PEM or OpenSSH format).',
    message,
  );
}

/** A failure while connecting to the bastion and logging in, before any forward. */
export function describeSshError(err: unknown, tunnel: TunnelContext): ConnectorError {
  const bastion = hostPort(tunnel.host, tunnel.port);
  const detail = detailOf(err);
  const { code, level } = (err ?? {}) as { code?: unknown; level?: unknown };
  const message = err instanceof Error ? err.message : String(err);
  if (level === 'client-authentication') {
    const check =
      tunnel.auth === 'key'
        ? "the SSH key (ssh_key); check tunnel_user, and that the key's public half is in that user's authorized_keys"
        : 'the password (tunnel_user_password); check tunnel_user and tunnel_user_password';
    return new SshAuthenticationError(
      `The SSH bastion host at ${bastion} refused user "${tunnel.user}" with ${check}.`,
      detail,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || level === 'client-dns') {
    return new SshHostUnknownError(
      `The SSH bastion host "${tunnel.host}" could not be resolved; check tunnel_host.`,
      detail,
    );
  }
  if (level === 'client-timeout') {
    return new SshUnreachableError(
      `The SSH bastion host at ${bastion} did not complete the SSH login within ${tunnel.connectTimeoutMs / 1000} s; ` +
        'check tunnel_host and tunnel_port, and that the bastion accepts connections from here.',
      detail,
    );
  }
  if (level === 'client-socket' || typeof code === 'string') {
    return new SshUnreachableError(
      `The SSH bastion host at ${bastion} cannot be reached (${typeof code === 'string' ? code : message}); ` +
        'check tunnel_host and tunnel_port, and that sshd is running there.',
      detail,
    );
  }
  if (level === 'handshake' || level === 'protocol') {
    return new SshHandshakeError(
      `The SSH handshake with ${bastion} failed (${message}); check that tunnel_port is the bastion's SSH port.`,
      detail,
    );
  }
  return new SshUnreachableError(`The SSH connection to the bastion host at ${bastion} failed: ${message}`, detail);
}

/**
 * The bastion showed a host key other than `expected`: the pinned fingerprint, or the key it showed at the first
 * connection of this run (a key accepted on first use is the only one accepted after it).
 */
export function hostKeyMismatch(
  tunnel: TunnelContext,
  seen: HostKey,
  expected: string,
  pinned: boolean,
): SshHostKeyMismatchError {
  const bastion = hostPort(tunnel.host, tunnel.port);
  const against = pinned
    ? `not the pinned ${expected}. If the bastion's key was changed on purpose, pin the new fingerprint`
    : `not ${expected}, the key it showed earlier in this run. If the bastion's key was changed on purpose, run again`;
  return new SshHostKeyMismatchError(
    `The SSH bastion host at ${bastion} showed the host key ${seen.fingerprint} (${seen.type}), ${against}; ` +
      'otherwise something between here and the bastion may be posing as it.',
    seen,
    expected,
  );
}

/** The bastion closed the connection before the login completed, without saying why. */
export function closedBeforeLogin(tunnel: TunnelContext): ConnectorError {
  return new SshUnreachableError(
    `The SSH bastion host at ${hostPort(tunnel.host, tunnel.port)} closed the connection before the login ` +
      'completed; check tunnel_port, and that the bastion lets this user and address in.',
  );
}

// SSH_MSG_CHANNEL_OPEN_FAILURE reason codes, RFC 4254 section 5.1.
const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;

/** The bastion did not open a channel to the broker. */
export function describeForwardError(
  err: unknown,
  tunnel: TunnelContext,
  target: { host: string; port: number },
): ConnectorError {
  const bastion = hostPort(tunnel.host, tunnel.port);
  const broker = hostPort(target.host, target.port);
  const detail = detailOf(err);
  const reason = (err as { reason?: unknown } | null)?.reason;
  if (reason === ADMINISTRATIVELY_PROHIBITED) {
    return new SshForwardRefusedError(
      `The SSH bastion host at ${bastion} was reached and accepted user "${tunnel.user}", but refused to forward a ` +
        `connection to the broker at ${broker}: its sshd must allow TCP forwarding for this user ` +
        '(AllowTcpForwarding, PermitOpen).',
      detail,
    );
  }
  if (reason === CONNECT_FAILED) {
    return new SshBrokerUnreachableError(
      `The SSH bastion host at ${bastion} was reached, but the broker at ${broker} was not reachable from it; ` +
        'check the broker host and port as the bastion sees them, and that the broker is running.',
      detail,
    );
  }
  return new SshBrokerUnreachableError(
    `The SSH bastion host at ${bastion} was reached, but did not open a connection to the broker at ${broker}: ` +
      `${err instanceof Error ? err.message : String(err)}`,
    detail,
  );
}

/** The bastion did not answer a forward within the connect timeout. */
export function forwardTimedOut(tunnel: TunnelContext, target: { host: string; port: number }): ConnectorError {
  return new SshBrokerUnreachableError(
    `The SSH bastion host at ${hostPort(tunnel.host, tunnel.port)} was reached, but did not connect to the broker at ` +
      `${hostPort(target.host, target.port)} within ${tunnel.connectTimeoutMs / 1000} s; check the broker host and ` +
      'port as the bastion sees them.',
  );
}

/** The SSH connection went away while a forward was waiting for its answer. */
export function lostWhileForwarding(tunnel: TunnelContext, target: { host: string; port: number }): ConnectorError {
  return new SshUnreachableError(
    `The SSH connection to the bastion host at ${hostPort(tunnel.host, tunnel.port)} was lost while opening a ` +
      `connection to the broker at ${hostPort(target.host, target.port)}.`,
  );
}

/** A forward asked for while, or after, the tunnel was closed: the connector is stopping. */
export function tunnelClosed(tunnel: TunnelContext): ConnectorError {
  return new SshUnreachableError(
    `The SSH tunnel through the bastion host at ${hostPort(tunnel.host, tunnel.port)} was closed.`,
  );
}
