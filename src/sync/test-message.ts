/**
 * The message `check` publishes to the test topic: in the format a sync publishes, through the same publisher a sync
 * uses, so that the check meets what a sync would (a refusal, a QoS 2 message answered at QoS 1, a connection closed
 * over what it received, or silence), and with MQTT 3.1.x verified by a subscription, since those brokers acknowledge
 * messages their access rules drop (delivery-check.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Settings } from '../config/settings.js';
import { field } from '../config/spec.js';
import { type ConnectorError, TransientError } from '../errors.js';
import { describeSuspect, listCauses } from '../mqtt/close-causes.js';
import type { Connection } from '../mqtt/connect.js';
import { mqttPort } from '../mqtt/connection-port.js';
import { type Payload, PublishEncoder, publishTarget } from '../mqtt/packets.js';
import { Publisher } from '../mqtt/publisher.js';
import { compress, contentEncoding } from '../payload/compression.js';
import { prepareFormat } from '../payload/formats.js';
import { DeliveryCheck } from './delivery-check.js';

const CHECK_STREAM = 'airbyte_connection_check';
const QOS_NAMES = ['0 (no acknowledgement)', '1', '2'];

/** Publishes the test message, verifies its delivery where MQTT cannot report a refusal, and says how it went. */
export async function sendTestMessage(connection: Connection, settings: Settings, topic: string): Promise<string> {
  const warnings: string[] = [];
  const label = `the test message on ${JSON.stringify(topic)}`;
  const filters = new Map([['test', { filter: topic, label }]]);
  const warn = (warning: string): void => void warnings.push(warning);
  const delivery = await DeliveryCheck.open(settings.broker, settings.sync.verifyDelivery, filters, warn);
  try {
    const emittedAtJson = String(Date.now());
    // In the format the sync will publish, so that a consumer of the test topic sees what it will get.
    const text = prepareFormat(settings.messages.messageFormat, { name: CHECK_STREAM, namespace: undefined }).render({
      id: randomUUID(),
      dataJson: '{"message":"Airbyte connection check"}',
      emittedAtMs: emittedAtJson,
    });
    const { compression } = settings.messages.packing;
    const payload: Payload = compression === 'none' ? text : compress(text, compression);
    // Registered before publishing: the message may come back before its acknowledgement does.
    const wait = delivery?.published('test', payload);
    const acknowledged = publishTest(connection, settings, topic, payload, emittedAtJson);
    const delivered = wait?.(acknowledged);
    delivered?.catch(() => undefined);
    await acknowledged;
    if (delivered) await delivered;
    const verified = delivered
      ? ' It came back to a subscription on the topic: the broker delivers what it accepts there.'
      : '';
    const qos = QOS_NAMES[settings.messages.qos];
    return ` Test message on "${topic}" at QoS ${qos} accepted.${verified}${warnings.map((w) => ` ${w}`).join('')}`;
  } finally {
    await delivery?.close();
  }
}

/**
 * Sends one message through a publisher, as a sync would, and resolves once it is acknowledged; rejects with what a
 * sync would report (a refusal, QoS 2 answered at QoS 1, a connection closed over it), or with the broker's silence
 * after `connect_timeout`.
 */
function publishTest(
  connection: Connection,
  settings: Settings,
  topic: string,
  payload: Payload,
  emittedAtJson: string,
): Promise<void> {
  const { messages } = settings;
  const { mqtt5, qos } = messages;
  const encoding = contentEncoding(messages.packing.compression);
  const userProperties = {
    ...(messages.mqtt5UserProperties ? { airbyte_stream: CHECK_STREAM } : {}),
    ...(encoding ? { 'content-encoding': encoding } : {}),
  };
  const target = publishTarget(topic, {
    mqtt5,
    contentType: prepareFormat(messages.messageFormat, { name: CHECK_STREAM, namespace: undefined }).contentType,
    messageExpirySeconds: messages.messageExpirySeconds,
    userProperties: Object.keys(userProperties).length > 0 ? userProperties : undefined,
    customUserProperties: messages.customUserProperties,
    binary: encoding !== undefined,
    emittedAtProperty: messages.mqtt5UserProperties,
    label: 'the test message',
  });
  const { client } = connection;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: ConnectorError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('close', onClose);
      publisher.detach();
      if (error) reject(error);
      else resolve();
    };
    const publisher = new Publisher(
      // Never retained: a check must not leave a message behind for future subscribers.
      new PublishEncoder(qos, false, mqtt5),
      { qos, maxInflight: 1, oneAtATime: true, maxMessageBytes: messages.maxMessageBytes },
      { acknowledged: () => finish(), failed: (error) => finish(error) },
    );
    const onClose = (): void => {
      const evidence = publisher.sendEvidence();
      const received = evidence.suspect
        ? ` right after receiving the test message (${describeSuspect(evidence, evidence.suspect)})`
        : '';
      finish(
        new TransientError(
          `The broker closed the connection${received} without acknowledging it. ${listCauses(evidence)}`,
        ),
      );
    };
    const timeoutMs = settings.broker.connectTimeoutMs;
    const timer = setTimeout(
      () =>
        finish(
          new TransientError(
            `The broker did not acknowledge the test message on "${topic}" ` +
              `at QoS ${qos} within ${timeoutMs / 1000} s ` +
              `although the connection is up. A sync would reconnect after ${field('ack_timeout_seconds')}, send it ` +
              "again, and fail the same way; check the broker's log and load.",
          ),
        ),
      timeoutMs,
    );
    client.once('close', onClose);
    publisher.attach(mqttPort(connection));
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
    publisher.send(target, payload, bytes, [emittedAtJson], 0);
  });
}
