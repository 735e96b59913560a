/**
 * An OAuth2 token endpoint in the test process, on a free loopback port: the client credentials grant (RFC 6749 §4.4)
 * over real HTTP, so that token requests, token expiry and renewal are tested end to end, and brokers in tests can ask
 * it whether a token they are shown is one it issued and still valid.
 *
 * It checks the client as an authorisation server does (HTTP Basic, or client_id and client_secret in the form), and
 * issues opaque or JWT-shaped tokens with a chosen `expires_in`. It can be told to refuse every client
 * (401 invalid_client), to fail (500), to echo the secret back in its error (to test that messages mask it), to
 * never answer (to test timeouts), or to answer with a 1 MiB page (what a wrong URL may serve).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { type IncomingMessage, type RequestListener, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { after, before } from 'node:test';
import { until } from './until.js';

/** What the endpoint does with the next requests. */
export type EndpointMode = 'grant' | 'refuse' | 'fail' | 'echo-secret' | 'hang' | 'oversized';

export interface TokenEndpointOptions {
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** `expires_in` of each token; undefined leaves it out of the answer (the token never expires). Default 3600. */
  readonly expiresInSeconds?: number | undefined;
  /** `opaque`: random text; `jwt`: a signed HS256 JWT with `exp`. Default `jwt`. */
  readonly tokenKind?: 'opaque' | 'jwt';
  /** Scopes a client may ask for; a request for another is refused with invalid_scope. Default: any. */
  readonly scopes?: readonly string[];
  /** Serve https with this certificate and key (for 127.0.0.1) instead of http. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface IssuedToken {
  readonly token: string;
  readonly issuedAt: number;
  /** ms since the epoch; undefined when the answer had no `expires_in`. */
  readonly expiresAt: number | undefined;
  readonly scope: string | undefined;
}

export interface TokenRequestSeen {
  /** How the client authenticated: Basic header, form fields, or not at all. */
  readonly clientAuthentication: 'basic' | 'body' | 'none';
  readonly form: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
}

export interface TokenEndpoint {
  /** `http://127.0.0.1:<port>/oauth2/token`, or https with `tls`. */
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Every token issued, in order. */
  readonly issued: readonly IssuedToken[];
  /** Every request received, in order, whatever was answered. */
  readonly requests: readonly TokenRequestSeen[];
  mode: EndpointMode;
  expiresInSeconds: number | undefined;
  /** Whether this endpoint ever issued `token`. */
  knows(token: string): boolean;
  /** When `token` stops being valid (ms; Infinity for one without expiry), or undefined when it is not valid `now`. */
  validUntil(token: string, now?: number): number | undefined;
  isValid(token: string, now?: number): boolean;
  /** Resolves with the `count`-th token issued (1-based) once it is; rejects after `timeoutMs`. */
  waitForIssued(count: number, timeoutMs?: number): Promise<IssuedToken>;
  close(): Promise<void>;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** One value of application/x-www-form-urlencoded text, decoded (`+` is a space). */
function formDecoded(text: string): string {
  return new URLSearchParams(`v=${text}`).get('v') ?? '';
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'Cache-Control': 'no-store',
    ...headers,
  });
  response.end(text);
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenEndpoint(options: TokenEndpointOptions = {}): Promise<TokenEndpoint> {
  const clientId = options.clientId ?? 'connector';
  const clientSecret = options.clientSecret ?? 'client-secret';
  const tokenKind = options.tokenKind ?? 'jwt';
  const signingKey = randomBytes(32);
  const issued: IssuedToken[] = [];
  const byToken = new Map<string, IssuedToken>();
  const requests: TokenRequestSeen[] = [];
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  let origin = '';

  const makeToken = (now: number, expiresIn: number | undefined, scope: string | undefined): string => {
    if (tokenKind === 'opaque') return base64url(randomBytes(32));
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const claims = {
      iss: origin,
      sub: clientId,
      iat: Math.floor(now / 1000),
      ...(expiresIn !== undefined ? { exp: Math.floor(now / 1000) + expiresIn } : {}),
      ...(scope !== undefined ? { scope } : {}),
      jti: base64url(randomBytes(9)),
    };
    const body = `${header}.${base64url(JSON.stringify(claims))}`;
    return `${body}.${base64url(createHmac('sha256', signingKey).update(body).digest())}`;
  };

  const endpoint = {
    url: '',
    clientId,
    clientSecret,
    issued,
    requests,
    mode: 'grant' as EndpointMode,
    expiresInSeconds: 'expiresInSeconds' in options ? options.expiresInSeconds : 3600,
    knows: (token: string): boolean => byToken.has(token),
    validUntil(token: string, now = Date.now()): number | undefined {
      const entry = byToken.get(token);
      if (!entry) return undefined;
      const until = entry.expiresAt ?? Number.POSITIVE_INFINITY;
      return now < until ? until : undefined;
    },
    isValid(token: string, now = Date.now()): boolean {
      return endpoint.validUntil(token, now) !== undefined;
    },
    waitForIssued(count: number, timeoutMs = 10_000): Promise<IssuedToken> {
      return until(
        events,
        'issued',
        () => issued[count - 1],
        timeoutMs,
        () => `the token endpoint issued ${issued.length} tokens, not ${count}`,
      );
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const text = await readBody(request);
    if (request.method !== 'POST' || new URL(request.url ?? '/', origin).pathname !== '/oauth2/token') {
      send(response, 404, 'Not Found');
      return;
    }
    const form = Object.fromEntries(new URLSearchParams(text));
    const header = request.headers.authorization;
    const basic = /^Basic (.*)$/i.exec(header ?? '')?.[1];
    let id: string | undefined;
    let secret: string | undefined;
    let clientAuthentication: TokenRequestSeen['clientAuthentication'] = 'none';
    if (basic !== undefined) {
      // RFC 6749 §2.3.1: base64 of `id:secret`, each part form-encoded first.
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      id = formDecoded(colon < 0 ? decoded : decoded.slice(0, colon));
      secret = colon < 0 ? undefined : formDecoded(decoded.slice(colon + 1));
      clientAuthentication = 'basic';
    } else if (form.client_id !== undefined) {
      id = form.client_id;
      secret = form.client_secret;
      clientAuthentication = 'body';
    }
    requests.push({ clientAuthentication, form, contentType: request.headers['content-type'] });
    const invalidClient = { error: 'invalid_client', error_description: 'Client authentication failed.' };
    switch (endpoint.mode) {
      case 'hang':
        return; // The socket stays open until the client gives up or the endpoint closes.
      case 'fail':
        send(response, 500, 'Internal Server Error');
        return;
      case 'oversized':
        send(response, 200, `<html>${'x'.repeat(1024 * 1024)}</html>`);
        return;
      case 'refuse':
        send(response, 401, invalidClient, { 'WWW-Authenticate': 'Basic realm="token"' });
        return;
      case 'echo-secret':
        // What a careless endpoint does: repeat what it was sent, secret and all.
        send(response, 401, {
          error: 'invalid_client',
          error_description: `Client "${id ?? ''}" with secret "${secret ?? ''}" and header "${header ?? ''}" is unknown.`,
          request_body: text,
        });
        return;
      case 'grant':
        break;
    }
    if (id !== clientId || secret !== clientSecret) {
      send(response, 401, invalidClient, { 'WWW-Authenticate': 'Basic realm="token"' });
      return;
    }
    if (form.grant_type !== 'client_credentials') {
      send(response, 400, { error: 'unsupported_grant_type' });
      return;
    }
    const scope = form.scope;
    if (scope !== undefined && options.scopes && !scope.split(' ').every((s) => options.scopes?.includes(s))) {
      send(response, 400, { error: 'invalid_scope', error_description: `Scope "${scope}" is not allowed.` });
      return;
    }
    const now = Date.now();
    const expiresIn = endpoint.expiresInSeconds;
    const token: IssuedToken = {
      token: makeToken(now, expiresIn, scope),
      issuedAt: now,
      expiresAt: expiresIn === undefined ? undefined : now + expiresIn * 1000,
      scope,
    };
    issued.push(token);
    byToken.set(token.token, token);
    send(response, 200, {
      access_token: token.token,
      token_type: 'Bearer',
      ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}),
    });
    events.emit('issued', token);
  };

  const listener: RequestListener = (request, response) => {
    handle(request, response).catch((err: unknown) => {
      response.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  };
  const server = options.tls ? createHttpsServer({ ...options.tls }, listener) : createServer(listener);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  endpoint.url = `${origin}/oauth2/token`;
  return endpoint;
}

/**
 * A token endpoint for the tests of the calling `describe`: started in a `before` hook, closed in an `after` hook.
 * The object returned stands for the one started and may be used from hooks and tests only.
 */
export function withTokenEndpoint(options: TokenEndpointOptions = {}): TokenEndpoint {
  let started: TokenEndpoint | undefined;
  const get = (): TokenEndpoint => {
    if (!started) throw new Error('the token endpoint is used before its before hook started it');
    return started;
  };
  before(async () => {
    started = await startTokenEndpoint(options);
  });
  after(() => started?.close());
  return {
    get url() {
      return get().url;
    },
    get clientId() {
      return get().clientId;
    },
    get clientSecret() {
      return get().clientSecret;
    },
    get issued() {
      return get().issued;
    },
    get requests() {
      return get().requests;
    },
    get mode() {
      return get().mode;
    },
    set mode(mode: EndpointMode) {
      get().mode = mode;
    },
    get expiresInSeconds() {
      return get().expiresInSeconds;
    },
    set expiresInSeconds(seconds: number | undefined) {
      get().expiresInSeconds = seconds;
    },
    knows: (token) => get().knows(token),
    validUntil: (token, now) => get().validUntil(token, now),
    isValid: (token, now) => get().isValid(token, now),
    waitForIssued: (count, timeoutMs) => get().waitForIssued(count, timeoutMs),
    close: () => get().close(),
  };
}
