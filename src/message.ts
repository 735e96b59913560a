/**
 * What goes out with each record besides its payload: the MQTT 5 properties, and the encoded size of the PUBLISH
 * packet, which must be checked against the broker's limit before sending. A packet over the limit makes the broker
 * drop the connection, and MQTT.js would then replay the same packet after every reconnect, forever.
 */
import type { IClientPublishOptions } from 'mqtt';
import type { StreamRoute } from './catalog.js';
import type { QoS, Settings } from './config/settings.js';

export type PublishProperties = NonNullable<IClientPublishOptions['properties']>;

/** Properties shared by every message of a stream, or undefined below MQTT 5. */
export function streamProperties(settings: Settings, route: StreamRoute): PublishProperties | undefined {
  if (settings.protocol !== '5') return undefined;
  const properties: PublishProperties = { contentType: 'application/json', payloadFormatIndicator: true };
  if (settings.messageExpirySeconds !== undefined) properties.messageExpiryInterval = settings.messageExpirySeconds;
  if (settings.mqtt5UserProperties) {
    properties.userProperties = route.namespace === undefined ? { airbyte_stream: route.name } : { airbyte_stream: route.name, airbyte_namespace: route.namespace };
  }
  return properties;
}

/** The properties of one record's message: the stream's, plus its emitted_at when user properties are on. */
export function recordProperties(base: PublishProperties | undefined, emittedAtJson: string): PublishProperties | undefined {
  if (base?.userProperties === undefined) return base;
  return { ...base, userProperties: { ...base.userProperties, airbyte_emitted_at: emittedAtJson } };
}

function varIntLength(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}

function utf8Field(text: string): number {
  return 2 + Buffer.byteLength(text, 'utf8');
}

function propertiesLength(properties: PublishProperties | undefined): number {
  if (!properties) return 0;
  let length = 0;
  if (properties.payloadFormatIndicator !== undefined) length += 2;
  if (properties.messageExpiryInterval !== undefined) length += 5;
  if (properties.contentType !== undefined) length += 1 + utf8Field(properties.contentType);
  // A topic alias may be added by MQTT.js; counting it always keeps the estimate on the safe side.
  length += 3;
  for (const [key, value] of Object.entries(properties.userProperties ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) length += 1 + utf8Field(key) + utf8Field(String(item));
  }
  return length;
}

/** Size in bytes of the PUBLISH packet that carries this message, as the broker will count it. */
export function publishPacketSize(topic: string, payloadBytes: number, qos: QoS, properties: PublishProperties | undefined, mqtt5: boolean): number {
  const props = mqtt5 ? propertiesLength(properties) : 0;
  const remaining = utf8Field(topic) + (qos > 0 ? 2 : 0) + (mqtt5 ? varIntLength(props) + props : 0) + payloadBytes;
  return 1 + varIntLength(remaining) + remaining;
}
