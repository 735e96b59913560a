/**
 * `check`: can a sync with this configuration publish? It validates the configuration, connects exactly as `write`
 * would, and, when a test topic is set, publishes one envelope there and waits for the broker's acknowledgement.
 * Every failure the user can fix is a FAILED status (exit 0), not a crash.
 */
import type { MqttClient } from 'mqtt';
import { type Connection, brokerAddress, confirmProtocolVersion, connectBroker, describeLimits, disconnect } from '../mqtt/connect.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { channelClientId } from '../sync/channel.js';
import { buildEnvelope } from '../payload/envelope.js';
import { ConnectorError, TransientError } from '../errors.js';
import type { Output } from '../airbyte/output.js';

const CHECK_STREAM = 'airbyte_connection_check';

export async function check(configPath: string, output: Output): Promise<void> {
  let connection: Connection | undefined;
  try {
    const settings = toSettings(await readConfigFile(configPath));
    output.redact(settings.secrets);
    output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
    for (const warning of settings.warnings) output.log('WARN', warning);
    // A sync with several connections connects each the same way: testing the first tests them all.
    const checked = { ...settings, clientId: channelClientId(settings.clientId, 0, settings.connections) };
    try {
      connection = await connectBroker(checked);
    } catch (err) {
      throw await confirmProtocolVersion(checked, err);
    }
    const tested = settings.testTopic ? await publishTest(connection.client, settings, settings.testTopic) : ' No test topic is set, so nothing was published.';
    output.connectionStatus('SUCCEEDED', `${describeConnection(settings, connection)}${tested}`);
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
  return (
    `Connected to ${brokerAddress(settings)}${tls} with MQTT ${settings.mqttVersion} as client "${clientId}". ` +
    `Broker limits: ${describeLimits(connection.limits)}.${parallel}${rate.length > 0 ? ` Publishing is limited to ${rate.join(' and ')} per second.` : ''}`
  );
}

function publishTest(client: MqttClient, settings: Settings, topic: string): Promise<string> {
  const payload = buildEnvelope({
    streamJson: JSON.stringify(CHECK_STREAM),
    emittedAtJson: String(Date.now()),
    dataJson: '{"message":"Airbyte connection check"}',
  });
  const qosName = ['0 (no acknowledgement)', '1', '2'][settings.qos];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new TransientError(`The broker did not acknowledge the test message on "${topic}" within ${settings.connectTimeoutMs / 1000} s.`));
    }, settings.connectTimeoutMs);
    // Never retained: a check must not leave a message behind for future subscribers.
    client.publish(topic, payload, { qos: settings.qos, retain: false }, (err) => {
      clearTimeout(timer);
      if (err) reject(new TransientError(`The broker refused the test message on "${topic}": ${err.message}`, err.message));
      else resolve(` Test message on "${topic}" at QoS ${qosName} accepted.`);
    });
  });
}
