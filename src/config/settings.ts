/**
 * From a validated configuration to the settings the connector runs with: defaults applied, the archived Java
 * connector's keys accepted (including the two its code read instead of the documented ones), and cross-field rules
 * checked. Pure, so every rule is unit-tested without a broker.
 */
import { readFile } from 'node:fs/promises';
import { v4 as uuidv4 } from 'uuid';
import { ConfigError } from '../errors.js';
import { patternProblem, topicProblem } from '../topic.js';
import { schemaProblems } from './spec.js';

export type QoS = 0 | 1 | 2;

export interface Settings {
  readonly host: string;
  readonly port: number;
  readonly useTls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly connectTimeoutMs: number;
  readonly topicPattern: string;
  readonly testTopic: string | undefined;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly clientId: string;
  readonly cleanSession: boolean;
  readonly automaticReconnect: boolean;
  readonly publisherSync: boolean;
  /** Upper bound on unacknowledged QoS 1/2 messages, before the broker's own Receive Maximum is applied. */
  readonly maxInflight: number;
}

const QOS_BY_NAME: Readonly<Record<string, QoS>> = { AT_MOST_ONCE: 0, AT_LEAST_ONCE: 1, EXACTLY_ONCE: 2 };

/** At QoS 2 a default Mosquitto 2.0 closes a 3.1.1 connection with more than 20 messages in flight. */
export const DEFAULT_MAX_INFLIGHT: Readonly<Record<QoS, number>> = { 0: 1000, 1: 1000, 2: 20 };

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

/** A documented key and the key the Java connector's code read by mistake: either works, both must agree. */
function aliased(config: Config, key: string, legacyKey: string, problems: string[]): string | undefined {
  const value = stringOf(config, key);
  const legacy = stringOf(config, legacyKey);
  if (value !== undefined && legacy !== undefined && value !== legacy) {
    problems.push(`${key} and ${legacyKey} are both set, to different values (${legacyKey} is an older name of ${key}; keep only ${key})`);
  }
  return value ?? legacy;
}

function isConfig(value: unknown): value is Config {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Throws one ConfigError that lists every problem, so the user can fix them all in one go. */
export function toSettings(config: unknown): Settings {
  if (!isConfig(config)) throw new ConfigError('The configuration must be a JSON object.');
  const problems = schemaProblems(config);
  const topicPattern = stringOf(config, 'topic_pattern') ?? '';
  const patternIssue = typeof config.topic_pattern === 'string' ? patternProblem(topicPattern) : undefined;
  if (patternIssue) problems.push(`"Topic pattern" (topic_pattern) is invalid: ${patternIssue}`);
  const testTopic = aliased(config, 'topic_test', 'test_topic', problems);
  const clientId = aliased(config, 'client', 'client_id', problems);
  const testTopicIssue = testTopic === undefined ? undefined : topicProblem(testTopic);
  if (testTopicIssue) problems.push(`"Test topic" (topic_test) is invalid: ${testTopicIssue}`);
  if (problems.length > 0) throw new ConfigError(`The configuration is invalid: ${problems.join('; ')}.`);
  const useTls = booleanOf(config, 'use_tls', false);
  const qos = QOS_BY_NAME[stringOf(config, 'message_qos') ?? 'AT_LEAST_ONCE'] ?? 1;
  return {
    host: stringOf(config, 'broker_host') ?? '',
    port: integerOf(config, 'broker_port') ?? (useTls ? 8883 : 1883),
    useTls,
    username: stringOf(config, 'username'),
    password: stringOf(config, 'password'),
    connectTimeoutMs: (integerOf(config, 'connect_timeout') ?? 30) * 1000,
    topicPattern,
    testTopic,
    qos,
    retain: booleanOf(config, 'message_retained', false),
    clientId: clientId ?? `airbyte-${uuidv4()}`,
    cleanSession: booleanOf(config, 'clean_session', true),
    automaticReconnect: booleanOf(config, 'automatic_reconnect', true),
    publisherSync: booleanOf(config, 'publisher_sync', false),
    maxInflight: integerOf(config, 'max_inflight') ?? DEFAULT_MAX_INFLIGHT[qos],
  };
}

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the configuration file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The parser's message quotes the text, which may hold the password.
    throw new ConfigError(`The configuration file ${path} is not valid JSON`);
  }
}
