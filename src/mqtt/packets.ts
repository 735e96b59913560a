/**
 * Encoding the packets the publisher sends: PUBLISH and PUBREL, for MQTT 3.1, 3.1.1 and 5.
 *
 * MQTT.js encodes each PUBLISH as four or five separate writes and allocates several objects per message; at tens of
 * thousands of messages a second that, not the broker, becomes the bottleneck. Here everything that is the same for
 * every message of a stream (topic, MQTT 5 properties) is encoded once, and each message is written straight into a
 * shared batch buffer. The encoded size is exact, so it is also what is checked against the broker's packet limit.
 */
import type { QoS } from '../config/settings.js';

/**
 * Everything about a stream's messages that does not change from one message to the next. Read-only: what changes
 * with the connection (the topic's alias) belongs to the connection (send-state.ts).
 */
export interface PublishTarget {
  readonly topic: string;
  readonly topicBytes: Buffer;
  /** MQTT 5 properties common to every message of the stream, encoded; empty below MQTT 5. */
  readonly staticProperties: Buffer;
  /**
   * Names of the user properties whose values change from message to message (`airbyte_emitted_at`,
   * `airbyte_record_id`), encoded as MQTT strings; each message brings its values, in this order. Empty below MQTT 5.
   */
  readonly messageProperties: readonly Buffer[];
  readonly retain: boolean;
  /**
   * Whether the topic may get an alias. A topic used once per key gains nothing from one, and would fill the
   * connection's alias table with topics that never come again.
   */
  readonly aliasable: boolean;
  /**
   * Bytes of `staticProperties` taken by user properties: what turning them off would save, with the per-message ones.
   */
  readonly userPropertyBytes: number;
  /** What a message to this target is, for errors: `the record of stream "users"`. */
  readonly label: string;
  /** The topic, or for per-key topics the stream's filter: what counts and summaries are kept by. */
  readonly group: string;
  /** Whose messages these are, for the caller (the sync's stream key); empty when it does not say. */
  readonly source: string;
}

export interface TargetOptions {
  readonly mqtt5: boolean;
  readonly retain?: boolean;
  readonly contentType?: string;
  readonly messageExpirySeconds?: number;
  readonly userProperties?: Readonly<Record<string, string>>;
  /**
   * User properties of the user's own (`mqtt5_custom_user_properties`), after those above: a list, since MQTT lets a
   * name repeat. Not counted in `userPropertyBytes`: turning off the connector's own properties keeps them.
   */
  readonly customUserProperties?: readonly (readonly [string, string])[];
  /** The payload is bytes (compressed), not UTF-8 text: no Payload Format Indicator of UTF-8. */
  readonly binary?: boolean;
  /** Names of the per-message user properties (see `PublishTarget.messageProperties`). */
  readonly messageProperties?: readonly string[];
  /** Shorthand for a first per-message property `airbyte_emitted_at`. */
  readonly emittedAtProperty?: boolean;
  readonly aliasable?: boolean;
  readonly label?: string;
  readonly group?: string;
  readonly source?: string;
}

/**
 * A message's payload: text, written as UTF-8, or bytes (a compressed payload). Its size in bytes is always given
 * alongside, so that nothing measures it twice.
 */
export type Payload = string | Buffer;

/** Values of a message's own user properties, in the order its target names them: ASCII text (numbers, UUIDs). */
export type MessageValues = readonly string[];

/** For targets without per-message properties. */
export const NO_VALUES: MessageValues = [];

const PROPERTY = {
  payloadFormat: 0x01,
  messageExpiry: 0x02,
  contentType: 0x03,
  topicAlias: 0x23,
  userProperty: 0x26,
} as const;

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const field = Buffer.allocUnsafe(2 + bytes.length);
  field.writeUInt16BE(bytes.length, 0);
  bytes.copy(field, 2);
  return field;
}

export function publishTarget(topic: string, options: TargetOptions): PublishTarget {
  const parts: Buffer[] = [];
  let userPropertyBytes = 0;
  if (options.mqtt5) {
    if (options.binary !== true) parts.push(Buffer.from([PROPERTY.payloadFormat, 1]));
    if (options.messageExpirySeconds !== undefined) {
      const expiry = Buffer.allocUnsafe(5);
      expiry[0] = PROPERTY.messageExpiry;
      expiry.writeUInt32BE(options.messageExpirySeconds, 1);
      parts.push(expiry);
    }
    if (options.contentType !== undefined)
      parts.push(Buffer.from([PROPERTY.contentType]), utf8Field(options.contentType));
    for (const [key, value] of Object.entries(options.userProperties ?? {})) {
      const entry = [Buffer.from([PROPERTY.userProperty]), utf8Field(key), utf8Field(value)];
      for (const part of entry) userPropertyBytes += part.length;
      parts.push(...entry);
    }
    for (const [key, value] of options.customUserProperties ?? []) {
      parts.push(Buffer.from([PROPERTY.userProperty]), utf8Field(key), utf8Field(value));
    }
  }
  return {
    topic,
    topicBytes: Buffer.from(topic, 'utf8'),
    staticProperties: Buffer.concat(parts),
    messageProperties: options.mqtt5
      ? [...(options.emittedAtProperty ? ['airbyte_emitted_at'] : []), ...(options.messageProperties ?? [])].map(
          utf8Field,
        )
      : [],
    retain: options.retain ?? false,
    aliasable: options.aliasable ?? true,
    userPropertyBytes,
    label: options.label ?? `the message to topic "${topic}"`,
    group: options.group ?? topic,
    source: options.source ?? '',
  };
}

/** The same stream's target for another topic (one key's), sharing everything encoded once per stream. */
export function retarget(target: PublishTarget, topic: string): PublishTarget {
  return { ...target, topic, topicBytes: Buffer.from(topic, 'utf8') };
}

function varIntLength(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}

function writeVarInt(buffer: Buffer, offset: number, value: number): number {
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    buffer[offset++] = byte;
  } while (rest > 0);
  return offset;
}

export class PublishEncoder {
  private readonly firstByte: number;

  /** `retain` retains every message; a target can ask for it for its own messages. */
  constructor(
    private readonly qos: QoS,
    readonly retain: boolean,
    private readonly mqtt5: boolean,
  ) {
    this.firstByte = 0x30 | (qos << 1) | (retain ? 1 : 0);
  }

  private propertiesLength(target: PublishTarget, values: MessageValues, withAlias: boolean): number {
    let length = target.staticProperties.length;
    if (withAlias) length += 3;
    const names = target.messageProperties;
    // The values are ASCII (numbers, UUIDs): their length in characters is their length in bytes.
    for (let i = 0; i < names.length; i++) length += 1 + (names[i] as Buffer).length + 2 + (values[i] as string).length;
    return length;
  }

  /**
   * The exact size of the PUBLISH packet for this message. `alias` is the topic alias it carries (0 for none, always 0
   * below MQTT 5); `withTopic` false leaves out the topic the alias stands for, once the alias has been announced.
   */
  size(target: PublishTarget, payloadBytes: number, values: MessageValues, alias = 0, withTopic = true): number {
    const topicLength = withTopic ? target.topicBytes.length : 0;
    let remaining = 2 + topicLength + (this.qos > 0 ? 2 : 0) + payloadBytes;
    if (this.mqtt5) {
      const props = this.propertiesLength(target, values, alias !== 0);
      remaining += varIntLength(props) + props;
    }
    return 1 + varIntLength(remaining) + remaining;
  }

  /** The size of the same message, topic spelled out, without user properties (`airbyte_emitted_at` included). */
  sizeWithoutUserProperties(target: PublishTarget, payloadBytes: number, withAlias: boolean): number {
    let remaining = 2 + target.topicBytes.length + (this.qos > 0 ? 2 : 0) + payloadBytes;
    if (this.mqtt5) {
      const props = target.staticProperties.length - target.userPropertyBytes + (withAlias ? 3 : 0);
      remaining += varIntLength(props) + props;
    }
    return 1 + varIntLength(remaining) + remaining;
  }

  /**
   * Writes the PUBLISH packet at `offset` (the caller has made room for `size(...)` bytes, with the same `alias` and
   * `withTopic`) and returns the offset after it. `packetId` is ignored at QoS 0; `dup` marks a QoS 1/2 message sent
   * before, on this or a lost connection.
   */
  write(
    buffer: Buffer,
    offset: number,
    target: PublishTarget,
    packetId: number,
    payload: Payload,
    payloadBytes: number,
    values: MessageValues,
    dup = false,
    alias = 0,
    withTopic = true,
  ): number {
    const topicLength = withTopic ? target.topicBytes.length : 0;
    const withAlias = alias !== 0;
    const props = this.mqtt5 ? this.propertiesLength(target, values, withAlias) : 0;
    const remaining =
      2 + topicLength + (this.qos > 0 ? 2 : 0) + (this.mqtt5 ? varIntLength(props) + props : 0) + payloadBytes;
    let at = offset;
    const first = target.retain ? this.firstByte | 0x01 : this.firstByte;
    buffer[at++] = dup ? first | 0x08 : first;
    at = writeVarInt(buffer, at, remaining);
    buffer.writeUInt16BE(topicLength, at);
    at += 2;
    if (withTopic) at += target.topicBytes.copy(buffer, at);
    if (this.qos > 0) {
      buffer.writeUInt16BE(packetId, at);
      at += 2;
    }
    if (this.mqtt5) {
      at = writeVarInt(buffer, at, props);
      at += target.staticProperties.copy(buffer, at);
      if (withAlias) {
        buffer[at++] = PROPERTY.topicAlias;
        buffer.writeUInt16BE(alias, at);
        at += 2;
      }
      const names = target.messageProperties;
      for (let i = 0; i < names.length; i++) {
        const value = values[i] as string;
        buffer[at++] = PROPERTY.userProperty;
        at += (names[i] as Buffer).copy(buffer, at);
        buffer.writeUInt16BE(value.length, at);
        at += 2;
        at += buffer.write(value, at, 'latin1');
      }
    }
    at += typeof payload === 'string' ? buffer.write(payload, at, payloadBytes, 'utf8') : payload.copy(buffer, at);
    return at;
  }
}

/** PUBREL for `packetId` (MQTT 3.1.1 and 5; a success reason code may be left out). */
export function writePubrel(buffer: Buffer, offset: number, packetId: number): number {
  buffer[offset] = 0x62;
  buffer[offset + 1] = 2;
  buffer.writeUInt16BE(packetId, offset + 2);
  return offset + 4;
}

export const PUBREL_SIZE = 4;
