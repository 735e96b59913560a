/**
 * Reaching the broker through a proxy: a SOCKS5 proxy (socks5://, socks5h://) or an HTTP proxy's CONNECT method
 * (http://), as networks that allow no direct connection out require. `openThroughProxy` opens a TCP connection to
 * the proxy, has it connect to the broker, and hands over the socket at the first byte from the broker; MQTT, TLS
 * (`tls.connect({ socket })`) or WebSocket then run over it as over a direct connection.
 *
 * A proxy URL's port may be left out for SOCKS5 only, where 1080 is the registered port every tool assumes. HTTP
 * proxies have no such port (Squid listens on 3128, tinyproxy on 8888, many on 8080) and tools disagree on the one
 * they assume (curl 1080, Go and Python 80), so an http:// URL must name its port: a guess would fail later as an
 * unreachable proxy, far from the setting that caused it.
 */
import { createConnection, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { ConfigError } from '../errors.js';
import { httpConnect } from './http-connect.js';
import { Conversation, type Step } from './proxy-conversation.js';
import { ProxyHostNotFoundError, type Route, proxyUnreachable } from './proxy-errors.js';
import { socks5Handshake } from './socks5.js';

export {
  BrokerUnreachableThroughProxyError,
  ProxyAuthenticationError,
  ProxyHostNotFoundError,
  ProxyProtocolError,
  ProxyRefusedError,
  ProxyTimeoutError,
  ProxyUnreachableError,
} from './proxy-errors.js';

export type ProxyScheme = 'socks5' | 'socks5h' | 'http';

export interface ProxyAddress {
  readonly scheme: ProxyScheme;
  readonly host: string;
  readonly port: number;
  /** From the URL's user information, percent-decoded. */
  readonly username?: string;
  readonly password?: string;
}

export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
}

export interface ProxyOptions {
  /** For the whole of it: the connection to the proxy, its handshake, and for socks5:// resolving the broker host. */
  readonly timeoutMs: number;
  /** Take the place of the URL's user name and password, each when given and not empty. */
  readonly username?: string;
  readonly password?: string;
}

const DEFAULT_PORTS: Readonly<Record<ProxyScheme, number | undefined>> = {
  socks5: 1080,
  socks5h: 1080,
  http: undefined,
};

const SCHEMES = Object.keys(DEFAULT_PORTS).map((scheme) => `${scheme}://`);

/** scheme://host:port, never the credentials: for messages and reports. */
export function describeProxy(proxy: ProxyAddress): string {
  return `${proxy.scheme}://${hostPort(proxy)}`;
}

function hostPort(address: { readonly host: string; readonly port: number }): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

/**
 * The proxy a URL names, or what is wrong with the URL, as a phrase to follow "the proxy URL is not valid: " (it
 * never quotes the URL, which may hold a password). User name and password may be given in it, percent-encoded.
 */
export function parseProxyUrl(text: string): ProxyAddress | string {
  const parts = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(text);
  const scheme = parts?.[1]?.toLowerCase();
  if (scheme === 'https') return `https:// (TLS to the proxy) is not supported; use ${SCHEMES.join(', ')}`;
  if (scheme === undefined || !(scheme in DEFAULT_PORTS)) return `it must start with ${SCHEMES.join(', ')}`;
  const authority = parts?.[2] ?? '';
  if (!['', '/'].includes(parts?.[3] ?? '')) return 'it must not have a path, query (?) or fragment (#)';

  const at = authority.lastIndexOf('@');
  const credentials = userInformation(at === -1 ? '' : authority.slice(0, at));
  if (typeof credentials === 'string') return credentials;

  const place = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(.*))?$/.exec(authority.slice(at + 1));
  const bracketed = place?.[1];
  if (bracketed !== undefined && isIP(bracketed) !== 6) return 'its host in brackets is not an IPv6 address';
  const host = bracketed ?? place?.[2] ?? '';
  if (!place || !/^[a-z0-9._:-]+$/i.test(host)) return 'it names no valid host';

  const typed = scheme as ProxyScheme;
  const port = place[3] ? (/^\d+$/.test(place[3]) ? Number(place[3]) : NaN) : DEFAULT_PORTS[typed];
  if (port === undefined) {
    return (
      'it names no port, and HTTP proxies have no usual one (Squid listens on 3128, tinyproxy on 8888, many on ' +
      '8080): add the port, as in http://proxy.example.com:3128'
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 'its port must be a number from 1 to 65535';
  return { scheme: typed, host, port, ...credentials };
}

function userInformation(text: string): { username?: string; password?: string } | string {
  if (text === '') return {};
  const colon = text.indexOf(':');
  let username: string;
  let password: string | undefined;
  try {
    username = decodeURIComponent(colon === -1 ? text : text.slice(0, colon));
    password = colon === -1 ? undefined : decodeURIComponent(text.slice(colon + 1));
  } catch {
    return 'its user name or password is not correctly percent-encoded';
  }
  if (username === '') return password ? 'it has a password but no user name' : {};
  return password === undefined ? { username } : { username, password };
}

/**
 * A socket connected to `target` through `proxy`, right after the proxy's handshake and not read since, with anything
 * the broker sent in the same packets put back to be read first: it reads as a fresh socket would (a `data` listener,
 * `pipe`, `tls.connect({ socket })`). The caller must add its `error` listener at once (the handshake's are gone).
 *
 * Rejects with one of the errors of ./proxy-errors.ts, or a `ConfigError` for credentials or a broker address the
 * protocol cannot carry; the socket is destroyed on every failure.
 */
export async function openThroughProxy(
  proxy: ProxyAddress,
  target: ProxyTarget,
  options: ProxyOptions,
): Promise<Socket> {
  const route: Route = {
    proxy: describeProxy(proxy),
    broker: hostPort(target),
    protocol: proxy.scheme === 'http' ? 'HTTP CONNECT' : 'SOCKS5',
  };
  const credentials = pickCredentials(proxy, target, options, route);
  const conversation = new Conversation(
    createConnection({ host: proxy.host, port: proxy.port }),
    options.timeoutMs,
    connecting(proxy, route, options.timeoutMs),
  );
  try {
    await conversation.wait(new Promise((resolve) => conversation.socket.once('connect', resolve)));
    const request = { host: target.host, port: target.port, credentials, timeoutMs: options.timeoutMs };
    if (proxy.scheme === 'http') await httpConnect(conversation, route, request);
    else await socks5Handshake(conversation, route, { ...request, resolveHere: proxy.scheme === 'socks5' });
    return conversation.finish();
  } catch (error) {
    conversation.abandon();
    throw error;
  }
}

/** Until the proxy accepts the TCP connection, every failure is one of reaching the proxy. */
function connecting(proxy: ProxyAddress, route: Route, timeoutMs: number): Step {
  return {
    timedOut: () => proxyUnreachable(route, `it did not accept the connection within ${timeoutMs / 1000} s`),
    closed: (error) => {
      const code = error && 'code' in error ? String(error.code) : undefined;
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        return new ProxyHostNotFoundError(
          `The proxy host "${proxy.host}" could not be resolved (proxy ${route.proxy}, on the way to the broker at ` +
            `${route.broker}); check the proxy URL's host.`,
          error?.message,
        );
      }
      const reason =
        code === 'ECONNREFUSED' ? 'nothing accepts connections there' : `the connection failed (${code ?? 'no code'})`;
      return proxyUnreachable(route, error ? reason : 'the connection closed', error?.message);
    },
  };
}

/**
 * The credentials to send, after checking that the protocol can carry them and the broker's address. The options'
 * user name and password take the place of the URL's, each on its own (a URL may name the user and leave the password
 * to a secret field); an empty one counts as not given. Refused before anything is sent: RFC 1929 gives a SOCKS5 user
 * name and password 255 bytes each, Basic authentication cannot tell a colon in a user name from the one after it,
 * and a broker host with spaces or control characters would break the request.
 */
function pickCredentials(
  proxy: ProxyAddress,
  target: ProxyTarget,
  options: ProxyOptions,
  route: Route,
): { username: string; password: string } | undefined {
  const problem = (what: string): ConfigError =>
    new ConfigError(`Cannot connect through the proxy at ${route.proxy} to the broker at ${route.broker}: ${what}.`);
  if (/[\s\p{Cc}]/u.test(target.host) || target.host === '') throw problem('the broker host is not a host name');
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw problem('the broker port must be a number from 1 to 65535');
  }
  if (proxy.scheme === 'socks5h' && Buffer.byteLength(target.host) > 255) {
    throw problem('SOCKS5 carries host names of up to 255 bytes');
  }
  const username = options.username || proxy.username;
  const password = options.password || proxy.password || '';
  if (!username) {
    if (password) throw problem("a proxy password is set but no proxy user name; set the proxy's user name");
    return undefined;
  }
  if (proxy.scheme !== 'http' && (Buffer.byteLength(username) > 255 || Buffer.byteLength(password) > 255)) {
    throw problem('SOCKS5 carries a user name and a password of up to 255 bytes each');
  }
  if (proxy.scheme === 'http' && username.includes(':')) {
    throw problem('an HTTP proxy user name cannot contain a colon (Basic authentication separates it so)');
  }
  return { username, password };
}
