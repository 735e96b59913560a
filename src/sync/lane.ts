/**
 * One stream's way to the broker: what a record of the stream becomes (its topic, its payload, its per-message
 * properties), or why it cannot be published. Everything that is the same for every record of the stream is worked
 * out once, when the lane is built; `prepare` is on the hot path and only fills in the record's own parts.
 *
 * Keyed streams (a `{key}` topic, or a sync mode that keeps one retained message per key) put each record on its
 * key's topic; a CDC delete there becomes a zero-byte retained message, which removes the key from the broker.
 */
import { describeStream, streamKey } from '../airbyte/catalog.js';
import type { StreamRoute } from './routes.js';
import { findPath } from '../text/raw-json.js';
import type { MessageSettings } from '../config/settings.js';
import {
  type MessageValues,
  NO_VALUES,
  type Payload,
  type PublishTarget,
  publishTarget,
  retarget,
} from '../mqtt/packets.js';
import { InputError } from '../errors.js';
import { keySubject } from '../payload/cloudevents.js';
import { wholeMilliseconds } from '../payload/emitted-at.js';
import { prepareFormat } from '../payload/formats.js';
import { compress, contentEncoding } from '../payload/compression.js';
import type { BatchLayout, Compression, MessageFormat, PayloadFormat } from '../payload/payload-format.js';
import { type KeyValue, keyValueText, keyValues, unusableKeyReason } from '../payload/key-values.js';
import { type RecordIds, recordIds } from '../payload/record-id.js';
import { MAX_TOPIC_BYTES, encodeKeyLevel, fillTopic } from '../payload/topic.js';

/** A RECORD line's own text, as the source wrote it: the parts a lane needs (see airbyte/input.ts). */
export interface RecordText {
  readonly dataJson: string;
  readonly emittedAtJson: string;
  /** `record.meta` as the source wrote it, when present. */
  readonly metaJson?: string | undefined;
}

/** A record ready to send: where, what, and with which per-message properties. */
export interface Publish {
  readonly kind: 'publish';
  readonly target: PublishTarget;
  /** The payload: the format's text, or bytes when it is compressed (never when the record goes into a batch). */
  readonly payload: Payload;
  readonly bytes: number;
  readonly values: MessageValues;
  /** The record's key field values, raw JSON text, for routing; undefined when the stream has no usable key. */
  readonly key: readonly string[] | undefined;
  readonly recordId: string;
  /** A CDC delete published as a zero-byte retained message. */
  readonly tombstone: boolean;
}

/** A record that cannot be published, and why, in words that name the stream and the field. */
export interface Rejection {
  readonly kind: 'reject';
  readonly reason: string;
  readonly recordId: string;
}

const NO_KEY: readonly KeyValue[] = [];

/** A batch's own user properties (MQTT 5): how many records it holds, and the first and the last record's id. */
export const BATCH_PROPERTIES = ['airbyte_batch_count', 'airbyte_first_record_id', 'airbyte_last_record_id'];

/**
 * The content type of a batch: a JSON array of JSON payloads is JSON (of CloudEvents, the CloudEvents batch format);
 * one payload per line is JSON Lines.
 */
function batchContentType(layout: Exclude<BatchLayout, 'none'>, format: MessageFormat): string {
  if (layout === 'jsonl') return 'application/jsonl';
  return format === 'cloudevents' ? 'application/cloudevents-batch+json' : 'application/json';
}

const CDC_DELETED_AT = '_ab_cdc_deleted_at';
const CDC_DELETED_PATH = [CDC_DELETED_AT];
const CDC_DELETED_QUOTED = `"${CDC_DELETED_AT}"`;

export class Lane {
  /** The stream's key (`streamKey`): what the ledger and the summary count its records by. */
  readonly key: string;
  readonly label: string;
  readonly target: PublishTarget;
  /**
   * The target of this stream's batches (`batch_layout`), at its first topic; undefined without batches. Its
   * per-message properties, with MQTT 5 user properties, are `BATCH_PROPERTIES`.
   */
  readonly batchTarget: PublishTarget | undefined;
  /**
   * How each record's payload is compressed when it goes alone; undefined for not (or for batches, compressed whole).
   */
  private readonly compression: Exclude<Compression, 'none'> | undefined;
  /**
   * The target that tombstones share (no per-message properties: an empty message carries none), where there are any.
   */
  private readonly tombstoneTarget: PublishTarget | undefined;
  private readonly format: PayloadFormat;
  private readonly ids: RecordIds;
  /**
   * The fields read from each record: the primary key's, then (for deterministic ids) the cursor's, then the fields
   * the topic holds, from `fieldsFrom` on.
   */
  private readonly paths: readonly (readonly string[])[];
  private readonly keyFields: number;
  private readonly fieldsFrom: number;
  /** Each record has a topic of its own: the template has key or field levels. */
  private readonly perRecord: boolean;
  private readonly withSubject: boolean;
  private readonly withValues: boolean;
  private readonly escaping: MessageSettings['topicEscaping'];

  constructor(
    readonly route: StreamRoute,
    settings: MessageSettings,
  ) {
    const { mqtt5 } = settings;
    this.key = streamKey(route.namespace, route.name);
    this.escaping = settings.topicEscaping;
    this.label = `the record of stream ${describeStream(route.namespace, route.name)}`;
    const userProperties: Record<string, string> = {};
    if (settings.mqtt5UserProperties) {
      userProperties.airbyte_stream = route.name;
      if (route.namespace !== undefined) userProperties.airbyte_namespace = route.namespace;
    }
    // The generation tag is what a later refresh reads to tell this sync's keys from older ones: retained messages
    // carry it whatever mqtt5_user_properties says.
    if (route.retained) userProperties.airbyte_generation_id = String(route.generationId);
    this.format = prepareFormat(settings.messageFormat, route);
    this.withSubject = settings.messageFormat === 'cloudevents';
    this.withValues = mqtt5 && settings.mqtt5UserProperties;
    const { packing } = settings;
    const encoding = contentEncoding(packing.compression);
    // A batch compresses the whole, not each record in it.
    this.compression = packing.layout === 'none' && packing.compression !== 'none' ? packing.compression : undefined;
    const common = {
      mqtt5,
      retain: route.retained,
      contentType: this.format.contentType,
      messageExpirySeconds: settings.messageExpirySeconds,
      userProperties: Object.keys(userProperties).length > 0 ? userProperties : undefined,
      customUserProperties: settings.customUserProperties,
      aliasable: !route.keyed,
      label: this.label,
      group: route.topicName,
      source: this.key,
    };
    this.perRecord = route.topic.slots.length > 0;
    const compressed = { binary: true, userProperties: { ...userProperties, 'content-encoding': encoding ?? '' } };
    this.target = publishTarget(route.topicName, {
      ...common,
      ...(this.compression ? compressed : {}),
      messageProperties: this.withValues ? ['airbyte_emitted_at', 'airbyte_record_id'] : [],
    });
    this.batchTarget =
      packing.layout === 'none'
        ? undefined
        : publishTarget(route.topicName, {
            ...common,
            ...(encoding ? compressed : {}),
            contentType: batchContentType(packing.layout, settings.messageFormat),
            messageProperties: this.withValues ? BATCH_PROPERTIES : [],
            label: `a batch of stream ${describeStream(route.namespace, route.name)}`,
          });
    // Zero-byte retained messages clear keys: CDC deletes on a keyed stream, and a truncation's stale topics.
    // They are retained whatever the stream's own messages are: only a retained empty message removes one.
    this.tombstoneTarget =
      this.perRecord || route.truncate
        ? publishTarget(route.topicName, { ...common, retain: true, contentType: undefined, userProperties: undefined })
        : undefined;
    this.ids = recordIds(settings.recordId, route);
    this.keyFields = route.primaryKey.length;
    const keyPaths = this.ids.keyPaths.length > 0 ? this.ids.keyPaths : route.primaryKey;
    this.fieldsFrom = keyPaths.length;
    this.paths = [...keyPaths, ...route.fields.map((field) => field.path)];
  }

  /** What the record of input line `line` becomes. */
  prepare(record: RecordText, line: number): Publish | Rejection {
    const { route } = this;
    // One pass over the data for every field the record's topic, routing, id and subject need.
    const values = this.paths.length > 0 ? keyValues(record.dataJson, this.paths) : NO_KEY;
    const keyed = values.length > this.keyFields ? values.slice(0, this.keyFields) : values;
    const unusable = keyed.findIndex((value) => unusableKeyReason(value) !== undefined);
    const idValues = values.length > this.fieldsFrom ? values.slice(0, this.fieldsFrom) : values;
    const recordId = this.ids.idOf(record.dataJson, this.ids.keyPaths.length > 0 ? idValues : undefined);
    let key = unusable < 0 && keyed.length > 0 ? keyed.map((value) => value.json) : undefined;
    let target = this.target;
    let tombstone = false;
    if (this.perRecord) {
      const topic = this.topicOf(keyed, values, line);
      if (typeof topic !== 'string') return { kind: 'reject', recordId, reason: topic.reason };
      tombstone = route.deduped && isCdcDelete(record.dataJson);
      target = retarget(tombstone ? (this.tombstoneTarget as PublishTarget) : this.target, topic);
      // A topic a field decides keeps its records in order over one connection; a key's records share its topic.
      if (route.fields.length > 0) key = [topic];
    }
    if (tombstone)
      return { kind: 'publish', target, payload: '', bytes: 0, values: NO_VALUES, key, recordId, tombstone };
    const emittedAtMs = wholeMilliseconds(record.emittedAtJson);
    if (emittedAtMs === undefined)
      throw new InputError(
        line,
        `RECORD of stream ${describeStream(route.namespace, route.name)} ` +
          'has an "emitted_at" that is not a number of milliseconds',
      );
    const payload = this.format.render({
      id: recordId,
      dataJson: record.dataJson,
      emittedAtMs,
      metaJson: record.metaJson,
      subject: this.withSubject ? keySubject(keyed) : undefined,
    });
    const messageValues = this.withValues ? [emittedAtMs, recordId] : NO_VALUES;
    const packed = this.compression ? compress(payload, this.compression) : payload;
    return {
      kind: 'publish',
      target,
      payload: packed,
      bytes: typeof packed === 'string' ? Buffer.byteLength(packed, 'utf8') : packed.length,
      values: messageValues,
      key,
      recordId,
      tombstone,
    };
  }

  /**
   * The record's own topic: its key's levels and field levels in the stream's template. `keyed` are the key field
   * values, `values` every value read (the fields' from `fieldsFrom` on). A value that cannot be a level is a reason
   * to reject the record, naming the field.
   */
  private topicOf(keyed: readonly KeyValue[], values: readonly KeyValue[], line: number): string | { reason: string } {
    const { route } = this;
    const levels: string[] = [];
    if (route.keyed) {
      for (const [index, value] of keyed.entries()) {
        const path = (route.primaryKey[index] as readonly string[]).join('.');
        const level = this.level(value, `its primary key field "${path}"`, line);
        if (typeof level !== 'string') return level;
        levels.push(level);
      }
    }
    const fields: string[] = [];
    for (const [index, field] of route.fields.entries()) {
      const level = this.level(values[this.fieldsFrom + index] as KeyValue, `its field ${field.placeholder}`, line);
      if (typeof level !== 'string') return level;
      fields.push(level);
    }
    const topic = fillTopic(route.topic, levels, fields);
    if (topic === '') {
      return {
        reason: `input line ${line}: ${this.label} has an empty key, which makes an empty topic (MQTT allows none)`,
      };
    }
    // Levels are escaped, so only emptiness and the length can make the topic invalid; bytes are at most three per
    // UTF-16 unit.
    if (topic.length * 3 > MAX_TOPIC_BYTES && Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) {
      return {
        reason:
          `input line ${line}: ${this.label} has ${route.fields.length > 0 ? 'a topic' : 'a key whose topic is'} ` +
          `longer than the ${MAX_TOPIC_BYTES} bytes MQTT allows`,
      };
    }
    return topic;
  }

  /** `value` as a topic level, or why it cannot be one: `what` names the field in the reason. */
  private level(value: KeyValue, what: string, line: number): string | { reason: string } {
    const unusable = unusableKeyReason(value);
    if (unusable) return { reason: `input line ${line}: ${this.label} has no topic of its own: ${what} ${unusable}` };
    const level = encodeKeyLevel(keyValueText(value), this.escaping);
    if (level === undefined) {
      return {
        reason:
          `input line ${line}: ${this.label} has ${what.replace(/^its /, '')} ` +
          'with a lone UTF-16 surrogate, which no topic can hold',
      };
    }
    return level;
  }

  /** The target of this stream's batches on `topic` (batches are only made with `batch_layout`). */
  batchTargetFor(topic: string): PublishTarget {
    return retarget(this.batchTarget as PublishTarget, topic);
  }

  /** The target of a zero-byte retained message that clears `topic`, one of this stream's key topics. */
  tombstone(topic: string): PublishTarget {
    return retarget(this.tombstoneTarget ?? this.target, topic);
  }
}

/** A CDC delete: `_ab_cdc_deleted_at` present and not null. Most records do not mention it: a substring test first. */
export function isCdcDelete(dataJson: string): boolean {
  if (!dataJson.includes(CDC_DELETED_QUOTED)) return false;
  const span = findPath(dataJson, CDC_DELETED_PATH);
  return span !== undefined && dataJson.charCodeAt(span.start) !== 0x6e; /* n(ull) */
}

/** A lane for each stream of the catalog, by stream key. */
export function lanesFor(routes: ReadonlyMap<string, StreamRoute>, settings: MessageSettings): Map<string, Lane> {
  return new Map([...routes].map(([key, route]) => [key, new Lane(route, settings)]));
}

/** The lane of a record of `stream` on input line `line`; an input error when the catalog has no such stream. */
export function laneOf(lanes: ReadonlyMap<string, Lane>, namespace: string | undefined, stream: string, line: number) {
  const lane = lanes.get(streamKey(namespace, stream));
  if (lane) return lane;
  const named = describeStream(namespace, stream);
  throw new InputError(line, `record of stream ${named}, which is not in the configured catalog`);
}
