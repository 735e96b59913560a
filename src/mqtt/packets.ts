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
 * with the connection (the topic's alias) belongs to the connection (connection-state.ts).
 */
export interface PublishTarget {
  readonly topic: string;
  readonly topicBytes: Buffer;
  /** MQTT 5 properties common to every message of the stream, encoded; empty below MQTT 5. */
  readonly staticProperties: Buffer;
  /** Whether each message carries the user property `airbyte_emitted_at`. */
  readonly emittedAtProperty: boolean;
  /** Bytes of `staticProperties` taken by user properties: what turning them off would save, with `airbyte_emitted_at`. */
  readonly userPropertyBytes: number;
  /** What a message to this target is, for errors: `the record of stream "users"`. */
  readonly label: string;
}

export interface TargetOptions {
  readonly mqtt5: boolean;
  readonly contentType?: string;
  readonly messageExpirySeconds?: number;
  readonly userProperties?: Readonly<Record<string, string>>;
  readonly emittedAtProperty: boolean;
  readonly label?: string;
}

const PROPERTY = { payloadFormat: 0x01, messageExpiry: 0x02, contentType: 0x03, topicAlias: 0x23, userProperty: 0x26 } as const;
const EMITTED_AT = Buffer.from('airbyte_emitted_at');

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
    parts.push(Buffer.from([PROPERTY.payloadFormat, 1]));
    if (options.messageExpirySeconds !== undefined) {
      const expiry = Buffer.allocUnsafe(5);
      expiry[0] = PROPERTY.messageExpiry;
      expiry.writeUInt32BE(options.messageExpirySeconds, 1);
      parts.push(expiry);
    }
    if (options.contentType !== undefined) parts.push(Buffer.from([PROPERTY.contentType]), utf8Field(options.contentType));
    for (const [key, value] of Object.entries(options.userProperties ?? {})) {
      const entry = [Buffer.from([PROPERTY.userProperty]), utf8Field(key), utf8Field(value)];
      for (const part of entry) userPropertyBytes += part.length;
      parts.push(...entry);
    }
  }
  return {
    topic,
    topicBytes: Buffer.from(topic, 'utf8'),
    staticProperties: Buffer.concat(parts),
    emittedAtProperty: options.mqtt5 && options.emittedAtProperty,
    userPropertyBytes,
    label: options.label ?? `the message to topic "${topic}"`,
  };
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

  constructor(
    private readonly qos: QoS,
    readonly retain: boolean,
    private readonly mqtt5: boolean,
  ) {
    this.firstByte = 0x30 | (qos << 1) | (retain ? 1 : 0);
  }

  private propertiesLength(target: PublishTarget, emittedAtJson: string, withAlias: boolean): number {
    let length = target.staticProperties.length;
    if (withAlias) length += 3;
    // emitted_at is JSON number text, hence ASCII: its length in characters is its length in bytes.
    if (target.emittedAtProperty) length += 1 + 2 + EMITTED_AT.length + 2 + emittedAtJson.length;
    return length;
  }

  /**
   * The exact size of the PUBLISH packet for this message. `alias` is the topic alias it carries (0 for none, always 0
   * below MQTT 5); `withTopic` false leaves out the topic the alias stands for, once the alias has been announced.
   */
  size(target: PublishTarget, payloadBytes: number, emittedAtJson: string, alias = 0, withTopic = true): number {
    const topicLength = withTopic ? target.topicBytes.length : 0;
    let remaining = 2 + topicLength + (this.qos > 0 ? 2 : 0) + payloadBytes;
    if (this.mqtt5) {
      const props = this.propertiesLength(target, emittedAtJson, alias !== 0);
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
    payload: string,
    payloadBytes: number,
    emittedAtJson: string,
    dup = false,
    alias = 0,
    withTopic = true,
  ): number {
    const topicLength = withTopic ? target.topicBytes.length : 0;
    const withAlias = alias !== 0;
    const props = this.mqtt5 ? this.propertiesLength(target, emittedAtJson, withAlias) : 0;
    const remaining = 2 + topicLength + (this.qos > 0 ? 2 : 0) + (this.mqtt5 ? varIntLength(props) + props : 0) + payloadBytes;
    let at = offset;
    buffer[at++] = dup ? this.firstByte | 0x08 : this.firstByte;
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
      if (target.emittedAtProperty) {
        buffer[at++] = PROPERTY.userProperty;
        buffer.writeUInt16BE(EMITTED_AT.length, at);
        at += 2;
        at += EMITTED_AT.copy(buffer, at);
        buffer.writeUInt16BE(emittedAtJson.length, at);
        at += 2;
        at += buffer.write(emittedAtJson, at, 'latin1');
      }
    }
    at += buffer.write(payload, at, payloadBytes, 'utf8');
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
