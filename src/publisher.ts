/**
 * Publishing with flow control. MQTT.js keeps the connection (CONNECT, TLS, WebSocket, keepalive) and parses what the
 * broker sends; the publisher encodes and writes PUBLISH and PUBREL packets itself, because MQTT.js has no flow control
 * (it ignores the broker's Receive Maximum, applies no backpressure to QoS 1/2, and reuses message ids past 65,535) and
 * its per-message cost exceeds the broker's.
 *
 * Messages sent in one turn of the event loop go out as one write. At most `window` messages await acknowledgement;
 * the caller stops reading input while the window is full and is told, in a later turn (so that every acknowledgement
 * already received is counted first), when to go on.
 *
 * "Acknowledged" means PUBACK at QoS 1 and PUBCOMP at QoS 2. QoS 0 has no acknowledgement, so a message counts as
 * acknowledged once the write that carries it has been handed to the operating system.
 */
import type { Duplex } from 'node:stream';
import type { MqttClient, Packet } from 'mqtt';
import { type ConnectorError, ConfigError, TransientError } from './errors.js';
import type { QoS } from './config/settings.js';
import { PUBREL_SIZE, type PublishEncoder, type PublishTarget, writePubrel } from './packets.js';

/** MQTT packet identifiers are 16 bits; more messages in flight would reuse ids and confuse acknowledgements. */
export const MAX_PACKET_IDS = 65_535;

/** MQTT 5 reason code 0x10: accepted, but nobody subscribes to the topic. Success, worth reporting. */
const NO_MATCHING_SUBSCRIBERS = 0x10;
const BATCH_BYTES = 64 * 1024;
/** Refilling in halves needs half a window of at least this many acknowledgements (see `refillDue`). */
const REFILL_BATCH_MINIMUM = 128;

const REASONS: Readonly<Record<number, string>> = {
  0x80: 'Unspecified error',
  0x83: 'Implementation specific error',
  0x87: 'Not authorized',
  0x90: 'Topic Name invalid',
  0x91: 'Packet identifier in use',
  0x92: 'Packet identifier not found',
  0x97: 'Quota exceeded',
  0x99: 'Payload format invalid',
};

export interface PublisherOptions {
  readonly qos: QoS;
  /** Configured bound on unacknowledged messages (`max_inflight`). */
  readonly maxInflight: number;
  /** `publisher_sync`: one message at a time. */
  readonly oneAtATime: boolean;
  /** The broker's Receive Maximum (MQTT 5), if it announced one. */
  readonly brokerReceiveMaximum: number | undefined;
}

export interface PublisherHandlers {
  /** The message sent with this token is acknowledged. Called once per message unless the sync fails. */
  acknowledged(token: number): void;
  /** Publishing cannot go on; called at most once. */
  failed(error: ConnectorError): void;
}

/** The number of messages allowed in flight: the configured bound, the broker's Receive Maximum, and packet ids. */
export function windowSize(options: Omit<PublisherOptions, 'qos'>): number {
  if (options.oneAtATime) return 1;
  return Math.max(1, Math.min(options.maxInflight, options.brokerReceiveMaximum ?? MAX_PACKET_IDS, MAX_PACKET_IDS));
}

const FREE = 0;
const AWAITING_ACK = 1; // PUBACK (QoS 1) or PUBREC (QoS 2)
const AWAITING_COMPLETE = 2; // PUBCOMP, after our PUBREL

export class Publisher {
  readonly window: number;
  private inflight = 0;
  private failure: ConnectorError | undefined;
  private closing = false;
  private onRoom: (() => void) | undefined;
  private roomScheduled = false;
  private onIdle: (() => void) | undefined;

  // In-flight messages by packet id, in flat arrays: no object or closure per message.
  private nextId = 1;
  private readonly stage = new Uint8Array(MAX_PACKET_IDS + 1);
  private readonly tokenById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly targetById: (PublishTarget | undefined)[] = new Array<PublishTarget | undefined>(MAX_PACKET_IDS + 1);

  // The batch being filled this turn, and at QoS 0 the tokens of the messages in it.
  private batch: Buffer | undefined;
  private used = 0;
  private batchTokens: number[] = [];
  private flushScheduled = false;

  /** Per topic, how many messages the broker accepted with "no matching subscribers". */
  readonly noSubscribers = new Map<string, number>();

  constructor(
    private readonly client: MqttClient,
    private readonly encoder: PublishEncoder,
    private readonly options: PublisherOptions,
    private readonly handlers: PublisherHandlers,
  ) {
    this.window = windowSize(options);
    client.on('packetreceive', (packet: Packet) => this.received(packet));
    client.on('close', () => this.fail(this.connectionLost()));
    client.on('error', (err) => this.fail(this.connectionLost(err)));
  }

  get unacknowledged(): number {
    return this.inflight;
  }

  /** Whether another message may be sent now. */
  get hasRoom(): boolean {
    if (this.failure || this.inflight >= this.window) return false;
    return !this.stream.writableNeedDrain;
  }

  /**
   * Whether to wake a paused reader. Waking it for every freed slot sends one small write per acknowledgement (each a
   * system call and, on loopback, a wake-up of the broker); waiting until half the window is free lets each refill go
   * out as one large write while the other half keeps the broker busy. That only works when half the window is many
   * acknowledgements: a few are small packets that a broker with Nagle's algorithm on (Mosquitto) holds back until it
   * sees our next TCP segment, so waiting for them stalls each round for the 40 ms of a delayed ACK. Measured with
   * `npm run bench`: QoS 2 with its window of 20 went from 4 s to over 120 s per 100,000 records when made to wait.
   */
  private get refillDue(): boolean {
    return this.hasRoom && (this.window < REFILL_BATCH_MINIMUM * 2 || this.inflight <= this.window >> 1);
  }

  private get stream(): Duplex {
    // MQTT.js replaces its stream on every connection, so it is looked up, never kept.
    return this.client.stream as Duplex;
  }

  /** Queues one message; it leaves with the rest of this turn's batch. `size` is `encoder.size(...)` for it. */
  send(target: PublishTarget, payload: string, payloadBytes: number, emittedAtJson: string, size: number, token: number): void {
    this.inflight++;
    let id = 0;
    if (this.options.qos > 0) {
      id = this.allocateId();
      this.stage[id] = AWAITING_ACK;
      this.tokenById[id] = token;
      this.targetById[id] = target;
    } else {
      this.batchTokens.push(token);
    }
    const buffer = this.reserve(size);
    this.used = this.encoder.write(buffer, this.used, target, id, payload, payloadBytes, emittedAtJson);
  }

  /** Calls `resume` once there is room again, in a later turn of the event loop. */
  whenRoom(resume: () => void): void {
    this.onRoom = resume;
    if (this.stream.writableNeedDrain) this.stream.once('drain', () => this.afterAck());
    this.afterAck();
  }

  /** Resolves once every message sent has been acknowledged; rejects if the publisher fails first. */
  drain(): Promise<void> {
    this.flush();
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (this.inflight === 0) return resolve();
      this.onIdle = () => (this.failure ? reject(this.failure) : resolve());
    });
  }

  /** Marks the coming close as intended, so it is not reported as a lost connection. */
  closingDeliberately(): void {
    this.closing = true;
  }

  private allocateId(): number {
    // Sequential ids are safe: an id comes round again only after 65,535 later messages, and the window never lets
    // that many be outstanding.
    const id = this.nextId;
    this.nextId = id === MAX_PACKET_IDS ? 1 : id + 1;
    if (this.stage[id] !== FREE) throw new Error(`packet id ${id} is still in flight`);
    return id;
  }

  /** Room for `size` bytes in the current batch, starting a new batch when needed; schedules the flush. */
  private reserve(size: number): Buffer {
    if (this.batch && this.used + size > this.batch.length) this.flush();
    if (!this.batch) {
      this.batch = Buffer.allocUnsafe(Math.max(BATCH_BYTES, size));
      this.used = 0;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
    return this.batch;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.batch || this.used === 0 || this.failure) return;
    const chunk = this.batch.subarray(0, this.used);
    // The rest of the buffer is reused for the next batch: the written part belongs to the stream now.
    this.batch = this.batch.length - this.used >= 4096 ? this.batch.subarray(this.used) : undefined;
    this.used = 0;
    if (this.options.qos === 0) {
      const tokens = this.batchTokens;
      this.batchTokens = [];
      this.stream.write(chunk, (err) => {
        if (err) return;
        this.inflight -= tokens.length;
        for (const token of tokens) this.handlers.acknowledged(token);
        this.afterAck();
      });
    } else {
      this.stream.write(chunk);
    }
  }

  private received(packet: Packet): void {
    if (packet.cmd !== 'puback' && packet.cmd !== 'pubrec' && packet.cmd !== 'pubcomp') return;
    const id = packet.messageId ?? 0;
    const expected = packet.cmd === 'pubcomp' ? AWAITING_COMPLETE : AWAITING_ACK;
    // Not ours (MQTT.js's own publishes) or a duplicate: leave it.
    if (this.stage[id] !== expected || (packet.cmd === 'puback') !== (this.options.qos === 1)) return;
    const target = this.targetById[id];
    const reason = packet.reasonCode ?? 0;
    if (reason >= 0x80) {
      this.fail(this.refused(target?.topic ?? '?', reason));
      return;
    }
    if (reason === NO_MATCHING_SUBSCRIBERS && target) this.noSubscribers.set(target.topic, (this.noSubscribers.get(target.topic) ?? 0) + 1);
    if (packet.cmd === 'pubrec') {
      this.stage[id] = AWAITING_COMPLETE;
      this.used = writePubrel(this.reserve(PUBREL_SIZE), this.used, id);
      return;
    }
    this.stage[id] = FREE;
    this.targetById[id] = undefined;
    this.inflight--;
    this.handlers.acknowledged(this.tokenById[id] as number);
    this.afterAck();
  }

  private afterAck(): void {
    if (this.inflight === 0 && this.onIdle) {
      const idle = this.onIdle;
      this.onIdle = undefined;
      idle();
    }
    if (!this.onRoom || this.roomScheduled || !this.refillDue) return;
    this.roomScheduled = true;
    setImmediate(() => {
      this.roomScheduled = false;
      const resume = this.onRoom;
      this.onRoom = undefined;
      if (resume && !this.failure) resume();
    });
  }

  private refused(topic: string, code: number): ConnectorError {
    const reason = `${REASONS[code] ?? 'Refused'} (reason code 0x${code.toString(16)})`;
    return new ConfigError(`The broker refused a message on topic "${topic}": ${reason}. Check the broker's access rules and limits for this topic.`, reason);
  }

  private connectionLost(cause?: Error): ConnectorError {
    const code = (cause as { code?: unknown } | undefined)?.code;
    const why = cause ? ` (${typeof code === 'string' ? code : cause.message})` : '';
    return new TransientError(
      `The connection to the broker was lost${why} with ${this.inflight} message(s) not yet acknowledged. ` +
        'If the broker limits messages in flight per client, lower "Maximum messages in flight" (max_inflight).',
      cause?.message,
    );
  }

  private fail(error: ConnectorError): void {
    if (this.failure || this.closing) return;
    this.failure = error;
    this.onRoom = undefined;
    const idle = this.onIdle;
    this.onIdle = undefined;
    idle?.();
    this.handlers.failed(error);
  }
}
