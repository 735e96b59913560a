/**
 * One stream's way to the broker: what a record of the stream becomes (its topic, its payload, its per-message
 * properties), or why it cannot be published. Everything that is the same for every record of the stream is worked
 * out once, when the lane is built; `prepare` is on the hot path and only fills in the record's own parts.
 *
 * Keyed streams (a `{key}` topic, or a sync mode that keeps one retained message per key) put each record on its
 * key's topic; a CDC delete there becomes a zero-byte retained message, which removes the key from the broker.
 */
import { randomUUID } from 'node:crypto';
import { type StreamRoute, describeStream } from '../airbyte/catalog.js';
import { findPath } from '../airbyte/raw-json.js';
import type { Settings } from '../config/settings.js';
import { type MessageValues, NO_VALUES, type PublishTarget, publishTarget, retarget } from '../mqtt/packets.js';
import { buildEnvelope } from '../payload/envelope.js';
import { keyText, keyValues } from '../payload/record-key.js';
import { MAX_TOPIC_BYTES, encodeKeyLevel, keyTopic } from '../payload/topic.js';

/** The parts of a RECORD line a lane needs (see airbyte/input.ts). */
export interface RecordParts {
  readonly dataJson: string;
  readonly emittedAtJson: string;
  /** `record.meta` as the source wrote it, when present. */
  readonly metaJson?: string | undefined;
}

/** A record ready to send: where, what, and with which per-message properties. */
export interface Publish {
  readonly kind: 'publish';
  readonly target: PublishTarget;
  readonly payload: string;
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

const CDC_DELETED_AT = '_ab_cdc_deleted_at';
const CDC_DELETED_PATH = [CDC_DELETED_AT];
const CDC_DELETED_QUOTED = `"${CDC_DELETED_AT}"`;

interface PayloadFormat {
  readonly contentType: string;
  render(recordId: string, record: RecordParts): string;
}

function preparePayloadFormat(format: Settings['messageFormat'], route: StreamRoute): PayloadFormat {
  if (format === 'data') return { contentType: 'application/json', render: (_id, record) => record.dataJson };
  return {
    contentType: 'application/json',
    render: (id, record) => buildEnvelope({ streamJson: route.streamJson, emittedAtJson: record.emittedAtJson, dataJson: record.dataJson }, id),
  };
}

type RecordIdMaker = (dataJson: string, key: readonly string[] | undefined) => string;

function recordIdMaker(_kind: Settings['recordId'], _route: StreamRoute): RecordIdMaker {
  return () => randomUUID();
}

function wholeMilliseconds(emittedAtJson: string): string {
  return emittedAtJson;
}

export class Lane {
  readonly label: string;
  readonly target: PublishTarget;
  /** Keyed streams: the target that tombstones share (no per-message properties: an empty message carries none). */
  private readonly tombstoneTarget: PublishTarget | undefined;
  private readonly format: PayloadFormat;
  private readonly recordId: RecordIdMaker;
  private readonly withValues: boolean;
  private readonly escaping: Settings['topicEscaping'];

  constructor(
    readonly route: StreamRoute,
    settings: Settings,
  ) {
    const mqtt5 = settings.mqttVersion === '5';
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
    this.format = preparePayloadFormat(settings.messageFormat, route);
    this.withValues = mqtt5 && settings.mqtt5UserProperties;
    const common = {
      mqtt5,
      retain: route.retained || settings.retain,
      contentType: this.format.contentType,
      messageExpirySeconds: settings.messageExpirySeconds,
      userProperties: Object.keys(userProperties).length > 0 ? userProperties : undefined,
      aliasable: !route.keyed,
      label: this.label,
      group: route.topicName,
    };
    this.target = publishTarget(route.keyed ? route.topicName : route.topic.before, {
      ...common,
      messageProperties: this.withValues ? ['airbyte_emitted_at', 'airbyte_record_id'] : [],
    });
    this.tombstoneTarget = route.keyed ? publishTarget(route.topicName, { ...common, contentType: undefined, userProperties: undefined }) : undefined;
    this.recordId = recordIdMaker(settings.recordId, route);
  }

  /** What the record of input line `line` becomes. */
  prepare(record: RecordParts, line: number): Publish | Rejection {
    const { route } = this;
    let key: readonly string[] | undefined;
    if (route.primaryKey.length > 0) {
      const found = keyValues(record.dataJson, route.primaryKey);
      if ('values' in found) key = found.values;
      else if (route.keyed) {
        const path = (route.primaryKey[found.field] as readonly string[]).join('.');
        return this.reject(
          record,
          `input line ${line}: ${this.label} has primary key field "${path}" ${found.problem === 'missing' ? 'missing' : `set to ${found.problem}`}, so it has no topic of its own`,
        );
      }
    }
    const recordId = this.recordId(record.dataJson, key);
    let target = this.target;
    let tombstone = false;
    if (route.keyed) {
      const levels: string[] = [];
      for (const [index, value] of (key as readonly string[]).entries()) {
        const level = encodeKeyLevel(keyText(value), this.escaping);
        if (level === undefined) {
          const path = (route.primaryKey[index] as readonly string[]).join('.');
          return {
            kind: 'reject',
            recordId,
            reason: `input line ${line}: ${this.label} has primary key field "${path}" with a lone UTF-16 surrogate, which no topic can hold`,
          };
        }
        levels.push(level);
      }
      const topic = keyTopic(route.topic, levels);
      // Key levels are escaped, so only the length can make the topic invalid; bytes are at most three per character.
      if (topic.length * 3 > MAX_TOPIC_BYTES && Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) {
        return {
          kind: 'reject',
          recordId,
          reason: `input line ${line}: ${this.label} has a key whose topic is longer than the ${MAX_TOPIC_BYTES} bytes MQTT allows`,
        };
      }
      tombstone = route.retained && isCdcDelete(record.dataJson);
      target = retarget(tombstone ? (this.tombstoneTarget as PublishTarget) : this.target, topic);
    }
    if (tombstone) return { kind: 'publish', target, payload: '', bytes: 0, values: NO_VALUES, key, recordId, tombstone };
    const payload = this.format.render(recordId, record);
    const values = this.withValues ? [wholeMilliseconds(record.emittedAtJson), recordId] : NO_VALUES;
    return { kind: 'publish', target, payload, bytes: Buffer.byteLength(payload, 'utf8'), values, key, recordId, tombstone };
  }

  /** The target of a zero-byte retained message that clears `topic`, one of this stream's key topics. */
  tombstone(topic: string): PublishTarget {
    return retarget(this.tombstoneTarget ?? this.target, topic);
  }

  private reject(record: RecordParts, reason: string): Rejection {
    return { kind: 'reject', reason, recordId: this.recordId(record.dataJson, undefined) };
  }
}

/** A CDC delete: `_ab_cdc_deleted_at` present and not null. Most records do not mention it: a substring test first. */
export function isCdcDelete(dataJson: string): boolean {
  if (!dataJson.includes(CDC_DELETED_QUOTED)) return false;
  const span = findPath(dataJson, CDC_DELETED_PATH);
  return span !== undefined && dataJson.charCodeAt(span.start) !== 0x6e; /* n(ull) */
}
