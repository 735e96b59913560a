/**
 * What can go wrong on the way to the broker through a proxy, as errors that tell the user which end to look at: the
 * proxy itself (unreachable, silent, not the protocol the URL names), the proxy's rules (credentials, destinations it
 * refuses) or the broker behind it (the proxy answered that it could not reach it). Each carries the Airbyte failure
 * type of its base class: what only the configuration can fix is a `ConfigError`, what may pass is a `TransientError`.
 *
 * Every message names the proxy as scheme://host:port and the broker as host:port, and never a credential: the user
 * name and password go to the proxy and nowhere else.
 */
import { ConfigError, TransientError } from '../errors.js';

/** The connection to the proxy could not be opened: refused, timed out, network unreachable. */
export class ProxyUnreachableError extends TransientError {}

/** A host name did not resolve: the proxy's, or the broker's when a socks5:// URL asks to resolve it here. */
export class ProxyHostNotFoundError extends ConfigError {}

/** The proxy accepted the connection but did not complete its handshake in time. */
export class ProxyTimeoutError extends TransientError {}

/** The proxy wants credentials it was not given, or refused the ones it was given. */
export class ProxyAuthenticationError extends ConfigError {}

/** The proxy answered that it will not connect to the broker: its rules forbid the destination, or the request. */
export class ProxyRefusedError extends ConfigError {}

/** The proxy was reached and tried, but could not reach the broker behind it (refused, unreachable, timed out). */
export class BrokerUnreachableThroughProxyError extends TransientError {}

/** What came back is not the protocol the URL's scheme names: most likely the scheme or the port is wrong. */
export class ProxyProtocolError extends ConfigError {}

/** How a message names the two ends: `proxy` is from `describeProxy`, `broker` is host:port. */
export interface Route {
  readonly proxy: string;
  readonly broker: string;
  /** For messages about the handshake. */
  readonly protocol: 'SOCKS5' | 'HTTP CONNECT';
}

const SCHEME_HINT =
  "The proxy URL's scheme may be wrong: socks5:// and socks5h:// are for SOCKS5 proxies, http:// for HTTP proxies " +
  '(CONNECT); also check its port.';

export function proxyUnreachable(route: Route, reason: string, detail?: string): ProxyUnreachableError {
  return new ProxyUnreachableError(
    `Could not reach the proxy at ${route.proxy} (on the way to the broker at ${route.broker}): ${reason}; ` +
      "check the proxy URL's host and port, that the proxy is running, and that this network can reach it.",
    detail,
  );
}

export function proxyTimedOut(route: Route, seconds: number, hint: string): ProxyTimeoutError {
  return new ProxyTimeoutError(
    `The proxy at ${route.proxy} accepted the connection but did not complete the ${route.protocol} handshake for ` +
      `the broker at ${route.broker} within ${seconds} s: ${hint}`,
  );
}

export function proxyNeedsCredentials(route: Route, detail?: string, extra = ''): ProxyAuthenticationError {
  return new ProxyAuthenticationError(
    `The proxy at ${route.proxy} requires a user name and password (on the way to the broker at ${route.broker}); ` +
      `set the proxy's user name and password.${extra}`,
    detail,
  );
}

export function proxyRefusedCredentials(route: Route, detail?: string, extra = ''): ProxyAuthenticationError {
  return new ProxyAuthenticationError(
    `The proxy at ${route.proxy} refused the user name and password (on the way to the broker at ${route.broker}); ` +
      `check the proxy's user name and password.${extra}`,
    detail,
  );
}

export function proxyRefusedBroker(route: Route, answer: string, hint: string, detail?: string): ProxyRefusedError {
  return new ProxyRefusedError(
    `The proxy at ${route.proxy} refuses to connect to the broker at ${route.broker} (it answered "${answer}"): ` +
      hint,
    detail,
  );
}

/** `how` says how the proxy told: it answered "connection refused", it closed the connection. */
export function brokerUnreachable(route: Route, how: string, detail?: string): BrokerUnreachableThroughProxyError {
  return new BrokerUnreachableThroughProxyError(
    `Reached the proxy at ${route.proxy} but not the broker at ${route.broker} behind it: ${how}. ` +
      "Check the broker's host and port, and that the broker is running and reachable from the proxy.",
    detail,
  );
}

export function notTheProtocol(route: Route, what: string, detail?: string): ProxyProtocolError {
  return new ProxyProtocolError(
    `The proxy at ${route.proxy} did not answer as ${route.protocol === 'SOCKS5' ? 'a' : 'an'} ${route.protocol} ` +
      `proxy (on the way to the broker at ` +
      `${route.broker}): ${what}. ${SCHEME_HINT}`,
    detail,
  );
}

/** The first bytes of a reply, in hex, for the internal message: enough to recognise what answered. */
export function bytesSeen(buffer: Buffer): string {
  const shown = buffer.subarray(0, 32).toString('hex');
  return `received ${buffer.length} byte(s): ${shown}${buffer.length > 32 ? '...' : ''}`;
}
