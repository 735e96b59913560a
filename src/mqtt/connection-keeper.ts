/**
 * The connection a sync publishes over, kept through faults. When it is lost, `decideOnLoss` (connection-loss.ts)
 * says whether to fail or to reconnect; reconnecting backs off until `reconnect_timeout_seconds` have passed since the
 * loss, and a broker that refuses the client outright on the way ends it.
 *
 * What to do with the messages in flight is the publisher's business; the keeper only says lost, restored or failed.
 * It asks the publisher, through `evidence`, what the connection carried when it closed, and it replaces a live
 * connection on request (`replace`) when the broker has gone silent on it.
 */
import type { IDisconnectPacket } from 'mqtt';
import { backoffDelay } from './backoff.js';
import { brokerAddress } from '../config/broker-url.js';
import type { BrokerSettings } from '../config/settings.js';
import { type ConnectAs, type Connection, connectBroker, disconnect } from './connect.js';
import { field } from '../config/spec.js';
import { decideOnLoss } from './connection-loss.js';
import { CredentialRenewal } from './credential-renewal.js';
import { CredentialConfigError } from '../credentials/errors.js';
import type { SendEvidence } from './close-causes.js';
import { BrokerRefusedError, type ConnectorError, TransientError, asConnectorError } from '../errors.js';
import type { Log } from '../log.js';

/** A DISCONNECT packet with no properties: reason 0x00 (normal) in MQTT 5, the only DISCONNECT of MQTT 3.1.x. */
const DISCONNECT = Buffer.from([0xe0, 0x00]);
/** How long an aborted connection with a Will may take to close after its DISCONNECT. */
const DISCONNECT_WAIT_MS = 2000;

interface KeeperEvents {
  /**
   * The connection is gone and a new one is being sought; nothing can be sent meanwhile. `planned`: the keeper closed
   * it to renew its credential.
   */
  readonly lost: (cause: string, planned: boolean) => void;
  /** A new connection is ready. */
  readonly restored: (connection: Connection, attempts: number, downtimeMs: number) => void;
  /** The keeper gave up; called at most once. */
  readonly failed: (error: ConnectorError) => void;
  /** What the connection carried when it closed, to judge why (asked before `lost`). */
  readonly evidence?: () => SendEvidence;
  /** Before a planned reconnect: hold new messages, resolve once those in flight are acknowledged or after `timeoutMs`. */
  readonly quiesce?: (timeoutMs: number) => Promise<void>;
}

export class ConnectionKeeper {
  private current: Connection | undefined;
  private connectedAt = 0;
  private quickLosses = 0;
  private closing = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Why the connector itself is dropping the live connection to make a new one (`replace`). */
  private replacing: string | undefined;
  /** The live connection is being closed to sign in again with a new credential. */
  private renewing = false;
  readonly renewal: CredentialRenewal;

  constructor(
    private readonly broker: BrokerSettings,
    /** How the connections it makes differ from the configured one: their client ID, what they send. */
    private readonly as: ConnectAs,
    first: Connection,
    private readonly events: KeeperEvents,
    private readonly log: Log,
  ) {
    this.renewal = new CredentialRenewal(broker, `The connection of client "${as.clientId ?? broker.clientId}"`, {
      quiesce: (timeoutMs) => events.quiesce?.(timeoutMs) ?? Promise.resolve(),
      replace: (connection) => this.renew(connection),
      log,
    });
    this.watch(first);
  }

  /** The live connection, if there is one. */
  get connection(): Connection | undefined {
    return this.current;
  }

  /** Ends the sync's connection with a DISCONNECT, and stops reconnecting. */
  async close(): Promise<void> {
    this.stopReconnecting();
    const connection = this.current;
    this.current = undefined;
    if (connection) await disconnect(connection.client);
  }

  /**
   * Drops the live connection, as if it had been lost, so that a new one is made and whatever was not acknowledged is
   * sent again: for a broker that keeps the connection open but has stopped answering. `cause` goes into the log.
   */
  replace(cause: string): void {
    const connection = this.current;
    if (!connection || this.closing) return;
    this.replacing = cause;
    connection.client.end(true);
  }

  /**
   * Drops the connection at once, and stops reconnecting. A connection with a Last Will first writes a DISCONNECT,
   * without waiting for anything, so that the broker discards the Will: the sync reports its failure itself, and an
   * "interrupted" published after it would overwrite it.
   */
  abort(): void {
    this.stopReconnecting();
    const client = this.current?.client;
    this.current = undefined;
    if (!client) return;
    if (this.as.will && client.connected) {
      const stream = client.stream;
      stream.end(DISCONNECT);
      // A broker that reads nothing more must not hold the process open.
      const timer = setTimeout(() => client.end(true), DISCONNECT_WAIT_MS);
      stream.once('close', () => {
        clearTimeout(timer);
        client.end(true);
      });
      return;
    }
    client.end(true);
  }

  /** Closes the live `connection` with a DISCONNECT, to sign in again at once with a new credential. */
  private renew(connection: Connection): void {
    if (this.closing || this.current !== connection) return;
    this.renewing = true;
    void disconnect(connection.client);
  }

  private stopReconnecting(): void {
    this.renewal.stop();
    this.closing = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  private watch(connection: Connection): void {
    this.current = connection;
    this.connectedAt = Date.now();
    this.renewal.watch(connection);
    const { client } = connection;
    let problem: string | undefined;
    let reasonCode: number | undefined;
    const onError = (err: Error): void => {
      const code = (err as { code?: unknown }).code;
      problem ??= typeof code === 'string' ? code : err.message;
    };
    const onDisconnect = (packet: IDisconnectPacket): void => {
      reasonCode = packet.reasonCode ?? 0;
    };
    client.on('error', onError);
    client.on('disconnect', onDisconnect);
    client.once('close', () => {
      client.off('disconnect', onDisconnect);
      // MQTT.js may still report errors of a connection it has closed; they are no longer news.
      client.off('error', onError).on('error', () => undefined);
      client.end(true);
      if (this.current === connection) this.lost(reasonCode, problem);
    });
  }

  private lost(reasonCode: number | undefined, problem: string | undefined): void {
    this.current = undefined;
    if (this.closing) return;
    if (this.renewing) {
      this.renewing = false;
      this.quickLosses = 0;
      this.events.lost('closed to sign in again with a new credential', true);
      this.reconnect(Date.now(), true).catch((err: unknown) => this.fail(asConnectorError(err)));
      return;
    }
    const replacing = this.replacing;
    this.replacing = undefined;
    if (replacing !== undefined) {
      // Dropped on purpose: not a loss that says anything about the broker's view of this client.
      this.quickLosses = 0;
      if (!this.broker.automaticReconnect) {
        this.fail(
          new TransientError(
            `The broker left ${replacing}, and ${field('automatic_reconnect')} is off, so they cannot be sent again.`,
            replacing,
          ),
        );
        return;
      }
      this.events.lost(`the connector dropped it: the broker left ${replacing}`, false);
      this.reconnect(Date.now()).catch((err: unknown) => this.fail(asConnectorError(err)));
      return;
    }
    const decision = decideOnLoss(
      {
        reasonCode,
        problem,
        livedMs: Date.now() - this.connectedAt,
        quickLossesBefore: this.quickLosses,
        evidence: this.events.evidence?.(),
      },
      { automaticReconnect: this.broker.automaticReconnect, clientId: this.as.clientId ?? this.broker.clientId },
    );
    this.quickLosses = decision.quickLosses;
    if (decision.action === 'fail') {
      this.fail(decision.error);
      return;
    }
    this.events.lost(decision.cause, false);
    // Whatever goes wrong while reconnecting ends the sync with that error, never as an unhandled rejection.
    this.reconnect(Date.now()).catch((err: unknown) => this.fail(asConnectorError(err)));
  }

  /** Connects again until `reconnect_timeout_seconds` after `lostAt`; `planned` tries the first time at once. */
  private async reconnect(lostAt: number, planned = false): Promise<void> {
    const deadline = lostAt + this.broker.reconnectTimeoutMs;
    let lastError: ConnectorError | undefined;
    // Losing connection after connection backs off further, as failing to connect does.
    for (let attempt = 1; ; attempt++) {
      const delay = planned && attempt === 1 ? 0 : backoffDelay(attempt - 1 + this.quickLosses);
      if (Date.now() + delay >= deadline) {
        this.fail(this.unreachable(attempt - 1, lastError));
        return;
      }
      await this.pause(delay);
      if (this.closing) return;
      let connection: Connection;
      try {
        const connectTimeoutMs = Math.max(1000, Math.min(this.broker.connectTimeoutMs, deadline - Date.now()));
        connection = await connectBroker(this.broker, { ...this.as, connectTimeoutMs });
      } catch (err) {
        const error = asConnectorError(err);
        if (this.closing) return;
        // The broker is back but refuses this client outright, or the identity provider refuses the client
        // credentials: waiting will not change their minds.
        if (error instanceof BrokerRefusedError || error instanceof CredentialConfigError) {
          this.fail(error);
          return;
        }
        lastError = error;
        this.log('INFO', `Reconnection attempt ${attempt} failed: ${error.message}`);
        continue;
      }
      if (this.closing) {
        connection.client.end(true);
        return;
      }
      this.watch(connection);
      this.events.restored(connection, attempt, Date.now() - lostAt);
      return;
    }
  }

  private unreachable(attempts: number, lastError: ConnectorError | undefined): ConnectorError {
    const seconds = this.broker.reconnectTimeoutMs / 1000;
    return new TransientError(
      `The broker at ${brokerAddress(this.broker)} could not be reached again within ${seconds} s ` +
        `of losing the connection (${field('reconnect_timeout_seconds')}), after ${attempts} attempt(s)` +
        `${lastError ? `; last: ${lastError.message}` : ''}`,
      lastError?.internalMessage,
    );
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private fail(error: ConnectorError): void {
    if (this.closing) return;
    this.stopReconnecting();
    this.events.failed(error);
  }
}
