/**
 * Flow control over MQTT.js, which has none of its own: it neither honours the broker's Receive Maximum nor pushes
 * back on QoS 1/2 publishes, and its message ids wrap at 65,535 without checking. The publisher keeps a bounded window
 * of unacknowledged messages and tells its caller when to stop reading and when to go on.
 *
 * "Acknowledged" means PUBACK at QoS 1 and PUBCOMP at QoS 2. QoS 0 has no acknowledgement, so a message counts as
 * acknowledged once MQTT.js has handed it to the socket, and the socket's own buffer paces the window.
 */
import { ErrorWithReasonCode, type IClientPublishOptions, type MqttClient, type Packet } from 'mqtt';
import { type ConnectorError, ConfigError, TransientError } from './errors.js';
import type { QoS } from './config/settings.js';
import type { PublishProperties } from './message.js';

/** MQTT 5 reason code 0x10: accepted, but nobody subscribes to the topic. Success, worth reporting. */
const NO_MATCHING_SUBSCRIBERS = 0x10;

/** MQTT packet identifiers are 16 bits; more messages in flight would reuse ids and lose their callbacks. */
export const MAX_PACKET_IDS = 65_535;

export interface PublisherOptions {
  readonly qos: QoS;
  readonly retain: boolean;
  /** Configured bound on unacknowledged messages (`max_inflight`). */
  readonly maxInflight: number;
  /** `publisher_sync`: one message at a time. */
  readonly oneAtATime: boolean;
  /** The broker's Receive Maximum (MQTT 5), if it announced one. */
  readonly brokerReceiveMaximum: number | undefined;
}

export interface PublisherHandlers {
  /** The message published with this token is acknowledged. Called exactly once per message unless the sync fails. */
  acknowledged(token: number): void;
  /** Publishing cannot go on; called at most once. */
  failed(error: ConnectorError): void;
}

/** The number of messages allowed in flight: the configured bound, the broker's Receive Maximum, and packet ids. */
export function windowSize(options: Omit<PublisherOptions, 'qos' | 'retain'>): number {
  if (options.oneAtATime) return 1;
  return Math.max(1, Math.min(options.maxInflight, options.brokerReceiveMaximum ?? MAX_PACKET_IDS, MAX_PACKET_IDS));
}

export class Publisher {
  readonly window: number;
  private inflight = 0;
  private failure: ConnectorError | undefined;
  private closing = false;
  private onRoom: (() => void) | undefined;
  private roomScheduled = false;
  private onIdle: (() => void) | undefined;
  private readonly publishOptions: IClientPublishOptions;
  /** Packet ids whose PUBACK or PUBREC said "no matching subscribers", until their publish completes. */
  private readonly unheard = new Set<number>();
  /** Per topic, how many messages the broker accepted with "no matching subscribers". */
  readonly noSubscribers = new Map<string, number>();

  constructor(
    private readonly client: MqttClient,
    private readonly options: PublisherOptions,
    private readonly handlers: PublisherHandlers,
  ) {
    this.window = windowSize(options);
    this.publishOptions = { qos: options.qos, retain: options.retain };
    client.on('packetreceive', (packet: Packet) => {
      if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.reasonCode === NO_MATCHING_SUBSCRIBERS && packet.messageId !== undefined) {
        this.unheard.add(packet.messageId);
      }
    });
    client.on('close', () => this.fail(this.connectionLost()));
    client.on('error', (err) => this.fail(this.connectionLost(err)));
  }

  get unacknowledged(): number {
    return this.inflight;
  }

  /** Whether another message may be sent now. */
  get hasRoom(): boolean {
    if (this.failure || this.inflight >= this.window) return false;
    // At QoS 0 nothing is acknowledged, so the socket's buffer is the only signal that the broker keeps up.
    return this.options.qos > 0 || !this.client.stream.writableNeedDrain;
  }

  send(topic: string, payload: string, token: number, properties?: PublishProperties): void {
    this.inflight++;
    const options = properties ? { ...this.publishOptions, properties } : this.publishOptions;
    this.client.publish(topic, payload, options, (err, packet) => {
      if (err) {
        this.fail(this.describePublishError(err, topic));
        return;
      }
      if (packet?.messageId !== undefined && this.unheard.delete(packet.messageId)) {
        this.noSubscribers.set(topic, (this.noSubscribers.get(topic) ?? 0) + 1);
      }
      this.inflight--;
      this.handlers.acknowledged(token);
      this.afterAck();
    });
  }

  /**
   * Calls `resume` once there is room again. It is deferred to a later turn of the event loop so that every
   * acknowledgement already received is counted first and the window refills in one batch, which mqtt-packet then
   * writes to the socket in one go.
   */
  whenRoom(resume: () => void): void {
    this.onRoom = resume;
    this.afterAck();
  }

  /** Resolves once every message sent has been acknowledged; rejects if the publisher fails first. */
  drain(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      if (this.inflight === 0) {
        resolve();
        return;
      }
      this.onIdle = () => (this.failure ? reject(this.failure) : resolve());
    });
  }

  /** Marks the coming close as intended, so it is not reported as a lost connection. */
  closingDeliberately(): void {
    this.closing = true;
  }

  private afterAck(): void {
    if (this.inflight === 0 && this.onIdle) {
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

  private connectionLost(cause?: Error): ConnectorError {
    const code = (cause as { code?: unknown } | undefined)?.code;
    const why = cause ? ` (${typeof code === 'string' ? code : cause.message})` : '';
    return new TransientError(
      `The connection to the broker was lost${why} with ${this.inflight} message(s) not yet acknowledged. ` +
        'If the broker limits messages in flight per client, lower "Maximum messages in flight" (max_inflight).',
      cause?.message,
    );
  }

  private describePublishError(err: Error, topic: string): ConnectorError {
    if (err instanceof ErrorWithReasonCode) {
      const reason = `${err.message.replace(/^Publish error: /, '')} (reason code 0x${err.code.toString(16)})`;
      return new ConfigError(`The broker refused a message on topic "${topic}": ${reason}. Check the broker's access rules and limits for this topic.`, reason);
    }
    return new TransientError(`Publishing to topic "${topic}" failed: ${err.message}`, err.message);
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
