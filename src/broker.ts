/**
 * Connecting to the broker. `check` and `write` both go through `connectBroker`, so a successful check means `write`
 * will connect the same way. Failures are translated into errors that say what went wrong and what to change.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ConfigError, type ConnectorError, TransientError } from './errors.js';
import type { Settings } from './config/settings.js';

export function clientOptions(settings: Settings): IClientOptions {
  return {
    protocol: settings.useTls ? 'mqtts' : 'mqtt',
    host: settings.host,
    port: settings.port,
    clientId: settings.clientId,
    username: settings.username,
    password: settings.password,
    clean: settings.cleanSession,
    protocolVersion: 4,
    connectTimeout: settings.connectTimeoutMs,
    // The connector paces and, where needed, republishes messages itself. MQTT.js's own reconnection replays stored
    // messages one per round trip and queues new ones without bound while offline.
    reconnectPeriod: 0,
    queueQoSZero: false,
    resubscribe: false,
    // mqtt-packet's number cache costs tens of megabytes for a small CPU gain.
    writeCache: false,
  };
}

export function brokerAddress(settings: Settings): string {
  return `${settings.useTls ? 'mqtts' : 'mqtt'}://${settings.host}:${settings.port}`;
}

type Refusal = (settings: Settings, detail: string) => ConnectorError;

const badCredentials: Refusal = (_s, detail) =>
  new ConfigError('The broker refused the user name or password; check "Username" and "Password".', detail);

const notAuthorized: Refusal = (s, detail) =>
  new ConfigError(
    `The broker does not authorise ${s.username ? `user "${s.username}"` : 'anonymous clients'} to connect; check the credentials and the broker's access rules.`,
    detail,
  );

/** CONNACK return codes (MQTT 3.1.1) and reason codes (MQTT 5) that refuse the connection. */
const CONNACK_REFUSALS: Readonly<Record<number, Refusal>> = {
  1: (_s, detail) => new ConfigError('The broker does not accept this MQTT protocol version.', detail),
  2: (s, detail) => new ConfigError(`The broker rejected the client ID "${s.clientId}"; set a different "Client ID" (client).`, detail),
  3: (_s, detail) => new TransientError('The broker answered that the MQTT service is unavailable; try again later.', detail),
  4: badCredentials,
  5: notAuthorized,
  134: badCredentials,
  135: notAuthorized,
};

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

function timedOut(settings: Settings, detail?: string): ConnectorError {
  return new TransientError(
    `The broker at ${settings.host}:${settings.port} did not accept the connection within ${settings.connectTimeoutMs / 1000} s; check the host, the port and the TLS setting, or raise "Connect timeout".`,
    detail,
  );
}

/** Turns whatever MQTT.js or Node reported while connecting into an error the user can act on. */
export function describeConnectError(err: unknown, settings: Settings): ConnectorError {
  const address = `${settings.host}:${settings.port}`;
  const code = (err as { code?: unknown } | null)?.code;
  const detail = err instanceof Error ? `${err.message}${code === undefined ? '' : ` (${String(code)})`}` : String(err);
  if (typeof code === 'number') {
    const refusal = CONNACK_REFUSALS[code];
    if (refusal) return refusal(settings, detail);
  }
  switch (code) {
    case 'ECONNREFUSED':
      return new TransientError(`Nothing accepts connections at ${address}: check "MQTT broker host" and "MQTT broker port", and that the broker is running.`, detail);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(`The broker host "${settings.host}" could not be resolved; check "MQTT broker host".`, detail);
    case 'ECONNRESET':
    case 'EPIPE':
      return new TransientError(`The broker at ${address} closed the connection before accepting it. If it expects TLS, turn on "Use TLS"; otherwise check its logs.`, detail);
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return new ConfigError(`The broker's TLS certificate does not match the host name "${settings.host}".`, detail);
    case 'CERT_HAS_EXPIRED':
      return new ConfigError("The broker's TLS certificate has expired.", detail);
    default:
      break;
  }
  if (err instanceof Error && err.message === 'connack timeout') return timedOut(settings, detail);
  if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
    return new ConfigError("The broker's TLS certificate is signed by an unknown certificate authority.", detail);
  }
  if (err instanceof Error && /wrong version number|packet length too long|unknown protocol/i.test(err.message)) {
    return new ConfigError(`TLS was used against ${address}, which does not speak TLS; turn off "Use TLS" or use the broker's TLS port.`, detail);
  }
  return new TransientError(`Could not connect to the broker at ${address}: ${err instanceof Error ? err.message : String(err)}`, detail);
}

/**
 * Connects, or rejects within the connect timeout. MQTT.js alone may wait forever when the socket closes before a
 * CONNACK with reconnection off, and reports TLS failures twice; this settles exactly once.
 */
export function connectBroker(settings: Settings): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(clientOptions(settings));
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
    const onConnect = (): void => {
      settle();
      resolve(client);
    };
    const onError = (err: Error): void => fail(describeConnectError(err, settings));
    const onClose = (): void =>
      fail(new TransientError(`The broker at ${settings.host}:${settings.port} closed the connection without accepting it. If it expects TLS, turn on "Use TLS"; otherwise check its logs.`));
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
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
