/**
 * From a validated configuration to the settings the connector runs with: defaults applied (read from spec.json,
 * never retyped), the archived Java connector's keys accepted (including the two its code read instead of the
 * documented ones), broker URLs resolved, TLS material loaded and checked, and cross-field rules enforced. Every
 * problem is collected, so the user sees all of them in one message.
 *
 * The settings come in three parts, one per kind of consumer, so that each module is handed only what it uses:
 * `broker` (how to reach and log in to the broker: broker-settings.ts), `messages` (what each message is: topics,
 * QoS, retain, format, size) and `sync` (how the sync runs: connections, pacing, rejected records, truncation).
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import type { BatchLayout, Compression, MessageFormat } from '../payload/payload-format.js';
import type { RecordIdKind } from '../payload/record-id.js';
import { type TopicEscaping, patternHasKey, patternProblem, topicProblem } from '../payload/topic.js';
import { REDACTED, Redactor } from '../text/redaction.js';
import { type BrokerSettings, brokerSettings, urlPassword } from './broker-settings.js';
import { describeAuth } from './auth-settings.js';
import { describeReach } from './reach-settings.js';
import { type Config, aliased, booleanOf, integerOf, isConfig, stringOf, valueAt } from './config-values.js';
import { field, schemaProblems, secretProperties, specDefault } from './spec.js';

export type { BrokerSettings, MqttVersion } from './broker-settings.js';
export type QoS = 0 | 1 | 2;
export type RejectedRecords = 'fail' | 'skip' | 'dead_letter';
export type OverwriteCleanup = 'after_complete' | 'end_of_input';

/** What each message is: where it goes, at which QoS, retained or not, in which format, how large at most. */
export interface MessageSettings {
  readonly topicPattern: string;
  /** What substituted topic values escape beyond what MQTT forbids (`topic_value_escaping`). */
  readonly topicEscaping: TopicEscaping;
  readonly testTopic: string | undefined;
  readonly qos: QoS;
  readonly retain: boolean;
  /** Messages carry MQTT 5 properties (`protocol_version` 5). */
  readonly mqtt5: boolean;
  readonly mqtt5UserProperties: boolean;
  readonly messageExpirySeconds: number | undefined;
  /** Largest PUBLISH packet to send: `max_message_bytes`, capped by what MQTT can encode. */
  readonly maxMessageBytes: number;
  readonly messageFormat: MessageFormat;
  readonly recordId: RecordIdKind;
  /** Several records per message, and how each payload is compressed (`batch_*`, `payload_compression`). */
  readonly packing: Packing;
  /** With MQTT 5, user properties added to every message (`mqtt5_custom_user_properties`), as name-value pairs. */
  readonly customUserProperties: readonly (readonly [string, string])[];
}

/** How records are packed into messages. */
export interface Packing {
  readonly layout: BatchLayout;
  readonly maxRecords: number;
  /** The largest batch payload before compression; the connection's own packet limit applies as well. */
  readonly maxBytes: number;
  readonly lingerMs: number;
  readonly compression: Compression;
}

/** How the sync runs: over how many connections, how fast, and what it does with records it cannot publish. */
export interface SyncSettings {
  /** MQTT connections to publish over at once, each with client ID `<clientId>-<n>` when more than one. */
  readonly connections: number;
  /** Upper bound on unacknowledged QoS 1/2 messages, before the broker's own Receive Maximum is applied. */
  readonly maxInflight: number;
  readonly publisherSync: boolean;
  /** Limits on the publishing rate over all connections together; undefined for none. */
  readonly maxMessagesPerSecond: number | undefined;
  readonly maxBytesPerSecond: number | undefined;
  readonly rejectedRecords: RejectedRecords;
  /** Where reports of rejected records go; set exactly when `rejectedRecords` is `dead_letter`. */
  readonly deadLetterTopic: string | undefined;
  readonly overwriteCleanup: OverwriteCleanup;
  /** How long a QoS 1/2 message may await its acknowledgement on a live connection before it is sent again. */
  readonly ackTimeoutMs: number;
  /** Subscribe and wait for the first message of each topic to come back (MQTT 3.1.x only; 5 reports refusals). */
  readonly verifyDelivery: boolean;
  readonly shutdownGraceMs: number;
  /** Where the sync's status goes (`status_topic`), retained; undefined for nowhere. */
  readonly statusTopic: string | undefined;
}

export interface Settings {
  readonly broker: BrokerSettings;
  readonly messages: MessageSettings;
  readonly sync: SyncSettings;
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

/** The dead letter topic may hold {namespace}, {stream} and {field:PATH}, rendered for each report; not {key}. */
function deadLetterProblem(topic: string): string | undefined {
  return patternProblem(topic, false) ?? topicProblem(topic.replaceAll(/\{[^{}]*\}/g, 'x'));
}

function statusTopic(config: Config, problems: string[]): string | undefined {
  const topic = stringOf(config, 'status_topic');
  const issue = topic === undefined ? undefined : topicProblem(topic);
  if (issue) problems.push(`${field('status_topic')} is invalid: ${issue}`);
  return topic;
}

function secretsOf(config: Config, extra: readonly (string | undefined)[]): string[] {
  const values = secretProperties().map((path) => {
    const value = valueAt(config, path);
    return typeof value === 'string' && value !== '' ? value : undefined;
  });
  return [...values, ...extra].filter((v): v is string => v !== undefined && v.length >= 3);
}

function messageSettings(config: Config, problems: string[], mqtt5: boolean): MessageSettings {
  const topicPattern = stringOf(config, 'topic_pattern') ?? '';
  const patternIssue = typeof config.topic_pattern === 'string' ? patternProblem(topicPattern) : undefined;
  if (patternIssue) problems.push(`${field('topic_pattern')} is invalid: ${patternIssue}`);
  const testTopic = aliased(config, 'topic_test', 'test_topic', problems);
  const testTopicIssue = testTopic === undefined ? undefined : topicProblem(testTopic);
  if (testTopicIssue) problems.push(`${field('topic_test')} is invalid: ${testTopicIssue}`);
  const messageExpirySeconds = integerOf(config, 'message_expiry_seconds');
  if (!mqtt5 && messageExpirySeconds !== undefined)
    problems.push(`${field('message_expiry_seconds')} needs MQTT 5; set protocol_version to 5`);
  const string = (key: string): string => stringOf(config, key) ?? specDefault.string(key);
  return {
    topicPattern,
    topicEscaping: string('topic_value_escaping') as TopicEscaping,
    testTopic,
    qos: QOS_BY_NAME[string('message_qos')] ?? 1,
    retain: booleanOf(config, 'message_retained', specDefault.boolean('message_retained')),
    mqtt5,
    mqtt5UserProperties: booleanOf(config, 'mqtt5_user_properties', specDefault.boolean('mqtt5_user_properties')),
    messageExpirySeconds,
    maxMessageBytes: integerOf(config, 'max_message_bytes') ?? MQTT_MAX_PACKET_BYTES,
    messageFormat: string('message_format') as MessageFormat,
    recordId: string('record_id') as RecordIdKind,
    packing: packingOf(config, problems, topicPattern),
    customUserProperties: customUserProperties(config, problems, mqtt5),
  };
}

function packingOf(config: Config, problems: string[], topicPattern: string): Packing {
  const layout = (stringOf(config, 'batch_layout') ?? specDefault.string('batch_layout')) as BatchLayout;
  if (layout !== 'none') {
    // A retained keyspace holds one message per key: a batch would retain one message for many keys.
    const keyed = patternHasKey(topicPattern) ? 'puts {key} in the topic' : undefined;
    const retained = booleanOf(config, 'message_retained', false) ? 'retains every message' : undefined;
    for (const why of [keyed, retained].filter((reason) => reason !== undefined)) {
      problems.push(
        `${field('batch_layout')} is ${layout}, but ${field(keyed === why ? 'topic_pattern' : 'message_retained')} ` +
          `${why}: a retained keyspace needs one message per key, so batches cannot be used with it`,
      );
    }
  }
  const number = (key: string): number => integerOf(config, key) ?? specDefault.number(key);
  return {
    layout,
    maxRecords: number('batch_max_records'),
    maxBytes: number('batch_max_bytes'),
    lingerMs: number('batch_linger_ms'),
    compression: (stringOf(config, 'payload_compression') ?? specDefault.string('payload_compression')) as Compression,
  };
}

/** MQTT encodes a user property's name and value each with a two-byte length. */
const MAX_PROPERTY_BYTES = 65_535;

function customUserProperties(config: Config, problems: string[], mqtt5: boolean): (readonly [string, string])[] {
  const list = Array.isArray(config.mqtt5_custom_user_properties) ? config.mqtt5_custom_user_properties : [];
  const properties = list.flatMap((entry: unknown): (readonly [string, string])[] => {
    const { name, value } = (entry ?? {}) as { name?: unknown; value?: unknown };
    return typeof name === 'string' && typeof value === 'string' ? [[name, value] as const] : [];
  });
  if (properties.length > 0 && !mqtt5) {
    problems.push(`${field('mqtt5_custom_user_properties')} needs MQTT 5; set protocol_version to 5`);
  }
  for (const [name, value] of properties) {
    for (const [what, text] of [
      ['name', name],
      ['value', value],
    ] as const) {
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > MAX_PROPERTY_BYTES) {
        problems.push(
          `${field('mqtt5_custom_user_properties')}: the ${what} of "${name.slice(0, 40)}" is ${bytes} bytes long ` +
            `in UTF-8; MQTT allows at most ${MAX_PROPERTY_BYTES}`,
        );
      }
    }
  }
  return properties;
}

function syncSettings(
  config: Config,
  problems: string[],
  warnings: string[],
  messages: MessageSettings,
  broker: BrokerSettings,
): SyncSettings {
  const { qos, mqtt5 } = messages;
  const number = (key: string): number => integerOf(config, key) ?? specDefault.number(key);
  // IoT Hub allows a device one connection, and lets it read only its own cloud-to-device topic.
  const oneConnectionOnly = broker.auth.authType === 'azure_iot_hub_sas';
  if (oneConnectionOnly && stringOf(config, 'status_topic') !== undefined) {
    problems.push(
      `${field('status_topic')} needs a connection of its own, which IoT Hub does not allow a device ` +
        `(${field('auth_method')} is azure_iot_hub_sas): leave it empty`,
    );
  }
  const flag = (key: string): boolean => booleanOf(config, key, specDefault.boolean(key));
  const connections = number('connections');
  const publisherSync = flag('publisher_sync');
  if (publisherSync && connections > 1) {
    problems.push(
      `${field('publisher_sync')} publishes one message at a time, which ${field('connections')} above 1 would ` +
        'break; turn one of them off',
    );
  }
  const rejectedRecords = (stringOf(config, 'rejected_records') ??
    specDefault.string('rejected_records')) as RejectedRecords;
  const deadLetterTopic = stringOf(config, 'dead_letter_topic');
  if (rejectedRecords === 'dead_letter') {
    const issue = deadLetterTopic === undefined ? 'it is not set' : deadLetterProblem(deadLetterTopic);
    if (issue)
      problems.push(
        `${field('rejected_records')} is dead_letter, which needs a valid ${field('dead_letter_topic')}: ${issue}`,
      );
  } else if (deadLetterTopic !== undefined) {
    warnings.push(
      `${field('dead_letter_topic')} is set but ${field('rejected_records')} is ${rejectedRecords}: ` +
        'nothing will be published there.',
    );
  }
  return {
    connections,
    maxInflight: integerOf(config, 'max_inflight') ?? DEFAULT_MAX_INFLIGHT[qos],
    publisherSync,
    maxMessagesPerSecond: integerOf(config, 'max_messages_per_second'),
    maxBytesPerSecond: integerOf(config, 'max_bytes_per_second'),
    rejectedRecords,
    deadLetterTopic: rejectedRecords === 'dead_letter' ? deadLetterTopic : undefined,
    overwriteCleanup: (stringOf(config, 'overwrite_cleanup') ??
      specDefault.string('overwrite_cleanup')) as OverwriteCleanup,
    ackTimeoutMs: number('ack_timeout_seconds') * 1000,
    verifyDelivery: !mqtt5 && flag('verify_delivery') && !oneConnectionOnly,
    shutdownGraceMs: number('shutdown_grace_seconds') * 1000,
    statusTopic: statusTopic(config, problems),
  };
}

export function toSettings(config: unknown): Settings {
  if (!isConfig(config)) throw new ConfigError('The configuration must be a JSON object.');
  const problems = schemaProblems(config);
  const warnings: string[] = [];
  const connections = integerOf(config, 'connections') ?? specDefault.number('connections');
  const broker = brokerSettings(config, problems, warnings, connections);
  const messages = messageSettings(config, problems, broker.mqttVersion === '5');
  const sync = syncSettings(config, problems, warnings, messages, broker);
  if (problems.length > 0) {
    // Thrown before output knows the secrets, and a problem may quote a value (a key pasted without its PEM header
    // reads as a file path): mask them here.
    const redactor = new Redactor();
    redactor.add(secretsOf(config, [broker.password, urlPassword(config)]));
    // Each problem is a phrase; one that ends in a full stop would end the list twice.
    const phrases = problems.map((problem) => problem.replace(/\.+$/, ''));
    throw new ConfigError(redactor.text(`The configuration is invalid: ${phrases.join('; ')}.`));
  }
  return { broker, messages, sync, secrets: secretsOf(config, [broker.password]), warnings };
}

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`Cannot read the configuration file ${path}: ${code}`);
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
  const { tls, password, auth, reach, ...broker } = settings.broker;
  const described = {
    broker: {
      ...broker,
      password: password === undefined ? undefined : REDACTED,
      auth: describeAuth(auth),
      reach: describeReach(reach),
      tls: tls && {
        ca: tls.ca === undefined ? 'system roots' : `${tls.ca.length} certificate(s)`,
        clientCertificate: tls.cert === undefined ? undefined : 'set',
        clientKey: tls.key === undefined ? undefined : REDACTED,
        verify: tls.rejectUnauthorized,
        serverName: tls.servername,
        alpnProtocols: tls.ALPNProtocols,
      },
    },
    messages: settings.messages,
    sync: settings.sync,
  };
  return JSON.stringify(described);
}
