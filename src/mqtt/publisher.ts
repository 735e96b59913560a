/**
 * Publishing with flow control. The publisher encodes and writes PUBLISH and PUBREL packets itself, through a small
 * port (connection-port.ts), because MQTT.js has no flow control (it ignores the broker's Receive Maximum, applies no
 * backpressure to QoS 1/2, and reuses message ids past 65,535), replays stored messages one per round trip after a
 * reconnect, and its per-message cost exceeds the broker's. The port also lets its logic be tested without a broker.
 *
 * Messages sent in one turn of the event loop go out as one write (write-batch.ts). At most `window` messages (and `MAX_INFLIGHT_BYTES`
 * of payload) await acknowledgement; the caller stops reading input while there is no room and is told, in a later
 * turn (so that every acknowledgement already received is counted first), when to go on.
 *
 * Every message is kept until it is acknowledged, so that after a lost connection it can be sent again on the next
 * one: in its original order, with the DUP flag, and at QoS 2 as a PUBREL instead when the broker kept the session and
 * had already received it.
 *
 * "Acknowledged" means PUBACK at QoS 1 and PUBCOMP at QoS 2. QoS 0 has no acknowledgement, so a message counts as
 * acknowledged once the write that carries it has been handed to the operating system.
 *
 * Nothing is awaited without bound while the connection is up: a broker that answers a QoS 2 message with PUBACK (it
 * downgraded it) fails the sync at once, and a message left unacknowledged for `ackTimeoutMs` is reported as silence,
 * so that the connection is replaced and the message sent again (the only retransmission MQTT allows); the same
 * message left unanswered once more fails the sync.
 */
import type { Acknowledgement, ConnectionPort } from './connection-port.js';
import { MAX_PACKET_IDS } from './inflight-store.js';
import { type SendOptions, SendState, windowSize } from './send-state.js';
import { ConfigError, type ConnectorError, TransientError, asConnectorError } from '../errors.js';
import { NO_MATCHING_SUBSCRIBERS, RECORD_REFUSALS, describeReason, isFailure, wouldRepeat } from './reason-codes.js';
import type { QoS } from '../config/settings.js';
import { field } from '../config/spec.js';
import type { SendEvidence, Suspect } from './close-causes.js';
import type { MessageValues, PublishEncoder, PublishTarget } from './packets.js';

/** Payload bytes kept for messages in flight: bounds memory when records are large, whatever the window. */
const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;

/**
 * The acknowledgement timeout is watched in this many ticks: a message counts as silent once it has waited at least
 * the timeout and at most a quarter more, without a clock read per message (a tick number is stored instead).
 */
const WATCH_TICKS = 4;

const ACK_NAMES: Readonly<Record<QoS, string>> = { 0: 'the write', 1: 'PUBACK', 2: 'PUBREC and PUBCOMP' };

export interface PublisherOptions extends SendOptions {
  readonly qos: QoS;
  /** Bound on the payload bytes in flight; `MAX_INFLIGHT_BYTES` unless a test needs a smaller one. */
  readonly maxInflightBytes?: number;
  /** How long a QoS 1/2 message may wait for its acknowledgement on a live connection; unset: no limit. */
  readonly ackTimeoutMs?: number;
}

interface PublisherHandlers {
  /** The message sent with this token is acknowledged. Called once per message unless the sync fails. */
  acknowledged(token: number): void;
  /** The broker refused a message; publishing cannot go on. Called at most once. */
  failed(error: ConnectorError): void;
  /**
   * The broker refused one message with a reason that concerns that message only (`RECORD_REFUSALS`), and the options
   * say such refusals are the caller's to handle: the message is dropped, not acknowledged. Without this handler, a
   * refusal fails publishing.
   */
  refused?(refusal: Refusal): void;
  /**
   * Messages have waited `ackTimeoutMs` on this connection without an answer; `description` says how many, at which
   * QoS, and since when. The connection should be replaced, which sends them again. At most once per connection.
   */
  silent?(description: string): void;
}

/** A message the broker refused, as `PublisherHandlers.refused` reports it. */
export interface Refusal {
  readonly token: number;
  readonly line: number;
  readonly target: PublishTarget;
  readonly payload: string;
  readonly reason: string;
}

const FREE = 0;
const AWAITING_ACK = 1; // not yet sent on this connection, or awaiting PUBACK (QoS 1) / PUBREC (QoS 2) / the write (QoS 0)
const AWAITING_COMPLETE = 2; // PUBCOMP, after our PUBREL

export class Publisher {
  private inflight = 0;
  private inflightBytes = 0;
  private failure: ConnectorError | undefined;
  private onRoom: (() => void) | undefined;
  private roomScheduled = false;
  private onIdle: (() => void) | undefined;
  private readonly maxInflightBytes: number;
  /** Holds that keep new messages back until they settle (`holdUntil`). */
  private holds = 0;
  /** Callbacks waiting for one message's acknowledgement, by packet id (`holdUntil`). */
  private readonly ackWaiters = new Map<number, () => void>();

  /** The current connection's own state, built when it is attached and dropped with it. */
  private connection: SendState | undefined;
  /** The last connection's state, kept for sizing messages while the next one is not up yet (its limits are the broker's). */
  private sizingConnection: SendState | undefined;
  private unlisten: (() => void) | undefined;
  /** Counts connections attached, so that a message can tell whether it was written on the current one. */
  private connectionSerial = 0;

  /** The acknowledgement watch: its timer, the tick it is at, and whether this connection's silence was reported. */
  private watchdog: NodeJS.Timeout | undefined;
  private tick = 0;
  private silenceReported = false;

  // What the broker has accepted so far, to judge what a connection it closed was refused for (close-causes.ts).
  private acknowledgedAny = false;
  private largestAcknowledged = 0;
  private readonly acknowledgedTargets = new WeakSet<PublishTarget>();
  /** The target added last: acknowledgements come in runs of one stream, so most skip the set. */
  private lastAcknowledgedTarget: PublishTarget | undefined;
  private lastTarget: PublishTarget | undefined;
  private lastBytes = 0;
  private lastConnection = 0;

  // Messages in flight by packet id, in flat arrays: no object or closure per message. At QoS 0 the ids are internal.
  private nextId = 1;
  private readonly stage = new Uint8Array(MAX_PACKET_IDS + 1);
  private readonly sent = new Uint8Array(MAX_PACKET_IDS + 1);
  private readonly tokenById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly lineById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly bytesById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly targetById: (PublishTarget | undefined)[] = new Array<PublishTarget | undefined>(MAX_PACKET_IDS + 1);
  private readonly payloadById: (string | undefined)[] = new Array<string | undefined>(MAX_PACKET_IDS + 1);
  private readonly valuesById: (MessageValues | undefined)[] = new Array<MessageValues | undefined>(MAX_PACKET_IDS + 1);
  /** The connection (its serial) a message was last written on, and the watch tick it was written at. */
  private readonly wireConnection = new Uint32Array(MAX_PACKET_IDS + 1);
  private readonly wireTick = new Float64Array(MAX_PACKET_IDS + 1);
  /** 1 once a message has been reported silent: silent again, it fails the sync. */
  private readonly silenced = new Uint8Array(MAX_PACKET_IDS + 1);

  /** Messages waiting to be written, oldest first: those of a lost connection, then any sent meanwhile. */
  private queue: number[] = [];
  private queueHead = 0;

  /** At QoS 0, the ids of the messages in the current connection's batch. */
  private batchIds: number[] = [];

  /** Per target group (a topic, or a stream's key filter), how many messages the broker accepted with "no matching subscribers". */
  readonly noSubscribers = new Map<string, number>();

  constructor(
    private readonly encoder: PublishEncoder,
    private readonly options: PublisherOptions,
    private readonly handlers: PublisherHandlers,
  ) {
    this.maxInflightBytes = options.maxInflightBytes ?? MAX_INFLIGHT_BYTES;
  }

  get unacknowledged(): number {
    return this.inflight;
  }

  /** Messages allowed in flight on the current connection (before one is attached: the configured bound). */
  get window(): number {
    return this.connection?.window ?? windowSize({ ...this.options, brokerReceiveMaximum: undefined });
  }

  /** Whether another message may be sent now. */
  get hasRoom(): boolean {
    const connection = this.connection;
    if (this.failure || !connection || this.holds > 0 || this.queueHead < this.queue.length) return false;
    if (this.inflight >= connection.window || this.inflightBytes >= this.maxInflightBytes) return false;
    return !connection.port.needsDrain;
  }

  /**
   * Starts publishing on a connection: the first, or a new one after the previous was lost. Everything not yet
   * acknowledged goes out again first, in its original order.
   */
  attach(port: ConnectionPort): void {
    this.detach();
    const connection: SendState = new SendState(port, this.encoder, this.options, (chunk) =>
      this.writeChunk(connection, chunk),
    );
    this.connection = connection;
    this.sizingConnection = connection;
    this.connectionSerial++;
    this.silenceReported = false;
    this.startWatchdog();
    this.unlisten = port.listen({ acknowledged: (ack) => this.received(ack), drained: () => this.afterAck() });
    this.queue = this.inflightIds();
    this.queueHead = 0;
    for (const id of this.queue) {
      // Without the session, the broker has forgotten the QoS 2 messages it acknowledged with PUBREC: send them again.
      if (this.stage[id] === AWAITING_COMPLETE && !port.sessionPresent) this.stage[id] = AWAITING_ACK;
    }
    this.sendQueued();
    this.afterAck();
  }

  /** The connection is gone: stop writing. Messages in flight stay, to go out again on the next connection. */
  detach(): void {
    if (!this.connection) return;
    this.unlisten?.();
    this.unlisten = undefined;
    this.connection.batch.clear();
    this.connection = undefined;
    this.batchIds = [];
  }

  /** Queues one message; it leaves with the rest of this turn's batch. */
  /** `token` is reported back on acknowledgement; `line` names the message's origin if it cannot be sent. */
  send(
    target: PublishTarget,
    payload: string,
    payloadBytes: number,
    values: MessageValues,
    token: number,
    line = 0,
  ): void {
    const id = this.allocateId();
    this.inflight++;
    this.inflightBytes += payloadBytes;
    this.stage[id] = AWAITING_ACK;
    this.sent[id] = 0;
    this.tokenById[id] = token;
    this.lineById[id] = line;
    this.bytesById[id] = payloadBytes;
    this.targetById[id] = target;
    this.payloadById[id] = payload;
    this.valuesById[id] = values;
    const connection = this.connection;
    if (connection && this.queueHead === this.queue.length && !connection.windowFull) this.transmit(connection, id);
    else this.queue.push(id);
  }

  /**
   * The size of this message if it is larger than the current connection may carry, or while reconnecting the last
   * one (0 if it fits, or before any connection): lets the caller reject one record instead of failing the sync when `send` finds it too large.
   */
  oversize(target: PublishTarget, payloadBytes: number, values: MessageValues): number {
    return this.sizingConnection?.oversize(target, payloadBytes, values) ?? 0;
  }

  /** The largest packet the current (or, while reconnecting, the last) connection may carry, and what sets it. */
  get sizeLimit(): { readonly bytes: number; readonly source: string } | undefined {
    return this.sizingConnection?.sizeLimit;
  }

  /** Calls `resume` once there is room again, in a later turn of the event loop. */
  whenRoom(resume: () => void): void {
    this.onRoom = resume;
    this.afterAck();
  }

  /**
   * Keeps new messages back (no room) until the promise `release` returns resolves, for a check on what was sent
   * (delivery-check.ts); `drain` waits for it too, and a rejection fails publishing with its error. `release` is given
   * a promise of the acknowledgement of the message sent last, so that its clock can start there rather than while
   * the message waits out a lost connection.
   */
  holdUntil(release: (lastAcknowledged: Promise<void>) => Promise<void>): void {
    const last = this.nextId === 1 ? MAX_PACKET_IDS : this.nextId - 1;
    const acknowledged = new Promise<void>((resolve) => {
      if (this.stage[last] === FREE) resolve();
      else this.ackWaiters.set(last, resolve);
    });
    this.holds++;
    release(acknowledged).then(
      () => {
        this.holds--;
        this.afterAck();
      },
      (err: unknown) => {
        this.holds--;
        this.fail(asConnectorError(err));
      },
    );
  }

  /** Resolves once every message sent has been acknowledged (and no hold is left); rejects if the publisher is stopped first. */
  drain(): Promise<void> {
    this.connection?.batch.flush();
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (this.inflight === 0 && this.holds === 0) return resolve();
      this.onIdle = () => (this.failure ? reject(this.failure) : resolve());
    });
  }

  /** Stops publishing for good: nothing more is written, and `drain` rejects with `error`. */
  stop(error: ConnectorError): void {
    if (this.failure) return;
    this.failure = error;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.detach();
    this.onRoom = undefined;
    const idle = this.onIdle;
    this.onIdle = undefined;
    idle?.();
  }

  /** Ids in flight, oldest first. Ids are allocated in sequence, so the oldest follows the next one to allocate. */
  private inflightIds(): number[] {
    const ids: number[] = [];
    for (let n = 0, id = this.nextId; n < MAX_PACKET_IDS; n++, id = id === MAX_PACKET_IDS ? 1 : id + 1) {
      if (this.stage[id] !== FREE) ids.push(id);
    }
    return ids;
  }

  private sendQueued(): void {
    const connection = this.connection;
    while (
      connection === this.connection &&
      connection &&
      this.queueHead < this.queue.length &&
      !connection.windowFull
    ) {
      const id = this.queue[this.queueHead++] as number;
      if (this.stage[id] === AWAITING_COMPLETE) {
        connection.onWire++;
        connection.release(id);
        this.onWire(id);
      } else if (this.stage[id] === AWAITING_ACK) {
        this.transmit(connection, id);
      }
    }
    if (this.queueHead === this.queue.length && this.queue.length > 0) {
      this.queue = [];
      this.queueHead = 0;
    }
  }

  private transmit(connection: SendState, id: number): void {
    const target = this.targetById[id] as PublishTarget;
    const bytes = this.bytesById[id] as number;
    // DUP marks a QoS 1/2 message sent before; QoS 0 must not carry it.
    const dup = this.options.qos > 0 && this.sent[id] === 1;
    const packetId = this.options.qos > 0 ? id : 0;
    const tooLarge = connection.publish(
      target,
      packetId,
      this.payloadById[id] as string,
      bytes,
      this.valuesById[id] as MessageValues,
      dup,
    );
    if (tooLarge > 0) {
      this.fail(this.tooLarge(connection, id, tooLarge));
      return;
    }
    this.sent[id] = 1;
    this.onWire(id);
    this.lastTarget = target;
    this.lastBytes = bytes;
    this.lastConnection = this.connectionSerial;
    // After `publish`, which may have flushed the earlier packets: this message's bytes are in the next chunk.
    if (this.options.qos === 0) this.batchIds.push(id);
  }

  private allocateId(): number {
    // Sequential ids are safe: an id comes round again only after 65,535 later messages, and the window never lets
    // that many be outstanding.
    const id = this.nextId;
    this.nextId = id === MAX_PACKET_IDS ? 1 : id + 1;
    if (this.stage[id] !== FREE) throw new Error(`packet id ${id} is still in flight`);
    return id;
  }

  private writeChunk(connection: SendState, chunk: Buffer): void {
    if (this.options.qos > 0) {
      connection.port.write(chunk);
      return;
    }
    const ids = this.batchIds;
    this.batchIds = [];
    connection.port.write(chunk, (err) => {
      // A failed write belongs to a lost connection; its messages go out again on the next one.
      if (err || connection !== this.connection) return;
      for (const id of ids) this.complete(id);
      this.sendQueued();
      this.afterAck();
    });
  }

  /** Notes that message `id` went out on the current connection now, for the acknowledgement watch. */
  private onWire(id: number): void {
    this.wireConnection[id] = this.connectionSerial;
    this.wireTick[id] = this.tick;
  }

  private received(ack: Acknowledgement): void {
    const id = ack.packetId;
    if (ack.kind === 'puback' && this.options.qos === 2 && this.stage[id] === AWAITING_ACK && this.sent[id] === 1) {
      // The QoS 1 answer to a QoS 2 message: the broker downgraded it (RabbitMQ does) and will never send PUBREC.
      this.fail(this.qos2Unsupported(this.targetById[id]?.topic ?? '?'));
      return;
    }
    const expected = ack.kind === 'pubcomp' ? AWAITING_COMPLETE : AWAITING_ACK;
    // Not ours (MQTT.js's own publishes) or a duplicate: leave it.
    if (this.stage[id] !== expected || this.sent[id] === 0 || (ack.kind === 'puback') !== (this.options.qos === 1))
      return;
    const target = this.targetById[id];
    const reason = ack.reasonCode;
    if (isFailure(reason)) {
      const onRefused = this.handlers.refused;
      if (onRefused && target && RECORD_REFUSALS.has(reason)) {
        const refusal = {
          token: this.tokenById[id] as number,
          line: this.lineById[id] as number,
          target,
          payload: this.payloadById[id] as string,
        };
        this.free(id);
        onRefused({ ...refusal, reason: describeReason(reason) });
        this.sendQueued();
        this.afterAck();
        return;
      }
      this.fail(this.refused(target?.topic ?? '?', reason));
      return;
    }
    if (reason === NO_MATCHING_SUBSCRIBERS && target)
      this.noSubscribers.set(target.group, (this.noSubscribers.get(target.group) ?? 0) + 1);
    if (ack.kind !== 'pubcomp') this.accepted(id, target);
    if (ack.kind === 'pubrec') {
      this.stage[id] = AWAITING_COMPLETE;
      this.connection?.release(id);
      this.onWire(id);
      return;
    }
    this.complete(id);
    this.sendQueued();
    this.afterAck();
  }

  /** The broker took message `id` (PUBACK, or PUBREC at QoS 2): what it was counts as evidence of what it accepts. */
  private accepted(id: number, target: PublishTarget | undefined): void {
    this.acknowledgedAny = true;
    const bytes = this.bytesById[id] as number;
    if (bytes > this.largestAcknowledged) this.largestAcknowledged = bytes;
    if (target && target !== this.lastAcknowledgedTarget) {
      this.acknowledgedTargets.add(target);
      this.lastAcknowledgedTarget = target;
    }
  }

  private complete(id: number): void {
    const token = this.tokenById[id] as number;
    this.free(id);
    this.handlers.acknowledged(token);
  }

  /** Forgets message `id`: its slot, its bytes, its place in the window. */
  private free(id: number): void {
    this.stage[id] = FREE;
    this.silenced[id] = 0;
    if (this.ackWaiters.size > 0) {
      this.ackWaiters.get(id)?.();
      this.ackWaiters.delete(id);
    }
    this.targetById[id] = undefined;
    this.payloadById[id] = undefined;
    this.valuesById[id] = undefined;
    this.inflight--;
    if (this.connection) this.connection.onWire--;
    this.inflightBytes -= this.bytesById[id] as number;
  }

  /**
   * What the current connection carried that the broker had not acknowledged, for judging why it closed
   * (close-causes.ts). Call it before `detach`.
   */
  sendEvidence(): SendEvidence {
    const { qos } = this.options;
    let unacknowledged = 0;
    let first = 0;
    if (this.connection) {
      for (const id of this.inflightIds()) {
        if (this.wireConnection[id] !== this.connectionSerial || this.stage[id] !== AWAITING_ACK || this.sent[id] === 0)
          continue;
        unacknowledged++;
        if (first === 0) first = id;
      }
    }
    const suspectOf = (target: PublishTarget | undefined, payloadBytes: number): Suspect | undefined =>
      target && { topic: target.topic, payloadBytes, topicAcknowledged: this.acknowledgedTargets.has(target) };
    // QoS 0 has nothing to acknowledge: the last message written before the close is the best suspect there is.
    const suspectTarget =
      qos === 0
        ? this.lastConnection === this.connectionSerial && this.connection
          ? this.lastTarget
          : undefined
        : first === 0
          ? undefined
          : this.targetById[first];
    const suspect = suspectOf(suspectTarget, qos === 0 ? this.lastBytes : (this.bytesById[first] as number));
    return {
      qos,
      // Retain is the stream's (its sync mode, message_retained): the suspect's flag is the one that counts.
      retain: this.encoder.retain || suspectTarget?.retain === true,
      unacknowledged,
      suspect,
      acknowledgedAny: this.acknowledgedAny,
      largestAcknowledged: this.largestAcknowledged,
    };
  }

  private startWatchdog(): void {
    const timeoutMs = this.options.ackTimeoutMs;
    if (this.watchdog || timeoutMs === undefined || this.options.qos === 0 || this.failure) return;
    this.watchdog = setInterval(() => this.watch(timeoutMs), timeoutMs / WATCH_TICKS);
    // The watch matters only while something else (the connection) keeps the process alive.
    this.watchdog.unref();
  }

  /**
   * One tick of the acknowledgement watch. Messages written on this connection more than `WATCH_TICKS` ticks ago and
   * still unanswered are silent: the first time, the connection is to be replaced (the caller is told); a message
   * that is silent a second time, after being sent again, fails the sync.
   */
  private watch(timeoutMs: number): void {
    this.tick++;
    if (this.inflight === 0 || !this.connection || this.silenceReported || this.failure) return;
    const silent: number[] = [];
    let repeated = false;
    for (const id of this.inflightIds()) {
      if (
        this.wireConnection[id] !== this.connectionSerial ||
        this.sent[id] === 0 ||
        this.tick - (this.wireTick[id] as number) <= WATCH_TICKS
      )
        continue;
      silent.push(id);
      if (this.silenced[id] === 1) repeated = true;
    }
    const first = silent[0];
    if (first === undefined) return;
    const description =
      `${silent.length} message(s) at QoS ${this.options.qos} without ${ACK_NAMES[this.options.qos]} for ${timeoutMs / 1000} s (${field('ack_timeout_seconds')}), ` +
      `the oldest on topic ${JSON.stringify(this.targetById[first]?.topic ?? '?')}`;
    if (repeated) {
      this.fail(
        new TransientError(
          `The broker left ${description}, again after the connector reconnected and sent them once more: it keeps the connection open but does not answer at QoS ${this.options.qos}. ` +
            `Check the broker's log and load; if it is only slow, raise ${field('ack_timeout_seconds')}.`,
          `silent twice: ${description}`,
        ),
      );
      return;
    }
    for (const id of silent) this.silenced[id] = 1;
    this.silenceReported = true;
    this.handlers.silent?.(description);
  }

  /**
   * After acknowledgements: resolves `drain` when nothing is left in flight, and wakes a paused reader as soon as there
   * is room for one more message. The wake-up comes in a later turn, after every acknowledgement already received has
   * been counted, so a refill goes out as one write of as many messages as were acknowledged meanwhile, not as one
   * write per acknowledgement.
   *
   * Waiting for more room than that (half the window, say) stalls: a broker with Nagle's algorithm on (Mosquitto's
   * default) holds back its PUBACKs after the first segment until our side acknowledges that segment, and our side,
   * sending nothing while it waits, acknowledges it only after a delayed ACK of about 40 ms. On loopback a segment
   * holds 64 KB, so that is every PUBACK of the round, however large the window. Measured with 200,000 records at QoS 1
   * and the default window of 1,000: waiting for half the window paused the reader 45 to 80 times for a median of
   * 43 ms each (1.5 to 1.9 s in all), and the sync took 4.1 s; waking at once, 1.4 s (a bare MQTT.js publisher: 1.6 s).
   */
  private afterAck(): void {
    if (this.inflight === 0 && this.holds === 0 && this.onIdle) {
      const idle = this.onIdle;
      this.onIdle = undefined;
      idle();
    }
    if (!this.onRoom || this.roomScheduled || !this.hasRoom) return;
    this.roomScheduled = true;
    setImmediate(() => {
      this.roomScheduled = false;
      const resume = this.onRoom;
      this.onRoom = undefined;
      if (resume && !this.failure) resume();
    });
  }

  private fail(error: ConnectorError): void {
    if (this.failure) return;
    this.stop(error);
    this.handlers.failed(error);
  }

  private tooLarge(connection: SendState, id: number, size: number): ConnectorError {
    const what = this.describeOversize(
      connection,
      this.targetById[id] as PublishTarget,
      this.bytesById[id] as number,
      size,
    );
    const line = this.lineById[id] as number;
    // Records name their input line; a message that has none (the check's) starts the sentence itself.
    return new ConfigError(
      line > 0 ? `Input line ${line}: ${what}` : `${what.charAt(0).toUpperCase()}${what.slice(1)}`,
    );
  }

  /**
   * Why a message of `size` bytes (its `oversize`) cannot be sent, and the cheapest fix: `the record of stream "users"
   * makes a 395-byte MQTT message, larger than the 256 bytes the broker accepts (...). Turning off ... makes it 201
   * bytes, which fits; ...`.
   */
  describeOversize(
    connection: SendState | undefined,
    target: PublishTarget,
    payloadBytes: number,
    size: number,
  ): string {
    const sizing = connection ?? this.sizingConnection;
    const { bytes, source } = sizing?.sizeLimit ?? { bytes: 0, source: '' };
    // The cheapest fix, when there is one: the user properties repeat the stream, namespace and time on every message.
    const lean =
      target.messageProperties.length > 0 || target.userPropertyBytes > 0
        ? this.encoder.sizeWithoutUserProperties(target, payloadBytes, sizing?.usesTopicAliases ?? false)
        : size;
    const fix =
      lean <= bytes
        ? `Turning off ${field('mqtt5_user_properties')} makes it ${lean} bytes, which fits; otherwise raise the broker's limit or leave out this record's large fields.`
        : "Nothing larger can be published to this broker; raise its limit or leave out this record's large fields.";
    return `${target.label} makes a ${size}-byte MQTT message, larger than the ${bytes} bytes ${source}. ${fix}`;
  }

  private qos2Unsupported(topic: string): ConnectorError {
    return new ConfigError(
      `The broker answered a QoS 2 (exactly once) message on topic ${JSON.stringify(topic)} with PUBACK, the QoS 1 acknowledgement: it does not support QoS 2 and downgraded the message. ` +
        `Set ${field('message_qos')} to AT_LEAST_ONCE.`,
      'PUBACK for a QoS 2 PUBLISH',
    );
  }

  private refused(topic: string, code: number): ConnectorError {
    const reason = describeReason(code);
    if (!wouldRepeat(code)) {
      return new TransientError(
        `The broker refused a message on topic "${topic}": ${reason}. It may accept it later; the sync stops so that it can be retried.`,
        reason,
      );
    }
    return new ConfigError(
      `The broker refused a message on topic "${topic}": ${reason}. Check the broker's access rules and limits for this topic.`,
      reason,
    );
  }
}
