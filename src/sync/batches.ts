/**
 * Several records per message (`batch_layout`), for brokers that meter or cap messages: AWS IoT Core bills each
 * message in 5 KB units and allows about 100 publishes a second per connection, so a sync of ten million small records
 * would be ten million messages and more than a day on one connection.
 *
 * A batch gathers records of one topic going over one connection, in input order, and closes when it is full (records
 * or bytes), when `batch_linger_ms` has passed since its first record, and at the end of the input. Its payload is a
 * JSON array of the records' payloads (what the message format gives each) or one payload per line, compressed whole
 * when `payload_compression` says so. A state behind an open batch waits at most the linger time for it to close,
 * then for its acknowledgement, which releases every record in it, as one record's acknowledgement does.
 *
 * The batch never exceeds `batch_max_bytes` (before compression) nor what the connection may carry; a record that
 * would not fit an empty batch goes alone, and the usual size check rejects it if it does not fit a message either.
 */
import { describeStream } from '../airbyte/catalog.js';
import type { Packing } from '../config/settings.js';
import { field } from '../config/spec.js';
import { ConfigError } from '../errors.js';
import type { BatchLayout } from '../payload/payload-format.js';
import type { StreamRoute } from './routes.js';
import type { MessageValues, Payload, PublishTarget } from '../mqtt/packets.js';
import { compress } from '../payload/compression.js';
import type { Batched, Channel } from './channel.js';
import type { Lane, Publish } from './lane.js';

interface OpenBatch {
  readonly channel: Channel;
  readonly lane: Lane;
  readonly topic: string;
  readonly records: Batched[];
  /** The payload so far: the records' payloads with their separators, without the array's brackets. */
  text: string;
  /** Its size in bytes, brackets included. */
  bytes: number;
  /** The most bytes it may hold: `batch_max_bytes`, or less when the connection carries less. */
  readonly limit: number;
  readonly closesAt: number;
  readonly firstId: string;
  lastId: string;
}

/**
 * Batching is refused for a stream whose sync mode keeps a retained keyspace (append_dedup, or overwrite with
 * deduplication): the broker retains one message per topic, and a batch would stand for many keys. The settings refuse
 * `{key}` topics and `message_retained` the same way; the sync modes are known only from the catalog.
 */
export function checkBatching(routes: ReadonlyMap<string, StreamRoute>, layout: BatchLayout): void {
  if (layout === 'none') return;
  for (const route of routes.values()) {
    if (!route.retained) continue;
    throw new ConfigError(
      `${field('batch_layout')} is ${layout}, but stream ${describeStream(route.namespace, route.name)} is synced ` +
        `as ${route.mode}, which keeps a retained message per key: a retained keyspace needs one message per key, ` +
        `so batches cannot be used with it. Set ${field('batch_layout')} to none, or sync the stream in append mode.`,
    );
  }
}

/** A record id's length, for sizing a batch's user properties before its last record is known: a UUID. */
const ID_PLACEHOLDER = '00000000-0000-0000-0000-000000000000';

/** What is done with a batch once it is sent: the caller paces input by it and checks its delivery. */
export type BatchSent = (lane: Lane, channel: Channel, payload: Payload, bytes: number) => void;

export class Batches {
  /** The open batches, by channel and topic, in the order they opened (which is the order they close by time). */
  private readonly open = new Map<Channel, Map<string, OpenBatch>>();
  private readonly byAge: OpenBatch[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly separator: string;

  constructor(
    private readonly packing: Packing,
    private readonly sent: BatchSent,
  ) {
    this.separator = packing.layout === 'jsonl' ? '\n' : ',';
  }

  /**
   * Adds a record to its topic's batch on `channel`; returns false when it cannot be batched and must go alone (it
   * would not fit an empty batch).
   */
  add(lane: Lane, record: Publish, token: number, line: number, channel: Channel): boolean {
    const { topic } = record.target;
    const text = record.payload as string;
    const byTopic = this.open.get(channel) ?? new Map<string, OpenBatch>();
    this.open.set(channel, byTopic);
    let batch = byTopic.get(topic);
    if (batch && (batch.records.length >= this.packing.maxRecords || batch.bytes + 1 + record.bytes > batch.limit)) {
      this.close(batch);
      batch = undefined;
    }
    if (!batch) {
      const opened = this.openBatch(lane, channel, topic, record);
      if (!opened) return false;
      byTopic.set(topic, opened);
      this.byAge.push(opened);
      this.arm();
      batch = opened;
    } else {
      batch.text += this.separator + text;
      batch.bytes += 1 + record.bytes;
      batch.lastId = record.recordId;
    }
    batch.records.push({ ...record, token, line });
    // Full: it goes now, not when the next record of its topic or the linger time comes.
    if (batch.records.length >= this.packing.maxRecords) this.close(batch);
    return true;
  }

  /** Sends every open batch now: the input ended, or the sync is being stopped gracefully. */
  flushAll(): void {
    for (const batch of [...this.byAge]) this.close(batch);
  }

  /** Drops every open batch without sending it: the sync failed. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.open.clear();
    this.byAge.length = 0;
  }

  private openBatch(lane: Lane, channel: Channel, topic: string, record: Publish): OpenBatch | undefined {
    const target = lane.batchTargetFor(topic);
    // The count may grow to the maximum's digits: size the properties for it.
    const most = this.valuesOf(this.packing.maxRecords, ID_PLACEHOLDER, ID_PLACEHOLDER, lane);
    const limit = Math.min(this.packing.maxBytes, channel.payloadRoom(target, most));
    const wrapper = this.packing.layout === 'json_array' ? 2 : 0;
    if (record.bytes + wrapper > limit) return undefined;
    return {
      channel,
      lane,
      topic,
      records: [],
      text: record.payload as string,
      bytes: record.bytes + wrapper,
      limit,
      closesAt: Date.now() + this.packing.lingerMs,
      firstId: record.recordId,
      lastId: record.recordId,
    };
  }

  private valuesOf(count: number, firstId: string, lastId: string, lane: Lane): MessageValues {
    return lane.batchTarget?.messageProperties.length === 0 ? [] : [String(count), firstId, lastId];
  }

  /** Sends `batch` and forgets it. */
  private close(batch: OpenBatch): void {
    this.open.get(batch.channel)?.delete(batch.topic);
    const at = this.byAge.indexOf(batch);
    if (at >= 0) this.byAge.splice(at, 1);
    if (this.stopped) return;
    const text = this.packing.layout === 'json_array' ? `[${batch.text}]` : batch.text;
    const { compression } = this.packing;
    const payload = compression === 'none' ? text : compress(text, compression);
    const bytes = typeof payload === 'string' ? batch.bytes : payload.length;
    const target: PublishTarget = batch.lane.batchTargetFor(batch.topic);
    const values = this.valuesOf(batch.records.length, batch.firstId, batch.lastId, batch.lane);
    batch.channel.sendBatch(target, payload, bytes, values, batch.records);
    this.sent(batch.lane, batch.channel, payload, bytes);
  }

  /** Closes the batches whose linger time is up, then waits for the next. */
  private arm(): void {
    if (this.timer !== undefined || this.stopped) return;
    const next = this.byAge[0];
    if (!next) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = Date.now();
        while (this.byAge[0] && this.byAge[0].closesAt <= now) this.close(this.byAge[0]);
        this.arm();
      },
      Math.max(0, next.closesAt - Date.now()),
    );
  }
}
