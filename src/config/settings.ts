/**
 * From a validated configuration to the settings the connector runs with: defaults applied, the archived Java
 * connector's keys accepted (including the two its code read instead of the documented ones), broker URLs resolved,
 * TLS material loaded and checked, and cross-field rules enforced. Every problem is collected, so the user sees all of
 * them in one message.
 */
import { readFile } from 'node:fs/promises';
// node:crypto's randomUUID rather than the uuid package: the same version 4 UUIDs, and config/tls.ts loads node:crypto
// anyway, while importing uuid added 24 ms of CPU to every start (Node 20, unbundled).
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { MessageFormat } from '../payload/payload-format.js';
import type { RecordIdKind } from '../payload/record-id.js';
import { type TopicEscaping, patternProblem, topicProblem } from '../payload/topic.js';
import { parseBrokerUrl } from './broker-url.js';
import { field, schemaProblems, secretProperties, specDefault } from './spec.js';
import { hasTlsMaterial, loadTls, type TlsOptions } from './tls.js';
import { REDACTED, Redactor } from '../text/redaction.js';

export type QoS = 0 | 1 | 2;
export type RejectedRecords = 'fail' | 'skip' | 'dead_letter';
export type OverwriteCleanup = 'after_complete' | 'end_of_input';
type MqttVersion = '3.1' | '3.1.1' | '5';

export interface Settings {
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
  readonly topicPattern: string;
  readonly testTopic: string | undefined;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly mqtt5UserProperties: boolean;
  readonly messageExpirySeconds: number | undefined;
  /** Largest PUBLISH packet to send: `max_message_bytes`, capped by what MQTT can encode. */
  readonly maxMessageBytes: number;
  readonly clientId: string;
  readonly cleanSession: boolean;
  readonly automaticReconnect: boolean;
  readonly reconnectTimeoutMs: number;
  /** MQTT 5 Session Expiry Interval sent in CONNECT: 0 unless the session is meant to outlive the connection. */
  readonly sessionExpirySeconds: number;
  readonly shutdownGraceMs: number;
  readonly publisherSync: boolean;
  /** Upper bound on unacknowledged QoS 1/2 messages, before the broker's own Receive Maximum is applied. */
  readonly maxInflight: number;
  /** MQTT connections to publish over at once, each with client ID `<clientId>-<n>` when more than one. */
  readonly connections: number;
  /** Limits on the publishing rate over all connections together; undefined for none. */
  readonly maxMessagesPerSecond: number | undefined;
  readonly maxBytesPerSecond: number | undefined;
  readonly messageFormat: MessageFormat;
  readonly recordId: RecordIdKind;
  readonly rejectedRecords: RejectedRecords;
  /** Where reports of rejected records go; set exactly when `rejectedRecords` is `dead_letter`. */
  readonly deadLetterTopic: string | undefined;
  readonly overwriteCleanup: OverwriteCleanup;
  /** What substituted topic values escape beyond what MQTT forbids (`topic_value_escaping`). */
  readonly topicEscaping: TopicEscaping;
  /** How long a QoS 1/2 message may await its acknowledgement on a live connection before it is sent again. */
  readonly ackTimeoutMs: number;
  /** Subscribe and wait for the first message of each topic to come back (MQTT 3.1.x only; 5 reports refusals). */
  readonly verifyDelivery: boolean;
  /** Every secret value of the configuration, so output can redact it wherever it might appear. */
  readonly secrets: readonly string[];
  /** Things worth a warning that are not errors (for example TLS verification turned off). */
  readonly warnings: readonly string[];
}

const QOS_BY_NAME: Readonly<Record<string, QoS>> = { AT_MOST_ONCE: 0, AT_LEAST_ONCE: 1, EXACTLY_ONCE: 2 };

/** The largest packet MQTT can carry: a 1-byte header, 4 bytes of length and 268,435,455 bytes after them. */
export const MQTT_MAX_PACKET_BYTES = 268_435_460;

/** At QoS 2 a default Mosquitto 2.0 closes a 3.1.1 connection with more than 20 messages in flight. */
const DEFAULT_MAX_INFLIGHT: Readonly<Record<QoS, number>> = { 0: 1000, 1: 1000, 2: 20 };

type Config = Record<string, unknown>;

function stringOf(config: Config, key: string): string | undefined {
  const value = config[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function booleanOf(config: Config, key: string, fallback: boolean): boolean {
  const value = config[key];
  return typeof value === 'boolean' ? value : fallback;
}

function integerOf(config: Config, key: string): number | undefined {
  const value = config[key];
  return typeof value === 'number' ? value : undefined;
}

function stringsOf(config: Config, key: string): string[] | undefined {
  const value = config[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v !== '') : undefined;
}

function isConfig(value: unknown): value is Config {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A documented key and the key the Java connector's code read by mistake: either works, both must agree. */
function aliased(config: Config, key: string, legacyKey: string, problems: string[]): string | undefined {
  const value = stringOf(config, key);
  const legacy = stringOf(config, legacyKey);
  if (value !== undefined && legacy !== undefined && value !== legacy) {
    problems.push(
      `${key} and ${legacyKey} are both set, to different values (${legacyKey} is an older name of ${key}; keep only ${key})`,
    );
  }
  return value ?? legacy;
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
      `${field('use_tls')} is on but ${field('broker_url')} names a plain connection; use a TLS scheme such as mqtts:// or wss://`,
    );
  // The platform's form saves every default with the configuration, so `transport: "tcp"` comes with any URL the
  // user types: only a value the user chose can contradict it.
  if (
    config.transport !== undefined &&
    config.transport !== specDefault.string('transport') &&
    config.transport !== parsed.transport
  ) {
    problems.push(
      `${field('transport')} is ${String(config.transport)} but ${field('broker_url')} names ${parsed.transport}; remove transport or change the URL`,
    );
  }
  if (parsed.username !== undefined && username !== undefined && parsed.username !== username)
    problems.push(
      `give the user name either in ${field('broker_url')} or in ${field('username')}, not both (they differ)`,
    );
  if (parsed.password !== undefined) {
    // The platform keeps only airbyte_secret fields secret: a password in the URL would be stored and shown in clear.
    problems.push(
      `${field('broker_url')} carries a password, which Airbyte would store and show in clear: remove it from the URL and enter it in ${field('password')}, which is kept secret (a user name in the URL is fine)`,
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

/** MQTT encodes the user name, the password and the client ID each with a two-byte length. */
const MQTT_MAX_FIELD_BYTES = 65_535;

/** Credentials and client ID MQTT (or the MQTT client) cannot send; checked here so that check reports them as FAILED. */
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
      problems.push(
        `${field(key)} is ${bytes} bytes long${extra ? ` with the connection number appended` : ''} in UTF-8; MQTT allows at most ${MQTT_MAX_FIELD_BYTES}`,
      );
    }
  }
  if (where.password !== undefined && where.username === undefined) {
    problems.push(
      `${field('password')} is set without a ${field('username')}: MQTT 3.1 and 3.1.1 allow a password only with a user name, and MQTT 5, which allows it alone, is not offered that way by the MQTT client this connector uses; set a user name as well (brokers that authenticate by token usually accept any user name)`,
    );
  }
  return problems;
}

function secretsOf(config: Config, extra: readonly (string | undefined)[]): string[] {
  const values = secretProperties().map((key) => stringOf(config, key));
  return [...values, ...extra].filter((v): v is string => v !== undefined && v.length >= 3);
}

/**
 * The Java connector handed `connect_timeout` to Paho, where 0 means no limit; configurations saved with it still
 * carry it. Nothing here waits without bound, so 0 waits as long as a connection attempt reasonably may: an hour.
 */
const UNLIMITED_CONNECT_SECONDS = 3600;

function connectTimeoutSeconds(configured: number): number {
  return configured === 0 ? UNLIMITED_CONNECT_SECONDS : configured;
}

export function toSettings(config: unknown): Settings {
  if (!isConfig(config)) throw new ConfigError('The configuration must be a JSON object.');
  const problems = schemaProblems(config);
  const warnings: string[] = [];

  const topicPattern = stringOf(config, 'topic_pattern') ?? '';
  const patternIssue = typeof config.topic_pattern === 'string' ? patternProblem(topicPattern) : undefined;
  if (patternIssue) problems.push(`${field('topic_pattern')} is invalid: ${patternIssue}`);
  const testTopic = aliased(config, 'topic_test', 'test_topic', problems);
  const testTopicIssue = testTopic === undefined ? undefined : topicProblem(testTopic);
  if (testTopicIssue) problems.push(`${field('topic_test')} is invalid: ${testTopicIssue}`);
  const clientId = aliased(config, 'client', 'client_id', problems);

  const where = endpoint(config, problems);
  problems.push(
    ...credentialProblems(where, clientId, integerOf(config, 'connections') ?? specDefault.number('connections')),
  );
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
      `TLS settings (tls_*) are given but the connection does not use TLS; turn on ${field('use_tls')} or use a TLS URL`,
    );
  }
  const tls = where.useTls ? loadTls(tlsConfig, problems) : undefined;
  if (tls && !tls.rejectUnauthorized)
    warnings.push(
      "TLS certificate verification is off (tls_insecure_skip_verify): the broker's identity is not checked.",
    );

  const mqttVersion = (stringOf(config, 'protocol_version') ?? specDefault.string('protocol_version')) as MqttVersion;
  const messageExpirySeconds = integerOf(config, 'message_expiry_seconds');
  if (mqttVersion !== '5' && messageExpirySeconds !== undefined)
    problems.push(`${field('message_expiry_seconds')} needs MQTT 5; set protocol_version to 5`);
  const cleanSession = booleanOf(config, 'clean_session', specDefault.boolean('clean_session'));
  if (!cleanSession && clientId === undefined) {
    // A warning, not an error: the Java connector accepted this configuration.
    warnings.push(
      `${field('clean_session')} is off but no ${field('client')} is set: the random ID chosen for this sync cannot resume a session from an earlier one.`,
    );
  }

  if (booleanOf(config, 'publisher_sync', false) && (integerOf(config, 'connections') ?? 1) > 1) {
    problems.push(
      `${field('publisher_sync')} publishes one message at a time, which ${field('connections')} above 1 would break; turn one of them off`,
    );
  }

  const rejectedRecords = (stringOf(config, 'rejected_records') ??
    specDefault.string('rejected_records')) as RejectedRecords;
  const deadLetterTopic = stringOf(config, 'dead_letter_topic');
  if (rejectedRecords === 'dead_letter') {
    const issue = deadLetterTopic === undefined ? 'it is not set' : topicProblem(deadLetterTopic);
    if (issue)
      problems.push(
        `${field('rejected_records')} is dead_letter, which needs a valid ${field('dead_letter_topic')}: ${issue}`,
      );
  } else if (deadLetterTopic !== undefined) {
    warnings.push(
      `${field('dead_letter_topic')} is set but ${field('rejected_records')} is ${rejectedRecords}: nothing will be published there.`,
    );
  }

  if (problems.length > 0) {
    // Thrown before output knows the secrets, and a problem may quote a value (a key pasted without its PEM header reads
    // as a file path): mask them here.
    const redactor = new Redactor();
    const url = parseBrokerUrl(stringOf(config, 'broker_url') ?? '');
    redactor.add(secretsOf(config, [where.password, url instanceof Error ? undefined : url.password]));
    throw new ConfigError(redactor.text(`The configuration is invalid: ${problems.join('; ')}.`));
  }

  const qos = QOS_BY_NAME[stringOf(config, 'message_qos') ?? specDefault.string('message_qos')] ?? 1;
  return {
    ...where,
    mqttVersion,
    connectTimeoutMs:
      connectTimeoutSeconds(integerOf(config, 'connect_timeout') ?? specDefault.number('connect_timeout')) * 1000,
    tls,
    topicPattern,
    testTopic,
    qos,
    retain: booleanOf(config, 'message_retained', specDefault.boolean('message_retained')),
    mqtt5UserProperties: booleanOf(config, 'mqtt5_user_properties', specDefault.boolean('mqtt5_user_properties')),
    messageExpirySeconds,
    clientId: clientId ?? `airbyte-${randomUUID()}`,
    maxMessageBytes: integerOf(config, 'max_message_bytes') ?? MQTT_MAX_PACKET_BYTES,
    cleanSession,
    automaticReconnect: booleanOf(config, 'automatic_reconnect', specDefault.boolean('automatic_reconnect')),
    reconnectTimeoutMs:
      (integerOf(config, 'reconnect_timeout_seconds') ?? specDefault.number('reconnect_timeout_seconds')) * 1000,
    // MQTT 5 ends a session with its connection unless told otherwise; 3.1.x keeps a non-clean session for good.
    sessionExpirySeconds: cleanSession
      ? 0
      : (integerOf(config, 'session_expiry_seconds') ?? specDefault.number('session_expiry_seconds')),
    shutdownGraceMs:
      (integerOf(config, 'shutdown_grace_seconds') ?? specDefault.number('shutdown_grace_seconds')) * 1000,
    publisherSync: booleanOf(config, 'publisher_sync', specDefault.boolean('publisher_sync')),
    maxInflight: integerOf(config, 'max_inflight') ?? DEFAULT_MAX_INFLIGHT[qos],
    connections: integerOf(config, 'connections') ?? specDefault.number('connections'),
    maxMessagesPerSecond: integerOf(config, 'max_messages_per_second'),
    maxBytesPerSecond: integerOf(config, 'max_bytes_per_second'),
    messageFormat: (stringOf(config, 'message_format') ?? specDefault.string('message_format')) as MessageFormat,
    recordId: (stringOf(config, 'record_id') ?? specDefault.string('record_id')) as RecordIdKind,
    rejectedRecords,
    deadLetterTopic: rejectedRecords === 'dead_letter' ? deadLetterTopic : undefined,
    topicEscaping: (stringOf(config, 'topic_value_escaping') ??
      specDefault.string('topic_value_escaping')) as TopicEscaping,
    overwriteCleanup: (stringOf(config, 'overwrite_cleanup') ??
      specDefault.string('overwrite_cleanup')) as OverwriteCleanup,
    ackTimeoutMs: (integerOf(config, 'ack_timeout_seconds') ?? specDefault.number('ack_timeout_seconds')) * 1000,
    verifyDelivery: mqttVersion !== '5' && booleanOf(config, 'verify_delivery', specDefault.boolean('verify_delivery')),
    secrets: secretsOf(config, [where.password]),
    warnings,
  };
}

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `Cannot read the configuration file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The parser's message quotes the text, which may hold the password.
    throw new ConfigError(`The configuration file ${path} is not valid JSON`);
  }
}

/** The settings as they will be used, for the log: secrets and key material replaced, certificates summarised. */
export function describeSettings(settings: Settings): string {
  const { secrets: _secrets, warnings: _warnings, tls, password, ...plain } = settings;
  const described = {
    ...plain,
    password: password === undefined ? undefined : REDACTED,
    tls: tls && {
      ca: tls.ca === undefined ? 'system roots' : `${tls.ca.length} certificate(s)`,
      clientCertificate: tls.cert === undefined ? undefined : 'set',
      clientKey: tls.key === undefined ? undefined : REDACTED,
      verify: tls.rejectUnauthorized,
      serverName: tls.servername,
      alpnProtocols: tls.ALPNProtocols,
    },
  };
  return JSON.stringify(described);
}
