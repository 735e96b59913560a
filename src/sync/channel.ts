/**
 * The sync's connections to the broker. A channel is one of them, with everything that is its own: a client ID, the
 * publisher that owns its session's messages in flight, and the keeper that reconnects it. A sync has one channel per
 * `connections`; each reconnects on its own and is watched for takeover on its own, while the others go on.
 *
 * A channel offers verbs (send, wait for room, drain, close), not its parts: what a publisher or a keeper is stays
 * inside. `Channels` (channels.ts) is the set: which channel a record goes over, and what is true of all of them.
 */
import type { Settings } from '../config/settings.js';
import { ConfigError, type ConnectorError } from '../errors.js';
import type { Log } from '../log.js';
import { type ConnectAs, type Connection, type LastWill, describeLimits } from '../mqtt/connect.js';
import { ConnectionKeeper } from '../mqtt/connection-keeper.js';
import { mqttPort } from '../mqtt/connection-port.js';
import { type MessageValues, NO_VALUES, type Payload, PublishEncoder, type PublishTarget } from '../mqtt/packets.js';
import { Publisher, type RefusedMessage } from '../mqtt/publisher.js';
import { RECORD_REFUSALS } from '../mqtt/reason-codes.js';

export type { RefusedMessage };

export interface ChannelEvents {
  /** The message sent with this token (a record's number in the ledger) is acknowledged. */
  readonly acknowledged: (token: number) => void;
  /** The channel cannot go on (the broker refused a message, or the connection could not be kept); at most once. */
  readonly failed: (error: ConnectorError) => void;
  /** The broker refused one message for a reason of its own (publisher.ts); absent, such a refusal fails the sync. */
  readonly refused?: (refusal: RefusedMessage) => void;
  /** A lost connection is back (its Last Will, if it has one, was published when it was lost). */
  readonly restored?: () => void;
  readonly log: Log;
}

/**
 * The token of the sync's own messages (the empty retained messages that clear stale keys): they are not records, so
 * their acknowledgements never reach the ledger; `drain` waits for them like for any message.
 */
const OWN_MESSAGE = -1;

/** MQTT 5's reason code for a packet larger than the receiver takes. */
const PACKET_TOO_LARGE = 0x95;

/**
 * Batches get tokens of their own, from this one down (the sync's own messages have -1, records their number in the
 * ledger): the channel knows which records each stands for.
 */
const FIRST_BATCH = -2;

/** A record in a batch, as it goes alone when the broker refuses the batch. */
export interface Batched {
  readonly target: PublishTarget;
  readonly payload: Payload;
  readonly bytes: number;
  readonly values: MessageValues;
  /** Its number in the ledger. */
  readonly token: number;
  readonly line: number;
}

/** The client ID of connection `index` of `count`: the configured one alone, or `<client>-1` to `<client>-N`. */
export function channelClientId(clientId: string, index: number, count: number): string {
  return count === 1 ? clientId : `${clientId}-${index + 1}`;
}

export class Channel {
  private readonly publisher: Publisher;
  private readonly keeper: ConnectionKeeper;
  /** The batches in flight, by token, with the records each stands for. */
  private readonly batches = new Map<number, readonly Batched[]>();
  private nextBatch = FIRST_BATCH;
  /** Ends the hold a planned reconnect put on new messages (`quiesce`). */
  private releaseHold: (() => void) | undefined;
  readonly clientId: string;
  private stopped = false;

  constructor(
    private readonly index: number,
    private readonly settings: Settings,
    first: Connection,
    private readonly events: ChannelEvents,
    will: LastWill | undefined,
  ) {
    const { messages, sync } = settings;
    this.clientId = channelClientId(settings.broker.clientId, index, sync.connections);
    this.publisher = new Publisher(
      new PublishEncoder(messages.qos, false, messages.mqtt5),
      {
        qos: messages.qos,
        maxInflight: sync.maxInflight,
        oneAtATime: sync.publisherSync,
        maxMessageBytes: messages.maxMessageBytes,
        ackTimeoutMs: sync.ackTimeoutMs,
      },
      {
        acknowledged: (token) => this.acknowledged(token),
        failed: events.failed,
        refused: (refusal) => this.refused(refusal),
        // A batch refused for any reason goes again record by record, so that each record is judged on its own; a
        // record refused for a reason of its own is rejected, when the sync says how (rejected_records).
        takes: (token, code) => token <= FIRST_BATCH || (events.refused !== undefined && RECORD_REFUSALS.has(code)),
        silent: (description) => this.silent(description),
      },
    );
    this.keeper = new ConnectionKeeper(
      settings.broker,
      channelConnectAs(settings, index, will),
      first,
      {
        lost: (cause, planned) => this.lost(cause, planned),
        restored: (connection, attempts, downtimeMs) => this.restored(connection, attempts, downtimeMs),
        failed: events.failed,
        evidence: () => this.publisher.sendEvidence(),
        quiesce: (timeoutMs) => this.quiesce(timeoutMs),
      },
      events.log,
    );
    events.log(
      'DEBUG',
      `${this.single ? 'Connected' : `${this.name} connected`}; broker limits: ${describeLimits(first.limits)}.`,
    );
    if (first.sessionPresent) {
      events.log('INFO', `The broker resumed the session it kept for client ID "${this.clientId}".`);
    }
    this.publisher.attach(mqttPort(first));
  }

  /**
   * Sends a record's message, numbered `token` in the ledger; `line` names its origin if it cannot be sent. Returns 0,
   * or the message's size when it is larger than this connection may carry: then nothing is sent.
   */
  send(
    target: PublishTarget,
    payload: Payload,
    bytes: number,
    values: MessageValues,
    token: number,
    line: number,
  ): number {
    return this.publisher.send(target, payload, bytes, values, token, line);
  }

  /**
   * Sends a batch (sync/batches.ts): one message standing for `records`, each of which fits this connection alone.
   * Its acknowledgement acknowledges every record in it; a refusal sends them again one by one, so that the broker
   * judges each; a batch too large for the connection (compression can grow a payload) goes as its records at once.
   */
  sendBatch(
    target: PublishTarget,
    payload: Payload,
    bytes: number,
    values: MessageValues,
    records: readonly Batched[],
  ): void {
    const token = this.nextBatch--;
    const first = records[0] as Batched;
    if (this.publisher.send(target, payload, bytes, values, token, first.line) > 0) {
      this.sendAlone(records);
      return;
    }
    this.batches.set(token, records);
  }

  /** The most payload bytes a message to `target` with `values` may have here. */
  payloadRoom(target: PublishTarget, values: MessageValues): number {
    return this.publisher.payloadRoom(target, values);
  }

  /** Sends an empty message of the sync's own (a tombstone that clears `target`'s retained message). */
  sendOwn(target: PublishTarget): void {
    this.publisher.send(target, '', 0, NO_VALUES, OWN_MESSAGE, 0);
  }

  /** Why a message of `size` bytes cannot be sent here, and the cheapest fix (publisher.ts). */
  describeOversize(target: PublishTarget, bytes: number, size: number): string {
    return this.publisher.describeOversize(undefined, target, bytes, size);
  }

  get hasRoom(): boolean {
    return this.publisher.hasRoom;
  }

  /** Calls `resume` once there is room again, in a later turn of the event loop. */
  whenRoom(resume: () => void): void {
    this.publisher.whenRoom(resume);
  }

  /** Keeps new messages back until `release` settles (delivery-check.ts); see `Publisher.holdUntil`. */
  holdUntil(release: (lastAcknowledged: Promise<void>) => Promise<void>): void {
    this.publisher.holdUntil(release);
  }

  /** Resolves once everything sent is acknowledged; rejects if the sync stops first. */
  drain(): Promise<void> {
    return this.publisher.drain();
  }

  get unacknowledged(): number {
    return this.publisher.unacknowledged;
  }

  /** Messages allowed in flight on this connection. */
  get window(): number {
    return this.publisher.window;
  }

  get connected(): boolean {
    return this.keeper.connection !== undefined;
  }

  /** Credential renewals so far: on the open connection (MQTT 5 AUTH), and by a planned reconnect. */
  get renewals(): { readonly reauthenticated: number; readonly reconnected: number } {
    const { reauthenticated, reconnected } = this.keeper.renewal;
    return { reauthenticated, reconnected };
  }

  /** How many messages of `group` (a topic, or a stream's key filter) the broker said nobody was subscribed to. */
  noSubscribers(group: string): number {
    return this.publisher.noSubscribers.get(group) ?? 0;
  }

  /** Stops publishing for good with `error`; the connection is dropped (`close` or `abort` it afterwards). */
  stop(error: ConnectorError): void {
    this.stopped = true;
    this.publisher.stop(error);
  }

  /** Ends the connection with a DISCONNECT. */
  close(): Promise<void> {
    return this.keeper.close();
  }

  /** Drops the connection at once. */
  abort(): void {
    this.keeper.abort();
  }

  private acknowledged(token: number): void {
    if (token >= 0) {
      this.events.acknowledged(token);
      return;
    }
    const records = this.batches.get(token);
    if (!records) return; // the sync's own message
    this.batches.delete(token);
    for (const record of records) this.events.acknowledged(record.token);
  }

  private refused(refusal: RefusedMessage): void {
    const records = this.batches.get(refusal.token);
    if (!records) {
      this.events.refused?.(refusal);
      return;
    }
    this.batches.delete(refusal.token);
    // Messages sent after the batch may already be in: its records cannot go back to their place in the topic.
    this.events.log(
      'WARN',
      `The broker refused a batch of ${records.length} record(s) on topic "${refusal.target.topic}" ` +
        `(${refusal.reason}); sending them one by one, after the ${this.publisher.unacknowledged} message(s) ` +
        'already in flight, so that the broker judges each record.',
    );
    this.sendAlone(records);
  }

  /**
   * Sends a batch's records one by one. A record's own message may carry more properties than the batch did, so one
   * that no longer fits is refused here as the broker would refuse it (0x95, packet too large).
   */
  private sendAlone(records: readonly Batched[]): void {
    for (const { target, payload, bytes, values, token, line } of records) {
      const oversize = this.publisher.send(target, payload, bytes, values, token, line);
      if (oversize === 0) continue;
      const reason = this.describeOversize(target, bytes, oversize).replace(/\.$/, '');
      if (this.events.refused) this.events.refused({ token, line, target, payload, reason, code: PACKET_TOO_LARGE });
      else this.events.failed(new ConfigError(`Input line ${line}: ${reason}.`));
    }
  }

  private get single(): boolean {
    return this.settings.sync.connections === 1;
  }

  /** How this channel is named in log lines: "The connection" alone, or with its client ID among several. */
  private get name(): string {
    return this.single ? 'The connection' : `Connection ${this.index + 1} (client ID "${this.clientId}")`;
  }

  /** The broker stopped answering on a live connection: replace it, which sends the silent messages again. */
  private silent(description: string): void {
    this.events.log(
      'WARN',
      `${this.name}: the broker left ${description} although the connection is up; reconnecting to send them again.`,
    );
    this.keeper.replace(description);
  }

  /**
   * Holds new messages until the next connection is up (`restored`), and resolves once those in flight are
   * acknowledged, or after `timeoutMs`: a planned reconnect then resends nothing.
   */
  private quiesce(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.publisher.holdUntil((lastAcknowledged) => {
        void lastAcknowledged.then(() => {
          clearTimeout(timer);
          resolve();
        });
        return new Promise<void>((release) => (this.releaseHold = release));
      });
    });
  }

  private lost(cause: string, planned: boolean): void {
    this.publisher.detach();
    if (planned) {
      this.events.log(
        'INFO',
        `${this.name} ${cause}, with ${this.publisher.unacknowledged} message(s) unacknowledged.`,
      );
      return;
    }
    const waits = this.single ? 'Input waits' : 'Its messages wait';
    this.events.log(
      'WARN',
      `${this.name} to the broker was lost (${cause}) with ${this.publisher.unacknowledged} message(s) not yet ` +
        `acknowledged. ${waits} while the connector reconnects, for up to ` +
        `${this.settings.broker.reconnectTimeoutMs / 1000} s.`,
    );
  }

  private restored(connection: Connection, attempts: number, downtimeMs: number): void {
    if (this.stopped) return;
    const session = connection.sessionPresent ? 'the broker resumed the session' : 'in a new session';
    this.events.log(
      'INFO',
      `${this.single ? 'Reconnected' : `${this.name} reconnected`} after ${attempts} attempt(s) and ` +
        `${(downtimeMs / 1000).toFixed(1)} s, ${session}; sending the ${this.publisher.unacknowledged} ` +
        'unacknowledged message(s) again.',
    );
    this.publisher.attach(mqttPort(connection));
    this.releaseHold?.();
    this.releaseHold = undefined;
    this.events.restored?.();
  }
}

/** How channel `index` connects, at first and after every loss. */
export function channelConnectAs(settings: Settings, index: number, will: LastWill | undefined): ConnectAs {
  const { broker, messages, sync } = settings;
  return {
    clientId: channelClientId(broker.clientId, index, sync.connections),
    sends: { qos: messages.qos, retain: messages.retain },
    ...(will ? { will } : {}),
  };
}
