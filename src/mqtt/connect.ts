/**
 * Connecting to the broker. `check` and `write` both go through `connectBroker`, so a successful check means `write`
 * will connect the same way. Failures are translated into errors that say what went wrong and what to change, and the
 * limits an MQTT 5 broker announces in its CONNACK are checked against the configuration.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectClient } from './transport.js';
import {
  BrokerRefusedError,
  ConfigError,
  type ConnectorError,
  ProtocolVersionSuspectedError,
  TransientError,
} from '../errors.js';
import type { Settings } from '../config/settings.js';
import { field, fieldTitle } from '../config/spec.js';
import { type WebSocketHooks, webSocketOptions } from './websocket.js';

const PROTOCOL_VERSIONS = {
  '3.1': { protocolId: 'MQIsdp', protocolVersion: 3 },
  '3.1.1': { protocolId: 'MQTT', protocolVersion: 4 },
  '5': { protocolId: 'MQTT', protocolVersion: 5 },
} as const;

/** The MQTT.js options `check` and `write` connect with. */
function clientOptions(settings: Settings, hooks: WebSocketHooks = {}): IClientOptions {
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
    ...(settings.mqttVersion === '5' && settings.sessionExpirySeconds > 0
      ? { properties: { sessionExpiryInterval: settings.sessionExpirySeconds } }
      : {}),
    connectTimeout: settings.connectTimeoutMs,
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
      ? { path: settings.websocketPath, ...webSocketOptions(tlsOptions ?? {}, hooks) }
      : (tlsOptions ?? {})),
  };
}

export function brokerAddress(settings: Settings): string {
  const scheme = settings.transport === 'websocket' ? (settings.tls ? 'wss' : 'ws') : settings.tls ? 'mqtts' : 'mqtt';
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `${scheme}://${host}:${settings.port}${settings.transport === 'websocket' ? settings.websocketPath : ''}`;
}

type Refusal = (settings: Settings, detail: string) => ConnectorError;

const badCredentials: Refusal = (_s, detail) =>
  new BrokerRefusedError(
    `The broker refused the user name or password; check ${field('username')} and ${field('password')}.`,
    detail,
  );

const notAuthorized: Refusal = (s, detail) =>
  new BrokerRefusedError(
    `The broker does not authorise ${s.username ? `user "${s.username}"` : 'anonymous clients'} to connect; check the credentials, the client certificate and the broker's access rules.`,
    detail,
  );

const badProtocol: Refusal = (s, detail) =>
  new BrokerRefusedError(
    `The broker does not accept MQTT ${s.mqttVersion}; set ${field('protocol_version')} to a version it supports.`,
    detail,
  );

/** CONNACK return codes (MQTT 3.1.1) and reason codes (MQTT 5) that refuse the connection. */
const CONNACK_REFUSALS: Readonly<Record<number, Refusal>> = {
  1: badProtocol,
  2: (s, detail) =>
    new BrokerRefusedError(
      `The broker rejected the client ID "${s.clientId}"; set a different ${field('client')}.`,
      detail,
    ),
  3: (_s, detail) =>
    new TransientError('The broker answered that the MQTT service is unavailable; try again later.', detail),
  4: badCredentials,
  5: notAuthorized,
  132: badProtocol,
  133: (s, detail) =>
    new BrokerRefusedError(
      `The broker rejected the client ID "${s.clientId}"; set a different ${field('client')}.`,
      detail,
    ),
  134: badCredentials,
  135: notAuthorized,
  136: (_s, detail) => new TransientError('The broker answered that it is unavailable; try again later.', detail),
  137: (_s, detail) => new TransientError('The broker answered that it is busy; try again later.', detail),
  138: (_s, detail) => new BrokerRefusedError('The broker has banned this client.', detail),
  159: (_s, detail) => new TransientError('The broker refused: connection rate exceeded; try again later.', detail),
};

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
]);

function timedOut(settings: Settings, detail?: string): ConnectorError {
  return new TransientError(
    `The broker at ${brokerAddress(settings)} did not accept the connection within ${settings.connectTimeoutMs / 1000} s; check the host, the port and the TLS setting, or raise ${field('connect_timeout')}.`,
    detail,
  );
}

function tlsNotEstablished(settings: Settings, detail?: string): ConnectorError {
  return new ConfigError(
    `The TLS handshake with ${brokerAddress(settings)} did not complete: the broker closed the connection. If this port does not speak TLS, turn off ${field('use_tls')} or use the broker's TLS port.`,
    detail,
  );
}

/**
 * The broker closed the connection before a CONNACK, without a transport error. After a 3.1 or 5 CONNECT that is how
 * brokers that do not speak the version answer (NATS takes only 3.1.1, RabbitMQ 3.x only 3.1 and 3.1.1): that comes
 * first, and `confirmProtocolVersion` can try 3.1.1 to be sure. After a 3.1.1 CONNECT, a TLS port or a missing client
 * certificate is the usual reason.
 */
function closedWithoutAccepting(settings: Settings, detail?: string): ConnectorError {
  const address = brokerAddress(settings);
  if (settings.mqttVersion !== '3.1.1') {
    return new ProtocolVersionSuspectedError(
      `The broker at ${address} closed the connection without answering the MQTT ${settings.mqttVersion} CONNECT. Most likely it does not speak MQTT ${settings.mqttVersion} ` +
        `(NATS accepts only 3.1.1, RabbitMQ 3.x only 3.1 and 3.1.1): set ${field('protocol_version')} to 3.1.1. ` +
        `Otherwise, if it expects TLS, turn on ${field('use_tls')}; if it requires a client certificate, set one.`,
      detail,
    );
  }
  return new TransientError(
    `The broker at ${address} closed the connection without accepting it. If it expects TLS, turn on ${field('use_tls')}; if it requires a client certificate, set one; otherwise check its logs.`,
    detail,
  );
}

/**
 * Turns whatever MQTT.js, ws or Node reported while connecting into an error the user can act on. `tlsEstablished`
 * tells a connection dropped during the TLS handshake (usually TLS against a plain port) from one dropped later.
 */
function describeConnectError(err: unknown, settings: Settings, tlsEstablished = false): ConnectorError {
  const address = brokerAddress(settings);
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const detail = `${message}${code === undefined ? '' : ` (${String(code)})`}`;
  if (typeof code === 'number') {
    const refusal = CONNACK_REFUSALS[code];
    if (refusal) return refusal(settings, detail);
  }
  if (message === 'connack timeout') return timedOut(settings, detail);
  switch (code) {
    case 'ECONNREFUSED':
      return new TransientError(
        `Nothing accepts connections at ${address}: check the broker's host and port, and that it is running.`,
        detail,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(`The broker host "${settings.host}" could not be resolved; check the host name.`, detail);
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return new ConfigError(
        `The broker's TLS certificate does not match the host name "${settings.tls?.servername ?? settings.host}"; connect by the name the certificate carries, or set ${field('tls_server_name')}.`,
        detail,
      );
    case 'CERT_HAS_EXPIRED':
      return new ConfigError("The broker's TLS certificate has expired.", detail);
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
    case 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE':
      return new ConfigError(
        `The broker requires a client certificate; set ${field('tls_client_certificate')} and ${field('tls_client_key')}.`,
        detail,
      );
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN':
      return new ConfigError(
        'The broker rejected the client certificate: it does not trust the authority that signed it, or the certificate is invalid.',
        detail,
      );
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return new ConfigError(
        `TLS was used against ${address}, which does not speak TLS; turn off ${field('use_tls')} or use the broker's TLS port.`,
        detail,
      );
    default:
      break;
  }
  if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
    return new ConfigError(
      `The broker's TLS certificate is signed by an unknown certificate authority; set ${field('tls_ca_certificate')} to the authority that signed it.`,
      detail,
    );
  }
  if (/before secure TLS connection was established/.test(message)) {
    return new ConfigError(
      `The TLS handshake with ${address} failed: the port probably does not speak TLS; turn off ${field('use_tls')} or use the broker's TLS port.`,
      detail,
    );
  }
  const http = /Unexpected server response: (\d+)/.exec(message)?.[1];
  if (http) {
    return new ConfigError(
      `The WebSocket handshake with ${address} was refused with HTTP ${http}; check ${fieldTitle('websocket_path')} (websocket_path, now "${settings.websocketPath}") and that the port serves MQTT over WebSocket.`,
      detail,
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    if (settings.tls && !tlsEstablished) return tlsNotEstablished(settings, detail);
    return closedWithoutAccepting(settings, detail);
  }
  return new TransientError(`Could not connect to the broker at ${address}: ${message}`, detail);
}

/** What an MQTT 5 broker announced in its CONNACK; empty for MQTT 3.1.x, which announces nothing. */
interface BrokerLimits {
  readonly maximumQoS?: number;
  readonly retainAvailable?: boolean;
  readonly receiveMaximum?: number;
  readonly maximumPacketSize?: number;
  readonly topicAliasMaximum?: number;
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

/** The configuration asks for something the broker said it does not offer. */
function limitProblems(settings: Settings, limits: BrokerLimits): string[] {
  const problems: string[] = [];
  if (limits.maximumQoS !== undefined && settings.qos > limits.maximumQoS) {
    problems.push(`the broker accepts messages up to QoS ${limits.maximumQoS} only; lower ${field('message_qos')}`);
  }
  if (limits.retainAvailable === false && settings.retain) {
    problems.push(`the broker does not support retained messages; turn off ${field('message_retained')}`);
  }
  return problems;
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
 * Connects, or rejects within the connect timeout. MQTT.js alone may wait forever when the socket closes before a
 * CONNACK with reconnection off, and reports TLS failures twice; this settles exactly once.
 */
export function connectBroker(settings: Settings): Promise<Connection> {
  return new Promise((resolve, reject) => {
    let tlsSocket: TLSSocket | undefined;
    let transportError: Error | undefined;
    const options = clientOptions(settings, {
      onTlsSocket: (socket) => (tlsSocket = socket),
      onError: (error) => (transportError ??= error),
    });
    const client = connectClient(options);
    // Nagle's algorithm only delays the connector, which already sends each turn's packets as one write
    // (write-batch.ts): it holds a write back until the broker has acknowledged the previous segment, a round trip away.
    // A refill that leaves as two writes (the input ran dry in between), or a PUBREL behind a PUBLISH, then reaches the
    // broker a round trip late, and with a small Receive Maximum the acknowledgements keep that rhythm from then on.
    // Measured through a 20 ms round trip against Mosquitto's Receive Maximum of 20: QoS 1 went from 322 to 476
    // records/s (a bare MQTT.js publisher: 474), QoS 2 from 160 to 350. ws sets the same option on WebSocket sockets.
    if (settings.transport === 'tcp') (client.stream as Socket).setNoDelay(true);
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
      const problems = limitProblems(settings, limits);
      if (problems.length > 0) {
        fail(new BrokerRefusedError(`The broker's limits rule out this configuration: ${problems.join('; ')}.`));
        return;
      }
      settle();
      const socket = tlsSocket;
      const peer = socket?.getPeerCertificate();
      resolve({
        client,
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
 * MQTT 3.1.1 (a clean session, then a DISCONNECT) to find out. Accepted, the suspicion is confirmed and returned as a
 * configuration error that says it was tried; otherwise `error` is returned unchanged.
 */
export async function confirmProtocolVersion(settings: Settings, error: unknown): Promise<unknown> {
  if (!(error instanceof ProtocolVersionSuspectedError)) return error;
  let probe: Connection;
  try {
    probe = await connectBroker({ ...settings, mqttVersion: '3.1.1', cleanSession: true, sessionExpirySeconds: 0 });
  } catch {
    return error;
  }
  await disconnect(probe.client);
  return new BrokerRefusedError(
    `The broker at ${brokerAddress(settings)} closed the connection without answering the MQTT ${settings.mqttVersion} CONNECT, and accepted an MQTT 3.1.1 connection ` +
      `the connector made to confirm it: it does not speak MQTT ${settings.mqttVersion}. Set ${field('protocol_version')} to 3.1.1.`,
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
