/**
 * `check`: can a sync with this configuration publish? It validates the configuration, connects exactly as `write`
 * would, and, when a test topic is set, publishes one envelope there through the same publisher a sync uses and waits
 * for the broker's acknowledgement, so that it reports what a sync would meet: a refusal, a QoS 2 message answered at
 * QoS 1, a connection closed over what it received, or silence. With MQTT 3.1.x it also waits for the message to come
 * back to a subscription (delivery-check.ts), since those brokers acknowledge messages their access rules drop.
 * Every failure the user can fix is a FAILED status (exit 0), not a crash.
 */
import {
  type Connection,
  brokerAddress,
  confirmProtocolVersion,
  connectBroker,
  describeLimits,
  disconnect,
} from '../mqtt/connect.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { field } from '../config/spec.js';
import { channelClientId } from '../sync/channel.js';
import { randomUUID } from 'node:crypto';
import { prepareFormat } from '../payload/formats.js';
import { DeliveryCheck } from '../sync/delivery-check.js';
import { ConnectorError, TransientError } from '../errors.js';
import type { Output } from '../airbyte/output.js';
import { describeSuspect, listCauses } from '../mqtt/close-causes.js';
import { mqttPort } from '../mqtt/connection-port.js';
import { PublishEncoder, publishTarget } from '../mqtt/packets.js';
import { Publisher } from '../mqtt/publisher.js';

const CHECK_STREAM = 'airbyte_connection_check';
const QOS_NAMES = ['0 (no acknowledgement)', '1', '2'];

export async function check(configPath: string, output: Output): Promise<void> {
  let connection: Connection | undefined;
  try {
    const configured = toSettings(await readConfigFile(configPath));
    output.redact(configured.secrets);
    output.log('INFO', `Effective configuration: ${describeSettings(configured)}`);
    for (const warning of configured.warnings) output.log('WARN', warning);
    // A sync with several connections connects each the same way: testing the first tests them all.
    const settings = { ...configured, clientId: channelClientId(configured.clientId, 0, configured.connections) };
    try {
      connection = await connectBroker(settings);
    } catch (err) {
      throw await confirmProtocolVersion(settings, err);
    }
    const tested = settings.testTopic
      ? await testMessage(connection, settings, settings.testTopic)
      : ' No test topic is set, so nothing was published.';
    output.connectionStatus('SUCCEEDED', `${describeConnection(configured, connection)}${tested}`);
  } catch (err) {
    if (!(err instanceof ConnectorError && err.failureType !== 'system_error')) throw err;
    output.connectionStatus('FAILED', err.message);
  } finally {
    if (connection) await disconnect(connection.client);
  }
}

/** What the user may want to know about the connection they configured, all in the status message. */
function describeConnection(settings: Settings, connection: Connection): string {
  const tls = connection.tls
    ? ` over ${connection.tls.version} (broker certificate ${connection.tls.subject || 'without subject'}, issued by ${connection.tls.issuer || 'unknown'})`
    : ' without TLS';
  const { connections } = settings;
  const clientId = channelClientId(settings.clientId, 0, connections);
  const parallel =
    connections === 1
      ? ''
      : ` A sync publishes over ${connections} connections, as clients "${clientId}" to "${channelClientId(settings.clientId, connections - 1, connections)}"; this check tested the first.`;
  const rate = [
    settings.maxMessagesPerSecond === undefined ? '' : `${settings.maxMessagesPerSecond} message(s)`,
    settings.maxBytesPerSecond === undefined ? '' : `${settings.maxBytesPerSecond} payload byte(s)`,
  ].filter(Boolean);
  // A pattern of the user's own that starts with $ is kept (AWS IoT's $aws/...), but brokers treat such topics apart.
  const dollar = settings.topicPattern.startsWith('$')
    ? ` Note: topics that start with $ are the broker's own: many brokers refuse client messages there or deliver them only to subscriptions that name them (a # subscription never receives them).`
    : '';
  return (
    `Connected to ${brokerAddress(settings)}${tls} with MQTT ${settings.mqttVersion} as client "${clientId}". ` +
    `Broker limits: ${describeLimits(connection.limits)}.${parallel}${rate.length > 0 ? ` Publishing is limited to ${rate.join(' and ')} per second.` : ''}${dollar}`
  );
}

/** Publishes the test message, verifies its delivery where MQTT cannot report a refusal, and says how it went. */
async function testMessage(connection: Connection, settings: Settings, topic: string): Promise<string> {
  const warnings: string[] = [];
  const label = `the test message on ${JSON.stringify(topic)}`;
  const delivery = await DeliveryCheck.open(settings, new Map([['test', { filter: topic, label }]]), (warning) =>
    warnings.push(warning),
  );
  try {
    const emittedAtJson = String(Date.now());
    // In the format the sync will publish, so that a consumer of the test topic sees what it will get.
    const payload = prepareFormat(settings.messageFormat, { name: CHECK_STREAM, namespace: undefined }).render({
      id: randomUUID(),
      dataJson: '{"message":"Airbyte connection check"}',
      emittedAtMs: emittedAtJson,
    });
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
    return ` Test message on "${topic}" at QoS ${QOS_NAMES[settings.qos]} accepted.${verified}${warnings.map((warning) => ` ${warning}`).join('')}`;
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
  payload: string,
  emittedAtJson: string,
): Promise<void> {
  const mqtt5 = settings.mqttVersion === '5';
  const target = publishTarget(topic, {
    mqtt5,
    contentType: prepareFormat(settings.messageFormat, { name: CHECK_STREAM, namespace: undefined }).contentType,
    messageExpirySeconds: settings.messageExpirySeconds,
    userProperties: settings.mqtt5UserProperties ? { airbyte_stream: CHECK_STREAM } : undefined,
    emittedAtProperty: settings.mqtt5UserProperties,
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
      new PublishEncoder(settings.qos, false, mqtt5),
      { qos: settings.qos, maxInflight: 1, oneAtATime: true, maxMessageBytes: settings.maxMessageBytes },
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
    const seconds = settings.connectTimeoutMs / 1000;
    const timer = setTimeout(
      () =>
        finish(
          new TransientError(
            `The broker did not acknowledge the test message on "${topic}" at QoS ${settings.qos} within ${seconds} s although the connection is up. ` +
              `A sync would reconnect after ${field('ack_timeout_seconds')}, send it again, and fail the same way; check the broker's log and load.`,
          ),
        ),
      settings.connectTimeoutMs,
    );
    client.once('close', onClose);
    publisher.attach(mqttPort(connection));
    publisher.send(target, payload, Buffer.byteLength(payload, 'utf8'), [emittedAtJson], 0);
  });
}
