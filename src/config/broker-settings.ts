/**
 * The broker part of the settings: where the broker is, how to reach it (TCP or WebSocket, TLS), who the connector is
 * there (credentials, client ID, session) and how long it waits for it. Everything that opens a connection reads this
 * part, and only it: mqtt/connect.ts, the keeper that reconnects, and the side connections that scan retained keys
 * and verify delivery.
 */
import { randomUUID } from 'node:crypto';
import { type Config, aliased, booleanOf, integerOf, stringOf, stringsOf } from './config-values.js';
import { type AuthMethod, authMethodOf } from './auth-settings.js';
import { parseBrokerUrl } from './broker-url.js';
import { type Reach, reachOf } from './reach-settings.js';
import { field, specDefault } from './spec.js';
import { hasTlsMaterial, loadTls, type TlsOptions } from './tls.js';

export type MqttVersion = '3.1' | '3.1.1' | '5';

export interface BrokerSettings {
  readonly transport: 'tcp' | 'websocket';
  readonly host: string;
  readonly port: number;
  readonly websocketPath: string;
  readonly mqttVersion: MqttVersion;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly connectTimeoutMs: number;
  /** TLS options when the connection uses TLS, undefined for a plain connection. */
  readonly tls: TlsOptions | undefined;
  /** The configured client ID, or a random one for this sync; parallel connections append `-<n>`. */
  readonly clientId: string;
  readonly cleanSession: boolean;
  /** MQTT 5 Session Expiry Interval sent in CONNECT: 0 unless the session is meant to outlive the connection. */
  readonly sessionExpirySeconds: number;
  readonly automaticReconnect: boolean;
  readonly reconnectTimeoutMs: number;
  /** How the connector signs in: `username` and `password` above, or a credential made for each connection. */
  readonly auth: AuthMethod;
  /** How it reaches `host`: directly, through a proxy, or through an SSH tunnel. */
  readonly reach: Reach;
}

interface Endpoint {
  readonly transport: 'tcp' | 'websocket';
  readonly useTls: boolean;
  readonly host: string;
  readonly port: number;
  readonly websocketPath: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

/** Where to connect: from broker_url, or from broker_host, broker_port, use_tls and transport. */
function endpoint(config: Config, problems: string[]): Endpoint {
  const url = stringOf(config, 'broker_url');
  const useTlsKey = booleanOf(config, 'use_tls', specDefault.boolean('use_tls'));
  const transportKey =
    (stringOf(config, 'transport') ?? specDefault.string('transport')) === 'websocket' ? 'websocket' : 'tcp';
  const websocketPath = stringOf(config, 'websocket_path') ?? specDefault.string('websocket_path');
  const username = stringOf(config, 'username');
  const password = stringOf(config, 'password');
  if (url === undefined) {
    const host = stringOf(config, 'broker_host');
    if (host === undefined && config.broker_host === undefined)
      problems.push(`set either ${field('broker_url')} or ${field('broker_host')}`);
    const defaultPort = transportKey === 'websocket' ? (useTlsKey ? 443 : 80) : useTlsKey ? 8883 : 1883;
    return {
      transport: transportKey,
      useTls: useTlsKey,
      host: host ?? '',
      port: integerOf(config, 'broker_port') ?? defaultPort,
      websocketPath,
      username,
      password,
    };
  }
  const parsed = parseBrokerUrl(url);
  if (parsed instanceof Error) {
    problems.push(`${field('broker_url')} is invalid: ${parsed.message}`);
    return { transport: transportKey, useTls: useTlsKey, host: '', port: 0, websocketPath, username, password };
  }
  for (const key of ['broker_host', 'broker_port'] as const) {
    if (config[key] !== undefined && config[key] !== '')
      problems.push(`set either ${field('broker_url')} or ${key}, not both`);
  }
  if (config.use_tls === true && !parsed.useTls)
    problems.push(
      `${field('use_tls')} is on but ${field('broker_url')} names a plain connection; ` +
        'use a TLS scheme such as mqtts:// or wss://',
    );
  // The platform's form saves every default with the configuration, so `transport: "tcp"` comes with any URL the
  // user types: only a value the user chose can contradict it.
  const transport = config.transport;
  if (transport !== undefined && transport !== specDefault.string('transport') && transport !== parsed.transport) {
    problems.push(
      `${field('transport')} is ${typeof transport === 'string' ? transport : JSON.stringify(transport)} ` +
        `but ${field('broker_url')} names ${parsed.transport}; ` +
        'remove transport or change the URL',
    );
  }
  if (parsed.username !== undefined && username !== undefined && parsed.username !== username)
    problems.push(
      `give the user name either in ${field('broker_url')} or in ${field('username')}, not both (they differ)`,
    );
  if (parsed.password !== undefined) {
    // The platform keeps only airbyte_secret fields secret: a password in the URL would be stored and shown in clear.
    problems.push(
      `${field('broker_url')} carries a password, which Airbyte would store and show in clear: remove it from the ` +
        `URL and enter it in ${field('password')}, which is kept secret (a user name in the URL is fine)`,
    );
  }
  return {
    transport: parsed.transport,
    useTls: parsed.useTls,
    host: parsed.host,
    port: parsed.port,
    websocketPath: parsed.path ?? websocketPath,
    username: parsed.username ?? username,
    password,
  };
}

/** The password a broker URL carries, which is refused but must still be kept out of the error that says so. */
export function urlPassword(config: Config): string | undefined {
  const url = parseBrokerUrl(stringOf(config, 'broker_url') ?? '');
  return url instanceof Error ? undefined : url.password;
}

/** MQTT encodes the user name, the password and the client ID each with a two-byte length. */
const MQTT_MAX_FIELD_BYTES = 65_535;

/**
 * Credentials and client ID MQTT (or the MQTT client) cannot send; checked here so that check reports them as FAILED.
 */
function credentialProblems(where: Endpoint, clientId: string | undefined, connections: number): string[] {
  const problems: string[] = [];
  // With several connections each client ID gets "-<n>" appended.
  const suffix = connections > 1 ? `-${connections}`.length : 0;
  const lengths: [string, string | undefined, number][] = [
    ['username', where.username, 0],
    ['password', where.password, 0],
    ['client', clientId, suffix],
  ];
  for (const [key, value, extra] of lengths) {
    const bytes = value === undefined ? 0 : Buffer.byteLength(value, 'utf8') + extra;
    if (bytes > MQTT_MAX_FIELD_BYTES) {
      const appended = extra ? ' with the connection number appended' : '';
      problems.push(
        `${field(key)} is ${bytes} bytes long${appended} in UTF-8; MQTT allows at most ${MQTT_MAX_FIELD_BYTES}`,
      );
    }
  }
  if (where.password !== undefined && where.username === undefined) {
    problems.push(
      `${field('password')} is set without a ${field('username')}: MQTT 3.1 and 3.1.1 allow a password only with a ` +
        'user name, and MQTT 5, which allows it alone, is not offered that way by the MQTT client this connector ' +
        'uses; set a user name as well (brokers that authenticate by token usually accept any user name)',
    );
  }
  return problems;
}

/**
 * The Java connector handed `connect_timeout` to Paho, where 0 means no limit; configurations saved with it still
 * carry it. Nothing here waits without bound, so 0 waits as long as a connection attempt reasonably may: an hour.
 */
const UNLIMITED_CONNECT_SECONDS = 3600;

function connectTimeoutSeconds(configured: number): number {
  return configured === 0 ? UNLIMITED_CONNECT_SECONDS : configured;
}

/** The broker part of `config`; problems and warnings are added to the lists given. */
export function brokerSettings(
  config: Config,
  problems: string[],
  warnings: string[],
  connections: number,
): BrokerSettings {
  const clientId = aliased(config, 'client', 'client_id', problems);
  const where = endpoint(config, problems);
  problems.push(...credentialProblems(where, clientId, connections));
  const tlsConfig = {
    caCertificate: stringOf(config, 'tls_ca_certificate'),
    caOnly: booleanOf(config, 'tls_ca_only', specDefault.boolean('tls_ca_only')),
    clientCertificate: stringOf(config, 'tls_client_certificate'),
    clientKey: stringOf(config, 'tls_client_key'),
    clientKeyPassphrase: stringOf(config, 'tls_client_key_passphrase'),
    insecureSkipVerify: booleanOf(config, 'tls_insecure_skip_verify', specDefault.boolean('tls_insecure_skip_verify')),
    serverName: stringOf(config, 'tls_server_name'),
    alpnProtocols: stringsOf(config, 'tls_alpn_protocols'),
  };
  if (!where.useTls && hasTlsMaterial(tlsConfig)) {
    problems.push(
      `TLS settings (tls_*) are given but the connection does not use TLS; ` +
        `turn on ${field('use_tls')} or use a TLS URL`,
    );
  }
  const tls = where.useTls ? loadTls(tlsConfig, problems) : undefined;
  if (tls && !tls.rejectUnauthorized)
    warnings.push(
      "TLS certificate verification is off (tls_insecure_skip_verify): the broker's identity is not checked.",
    );
  const cleanSession = booleanOf(config, 'clean_session', specDefault.boolean('clean_session'));
  if (!cleanSession && clientId === undefined) {
    // A warning, not an error: the Java connector accepted this configuration.
    warnings.push(
      `${field('clean_session')} is off but no ${field('client')} is set: ` +
        'the random ID chosen for this sync cannot resume a session from an earlier one.',
    );
  }
  const { useTls: _useTls, ...address } = where;
  const mqttVersion = (stringOf(config, 'protocol_version') ?? specDefault.string('protocol_version')) as MqttVersion;
  const connectTimeoutMs =
    connectTimeoutSeconds(integerOf(config, 'connect_timeout') ?? specDefault.number('connect_timeout')) * 1000;
  const auth = authMethodOf(config, problems, { ...where, mqttVersion, clientId, connections, connectTimeoutMs });
  return {
    ...address,
    mqttVersion,
    connectTimeoutMs,
    tls,
    // IoT Hub knows a device by its ID, which must be the client ID.
    clientId: clientId ?? (auth.authType === 'azure_iot_hub_sas' ? auth.deviceId : `airbyte-${randomUUID()}`),
    cleanSession,
    // MQTT 5 ends a session with its connection unless told otherwise; 3.1.x keeps a non-clean session for good.
    sessionExpirySeconds: cleanSession
      ? 0
      : (integerOf(config, 'session_expiry_seconds') ?? specDefault.number('session_expiry_seconds')),
    automaticReconnect: booleanOf(config, 'automatic_reconnect', specDefault.boolean('automatic_reconnect')),
    reconnectTimeoutMs:
      (integerOf(config, 'reconnect_timeout_seconds') ?? specDefault.number('reconnect_timeout_seconds')) * 1000,
    auth,
    reach: reachOf(config, problems, connectTimeoutMs),
  };
}
