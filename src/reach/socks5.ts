/**
 * The client side of SOCKS5 (RFC 1928) with user name and password authentication (RFC 1929): offer the
 * authentication methods there are credentials for, authenticate if the proxy picks that, ask it to CONNECT to the
 * broker, and read its reply. The broker is named by IP address when the host is one, or when socks5:// asks to
 * resolve the name here; socks5h:// sends the name for the proxy to resolve, which is what works when only the
 * proxy's network knows the name.
 */
import { lookup } from 'node:dns/promises';
import { isIP, isIPv4 } from 'node:net';
import { ConnectorError } from '../errors.js';
import type { Conversation, Step } from './proxy-conversation.js';
import {
  ProxyAuthenticationError,
  ProxyHostNotFoundError,
  ProxyTimeoutError,
  type Route,
  brokerUnreachable,
  bytesSeen,
  notTheProtocol,
  proxyNeedsCredentials,
  proxyRefusedBroker,
  proxyRefusedCredentials,
  proxyTimedOut,
  proxyUnreachable,
} from './proxy-errors.js';

const VERSION = 0x05;
const NO_AUTHENTICATION = 0x00;
const USERNAME_PASSWORD = 0x02;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 0x01;
const IPV4 = 0x01;
const DOMAIN_NAME = 0x03;
const IPV6 = 0x04;

/** RFC 1928's words for the reply codes, 0x00 being success. */
export const SOCKS5_REPLIES: Readonly<Record<number, string>> = {
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
};

export interface Socks5Request {
  readonly host: string;
  readonly port: number;
  readonly credentials: { readonly username: string; readonly password: string } | undefined;
  /** socks5://: resolve a host name here and send the address; socks5h://: send the name. */
  readonly resolveHere: boolean;
  readonly timeoutMs: number;
}

export async function socks5Handshake(c: Conversation, route: Route, request: Socks5Request): Promise<void> {
  const seconds = request.timeoutMs / 1000;
  const { credentials } = request;

  c.enter({
    timedOut: () =>
      proxyTimedOut(
        route,
        seconds,
        'it did not answer the SOCKS5 greeting, so it is probably not a SOCKS5 proxy (an HTTP proxy waits for a ' +
          "request line instead); check the proxy URL's scheme and port.",
      ),
    closed: (error, received) =>
      notTheProtocol(
        route,
        `it closed the connection ${received.length > 0 ? 'in the middle of' : 'without'} answering the SOCKS5 ` +
          'greeting (or it refuses connections from this host)',
        error?.message ?? bytesSeen(received),
      ),
  });
  c.write(
    Buffer.from(credentials ? [VERSION, 2, NO_AUTHENTICATION, USERNAME_PASSWORD] : [VERSION, 1, NO_AUTHENTICATION]),
  );
  const choice = await c.read((b) => {
    if (b.length > 0 && b[0] !== VERSION) throw notTheProtocol(route, 'its answer is not a SOCKS5 reply', bytesSeen(b));
    return b.length >= 2 ? 2 : undefined;
  });
  const method = choice[1];
  if (method === NO_ACCEPTABLE_METHOD) {
    if (!credentials) throw proxyNeedsCredentials(route, 'SOCKS5: no acceptable authentication method (0xff)');
    throw new ProxyAuthenticationError(
      `The proxy at ${route.proxy} accepts neither no authentication nor a user name and password (on the way to ` +
        `the broker at ${route.broker}); the connector supports only those.`,
      'SOCKS5: no acceptable authentication method (0xff)',
    );
  }
  if (method === USERNAME_PASSWORD && credentials) {
    await authenticate(c, route, credentials, seconds);
  } else if (method !== NO_AUTHENTICATION) {
    throw notTheProtocol(route, 'it chose an authentication method that was not offered', bytesSeen(choice));
  }

  const address = await brokerAddress(c, route, request, seconds);
  c.enter({
    timedOut: () =>
      proxyTimedOut(
        route,
        seconds,
        'it did not report whether it reached the broker; it may still be trying to. Check the broker host and ' +
          'port, or allow more time to connect.',
      ),
    closed: (error, received) =>
      brokerUnreachable(
        route,
        'the proxy closed the connection without reporting whether it reached the broker',
        error?.message ?? bytesSeen(received),
      ),
  });
  const port = Buffer.alloc(2);
  port.writeUInt16BE(request.port);
  c.write(Buffer.concat([Buffer.from([VERSION, CONNECT, 0x00]), address, port]));
  const sent = address[0] === DOMAIN_NAME ? 'name' : address[0] === IPV4 ? 'ipv4' : 'ipv6';
  await c.read((b) => connectReplyLength(b, route, sent));
}

/** RFC 1929: the version of the subnegotiation, then the user name and the password, each after its length. */
async function authenticate(
  c: Conversation,
  route: Route,
  credentials: { readonly username: string; readonly password: string },
  seconds: number,
): Promise<void> {
  const step: Step = {
    timedOut: () => proxyTimedOut(route, seconds, 'it did not answer the user name and password.'),
    // Some servers close the connection instead of answering a refusal.
    closed: (error) => proxyRefusedCredentials(route, `closed after the credentials: ${error?.message ?? 'no reply'}`),
  };
  c.enter(step);
  const username = Buffer.from(credentials.username, 'utf8');
  const password = Buffer.from(credentials.password, 'utf8');
  c.write(Buffer.concat([Buffer.from([0x01, username.length]), username, Buffer.from([password.length]), password]));
  // The version byte of the answer is not checked: RFC 1929 says 0x01, and some servers send SOCKS5's 0x05.
  const status = await c.read((b) => (b.length >= 2 ? 2 : undefined));
  if (status[1] !== 0x00) throw proxyRefusedCredentials(route, `SOCKS5 authentication status 0x${hex(status[1])}`);
}

/** The broker's address as the CONNECT request carries it: its type, then the address. */
async function brokerAddress(c: Conversation, route: Route, request: Socks5Request, seconds: number): Promise<Buffer> {
  const literal = isIP(request.host);
  if (literal !== 0) return addressBytes(request.host, literal);
  if (!request.resolveHere) {
    const name = Buffer.from(request.host, 'utf8');
    return Buffer.concat([Buffer.from([DOMAIN_NAME, name.length]), name]);
  }
  c.enter({
    timedOut: () =>
      new ProxyTimeoutError(
        `Resolving the broker host "${request.host}" here took longer than ${seconds} s (a socks5:// proxy URL, ` +
          `${route.proxy}, asks to resolve it before asking the proxy to connect to ${route.broker}); check this ` +
          "host's DNS, or use socks5h:// so that the proxy resolves the name.",
      ),
    closed: (error) =>
      proxyUnreachable(route, 'it closed the connection while the broker host was resolved here', error?.message),
  });
  let resolved: { address: string; family: number };
  try {
    resolved = await c.wait(lookup(request.host));
  } catch (error) {
    // The handshake's own failures (the deadline, the proxy closing) pass; what remains is the lookup's.
    if (error instanceof ConnectorError || !(error instanceof Error)) throw error;
    throw new ProxyHostNotFoundError(
      `The broker host "${request.host}" could not be resolved here (the proxy URL ${route.proxy} is socks5://, ` +
        `which resolves it before asking the proxy to connect to ${route.broker}); check the host name, or use ` +
        'socks5h:// so that the proxy resolves it.',
      error.message,
    );
  }
  return addressBytes(resolved.address, resolved.family);
}

function addressBytes(address: string, family: number): Buffer {
  if (family === 4) return Buffer.from([IPV4, ...address.split('.').map(Number)]);
  return Buffer.concat([Buffer.from([IPV6]), ipv6Bytes(address)]);
}

/** The 16 bytes of an IPv6 address in any of its text forms (compressed, with an embedded IPv4 address). */
function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const groups = (part: string | undefined): number[] =>
    (part ?? '')
      .split(':')
      .filter((group) => group !== '')
      .flatMap((group) => {
        if (!isIPv4(group)) return [parseInt(group, 16)];
        const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
        return [(a << 8) | b, (c << 8) | d];
      });
  const left = groups(head);
  const right = groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
  return bytes;
}

/**
 * How long the proxy's reply to CONNECT is, once enough of it has come to tell (its length depends on the type of
 * address it reports); throws as soon as its second byte refuses the connection, without waiting for the rest.
 */
export function connectReplyLength(b: Buffer, route: Route, sent: 'name' | 'ipv4' | 'ipv6'): number | undefined {
  if (b.length > 0 && b[0] !== VERSION) {
    throw notTheProtocol(route, 'its answer to CONNECT is not a SOCKS5 reply', bytesSeen(b));
  }
  if (b.length < 2) return undefined;
  const code = b[1] as number;
  if (code !== 0x00) throw replyError(code, route, sent);
  if (b.length < 5) return undefined;
  const type = b[3];
  const addressLength = type === IPV4 ? 4 : type === IPV6 ? 16 : type === DOMAIN_NAME ? 1 + (b[4] as number) : -1;
  if (addressLength < 0) throw notTheProtocol(route, 'its answer to CONNECT names no known address type', bytesSeen(b));
  const length = 4 + addressLength + 2;
  return b.length >= length ? length : undefined;
}

function replyError(code: number, route: Route, sent: 'name' | 'ipv4' | 'ipv6'): Error {
  const words = SOCKS5_REPLIES[code] ?? `unassigned reply code 0x${hex(code)}`;
  const detail = `SOCKS5 reply 0x${hex(code)}`;
  switch (code) {
    case 0x02:
      return proxyRefusedBroker(
        route,
        words,
        "its rules do not allow this destination; check the broker's host and port, or ask the proxy's " +
          'administrators to allow it.',
        detail,
      );
    case 0x07:
      return proxyRefusedBroker(route, words, 'it does not offer the CONNECT command the connector needs.', detail);
    case 0x08:
      return proxyRefusedBroker(
        route,
        words,
        sent === 'name'
          ? 'it does not take host names; use socks5:// so that the broker host is resolved here.'
          : `it does not take ${sent === 'ipv6' ? 'IPv6' : 'IPv4'} addresses; name the broker differently.`,
        detail,
      );
    case 0x01:
      return brokerUnreachable(
        route,
        `the proxy answered "${words}"${sent === 'name' ? ' (as one that cannot resolve the broker host does)' : ''}`,
        detail,
      );
    default:
      return brokerUnreachable(route, `the proxy answered "${words}"`, detail);
  }
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, '0');
}
