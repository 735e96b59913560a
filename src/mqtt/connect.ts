/**
 * Connecting to the broker. `check` and `write` both go through `connectBroker`, so a successful check means `write`
 * will connect the same way. Failures are translated into errors that say what went wrong and what to change
 * (connect-errors.ts), and the limits an MQTT 5 broker announces in its CONNACK are checked against what the
 * connection will send.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
import { brokerAddress } from '../config/broker-url.js';
import type { BrokerSettings, MqttVersion } from '../config/settings.js';
import { field } from '../config/spec.js';
import { BrokerRefusedError, type ConnectorError, ProtocolVersionSuspectedError } from '../errors.js';
import {
  type BrokerLimits,
  type Sends,
  closedWithoutAccepting,
  describeConnectError,
  limitsRefusal,
  timedOut,
  tlsNotEstablished,
} from './connect-errors.js';
import type { Credential } from '../credentials/credential.js';
import { currentCredential, signInOptions } from './sign-in.js';
import { openReach } from './reach.js';
import { connectClient, webSocketConnection } from './transport.js';
import { type WebSocketHooks, webSocketOptions } from './websocket.js';

const PROTOCOL_VERSIONS = {
  '3.1': { protocolId: 'MQIsdp', protocolVersion: 3 },
  '3.1.1': { protocolId: 'MQTT', protocolVersion: 4 },
  '5': { protocolId: 'MQTT', protocolVersion: 5 },
} as const;

/**
 * The message the broker publishes, retained at QoS 1, when a connection ends without a DISCONNECT: the process died,
 * or the network went away (`status_topic`'s "interrupted").
 */
export interface LastWill {
  readonly topic: string;
  readonly payload: string;
}

/** The MQTT.js options `check` and `write` connect with, signed in with `credential`. */
function clientOptions(
  settings: BrokerSettings,
  credential: Credential,
  will: LastWill | undefined,
  hooks: WebSocketHooks,
  through: Duplex | undefined,
): IClientOptions {
  const { tls } = settings;
  const tlsOptions = tls && {
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.servername ? { servername: tls.servername } : {}),
    ...(tls.ALPNProtocols ? { ALPNProtocols: tls.ALPNProtocols } : {}),
  };
  const websocket = settings.transport === 'websocket';
  const signIn = signInOptions(credential);
  return {
    protocol: websocket ? (tls ? 'wss' : 'ws') : tls ? 'mqtts' : 'mqtt',
    host: settings.host,
    hostname: settings.host,
    port: settings.port,
    ...PROTOCOL_VERSIONS[settings.mqttVersion],
    clientId: settings.clientId,
    username: settings.username,
    password: settings.password,
    clean: settings.cleanSession,
    ...signIn,
    ...(settings.mqttVersion === '5' && (settings.sessionExpirySeconds > 0 || signIn.properties)
      ? {
          properties: {
            ...signIn.properties,
            ...(settings.sessionExpirySeconds > 0 ? { sessionExpiryInterval: settings.sessionExpirySeconds } : {}),
          },
        }
      : {}),
    connectTimeout: settings.connectTimeoutMs,
    ...(will
      ? {
          will: {
            topic: will.topic,
            payload: Buffer.from(will.payload, 'utf8'),
            qos: 1 as const,
            retain: true,
            ...(settings.mqttVersion === '5' ? { properties: { contentType: 'application/json' } } : {}),
          },
        }
      : {}),
    // The connector paces and, where needed, republishes messages itself. MQTT.js's own reconnection replays stored
    // messages one per round trip and queues new ones without bound while offline.
    reconnectPeriod: 0,
    queueQoSZero: false,
    resubscribe: false,
    // mqtt-packet's number cache costs tens of megabytes for a small CPU gain.
    writeCache: false,
    // MQTT.js logs every step of every publish through `debug`, which costs several percent even when disabled.
    log: () => undefined,
    ...(websocket
      ? {
          path: signIn.path ?? settings.websocketPath,
          ...webSocketOptions(
            {
              ...tlsOptions,
              ...(through
                ? {
                    createConnection: webSocketConnection(through, {
                      protocol: tls ? 'wss' : 'ws',
                      ...tlsOptions,
                      hostname: settings.host,
                    }),
                  }
                : {}),
            },
            hooks,
          ),
        }
      : (tlsOptions ?? {})),
  };
}

function brokerLimits(client: MqttClient): BrokerLimits {
  if (client.options.protocolVersion !== 5) return {};
  const props = client.serverProperties ?? {};
  return {
    maximumQoS: props.maximumQoS,
    retainAvailable: props.retainAvailable,
    receiveMaximum: props.receiveMaximum,
    maximumPacketSize: props.maximumPacketSize,
    topicAliasMaximum: props.topicAliasMaximum,
  };
}

export function describeLimits(limits: BrokerLimits): string {
  const parts: string[] = [];
  if (limits.maximumQoS !== undefined) parts.push(`maximum QoS ${limits.maximumQoS}`);
  if (limits.retainAvailable !== undefined)
    parts.push(`retain ${limits.retainAvailable ? 'available' : 'not available'}`);
  if (limits.receiveMaximum !== undefined) parts.push(`receive maximum ${limits.receiveMaximum}`);
  if (limits.maximumPacketSize !== undefined) parts.push(`maximum packet size ${limits.maximumPacketSize} bytes`);
  if (limits.topicAliasMaximum !== undefined) parts.push(`topic alias maximum ${limits.topicAliasMaximum}`);
  return parts.length > 0 ? parts.join(', ') : 'none announced';
}

export interface Connection {
  readonly client: MqttClient;
  /** What it signed in with, and so when that must be renewed. */
  readonly credential: Credential;
  readonly limits: BrokerLimits;
  /** The broker resumed a session it kept for this client ID (CONNACK session present). */
  readonly sessionPresent: boolean;
  /** Present for TLS connections: negotiated version and the broker certificate's subject and issuer. */
  readonly tls: { readonly version: string; readonly subject: string; readonly issuer: string } | undefined;
}

function distinguishedName(fields: Record<string, string | string[] | undefined> | undefined): string {
  return Object.entries(fields ?? {})
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
    .join(', ');
}

/**
 * How a connection differs from the configured one: a side connection's own client ID and a fresh session, a
 * reconnect's shorter timeout, the protocol version being confirmed, and what a publishing connection will send.
 */
export interface ConnectAs {
  readonly clientId?: string;
  /** A clean session that ends with the connection, whatever the configuration says (side connections, probes). */
  readonly freshSession?: boolean;
  readonly mqttVersion?: MqttVersion;
  readonly connectTimeoutMs?: number;
  /** What the connection will publish, which the broker's announced limits must allow; unset: nothing is checked. */
  readonly sends?: Sends;
  readonly will?: LastWill;
}

/**
 * Connects, or rejects within the connect timeout. MQTT.js alone may wait forever when the socket closes before a
 * CONNACK with reconnection off, and reports TLS failures twice; this settles exactly once.
 */
export async function connectBroker(configured: BrokerSettings, as: ConnectAs = {}): Promise<Connection> {
  const settings: BrokerSettings = {
    ...configured,
    clientId: as.clientId ?? configured.clientId,
    mqttVersion: as.mqttVersion ?? configured.mqttVersion,
    connectTimeoutMs: as.connectTimeoutMs ?? configured.connectTimeoutMs,
    ...(as.freshSession ? { cleanSession: true, sessionExpirySeconds: 0 } : {}),
  };
  const credential = await currentCredential(settings.auth);
  const through = await openReach(settings, settings.connectTimeoutMs);
  return new Promise((resolve, reject) => {
    let tlsSocket: TLSSocket | undefined;
    let transportError: Error | undefined;
    const options = clientOptions(
      settings,
      credential,
      as.will,
      {
        onTlsSocket: (socket) => (tlsSocket = socket),
        onError: (error) => (transportError ??= error),
      },
      through,
    );
    const client = connectClient(options, through);
    // Nagle's algorithm only delays the connector, which already sends each turn's packets as one write
    // (write-batch.ts): it holds a write back until the broker has acknowledged the previous segment, a round trip
    // away. A refill that leaves as two writes (the input ran dry in between), or a PUBREL behind a PUBLISH, then
    // reaches the broker a round trip late, and with a small Receive Maximum the acknowledgements keep that rhythm from
    // then on. Measured through a 20 ms round trip against Mosquitto's Receive Maximum of 20: QoS 1 went from 322 to
    // 476 records/s (a bare MQTT.js publisher: 474), QoS 2 from 160 to 350. ws sets the same option on WebSocket
    // sockets.
    if (settings.transport === 'tcp' && 'setNoDelay' in client.stream) (client.stream as Socket).setNoDelay(true);
    // MQTT.js builds its stream synchronously; for mqtts:// it is the TLS socket itself.
    if (settings.tls && settings.transport === 'tcp')
      client.stream.once('secureConnect', () => (tlsSocket = client.stream as TLSSocket));
    const timer = setTimeout(() => fail(timedOut(settings)), settings.connectTimeoutMs);
    const settle = (): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const fail = (error: ConnectorError): void => {
      settle();
      client.on('error', () => undefined);
      client.end(true);
      reject(error);
    };
    const onConnect = (connack: { sessionPresent?: boolean }): void => {
      const limits = brokerLimits(client);
      const refusal = as.sends && limitsRefusal(as.sends, limits);
      if (refusal) {
        fail(refusal);
        return;
      }
      settle();
      const socket = tlsSocket;
      const peer = socket?.getPeerCertificate();
      resolve({
        client,
        credential,
        limits,
        sessionPresent: connack.sessionPresent === true,
        tls: socket
          ? {
              version: socket.getProtocol() ?? 'TLS',
              subject: distinguishedName(peer?.subject),
              issuer: distinguishedName(peer?.issuer),
            }
          : undefined,
      });
    };
    const onError = (err: Error): void => fail(describeConnectError(err, settings, tlsSocket !== undefined));
    const onClose = (): void =>
      transportError
        ? onError(transportError)
        : settings.tls && !tlsSocket
          ? fail(tlsNotEstablished(settings))
          : fail(closedWithoutAccepting(settings));
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/**
 * When `error` only suspects that the broker does not speak the configured MQTT version, connects once more with
 * MQTT 3.1.1 as `clientId` (a clean session, then a DISCONNECT) to find out. Accepted, the suspicion is confirmed and
 * returned as a configuration error that says it was tried; otherwise `error` is returned unchanged.
 */
export async function confirmProtocolVersion(
  broker: BrokerSettings,
  clientId: string,
  error: unknown,
): Promise<unknown> {
  if (!(error instanceof ProtocolVersionSuspectedError)) return error;
  let probe: Connection;
  try {
    probe = await connectBroker(broker, { clientId, mqttVersion: '3.1.1', freshSession: true });
  } catch {
    return error;
  }
  await disconnect(probe.client);
  const version = broker.mqttVersion;
  return new BrokerRefusedError(
    `The broker at ${brokerAddress(broker)} closed the connection without answering the MQTT ${version} CONNECT, ` +
      'and accepted an MQTT 3.1.1 connection the connector made to confirm it: it does not speak ' +
      `MQTT ${version}. Set ${field('protocol_version')} to 3.1.1.`,
    error.internalMessage ?? error.message,
  );
}

/** Closes the connection gracefully (DISCONNECT sent), or by force when the broker no longer answers. */
export function disconnect(client: MqttClient, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (client.disconnected || !client.connected) {
      client.end(true, () => resolve());
      return;
    }
    const timer = setTimeout(() => client.end(true, () => resolve()), timeoutMs);
    client.end(false, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
