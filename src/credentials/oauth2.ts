/**
 * The OAuth2 client credentials grant (RFC 6749 §4.4): the connector, as a client of an identity provider, trades its
 * client ID and secret for an access token, which the broker accepts as a password or as MQTT 5 authentication data.
 *
 * The client authenticates with HTTP Basic (RFC 6749 §2.3.1), which every authorisation server must support; the
 * form body carries only `grant_type` and `scope`. Failures say which field to fix, or that trying later may help.
 * No message ever holds the client secret, a token or the endpoint's own answer: an endpoint may echo what it was
 * sent, so only its `error` code and a cleaned, redacted, shortened `error_description` are shown.
 */
import { Redactor } from '../text/redaction.js';
import {
  CredentialConfigError,
  type CredentialField,
  CredentialUnavailableError,
  type FieldName,
  fieldKeyName,
} from './errors.js';
import { type HttpAnswer, type HttpPost, PostTimeoutError, httpPost } from './http-post.js';

export interface ClientCredentialsRequest {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Space-separated scopes; omitted from the request when undefined or blank. */
  readonly scope?: string;
  /** Deadline for the whole exchange with the endpoint. */
  readonly timeoutMs: number;
  /** Certificate authorities to trust for an https endpoint instead of Node's own list, PEM. */
  readonly ca?: string;
}

export interface AccessToken {
  readonly accessToken: string;
  /** `expires_in` of the answer; undefined when the endpoint did not say (or said something that is no lifetime). */
  readonly expiresInSeconds: number | undefined;
}

export interface TokenRequestOptions {
  /** How messages name fields; by default their keys. */
  readonly field?: FieldName;
  /** The HTTP exchange; tests replace it. */
  readonly post?: HttpPost;
}

/** The longest `error_description` shown; past it the endpoint is explaining more than a user reads. */
export const MAX_DESCRIPTION_CHARS = 300;

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Why a token endpoint URL cannot be used, or undefined when it can. It must be https: the request carries the client
 * secret and the answer a bearer token, which anyone on the path could read and reuse. Loopback hosts may use http, as
 * nothing leaves the machine (tests, and a local identity provider during development).
 */
export function tokenUrlProblem(tokenUrl: string, field: FieldName = fieldKeyName): string | undefined {
  const name = field('auth_method.token_url');
  let url: URL;
  try {
    url = new URL(tokenUrl);
  } catch {
    return `${name} is not a URL; give the identity provider's token endpoint, starting with https://.`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return `${name} must be an https:// URL, not ${url.protocol}.`;
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    return `${name} must use https://: over http:// the client secret and the token would travel unencrypted.`;
  }
  if (url.username !== '' || url.password !== '') {
    return (
      `${name} must not hold a user name or password; the client ID and secret go in ` +
      `${field('auth_method.client_id')} and ${field('auth_method.client_secret')}.`
    );
  }
  return undefined;
}

/** `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 §2.3.1 asks before Basic's base64. */
function formEncoded(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** The endpoint as messages show it: without a query, which could carry something meant for the endpoint only. */
function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** The JSON object of an answer, or undefined when it is none. */
function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** `expires_in` as seconds: a positive number, or digits in a string (some providers send `"3599"`). */
function lifetimeOf(value: unknown): number | undefined {
  const seconds = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}

/** An `error` code as RFC 6749 §5.2 allows it (printable ASCII but `"` and `\`), short; anything else is dropped. */
function errorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(value) ? value : undefined;
}

/**
 * The endpoint's `error_description`, fit to show: one line, every configured secret masked, then shortened. Masking
 * comes first so that shortening cannot leave part of a secret behind.
 */
function descriptionOf(value: unknown, redactor: Redactor): string | undefined {
  if (typeof value !== 'string') return undefined;
  // Control characters, including line breaks, would let an endpoint forge lines of the connector's output.
  // eslint-disable-next-line no-control-regex
  const line = redactor.text(value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')).trim();
  if (line === '') return undefined;
  return line.length > MAX_DESCRIPTION_CHARS ? `${line.slice(0, MAX_DESCRIPTION_CHARS - 1)}…` : line;
}

/** What to fix when the token endpoint answers with an OAuth2 error code: the fields, and the advice naming them. */
interface TokenErrorAdvice {
  readonly fields: readonly CredentialField[];
  readonly advice: (field: FieldName) => string;
}

const CHECK_CLIENT: TokenErrorAdvice = {
  fields: ['auth_method.client_secret', 'auth_method.client_id'],
  advice: (field) =>
    `check ${field('auth_method.client_id')} and ${field('auth_method.client_secret')} ` +
    '(a secret may also have expired at the identity provider)',
};

/** What each `error` code of RFC 6749 §5.2 asks the user to fix. */
const TOKEN_ERRORS: Readonly<Record<string, TokenErrorAdvice>> = {
  invalid_client: CHECK_CLIENT,
  invalid_grant: CHECK_CLIENT,
  unauthorized_client: {
    fields: ['auth_method.client_id'],
    advice: (field) =>
      `the identity provider does not allow the client ${field('auth_method.client_id')} names to use the client ` +
      'credentials grant; allow it for that application, or use a client that has it',
  },
  invalid_scope: {
    fields: ['auth_method.scope'],
    advice: (field) =>
      `check ${field('auth_method.scope')} (Microsoft Entra ID, for example, expects "<resource>/.default", such ` +
      'as "https://eventgrid.azure.net/.default")',
  },
  unsupported_grant_type: {
    fields: ['auth_method.token_url'],
    advice: (field) =>
      `the endpoint does not offer the client credentials grant; check that ${field('auth_method.token_url')} is the ` +
      "provider's token endpoint and that the grant is enabled for the client",
  },
  invalid_request: {
    fields: ['auth_method.token_url', 'auth_method.scope'],
    advice: (field) =>
      `check ${field('auth_method.token_url')} and ${field('auth_method.scope')}; the provider's description below ` +
      'may say what it missed',
  },
};

/** Codes that say the endpoint is in trouble, not the request (RFC 6749 §4.1.2.1 names them for the other flows). */
const PASSING_TROUBLE = new Set(['server_error', 'temporarily_unavailable']);

/** Turns an answer that is not a token into an error: a configuration problem or a passing one. */
function refusal(answer: HttpAnswer, url: URL, redactor: Redactor, field: FieldName): Error {
  const status = answer.status;
  const body = jsonObject(answer.body);
  const code = errorCode(body?.error);
  const description = descriptionOf(body?.error_description, redactor);
  const said = code ? ` "${code}"${description ? ` (${description})` : ''}` : '';
  const internal = `HTTP ${status}${code ? ` error=${code}` : ''}`;
  const where = shown(url);
  if (status >= 500 || status === 408 || status === 429 || (code && PASSING_TROUBLE.has(code))) {
    return new CredentialUnavailableError(
      `The token endpoint ${where} answered HTTP ${status}${said}; it may be busy or down, trying later may succeed.`,
      internal,
    );
  }
  const known = code ? TOKEN_ERRORS[code] : undefined;
  const reason = known ?? (status === 401 ? CHECK_CLIENT : undefined);
  if (reason) {
    return new CredentialConfigError(
      `The token endpoint ${where} refused the client credentials with HTTP ${status}${said}: ${reason.advice(field)}.`,
      reason.fields,
      internal,
    );
  }
  if (status === 403) {
    return new CredentialConfigError(
      `The token endpoint ${where} forbade the request with HTTP 403${said}; check that the client ` +
        `${field('auth_method.client_id')} names may obtain tokens there.`,
      ['auth_method.client_id'],
      internal,
    );
  }
  return new CredentialConfigError(
    `The token endpoint ${where} answered HTTP ${status}${said}, not a token: ${field('auth_method.token_url')} is ` +
      "probably not the identity provider's token endpoint.",
    ['auth_method.token_url'],
    internal,
  );
}

/** A failure to exchange anything with the endpoint: no such host, refused, reset, untrusted certificate, timeout. */
function unreachable(err: unknown, url: URL, field: FieldName): Error {
  const where = shown(url);
  const name = field('auth_method.token_url');
  if (err instanceof PostTimeoutError) {
    return new CredentialUnavailableError(
      `The token endpoint ${where} did not answer within ${err.timeoutMs / 1000} s; trying later may succeed.`,
      err.message,
      { cause: err },
    );
  }
  const code = (err as { code?: unknown } | null)?.code;
  const detail =
    `${err instanceof Error ? err.message : 'unknown failure'}` + `${typeof code === 'string' ? ` (${code})` : ''}`;
  if (code === 'ENOTFOUND') {
    return new CredentialConfigError(
      `The host of ${name} (${url.hostname}) could not be resolved; check the URL.`,
      ['auth_method.token_url'],
      detail,
      { cause: err },
    );
  }
  if (typeof code === 'string' && (/CERT|SELF_SIGNED|ISSUER|LEAF_SIGNATURE/.test(code) || code.startsWith('ERR_SSL'))) {
    return new CredentialConfigError(
      `The TLS connection to the token endpoint ${where} failed: its certificate is not trusted or does not match ` +
        `the host (${code}); check ${name}.`,
      ['auth_method.token_url'],
      detail,
      { cause: err },
    );
  }
  // Refused, reset, unreachable network, a DNS server that did not answer (EAI_AGAIN): all may pass.
  return new CredentialUnavailableError(
    `Could not reach the token endpoint ${where}${typeof code === 'string' ? ` (${code})` : ''}; ` +
      'trying later may succeed.',
    detail,
    { cause: err },
  );
}

/** Asks the token endpoint for an access token with the client credentials grant. */
export async function fetchClientCredentialsToken(
  request: ClientCredentialsRequest,
  options: TokenRequestOptions = {},
): Promise<AccessToken> {
  const field = options.field ?? fieldKeyName;
  const problem = tokenUrlProblem(request.tokenUrl, field);
  if (problem) throw new CredentialConfigError(problem, ['auth_method.token_url']);
  const url = new URL(request.tokenUrl);
  const basic = `${formEncoded(request.clientId)}:${formEncoded(request.clientSecret)}`;
  const basicBase64 = Buffer.from(basic, 'utf8').toString('base64');
  // What an endpoint may echo back: the secret as it is, as encoded for Basic, and the header value itself.
  const redactor = new Redactor();
  redactor.add([request.clientSecret, formEncoded(request.clientSecret), basic, basicBase64]);
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  const scope = request.scope?.trim();
  if (scope) form.set('scope', scope);
  const headers = {
    Authorization: `Basic ${basicBase64}`,
    'Content-Type': 'application/x-www-form-urlencoded',
    Accept: 'application/json',
  };
  let answer: HttpAnswer;
  try {
    answer = await (options.post ?? httpPost)(url, headers, form.toString(), {
      timeoutMs: request.timeoutMs,
      ...(request.ca !== undefined ? { ca: request.ca } : {}),
    });
  } catch (err) {
    throw unreachable(err, url, field);
  }
  if (answer.status < 200 || answer.status > 299) throw refusal(answer, url, redactor, field);
  const body = jsonObject(answer.body);
  const accessToken = body?.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new CredentialConfigError(
      `The token endpoint ${shown(url)} answered HTTP ${answer.status} without an access token ` +
        `(${body ? 'JSON without "access_token"' : 'not a JSON object'}): ${field('auth_method.token_url')} is ` +
        "probably not the identity provider's token endpoint.",
      ['auth_method.token_url'],
      `HTTP ${answer.status}, ${answer.body === undefined ? 'answer too long' : `${answer.body.length} characters`}`,
    );
  }
  return { accessToken, expiresInSeconds: lifetimeOf(body?.expires_in) };
}
