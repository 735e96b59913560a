/**
 * One HTTP(S) POST with a deadline and a cap on the answer's size, for token requests.
 *
 * Built on node:http and node:https rather than the global fetch: an identity provider inside a private network is
 * often signed by the same private authority as the broker, and node:https takes that certificate (`ca`) where
 * Node 20's fetch cannot without adding undici as a dependency. It also follows no redirect (a token endpoint has no
 * reason to send one, and following it would carry the client's credentials elsewhere), and one deadline covers
 * connecting, the TLS handshake, the headers and the body alike.
 */
import type * as Http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';

// node:http and node:https are loaded at the first token request, not when this module is: every `check` and `write`
// loads this module, few of them ask a token endpoint, and loading both took about 24 million instructions per start
// (callgrind, Node 20), 4 % of a `check` that the broker refuses.
const require = createRequire(import.meta.url);
type Request = typeof Http.request;
function requestFor(protocol: string): Request {
  return protocol === 'https:'
    ? (require('node:https') as typeof Https).request
    : (require('node:http') as typeof Http).request;
}

/**
 * The most of an answer that is read. A token answer is a few kilobytes (a JWT and its claims); this bounds what a
 * wrong URL (a large web page, a download) makes the connector hold.
 */
export const MAX_ANSWER_BYTES = 256 * 1024;

export interface HttpAnswer {
  readonly status: number;
  /** The answer's text; undefined when it was longer than `MAX_ANSWER_BYTES` (the rest is not read). */
  readonly body: string | undefined;
}

export interface PostOptions {
  /** Deadline for the whole exchange, from the first byte sent to the last received. */
  readonly timeoutMs: number;
  /** Certificate authorities to trust instead of Node's own list, PEM. */
  readonly ca?: string;
}

export type HttpPost = (
  url: URL,
  headers: Readonly<Record<string, string>>,
  body: string,
  options: PostOptions,
) => Promise<HttpAnswer>;

/** The exchange did not complete within its deadline. */
export class PostTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`);
    this.name = 'PostTimeoutError';
  }
}

function readCapped(response: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        response.destroy();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
  });
}

export const httpPost: HttpPost = (url, headers, body, options) =>
  new Promise<HttpAnswer>((resolve, reject) => {
    const send = requestFor(url.protocol);
    const payload = Buffer.from(body, 'utf8');
    const request = send(url, {
      method: 'POST',
      headers: { ...headers, 'Content-Length': String(payload.length) },
      ...(options.ca !== undefined && url.protocol === 'https:' ? { ca: options.ca } : {}),
    });
    let answer: IncomingMessage | undefined;
    const deadline = setTimeout(() => {
      // Both halves: once the headers are in, destroying the request alone reports a reset, not the timeout.
      const timeout = new PostTimeoutError(options.timeoutMs);
      answer?.destroy(timeout);
      request.destroy(timeout);
    }, options.timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(deadline);
      reject(err);
    };
    request.on('error', fail);
    request.on('response', (response) => {
      answer = response;
      readCapped(response).then((text) => {
        clearTimeout(deadline);
        resolve({ status: response.statusCode ?? 0, body: text });
      }, fail);
    });
    request.end(payload);
  });
