/**
 * What one connection has of its own for sending, and goes with it: how many messages may be in flight on it (the
 * configured bound and the broker's Receive Maximum), how many are, the topic aliases announced on it, the largest
 * packet it may carry, the bytes waiting to be written to it (the batch, and at QoS 0 the messages it carries), and
 * the listening to its acknowledgements. The publisher builds one when a connection is ready and closes it when the
 * connection is lost, so nothing of one connection leaks into the next: a new connection announces its aliases again
 * and starts with an empty batch and an empty window, without anyone having to remember to reset them.
 *
 * Packet ids and the messages in flight are not here: they belong to the MQTT session, which outlives a connection
 * when the broker keeps it (a resumed session expects PUBREL with the ids it acknowledged): see inflight-store.ts.
 */
import type { ConnectionPort, PortListener } from './connection-port.js';
import { field } from '../config/spec.js';
import { MAX_PACKET_IDS } from './inflight-store.js';
import {
  type MessageValues,
  type Payload,
  PUBREL_SIZE,
  type PublishEncoder,
  type PublishTarget,
  writePubrel,
} from './packets.js';
import type { Oversize } from './publish-errors.js';
import { WriteBatch } from './write-batch.js';

export interface SendOptions {
  /** Configured bound on unacknowledged messages (`max_inflight`). */
  readonly maxInflight: number;
  /** `publisher_sync`: one message at a time. */
  readonly oneAtATime: boolean;
  /** `max_message_bytes`: the largest PUBLISH packet to send, whatever the broker allows. */
  readonly maxMessageBytes: number;
}

/** The largest PUBLISH packet a connection may carry, and what sets that limit, in words for an error message. */
interface SizeLimit {
  readonly bytes: number;
  readonly source: string;
}

/** The number of messages allowed in flight: the configured bound, the broker's Receive Maximum, and packet ids. */
export function windowSize(
  options: Pick<SendOptions, 'maxInflight' | 'oneAtATime'> & { readonly brokerReceiveMaximum: number | undefined },
): number {
  if (options.oneAtATime) return 1;
  return Math.max(1, Math.min(options.maxInflight, options.brokerReceiveMaximum ?? MAX_PACKET_IDS, MAX_PACKET_IDS));
}

function sizeLimit(maxMessageBytes: number, brokerMaximum: number | undefined): SizeLimit {
  return brokerMaximum !== undefined && brokerMaximum <= maxMessageBytes
    ? { bytes: brokerMaximum, source: 'the broker accepts (its Maximum Packet Size)' }
    : { bytes: maxMessageBytes, source: `allowed by ${field('max_message_bytes')}, or by MQTT itself when unset` };
}

export interface SendEvents extends PortListener {
  /**
   * Given at QoS 0 only: the messages (their ids, as `carries` noted them) of a write the operating system took. QoS 0
   * has no acknowledgement, so that write is their delivery.
   */
  readonly delivered?: (ids: readonly number[]) => void;
}

export class SendState {
  readonly window: number;
  readonly sizeLimit: SizeLimit;
  /** Messages written here and not yet acknowledged (a PUBREL awaiting PUBCOMP counts): what the window bounds. */
  private onWire = 0;
  /** The packets of this turn, written to the port as one chunk. */
  readonly batch: WriteBatch;
  /** At QoS 0, the messages (their ids) in this turn's batch. */
  private batchIds: number[] = [];
  /** Per topic, the alias it has on this connection (0: none); present once announced. */
  private readonly aliases = new Map<string, number>();
  private readonly aliasMaximum: number;

  private readonly unlisten: () => void;
  private readonly delivered: ((ids: readonly number[]) => void) | undefined;

  /** Listens to `port` for `events` until `close`. */
  constructor(
    readonly port: ConnectionPort,
    private readonly encoder: PublishEncoder,
    options: SendOptions,
    events: SendEvents,
  ) {
    this.unlisten = port.listen(events);
    this.delivered = events.delivered;
    const { limits } = port;
    this.window = windowSize({ ...options, brokerReceiveMaximum: limits.receiveMaximum });
    this.sizeLimit = sizeLimit(options.maxMessageBytes, limits.maximumPacketSize);
    this.aliasMaximum = limits.topicAliasMaximum ?? 0;
    this.batch = new WriteBatch((chunk) => this.write(chunk));
  }

  /** Whether messages may carry a topic alias here: the first to a topic then also announces it (3 bytes more). */
  get usesTopicAliases(): boolean {
    return this.aliasMaximum > 0;
  }

  get windowFull(): boolean {
    return this.onWire >= this.window;
  }

  /**
   * Encodes a PUBLISH into this turn's batch and counts it on the wire. Returns 0, or, when the message is larger than
   * this connection may carry, its size (and writes nothing). The size checked is that of the message with its topic
   * spelled out, as it is sent first on any connection, so that a message that fits now fits after a reconnect too.
   */
  publish(
    target: PublishTarget,
    packetId: number,
    payload: Payload,
    payloadBytes: number,
    values: MessageValues,
    dup: boolean,
  ): number {
    const { encoder } = this;
    const { alias, withTopic } = this.aliasFor(target);
    const full = encoder.size(target, payloadBytes, values, alias, true);
    if (full > this.sizeLimit.bytes) return full;
    const size = withTopic ? full : encoder.size(target, payloadBytes, values, alias, false);
    const buffer = this.batch.room(size);
    this.batch.commit(
      encoder.write(buffer, this.batch.offset, target, packetId, payload, payloadBytes, values, dup, alias, withTopic),
    );
    if (withTopic && this.aliasMaximum > 0 && target.aliasable && !this.aliases.has(target.topic))
      this.aliases.set(target.topic, alias);
    this.onWire++;
    return 0;
  }

  /** The size `publish` would find too large for this connection, or 0 if the message fits. Writes nothing. */
  oversize(target: PublishTarget, payloadBytes: number, values: MessageValues): number {
    const full = this.encoder.size(target, payloadBytes, values, this.aliasFor(target).alias, true);
    return full > this.sizeLimit.bytes ? full : 0;
  }

  /** The connection is gone: stop listening to it, and drop what was not written. */
  close(): void {
    this.unlisten();
    this.batch.clear();
  }

  /** At QoS 0: message `id` is in this turn's batch. After `publish`, which may have flushed the packets before it. */
  carries(id: number): void {
    this.batchIds.push(id);
  }

  /** The most payload bytes a message to `target` with `values` may have on this connection. */
  payloadRoom(target: PublishTarget, values: MessageValues): number {
    return this.sizeLimit.bytes - this.encoder.size(target, 0, values);
  }

  /** A message of `size` bytes, too large for this connection, as publish-errors.ts describes it. */
  oversizeOf(target: PublishTarget, payloadBytes: number, size: number): Oversize {
    // The cheapest fix, when there is one: the user properties repeat the stream, namespace and time on every message.
    const withoutUserProperties =
      target.messageProperties.length > 0 || target.userPropertyBytes > 0
        ? this.encoder.sizeWithoutUserProperties(target, payloadBytes, this.usesTopicAliases)
        : size;
    return { label: target.label, size, limit: this.sizeLimit, withoutUserProperties };
  }

  /**
   * The alias a message to `target` carries on this connection (0: none), and whether it spells out its topic. The
   * first message to a topic announces its alias, while the broker allows more: topic and alias together.
   */
  private aliasFor(target: PublishTarget): { alias: number; withTopic: boolean } {
    if (this.aliasMaximum === 0 || !target.aliasable) return { alias: 0, withTopic: true };
    const known = this.aliases.get(target.topic);
    if (known !== undefined) return { alias: known, withTopic: known === 0 };
    return { alias: this.aliases.size < this.aliasMaximum ? this.aliases.size + 1 : 0, withTopic: true };
  }

  /** Encodes a PUBREL (QoS 2) in answer to PUBREC: the message it releases is on the wire already. */
  release(packetId: number): void {
    this.batch.commit(writePubrel(this.batch.room(PUBREL_SIZE), this.batch.offset, packetId));
  }

  /** Encodes a PUBREL for a message that goes out again on this connection as its release; it counts on the wire. */
  releaseAgain(packetId: number): void {
    this.release(packetId);
    this.onWire++;
  }

  /** A message on the wire is acknowledged or refused: its place in the window is free. */
  settled(): void {
    this.onWire--;
  }

  private write(chunk: Buffer): void {
    const { delivered } = this;
    if (!delivered) {
      this.port.write(chunk);
      return;
    }
    const ids = this.batchIds;
    this.batchIds = [];
    this.port.write(chunk, (err) => {
      // A failed write belongs to a lost connection; its messages go out again on the next one.
      if (!err) delivered(ids);
    });
  }
}
