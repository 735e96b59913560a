/**
 * `check`: can a sync with this configuration publish? It validates the configuration, connects exactly as `write`
 * would, and, when a test topic is set, publishes one envelope there through the same publisher a sync uses and waits
 * for the broker's acknowledgement, so that it reports what a sync would meet: a refusal, a QoS 2 message answered at
 * QoS 1, a connection closed over what it received, or silence. With MQTT 3.1.x it also waits for the message to come
 * back to a subscription (delivery-check.ts), since those brokers acknowledge messages their access rules drop.
 * Every failure the user can fix is a FAILED status (exit 0), not a crash.
 */
import { brokerAddress } from '../config/broker-url.js';
import type { BrokerSettings } from '../config/settings.js';
import { field } from '../config/spec.js';
import { describeProxy } from '../reach/proxy.js';
import { bastionHostKey, closeTunnels } from '../mqtt/reach.js';
import { type Connection, confirmProtocolVersion, connectBroker, describeLimits, disconnect } from '../mqtt/connect.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { channelClientId } from '../sync/channel.js';
import { ConnectorError } from '../errors.js';
import type { Output } from '../airbyte/output.js';
import { sendTestMessage } from '../sync/test-message.js';

export async function check(configPath: string, output: Output): Promise<void> {
  let connection: Connection | undefined;
  try {
    const settings = toSettings(await readConfigFile(configPath));
    output.redact(settings.secrets);
    output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
    for (const warning of settings.warnings) output.log('WARN', warning);
    // A sync with several connections connects each the same way: testing the first tests them all.
    const { broker, messages } = settings;
    const clientId = channelClientId(broker.clientId, 0, settings.sync.connections);
    try {
      connection = await connectBroker(broker, { clientId, sends: { qos: messages.qos, retain: messages.retain } });
    } catch (err) {
      throw await confirmProtocolVersion(broker, clientId, err);
    }
    const tested = messages.testTopic
      ? await sendTestMessage(connection, settings, messages.testTopic)
      : ' No test topic is set, so nothing was published.';
    output.connectionStatus('SUCCEEDED', `${describeConnection(settings, connection)}${tested}`);
  } catch (err) {
    if (!(err instanceof ConnectorError && err.failureType !== 'system_error')) throw err;
    output.connectionStatus('FAILED', err.message);
  } finally {
    if (connection) await disconnect(connection.client);
    await closeTunnels();
  }
}

/** How the connection reached the broker, when not directly: the proxy, or the bastion and its host key. */
function reachNote(broker: BrokerSettings): string {
  const { reach } = broker;
  if (reach.kind === 'direct') return '';
  if (reach.kind === 'proxy') return ` through the proxy ${describeProxy(reach.proxy)}`;
  const key = bastionHostKey(broker);
  const shown = key ? `, which showed the host key ${key.type} ${key.fingerprint}` : '';
  const pin = reach.tunnel.pinnedFingerprint
    ? ' (the pinned one)'
    : key
      ? ` (accepted on first use; pin it in ${field('tunnel_method.tunnel_host_key_fingerprint')} to refuse any other)`
      : '';
  return ` through an SSH tunnel via ${reach.tunnel.user}@${reach.tunnel.host}:${reach.tunnel.port}${shown}${pin}`;
}

/** How the connection signed in, when with a credential that expires, and how long that one lives. */
function signInNote(broker: BrokerSettings, connection: Connection): string {
  const { auth } = broker;
  const { expiresAt, issuedAt } = connection.credential;
  const lifetime =
    expiresAt === undefined
      ? ''
      : `, valid for ${Math.round((expiresAt - issuedAt) / 1000)} s and renewed before it expires`;
  switch (auth.authType) {
    case 'password':
      return '';
    case 'azure_iot_hub_sas':
      return ` Signed in to IoT Hub ${auth.hubHostname} as device "${auth.deviceId}" with a SAS token${lifetime}.`;
    case 'oauth2_client_credentials': {
      const how =
        auth.sendTokenAs === 'mqtt5_enhanced_auth'
          ? `with MQTT 5 enhanced authentication (${auth.authenticationMethod ?? ''})`
          : 'as the password';
      return ` Signed in with an OAuth2 access token from ${new URL(auth.tokenUrl).host}, sent ${how}${lifetime}.`;
    }
    case 'aws_sigv4_websocket':
      return ` Signed in with a SigV4-presigned WebSocket URL (region ${auth.region})${lifetime}.`;
  }
}

/** How messages are packed, given custom properties and where the status goes, when they differ from the defaults. */
function packingNote(settings: Settings): string {
  const { messages, sync } = settings;
  const { packing } = messages;
  const notes = [
    packing.layout === 'none'
      ? ''
      : `Records go in ${packing.layout} batches of up to ${packing.maxRecords} records ` +
        `and ${packing.maxBytes} bytes, ` +
        `each closed after ${packing.lingerMs} ms at the latest.`,
    packing.compression === 'none' ? '' : `Payloads are ${packing.compression}-compressed.`,
    messages.customUserProperties.length === 0
      ? ''
      : `Every message carries the user properties ${messages.customUserProperties.map(([name]) => name).join(', ')}.`,
    sync.statusTopic === undefined
      ? ''
      : `The sync's status goes to "${sync.statusTopic}", retained (not published by this check, which would ` +
        "overwrite a running sync's status).",
  ].filter(Boolean);
  return notes.map((note) => ` ${note}`).join('');
}

/** What the user may want to know about the connection they configured, all in the status message. */
function describeConnection(settings: Settings, connection: Connection): string {
  const { broker, messages, sync } = settings;
  const tls = connection.tls
    ? ` over ${connection.tls.version} (broker certificate ${connection.tls.subject || 'without subject'}, ` +
      `issued by ${connection.tls.issuer || 'unknown'})`
    : ' without TLS';
  const { connections } = sync;
  const clientId = channelClientId(broker.clientId, 0, connections);
  const last = channelClientId(broker.clientId, connections - 1, connections);
  const parallel =
    connections === 1
      ? ''
      : ` A sync publishes over ${connections} connections, as clients "${clientId}" to "${last}"; ` +
        'this check tested the first.';
  const rate = [
    sync.maxMessagesPerSecond === undefined ? '' : `${sync.maxMessagesPerSecond} message(s)`,
    sync.maxBytesPerSecond === undefined ? '' : `${sync.maxBytesPerSecond} payload byte(s)`,
  ].filter(Boolean);
  const limited = rate.length > 0 ? ` Publishing is limited to ${rate.join(' and ')} per second.` : '';
  // A pattern of the user's own that starts with $ is kept (AWS IoT's $aws/...), but brokers treat such topics apart.
  const dollar = messages.topicPattern.startsWith('$')
    ? " Note: topics that start with $ are the broker's own: many brokers refuse client messages there or deliver " +
      'them only to subscriptions that name them (a # subscription never receives them).'
    : '';
  return (
    `Connected to ${brokerAddress(broker)}${reachNote(broker)}${tls} with MQTT ${broker.mqttVersion} as client ` +
    `"${clientId}".${signInNote(broker, connection)} ` +
    `Broker limits: ${describeLimits(connection.limits)}.${parallel}${limited}${packingNote(settings)}${dollar}`
  );
}
