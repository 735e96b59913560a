/**
 * AWS Signature Version 4 for a presigned URL, and the URL AWS IoT Core accepts for MQTT over WebSocket with IAM
 * credentials: `wss://<endpoint>/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&...&X-Amz-Signature=...`, service
 * `iotdevicegateway`.
 *
 * The building blocks follow AWS's description of SigV4 (canonical request, string to sign, signing key, signature)
 * and are tested against AWS's published examples. One quirk is AWS IoT's own: with temporary credentials the
 * `X-Amz-Security-Token` parameter is appended after signing, not signed (AWS IoT Developer Guide, "IAM users, groups,
 * and roles"), where other services sign it.
 */
import { createHash, createHmac } from 'node:crypto';
import { CredentialConfigError, type FieldName, fieldKeyName } from './errors.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';

/** SHA-256 of an empty payload, hex: what a GET without a body signs. */
export const EMPTY_PAYLOAD_SHA256 = createHash('sha256').update('').digest('hex');

/** AWS IoT's service name for the MQTT message broker. */
export const IOT_SERVICE = 'iotdevicegateway';

/** AWS IoT closes a WebSocket connection after 24 h; a URL need not outlive the connection it opens. */
export const IOT_MAX_CONNECTION_SECONDS = 24 * 60 * 60;

/** SigV4 refuses a presigned URL valid for longer than seven days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 60 * 60;

/**
 * Percent-encoding as SigV4 wants it: every byte but the RFC 3986 unreserved characters (letters, digits, `-._~`),
 * upper-case hex. `encodeURIComponent` leaves `!'()*` alone, which would sign a different string than AWS checks.
 */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The two forms of the signing time: `20150830T123600Z` and `20150830`. */
export function amzDate(now: Date): { amzDate: string; dateStamp: string } {
  const iso = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  return { amzDate: iso, dateStamp: iso.slice(0, 8) };
}

export interface CanonicalRequestInput {
  readonly method: string;
  /** The path, already percent-encoded as it goes on the wire (`/mqtt`, `/test.txt`). */
  readonly path: string;
  /** Query parameters, unencoded; they are encoded and sorted here. */
  readonly query: readonly (readonly [string, string])[];
  /** Headers to sign, by name in any case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Hex SHA-256 of the payload, or `UNSIGNED-PAYLOAD` where a service allows it. */
  readonly payloadHash: string;
}

/** The query string as signed and sent: encoded names and values, sorted by name, then by value. */
export function canonicalQuery(query: readonly (readonly [string, string])[]): string {
  return query
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** The canonical request and the list of signed header names (`host`, or `content-type;host;x-amz-date`). */
export function canonicalRequest(input: CanonicalRequestInput): { text: string; signedHeaders: string } {
  const headers = Object.entries(input.headers)
    .map(([name, value]) => [name.toLowerCase(), value.trim().replace(/ +/g, ' ')] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = headers.map(([name]) => name).join(';');
  const text = [
    input.method,
    input.path,
    canonicalQuery(input.query),
    headers.map(([name, value]) => `${name}:${value}\n`).join(''),
    signedHeaders,
    input.payloadHash,
  ].join('\n');
  return { text, signedHeaders };
}

export function credentialScope(dateStamp: string, region: string, service: string): string {
  return `${dateStamp}/${region}/${service}/aws4_request`;
}

export function stringToSign(amzDateTime: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDateTime, scope, createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** The key derived from the secret for one day, region and service: four HMACs, each keyed by the one before. */
export function signingKey(secretAccessKey: string, dateStamp: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, dateStamp), region), service), 'aws4_request');
}

/** The signature, hex. */
export function signature(key: Buffer, toSign: string): string {
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

export interface PresignInput {
  readonly method: string;
  /** Host name, with `:port` when not the scheme's default: it is the one signed header. */
  readonly host: string;
  /** Encoded path. */
  readonly path: string;
  readonly service: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly now: Date;
  /** Sent as `X-Amz-Expires`; omitted when undefined. */
  readonly expiresSeconds?: number;
  readonly payloadHash: string;
}

/** The query string of a presigned request: the signed parameters, then `X-Amz-Signature`. */
export function presignedQuery(input: PresignInput): string {
  const { amzDate: when, dateStamp } = amzDate(input.now);
  const scope = credentialScope(dateStamp, input.region, input.service);
  const query: [string, string][] = [
    ['X-Amz-Algorithm', ALGORITHM],
    ['X-Amz-Credential', `${input.accessKeyId}/${scope}`],
    ['X-Amz-Date', when],
    ['X-Amz-SignedHeaders', 'host'],
  ];
  if (input.expiresSeconds !== undefined) {
    if (!Number.isSafeInteger(input.expiresSeconds) || input.expiresSeconds < 1) {
      throw new RangeError(`X-Amz-Expires must be a whole number of seconds from 1, not ${input.expiresSeconds}`);
    }
    query.push(['X-Amz-Expires', String(Math.min(input.expiresSeconds, MAX_PRESIGN_SECONDS))]);
  }
  const canonical = canonicalRequest({
    method: input.method,
    path: input.path,
    query,
    headers: { host: input.host },
    payloadHash: input.payloadHash,
  });
  const key = signingKey(input.secretAccessKey, dateStamp, input.region, input.service);
  const signed = signature(key, stringToSign(when, scope, canonical.text));
  return `${canonicalQuery(query)}&X-Amz-Signature=${signed}`;
}

export interface IotPresignInput {
  /** The account's AWS IoT data endpoint, a host name: `abc123-ats.iot.eu-west-1.amazonaws.com`. */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** For temporary credentials (STS); appended after signing, as AWS IoT requires. */
  readonly sessionToken?: string;
  readonly now: Date;
  /**
   * How long the URL may be used to open a connection (`X-Amz-Expires`). Omitted by default, as in AWS IoT's own
   * example: the URL is made for a connection opened at once, and that connection lasts up to 24 h whatever this says.
   */
  readonly expiresSeconds?: number;
}

const HOST = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
const REGION = /^[a-z]{2}(-[a-z0-9]+)+$/;

/** Why the endpoint or region cannot be signed for, or undefined when they can. */
export function iotPresignProblem(
  input: Pick<IotPresignInput, 'endpoint' | 'region'>,
  field: FieldName = fieldKeyName,
): { message: string; field: 'broker_host' | 'auth_method.region' } | undefined {
  if (!HOST.test(input.endpoint.toLowerCase())) {
    return {
      message: `${field('broker_host')} must be the AWS IoT endpoint's host name alone (no scheme, no path).`,
      field: 'broker_host',
    };
  }
  if (!REGION.test(input.region)) {
    return {
      message: `${field('auth_method.region')} must be an AWS region code such as "eu-west-1".`,
      field: 'auth_method.region',
    };
  }
  return undefined;
}

/** A presigned `wss://` URL for MQTT over WebSocket to AWS IoT Core. */
export function presignedIotWebSocketUrl(input: IotPresignInput, field: FieldName = fieldKeyName): string {
  const problem = iotPresignProblem(input, field);
  if (problem) throw new CredentialConfigError(problem.message, [problem.field]);
  const host = input.endpoint.toLowerCase();
  const query = presignedQuery({
    method: 'GET',
    host,
    path: '/mqtt',
    service: IOT_SERVICE,
    region: input.region,
    accessKeyId: input.accessKeyId,
    secretAccessKey: input.secretAccessKey,
    now: input.now,
    expiresSeconds: input.expiresSeconds,
    payloadHash: EMPTY_PAYLOAD_SHA256,
  });
  const token = input.sessionToken ? `&X-Amz-Security-Token=${uriEncode(input.sessionToken)}` : '';
  return `wss://${host}/mqtt?${query}${token}`;
}
