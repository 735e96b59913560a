/**
 * How the connector reaches the broker's address: directly, through a proxy (`proxy_url`, `proxy_username`,
 * `proxy_password`), or through an SSH tunnel (`tunnel_method`, the object Airbyte's database connectors use). The
 * broker's host and port stay what they are: as the proxy or the bastion sees them.
 */
import { type ProxyAddress, type ProxyScheme, describeProxy, parseProxyUrl } from '../reach/proxy.js';
import type { SshTunnelSettings } from '../reach/ssh-tunnel.js';
import { type Config, integerOf, isConfig, stringOf } from './config-values.js';
import { field } from './spec.js';

export type Reach =
  | { readonly kind: 'direct' }
  | { readonly kind: 'proxy'; readonly proxy: ProxyAddress }
  | { readonly kind: 'ssh'; readonly tunnel: SshTunnelSettings };

const DIRECT: Reach = { kind: 'direct' };

function proxyOf(config: Config, problems: string[]): Reach | undefined {
  const url = stringOf(config, 'proxy_url');
  const username = stringOf(config, 'proxy_username');
  const password = stringOf(config, 'proxy_password');
  if (url === undefined) {
    if (username !== undefined || password !== undefined) {
      problems.push(`${field('proxy_username')} or ${field('proxy_password')} is set without a ${field('proxy_url')}`);
    }
    return undefined;
  }
  const parsed = parseProxyUrl(url);
  if (typeof parsed === 'string') {
    problems.push(`${field('proxy_url')} is not valid: ${parsed}`);
    return undefined;
  }
  if (parsed.password !== undefined) {
    // The platform keeps only airbyte_secret fields secret: a password in the URL would be stored and shown in clear.
    problems.push(
      `${field('proxy_url')} carries a password, which Airbyte would store and show in clear: enter it in ` +
        `${field('proxy_password')} instead`,
    );
  }
  if (username !== undefined && parsed.username !== undefined && username !== parsed.username) {
    problems.push(`give the proxy's user name either in ${field('proxy_url')} or in ${field('proxy_username')}`);
  }
  const user = username ?? parsed.username;
  problems.push(...proxyCredentialProblems(parsed.scheme, user, password, username !== undefined));
  return {
    kind: 'proxy',
    proxy: {
      ...parsed,
      ...(user !== undefined ? { username: user } : {}),
      ...(password !== undefined ? { password } : {}),
    },
  };
}

/** SOCKS5 (RFC 1929) sends each of user name and password after a length byte. */
const SOCKS5_MAX_CREDENTIAL_BYTES = 255;

/**
 * What a proxy could not be sent, seen before connecting: a password without a user name, a SOCKS5 credential
 * longer than its length byte can say, a colon in an HTTP Basic user name (the colon separates it from the password).
 */
function proxyCredentialProblems(
  scheme: ProxyScheme,
  user: string | undefined,
  password: string | undefined,
  userInField: boolean,
): string[] {
  const userField = userInField ? field('proxy_username') : `the user name in ${field('proxy_url')}`;
  const problems: string[] = [];
  if (password !== undefined && user === undefined) {
    problems.push(
      `${field('proxy_password')} is set without a user name: give it in ${field('proxy_username')} ` +
        `or in ${field('proxy_url')}`,
    );
  }
  if (scheme === 'http') {
    if (user?.includes(':')) {
      problems.push(`${userField} contains ":", which HTTP Basic authentication cannot send in a user name`);
    }
  } else {
    const tooLong = (value: string | undefined): boolean =>
      value !== undefined && Buffer.byteLength(value, 'utf8') > SOCKS5_MAX_CREDENTIAL_BYTES;
    for (const [value, name] of [
      [user, userField],
      [password, field('proxy_password')],
    ] as const) {
      if (tooLong(value))
        problems.push(`${name} is longer than the ${SOCKS5_MAX_CREDENTIAL_BYTES} bytes SOCKS5 can send`);
    }
  }
  return problems;
}

function tunnelOf(config: Config, connectTimeoutMs: number): Reach | undefined {
  const tunnel = isConfig(config.tunnel_method) ? config.tunnel_method : undefined;
  const method = tunnel ? stringOf(tunnel, 'tunnel_method') : undefined;
  if (!tunnel || method === undefined || method === 'NO_TUNNEL') return undefined;
  const pinned = stringOf(tunnel, 'tunnel_host_key_fingerprint');
  return {
    kind: 'ssh',
    tunnel: {
      host: stringOf(tunnel, 'tunnel_host') ?? '',
      port: integerOf(tunnel, 'tunnel_port') ?? 22,
      user: stringOf(tunnel, 'tunnel_user') ?? '',
      auth:
        method === 'SSH_PASSWORD_AUTH'
          ? { kind: 'password', password: stringOf(tunnel, 'tunnel_user_password') ?? '' }
          : { kind: 'key', privateKey: stringOf(tunnel, 'ssh_key') ?? '' },
      ...(pinned !== undefined ? { pinnedFingerprint: pinned } : {}),
      connectTimeoutMs,
    },
  };
}

/** The configured way to the broker; problems are added to the list given. */
export function reachOf(config: Config, problems: string[], connectTimeoutMs: number): Reach {
  const proxy = proxyOf(config, problems);
  const tunnel = tunnelOf(config, connectTimeoutMs);
  if (proxy && tunnel) {
    problems.push(
      `${field('proxy_url')} and ${field('tunnel_method')} are both set: the connector reaches the broker through ` +
        'one of them; choose the one that can reach it',
    );
  }
  return tunnel ?? proxy ?? DIRECT;
}

/** For the effective configuration line and check's report: the way, never a secret. */
export function describeReach(reach: Reach): string {
  switch (reach.kind) {
    case 'direct':
      return 'direct';
    case 'proxy':
      return `proxy ${describeProxy(reach.proxy)}`;
    case 'ssh':
      return `SSH tunnel through ${reach.tunnel.user}@${bracketed(reach.tunnel.host)}:${reach.tunnel.port}`;
  }
}

/** An IPv6 address in brackets, as in a URL, so that its colons do not run into the port's. */
function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
