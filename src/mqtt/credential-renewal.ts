/**
 * Renewing a connection's credential before it expires (SAS tokens, OAuth2 tokens, presigned URLs), so that a sync
 * longer than a token's life never meets a broker that closes the connection on it, or refuses the next reconnect.
 *
 * When the credential is due (credentials/credential.ts `renewAt`: before its expiry by a fifth of its life or a
 * minute, at most half of it), a new one is made and:
 *
 * - with MQTT 5 enhanced authentication, sent on the open connection (reauthentication.ts); nothing stops;
 * - otherwise, or when the broker does not answer that, the connection is replaced by a planned reconnect: new
 *   messages are held, those in flight are given up to the connect timeout to be acknowledged (so nothing is sent
 *   twice, QoS 2 included, and every state they release goes out), then the connection closes with a DISCONNECT and a
 *   new one signs in with the new credential. What was still unacknowledged is sent again on it, as after any loss.
 *
 * A broker that closes the connection at expiry anyway, before the renewal, is a loss like any other: the reconnect
 * signs in with a credential made then.
 */
import type { BrokerSettings } from '../config/settings.js';
import type { Credential } from '../credentials/credential.js';
import type { Log } from '../log.js';
import type { Connection } from './connect.js';
import { ReauthenticationRefused, reauthenticate } from './reauthentication.js';
import { currentCredential, renewalTime } from './sign-in.js';

export interface RenewalSteps {
  /** Holds new messages; resolves once those in flight are acknowledged, or after `timeoutMs`. */
  readonly quiesce: (timeoutMs: number) => Promise<void>;
  /** Replaces `connection` (still the live one) by a new one: DISCONNECT, then connect with a new credential. */
  readonly replace: (connection: Connection) => void;
  readonly log: Log;
}

export class CredentialRenewal {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Renewals so far: on the open connection, and by a planned reconnect. */
  reauthenticated = 0;
  reconnected = 0;

  constructor(
    private readonly broker: BrokerSettings,
    /** How log lines name the connection. */
    private readonly name: string,
    private readonly steps: RenewalSteps,
  ) {}

  /** A connection signed in with `credential` (its own, or one a re-authentication gave it): renew it when due. */
  watch(connection: Connection, credential: Credential = connection.credential): void {
    clearTimeout(this.timer);
    const at = renewalTime(credential);
    if (at === undefined || this.stopped) return;
    this.timer = setTimeout(() => void this.renew(connection), Math.max(0, at - Date.now()));
    // The connection keeps the process alive while it is open; the timer alone must not.
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async renew(connection: Connection): Promise<void> {
    const { client } = connection;
    const reauthenticates = connection.credential.authenticationMethod !== undefined && this.broker.mqttVersion === '5';
    if (reauthenticates) {
      try {
        const credential = await currentCredential(this.broker.auth);
        if (this.stopped || !client.connected) return;
        const { authenticationMethod = '', authenticationData = Buffer.alloc(0) } = credential;
        await reauthenticate(client, authenticationMethod, authenticationData, this.broker.connectTimeoutMs);
        this.reauthenticated++;
        this.steps.log('INFO', `${this.name} re-authenticated with a new token (MQTT 5 AUTH).`);
        this.watch(connection, credential);
        return;
      } catch (err) {
        if (this.stopped || !client.connected) return;
        const why = err instanceof ReauthenticationRefused || err instanceof Error ? err.message : String(err);
        this.steps.log('WARN', `${this.name} could not re-authenticate (${why}); reconnecting with a new credential.`);
      }
    }
    await this.steps.quiesce(this.broker.connectTimeoutMs);
    if (this.stopped || !client.connected) return;
    this.reconnected++;
    this.steps.log('INFO', `${this.name}: its credential is due for renewal; reconnecting with a new one.`);
    this.steps.replace(connection);
  }
}
