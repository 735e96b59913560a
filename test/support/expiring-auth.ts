/**
 * Credentials that expire, checked by an aedes broker the way cloud brokers check them: in aedes's `authenticate`
 * hook, a connection is accepted only with a valid credential, and is closed when that credential expires (a timer
 * per connection, set from the credential's expiry), as Azure IoT Hub does when a SAS token runs out. aedes speaks
 * MQTT 3.1.1 only, so a close is all the client sees: no DISCONNECT with a reason.
 *
 * Two checks: an IoT Hub device's SAS token (signature and `se` verified here from the documented recipe, written
 * independently of src/credentials), and a bearer token as the password (asked of a token endpoint).
 * Refusals follow one rule: a credential that is wrong is refused with return code 4 (bad user name or password), one
 * that has expired with 5 (not authorised).
 *
 *   const auth = sasAuth({ hubHostname, deviceId, deviceKey });
 *   const broker = await startAedes({ authenticate: auth.authenticate });
 *   ...
 *   await auth.waitFor('expired', 1);
 *   auth.close(); await broker.close();
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AedesOptions } from 'aedes';
import { until } from './until.js';

type Authenticate = NonNullable<AedesOptions['authenticate']>;
type AedesClient = Parameters<Authenticate>[0];

/** When a credential stops being valid (ms since the epoch; Infinity for never), or why it is not valid now. */
export type CredentialCheck =
  { readonly validUntil: number } | { readonly refused: 'wrong' | 'expired'; readonly reason: string };

/** Checks what a client sent at `now`. */
export type Checker = (client: { id: string; username?: string; password?: string }, now: number) => CredentialCheck;

export interface AuthEvent {
  readonly clientId: string;
  readonly at: number;
  /** Why a connect was refused; empty for other events. */
  readonly reason: string;
}

export type AuthEventKind = 'accepted' | 'refused' | 'expired';

export interface ExpiringAuth {
  /** For aedes's options. */
  readonly authenticate: Authenticate;
  readonly accepted: readonly AuthEvent[];
  readonly refused: readonly AuthEvent[];
  /** Connections closed because their credential expired. */
  readonly expired: readonly AuthEvent[];
  /** Resolves once `count` events of the kind have happened; rejects after `timeoutMs`. */
  waitFor(kind: AuthEventKind, count: number, timeoutMs?: number): Promise<AuthEvent>;
  /** Cancels the expiry timers of connections still open. */
  close(): void;
}

/**
 * setTimeout fires at once for delays past 2^31 - 1 ms (24.8 days); a credential valid longer than that outlives any
 * test, so it gets no timer.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** An aedes `authenticate` hook that accepts what `check` accepts and closes each connection when it expires. */
export function expiringAuth(check: Checker): ExpiringAuth {
  const events = new EventEmitter();
  const log: Record<AuthEventKind, AuthEvent[]> = { accepted: [], refused: [], expired: [] };
  const timers = new Set<NodeJS.Timeout>();
  const record = (kind: AuthEventKind, clientId: string, reason = '') => {
    log[kind].push({ clientId, at: Date.now(), reason });
    events.emit(kind);
  };
  const closeAtExpiry = (client: AedesClient, validUntil: number) => {
    const delay = validUntil - Date.now();
    if (delay > MAX_TIMER_MS) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (client.closed) return;
      record('expired', client.id);
      client.close();
    }, delay);
    timers.add(timer);
    client.conn.once('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  };
  const authenticate: Authenticate = (client, username, password, done) => {
    const result = check(
      {
        id: client.id,
        ...(username !== undefined ? { username } : {}),
        ...(password !== undefined ? { password: password.toString('utf8') } : {}),
      },
      Date.now(),
    );
    if ('refused' in result) {
      record('refused', client.id, result.reason);
      const returnCode = result.refused === 'expired' ? (5 as const) : (4 as const);
      done(Object.assign(new Error(result.reason), { returnCode }), false);
      return;
    }
    record('accepted', client.id);
    closeAtExpiry(client, result.validUntil);
    done(null, true);
  };
  return {
    authenticate,
    accepted: log.accepted,
    refused: log.refused,
    expired: log.expired,
    waitFor: (kind, count, timeoutMs = 10_000) =>
      until(
        events,
        kind,
        () => log[kind][count - 1],
        timeoutMs,
        () =>
          `${log[kind].length} ${kind} (of ${count}); accepted ${log.accepted.length}, refused ` +
          `${log.refused.map((event) => event.reason).join(', ') || 'none'}, expired ${log.expired.length}`,
      ),
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

export interface SasDevice {
  readonly hubHostname: string;
  readonly deviceId: string;
  /** base64, as the portal shows it. */
  readonly deviceKey: string;
}

/**
 * Verifies an IoT Hub device's connect as the hub does: client ID the device ID, user name
 * `<hub>/<device>/?api-version=...`, password `SharedAccessSignature sr=...&sig=...&se=...` signed with the device key
 * over `sr + "\n" + se`, and `se` not yet past.
 */
export function sasChecker(device: SasDevice): Checker {
  const hub = device.hubHostname.toLowerCase();
  const resource = encodeURIComponent(`${hub}/devices/${device.deviceId}`);
  const key = Buffer.from(device.deviceKey, 'base64');
  return (client, now) => {
    const wrong = (reason: string): CredentialCheck => ({ refused: 'wrong', reason });
    if (client.id !== device.deviceId) return wrong(`client ID "${client.id}" is not the device ID`);
    const username = client.username ?? '';
    if (!username.toLowerCase().startsWith(`${hub}/${device.deviceId.toLowerCase()}/?api-version=`)) {
      return wrong(`user name "${username}" is not <hub>/<device>/?api-version=...`);
    }
    const password = client.password ?? '';
    const prefix = 'SharedAccessSignature ';
    if (!password.startsWith(prefix)) return wrong('the password is not a SharedAccessSignature');
    const fields = new Map<string, string>();
    for (const pair of password.slice(prefix.length).split('&')) {
      const equals = pair.indexOf('=');
      if (equals > 0) fields.set(pair.slice(0, equals), pair.slice(equals + 1));
    }
    const sr = fields.get('sr');
    const sig = fields.get('sig');
    const se = fields.get('se');
    if (sr === undefined || sig === undefined || se === undefined || !/^\d+$/.test(se)) {
      return wrong('the token lacks sr, sig or a numeric se');
    }
    if (sr.toLowerCase() !== resource.toLowerCase()) return wrong(`sr ${sr} is not this device's resource`);
    const expected = createHmac('sha256', key).update(`${sr}\n${se}`).digest();
    let given: Buffer;
    try {
      given = Buffer.from(decodeURIComponent(sig), 'base64');
    } catch {
      return wrong('sig is not percent-encoded base64');
    }
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return wrong('the signature is wrong');
    const validUntil = Number(se) * 1000;
    if (validUntil <= now) return { refused: 'expired', reason: `the token expired at se=${se}` };
    return { validUntil };
  };
}

/** What a broker asks of the token endpoint (token-endpoint.ts) about a token it is shown. */
export interface TokenValidity {
  /** Whether the endpoint ever issued `token`. */
  knows(token: string): boolean;
  /** When `token` stops being valid (ms; Infinity for never), or undefined when it is not valid `now`. */
  validUntil(token: string, now: number): number | undefined;
}

/** Accepts a bearer token as the MQTT password while the token endpoint that issued it says it is valid. */
export function bearerChecker(tokens: TokenValidity): Checker {
  return (client, now) => {
    const token = client.password ?? '';
    if (!tokens.knows(token)) return { refused: 'wrong', reason: 'the password is no token the endpoint issued' };
    const until = tokens.validUntil(token, now);
    return until === undefined ? { refused: 'expired', reason: 'the token has expired' } : { validUntil: until };
  };
}

export const sasAuth = (device: SasDevice): ExpiringAuth => expiringAuth(sasChecker(device));

export const bearerAuth = (tokens: TokenValidity): ExpiringAuth => expiringAuth(bearerChecker(tokens));
