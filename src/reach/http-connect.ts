/**
 * The client side of an HTTP proxy's CONNECT method (RFC 9110, 9.3.6): ask the proxy for a tunnel to the broker,
 * with Basic credentials when there are some, and read its answer up to the blank line that ends the header block.
 * A 2xx status opens the tunnel, and what follows the blank line is already the broker's; any other status is the
 * proxy's refusal, and its code says whose fault it is.
 */
import type { Conversation } from './proxy-conversation.js';
import {
  type Route,
  brokerUnreachable,
  bytesSeen,
  notTheProtocol,
  proxyNeedsCredentials,
  proxyRefusedBroker,
  proxyRefusedCredentials,
  proxyTimedOut,
} from './proxy-errors.js';

/**
 * The most a header block may take before the proxy counts as broken: 16 KB, the limit of Node's own HTTP parser
 * (--max-http-header-size). tinyproxy 1.11's answers, refusals included, take under 200 bytes.
 */
export const MAX_HEADER_BLOCK = 16 * 1024;

const END_OF_HEADERS = Buffer.from('\r\n\r\n');
const HTTP_PREFIX = 'HTTP/';

/**
 * Statuses that say the proxy tried and failed to reach the broker: 502, 503 and 504 as RFC 9110 means them, and 500
 * because tinyproxy 1.11 answers "500 Unable to connect" for a refused port and for a name it cannot resolve.
 */
const BROKER_UNREACHABLE = new Set([500, 502, 503, 504]);

export interface ConnectRequest {
  readonly host: string;
  readonly port: number;
  readonly credentials: { readonly username: string; readonly password: string } | undefined;
  readonly timeoutMs: number;
}

export interface ConnectAnswer {
  readonly status: number;
  readonly reason: string;
  /** Header names in lower case, each with its values in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

export async function httpConnect(c: Conversation, route: Route, request: ConnectRequest): Promise<void> {
  c.enter({
    timedOut: () =>
      proxyTimedOut(
        route,
        request.timeoutMs / 1000,
        "it did not answer the CONNECT request. It may still be trying to reach the broker (check the broker's host " +
          "and port), or it may not be an HTTP proxy (check the proxy URL's scheme and port).",
      ),
    closed: (error, received) =>
      notTheProtocol(
        route,
        `it closed the connection ${received.length > 0 ? 'in the middle of its answer to' : 'without answering'} ` +
          'the CONNECT request',
        error?.message ?? bytesSeen(received),
      ),
  });
  c.write(connectRequest(request));
  const head = await c.read((b) => headerBlockLength(b, route));
  const answer = parseAnswer(head, route);
  if (answer.status >= 200 && answer.status < 300) return;
  throw refusal(answer, route, request.credentials !== undefined);
}

export function connectRequest(request: ConnectRequest): string {
  const authority = `${request.host.includes(':') ? `[${request.host}]` : request.host}:${request.port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (request.credentials) {
    const { username, password } = request.credentials;
    lines.push(`Proxy-Authorization: Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * The length of the status line and header block with the blank line that ends them, once it has all come. Refuses
 * what does not start as an HTTP response at once, rather than wait for a blank line that will not come.
 */
export function headerBlockLength(b: Buffer, route: Route): number | undefined {
  const start = b.subarray(0, HTTP_PREFIX.length).toString('latin1');
  if (!HTTP_PREFIX.startsWith(start)) throw notTheProtocol(route, 'its answer is not an HTTP response', bytesSeen(b));
  const end = b.indexOf(END_OF_HEADERS);
  const length = end === -1 ? undefined : end + END_OF_HEADERS.length;
  if ((length ?? b.length) > MAX_HEADER_BLOCK) {
    throw notTheProtocol(route, `its answer's header block is over ${MAX_HEADER_BLOCK / 1024} KB`, bytesSeen(b));
  }
  return length;
}

export function parseAnswer(head: Buffer, route: Route): ConnectAnswer {
  const [statusLine = '', ...fields] = head.toString('latin1').slice(0, -END_OF_HEADERS.length).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!status) throw notTheProtocol(route, 'its answer does not start with an HTTP/1 status line', bytesSeen(head));
  const headers = new Map<string, string[]>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0) continue;
    const name = field.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), field.slice(colon + 1).trim()]);
  }
  return { status: Number(status[1]), reason: printable(status[2] ?? ''), headers };
}

function refusal(answer: ConnectAnswer, route: Route, hadCredentials: boolean): Error {
  const said = `HTTP ${answer.status}${answer.reason ? ` ${answer.reason}` : ''}`;
  const detail = `CONNECT answered ${said}`;
  // 407 is the status for a proxy's authentication; tinyproxy 1.11 answers 407 to a CONNECT without credentials but
  // "401 Unauthorized" (with WWW-Authenticate) to one with a wrong user name or password.
  if (answer.status === 407 || answer.status === 401) {
    const challenges = [
      ...(answer.headers.get('proxy-authenticate') ?? []),
      ...(answer.headers.get('www-authenticate') ?? []),
    ];
    const schemes = challenges.map((value) => value.split(/\s/)[0] ?? '');
    const unsupported =
      schemes.length > 0 && !schemes.some((scheme) => scheme.toLowerCase() === 'basic')
        ? ` It asks for ${schemes.join(', ')} authentication, which the connector does not support (only Basic).`
        : '';
    return hadCredentials
      ? proxyRefusedCredentials(route, detail, unsupported)
      : proxyNeedsCredentials(route, detail, unsupported);
  }
  if (answer.status === 403) {
    return proxyRefusedBroker(
      route,
      said,
      "its rules do not allow a tunnel to this host or port; check the broker's host and port, or ask the " +
        "proxy's administrators to allow it.",
      detail,
    );
  }
  if (BROKER_UNREACHABLE.has(answer.status)) return brokerUnreachable(route, `the proxy answered "${said}"`, detail);
  return proxyRefusedBroker(
    route,
    said,
    'check that it is an HTTP proxy that allows CONNECT to the broker port.',
    detail,
  );
}

/** The reason phrase as a message may quote it: printable ASCII, at most 60 characters. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '').slice(0, 60);
}
