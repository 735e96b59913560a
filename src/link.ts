/**
 * The connection a sync publishes over, kept through faults. When it is lost, the link decides what the loss means:
 *
 * - a broker that took the session over for another client, or that disconnected us for something sending again
 *   would repeat (a packet too large, a topic it refuses), fails the sync at once: reconnecting would only loop;
 * - a connection that keeps being closed right after the broker accepted it is, most of the time, another client
 *   with the same client ID (MQTT 3.1.1 brokers say nothing, they just close), and fails too;
 * - anything else is a fault of the network or the broker: reconnect with backoff until `reconnect_timeout_seconds`
 *   have passed since the loss, or fail at once when `automatic_reconnect` is off.
 *
 * What to do with the messages in flight is the publisher's business; the link only says lost, restored or failed.
 */
import type { IDisconnectPacket } from 'mqtt';
import { backoffDelay } from './backoff.js';
import { type Connection, brokerAddress, connectBroker, disconnect } from './broker.js';
import type { Settings } from './config/settings.js';
import { BrokerRefusedError, ConfigError, type ConnectorError, TransientError, asConnectorError } from './errors.js';
import type { LogLevel } from './protocol/output.js';

export interface LinkEvents {
  /** The connection is gone and a new one is being sought; nothing can be sent meanwhile. */
  lost(cause: string): void;
  /** A new connection is ready. */
  restored(connection: Connection, attempts: number, downtimeMs: number): void;
  /** The link gave up; called at most once. */
  failed(error: ConnectorError): void;
}

export type Logger = (level: LogLevel, message: string) => void;

/** A connection lost this soon after the broker accepted it counts towards suspecting a session takeover. */
export const QUICK_LOSS_MS = 2000;
/** This many quick losses in a row end the sync: two clients with one ID would otherwise push each other off forever. */
export const QUICK_LOSSES_TO_FAIL = 3;

const SESSION_TAKEN_OVER = 0x8e;

/** MQTT 5 DISCONNECT reason codes sent by brokers. */
const DISCONNECT_REASONS: Readonly<Record<number, string>> = {
  0x80: 'Unspecified error',
  0x81: 'Malformed Packet',
  0x82: 'Protocol Error',
  0x83: 'Implementation specific error',
  0x87: 'Not authorized',
  0x89: 'Server busy',
  0x8b: 'Server shutting down',
  0x8d: 'Keep Alive timeout',
  0x8e: 'Session taken over',
  0x90: 'Topic Name invalid',
  0x93: 'Receive Maximum exceeded',
  0x94: 'Topic Alias invalid',
  0x95: 'Packet too large',
  0x97: 'Quota exceeded',
  0x98: 'Administrative action',
  0x99: 'Payload format invalid',
  0x9a: 'Retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'Use another server',
  0x9d: 'Server moved',
  0x9f: 'Connection rate exceeded',
};

/** Reasons after which the same messages may well be accepted on a new connection. */
const RECOVERABLE_DISCONNECTS = new Set([0x80, 0x89, 0x8b, 0x8d, 0x98, 0x9f]);

function reasonText(code: number): string {
  return `${DISCONNECT_REASONS[code] ?? 'Disconnected'} (reason code 0x${code.toString(16)})`;
}

export class BrokerLink {
  private current: Connection | undefined;
  private connectedAt = 0;
  private quickLosses = 0;
  private closing = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: Settings,
    first: Connection,
    private readonly events: LinkEvents,
    private readonly log: Logger,
  ) {
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

  /** Drops the connection at once (no DISCONNECT), and stops reconnecting. */
  abort(): void {
    this.stopReconnecting();
    this.current?.client.end(true);
    this.current = undefined;
  }

  private stopReconnecting(): void {
    this.closing = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  private watch(connection: Connection): void {
    this.current = connection;
    this.connectedAt = Date.now();
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
    const lived = Date.now() - this.connectedAt;
    const cause = reasonCode !== undefined && reasonCode !== 0 ? `the broker disconnected: ${reasonText(reasonCode)}` : (problem ?? 'closed by the broker or the network');
    const clientId = this.settings.clientId;
    if (reasonCode === SESSION_TAKEN_OVER) {
      this.fail(
        new ConfigError(
          `Another client connected with client ID "${clientId}" and the broker handed it this connection's session (${reasonText(reasonCode)}). ` +
            'Give this connector a client ID no other client uses ("Client ID", client), or leave it empty for a random one.',
        ),
      );
      return;
    }
    if (reasonCode !== undefined && reasonCode >= 0x80 && !RECOVERABLE_DISCONNECTS.has(reasonCode)) {
      this.fail(
        new ConfigError(
          `The broker closed the connection: ${reasonText(reasonCode)}. Sending the same messages again would meet the same answer, so the sync stops; check the broker's log and its limits for this client.`,
        ),
      );
      return;
    }
    this.quickLosses = lived < QUICK_LOSS_MS ? this.quickLosses + 1 : 0;
    if (this.quickLosses >= QUICK_LOSSES_TO_FAIL) {
      this.fail(
        new ConfigError(
          `The broker closed the connection ${this.quickLosses} times in a row within ${QUICK_LOSS_MS / 1000} s of accepting it (last: ${cause}). ` +
            `Most likely another client is connected with client ID "${clientId}" and each connection takes the session over from the other: give this connector a client ID of its own ("Client ID", client). ` +
            'If no other client uses it, the broker rejects what is sent: check its log, lower "Maximum messages in flight" (max_inflight) or set "Maximum message size" (max_message_bytes).',
          cause,
        ),
      );
      return;
    }
    if (!this.settings.automaticReconnect) {
      this.fail(
        new TransientError(
          `The connection to the broker was lost (${cause}) and "Automatic reconnect" (automatic_reconnect) is off. If the broker limits messages in flight per client, lower "Maximum messages in flight" (max_inflight).`,
          cause,
        ),
      );
      return;
    }
    this.events.lost(cause);
    void this.reconnect(Date.now());
  }

  private async reconnect(lostAt: number): Promise<void> {
    const deadline = lostAt + this.settings.reconnectTimeoutMs;
    let lastError: ConnectorError | undefined;
    // Losing connection after connection backs off further, as failing to connect does.
    for (let attempt = 1; ; attempt++) {
      const delay = backoffDelay(attempt - 1 + this.quickLosses);
      if (Date.now() + delay >= deadline) {
        this.fail(this.unreachable(attempt - 1, lastError));
        return;
      }
      await this.pause(delay);
      if (this.closing) return;
      try {
        const connectTimeoutMs = Math.max(1000, Math.min(this.settings.connectTimeoutMs, deadline - Date.now()));
        const connection = await connectBroker({ ...this.settings, connectTimeoutMs });
        if (this.closing) {
          connection.client.end(true);
          return;
        }
        this.watch(connection);
        this.events.restored(connection, attempt, Date.now() - lostAt);
        return;
      } catch (err) {
        const error = asConnectorError(err);
        if (this.closing) return;
        // The broker is back but refuses this client outright: waiting will not change its mind.
        if (error instanceof BrokerRefusedError) {
          this.fail(error);
          return;
        }
        lastError = error;
        this.log('INFO', `Reconnection attempt ${attempt} failed: ${error.message}`);
      }
    }
  }

  private unreachable(attempts: number, lastError: ConnectorError | undefined): ConnectorError {
    const seconds = this.settings.reconnectTimeoutMs / 1000;
    return new TransientError(
      `The broker at ${brokerAddress(this.settings)} could not be reached again within ${seconds} s of losing the connection ("Reconnect timeout", reconnect_timeout_seconds), after ${attempts} attempt(s)` +
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
