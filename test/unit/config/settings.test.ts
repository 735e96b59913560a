import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import { connectorSpec } from '../../../src/config/spec.js';
import { rootCertificates } from 'node:tls';
import { PROJECT_ROOT } from '../../support/connector.js';
import { ConfigError } from '../../../src/errors.js';

/** A configuration saved by the archived Java connector, every key it offered. */
const JAVA_CONFIG = {
  broker_host: 'broker.example.com',
  broker_port: 1883,
  use_tls: false,
  username: 'airbyte',
  password: 's3cr3t-pa55',
  topic_pattern: '{namespace}/{stream}/sample',
  topic_test: 'test/topic',
  client: 'airbyte-producer',
  publisher_sync: false,
  connect_timeout: 30,
  automatic_reconnect: true,
  clean_session: true,
  message_retained: false,
  message_qos: 'AT_LEAST_ONCE',
};

function configError(config: unknown): ConfigError {
  try {
    toSettings(config);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.failureType, 'config_error');
    return err;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('toSettings', () => {
  it("accepts the Java connector's configuration unchanged", () => {
    const s = toSettings(JAVA_CONFIG);
    assert.equal(s.broker.host, 'broker.example.com');
    assert.equal(s.broker.port, 1883);
    assert.equal(s.broker.username, 'airbyte');
    assert.equal(s.broker.password, 's3cr3t-pa55');
    assert.equal(s.messages.topicPattern, '{namespace}/{stream}/sample');
    assert.equal(s.messages.testTopic, 'test/topic');
    assert.equal(s.broker.clientId, 'airbyte-producer');
    assert.equal(s.broker.connectTimeoutMs, 30_000);
    assert.equal(s.messages.qos, 1);
    assert.equal(s.messages.retain, false);
    assert.equal(s.broker.cleanSession, true);
    assert.equal(s.broker.automaticReconnect, true);
    assert.equal(s.sync.publisherSync, false);
  });

  it('keeps a non-clean session for the session expiry, and warns when no client ID makes it resumable', () => {
    const kept = toSettings({
      broker_host: 'h',
      topic_pattern: 't',
      client: 'fixed',
      clean_session: false,
      protocol_version: '5',
    });
    assert.equal(kept.broker.sessionExpirySeconds, 3600);
    assert.deepEqual(kept.warnings, []);
    assert.equal(
      toSettings({
        broker_host: 'h',
        topic_pattern: 't',
        client: 'fixed',
        clean_session: false,
        session_expiry_seconds: 60,
      }).broker.sessionExpirySeconds,
      60,
    );
    assert.equal(
      toSettings({ broker_host: 'h', topic_pattern: 't', clean_session: true, session_expiry_seconds: 60 }).broker
        .sessionExpirySeconds,
      0,
    );
    const random = toSettings({ broker_host: 'h', topic_pattern: 't', clean_session: false });
    assert.match(random.warnings.join('\n'), /Clean session.*no "Client ID" \(client\) is set/);
  });

  it('reads the fault-handling settings', () => {
    const s = toSettings({
      broker_host: 'h',
      topic_pattern: 't',
      reconnect_timeout_seconds: 5,
      shutdown_grace_seconds: 0,
      max_message_bytes: 131_072,
    });
    assert.equal(s.broker.reconnectTimeoutMs, 5000);
    assert.equal(s.sync.shutdownGraceMs, 0);
    assert.equal(s.messages.maxMessageBytes, 131_072);
    assert.match(
      configError({ broker_host: 'h', topic_pattern: 't', max_message_bytes: 10 }).message,
      /max_message_bytes/,
    );
  });

  it('reads the acknowledgement timeout, and verifies delivery only where MQTT cannot report refusals', () => {
    const base = { broker_host: 'h', topic_pattern: 't' };
    assert.equal(toSettings({ ...base, ack_timeout_seconds: 3 }).sync.ackTimeoutMs, 3000);
    assert.match(configError({ ...base, ack_timeout_seconds: 0 }).message, /ack_timeout_seconds/);
    for (const version of ['3.1', '3.1.1'] as const)
      assert.equal(toSettings({ ...base, protocol_version: version }).sync.verifyDelivery, true, version);
    assert.equal(toSettings({ ...base, verify_delivery: false }).sync.verifyDelivery, false);
    assert.equal(
      toSettings({ ...base, protocol_version: '5' }).sync.verifyDelivery,
      false,
      'MQTT 5 reports refusals in PUBACK',
    );
  });

  it('maps every QoS name', () => {
    assert.equal(toSettings({ ...JAVA_CONFIG, message_qos: 'AT_MOST_ONCE' }).messages.qos, 0);
    assert.equal(toSettings({ ...JAVA_CONFIG, message_qos: 'EXACTLY_ONCE' }).messages.qos, 2);
  });

  it('applies the documented defaults to a minimal configuration', () => {
    const s = toSettings({ broker_host: 'localhost', topic_pattern: 't' });
    assert.equal(s.broker.port, 1883);
    assert.equal(s.messages.qos, 1);
    assert.equal(s.broker.connectTimeoutMs, 30_000);
    assert.equal(s.broker.automaticReconnect, true);
    assert.equal(s.broker.cleanSession, true);
    assert.equal(s.messages.retain, false);
    assert.equal(s.sync.publisherSync, false);
    assert.equal(s.sync.maxInflight, 1000);
    assert.equal(s.broker.reconnectTimeoutMs, 300_000);
    assert.equal(s.sync.shutdownGraceMs, 10_000);
    assert.equal(s.broker.sessionExpirySeconds, 0, 'a clean session ends with its connection');
    assert.equal(s.messages.maxMessageBytes, 268_435_460, 'the most MQTT can encode');
    assert.match(s.broker.clientId, /^airbyte-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(toSettings({ broker_host: 'localhost', topic_pattern: 't' }).broker.clientId, s.broker.clientId);
    assert.equal(toSettings({ broker_host: 'h', topic_pattern: 't', use_tls: true }).broker.port, 8883);
  });

  it('keeps QoS 2 within what a default Mosquitto accepts unless told otherwise', () => {
    assert.equal(
      toSettings({ broker_host: 'h', topic_pattern: 't', message_qos: 'EXACTLY_ONCE' }).sync.maxInflight,
      20,
    );
    assert.equal(
      toSettings({ broker_host: 'h', topic_pattern: 't', message_qos: 'EXACTLY_ONCE', max_inflight: 100 }).sync
        .maxInflight,
      100,
    );
  });

  it("accepts the Java connector's connect_timeout 0 (no limit there) as an hour, and long timeouts as they are", () => {
    assert.equal(toSettings({ ...JAVA_CONFIG, connect_timeout: 0 }).broker.connectTimeoutMs, 3_600_000);
    assert.equal(toSettings({ ...JAVA_CONFIG, connect_timeout: 7200 }).broker.connectTimeoutMs, 7_200_000);
  });

  it('accepts the keys the Java connector read by mistake', () => {
    const s = toSettings({ broker_host: 'h', topic_pattern: 't', test_topic: 'legacy/test', client_id: 'legacy-id' });
    assert.equal(s.messages.testTopic, 'legacy/test');
    assert.equal(s.broker.clientId, 'legacy-id');
    const same = toSettings({ broker_host: 'h', topic_pattern: 't', client: 'x', client_id: 'x' });
    assert.equal(same.broker.clientId, 'x');
  });

  it('rejects a documented key and its legacy name set to different values', () => {
    assert.match(
      configError({ broker_host: 'h', topic_pattern: 't', client: 'a', client_id: 'b' }).message,
      /client and client_id are both set/,
    );
  });

  it('reports every violation at once, naming each field', () => {
    const err = configError({
      broker_port: '1883',
      message_qos: 'SOMETIMES',
      connect_timeout: -1,
      use_tls: 'yes',
      topic_pattern: 'a/#',
    });
    assert.match(err.message, /set either "Broker URL" \(broker_url\) or "MQTT broker host" \(broker_host\)/);
    assert.match(err.message, /"MQTT broker port" \(broker_port\) must be a whole number/);
    assert.match(err.message, /"Message QoS" \(message_qos\) must be one of AT_MOST_ONCE, AT_LEAST_ONCE, EXACTLY_ONCE/);
    assert.match(err.message, /"Connect timeout" \(connect_timeout\) must be at least 0/);
    assert.match(err.message, /"Use TLS" \(use_tls\) must be of type boolean/);
    assert.match(err.message, /"Topic pattern" \(topic_pattern\) is invalid: it contains the wildcard/);
  });

  it('needs a valid dead letter topic for dead_letter, and warns when one is set for nothing', () => {
    const base = { broker_host: 'h', topic_pattern: 't' };
    assert.match(
      configError({ ...base, rejected_records: 'dead_letter' }).message,
      /"Rejected records" \(rejected_records\) is dead_letter, which needs a valid "Dead letter topic" \(dead_letter_topic\): it is not set/,
    );
    assert.match(
      configError({ ...base, rejected_records: 'dead_letter', dead_letter_topic: 'dl/#' }).message,
      /dead_letter_topic\): it contains the wildcard/,
    );
    assert.equal(
      toSettings({ ...base, rejected_records: 'dead_letter', dead_letter_topic: 'dl' }).sync.deadLetterTopic,
      'dl',
    );
    const unused = toSettings({ ...base, dead_letter_topic: 'dl' });
    assert.equal(unused.sync.deadLetterTopic, undefined);
    assert.match(
      unused.warnings.join(' '),
      /"Dead letter topic" \(dead_letter_topic\) is set but "Rejected records" \(rejected_records\) is fail/,
    );
  });

  it('rejects an invalid test topic', () => {
    assert.match(
      configError({ broker_host: 'h', topic_pattern: 't', topic_test: 'a/+' }).message,
      /"Test topic" \(topic_test\) is invalid/,
    );
  });

  it('never repeats a secret in its messages', () => {
    const err = configError({ broker_host: 'h', topic_pattern: 't', password: 12345 });
    assert.match(err.message, /"Password" \(password\) must be of type string/);
    assert.doesNotMatch(err.message, /12345/);
    // A key pasted without its PEM header is read as a file path, and the message names the path: masked.
    const pasted = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7';
    const tls = configError({
      broker_host: 'h',
      topic_pattern: 't',
      use_tls: true,
      tls_client_certificate: pasted,
      tls_client_key: pasted,
    });
    assert.match(tls.message, /"Client key" \(tls_client_key\) is not PEM text, and the file \S*\*{10} cannot be read/);
    assert.doesNotMatch(tls.message, /MIIEvQIBADAN/);
  });

  it('refuses a user name, password or client ID longer than MQTT can send, naming the field', () => {
    const long = 'é'.repeat(32_768); // 65,536 bytes in UTF-8, though only 32,768 characters
    const base = { broker_host: 'h', topic_pattern: 't' };
    assert.match(
      configError({ ...base, username: long }).message,
      /"Username" \(username\) is 65536 bytes long in UTF-8; MQTT allows at most 65535/,
    );
    assert.match(
      configError({ ...base, username: 'u', password: long }).message,
      /"Password" \(password\) is 65536 bytes long in UTF-8; MQTT allows at most 65535/,
    );
    assert.doesNotMatch(configError({ ...base, username: 'u', password: long }).message, /éé/);
    assert.match(configError({ ...base, client: long }).message, /"Client ID" \(client\) is 65536 bytes long in UTF-8/);
    assert.match(configError({ ...base, client_id: long }).message, /"Client ID" \(client\) is 65536 bytes long/);
    const fits = 'c'.repeat(65_535);
    assert.equal(toSettings({ ...base, username: fits, password: fits, client: fits }).broker.clientId, fits);
    // Several connections append "-<n>" to the client ID.
    assert.match(
      configError({ ...base, client: 'c'.repeat(65_533), connections: 10 }).message,
      /"Client ID" \(client\) is 65536 bytes long with the connection number appended/,
    );
  });

  it('refuses a password without a user name, saying what MQTT 5 would allow', () => {
    const err = configError({ broker_host: 'h', topic_pattern: 't', password: 'token-only' });
    assert.match(
      err.message,
      /"Password" \(password\) is set without a "Username" \(username\): MQTT 3\.1 and 3\.1\.1 allow a password only with a user name, and MQTT 5, which allows it alone/,
    );
    assert.doesNotMatch(err.message, /token-only/);
    assert.equal(toSettings({ broker_host: 'h', topic_pattern: 't', username: 'u' }).broker.password, undefined);
    assert.equal(toSettings({ broker_url: 'mqtt://u@h', topic_pattern: 't', password: 'p' }).broker.username, 'u');
  });

  it('rejects a configuration that is not an object', () => {
    assert.match(configError([1]).message, /must be a JSON object/);
    assert.match(configError(null).message, /must be a JSON object/);
  });

  it('accepts unknown keys, as Airbyte configurations may carry them', () => {
    assert.equal(toSettings({ broker_host: 'h', topic_pattern: 't', some_future_key: 1 }).broker.host, 'h');
  });

  it('normalises a minimal configuration to every default spec.json declares', () => {
    const minimal = { broker_host: 'broker.example.com', topic_pattern: 'airbyte/{stream}' };
    // TLS defaults show only on a TLS connection, the session expiry only for a session kept beyond the connection.
    const withTls = { ...minimal, use_tls: true, tls_ca_certificate: rootCertificates[0] as string };
    const keptSession = { ...minimal, clean_session: false, client: 'fixed' };
    // Where each declared default shows in the settings. A default added to spec.json without a row here fails below.
    const observed: Readonly<Record<string, readonly [Record<string, unknown>, (s: Settings) => unknown]>> = {
      use_tls: [minimal, (s) => s.broker.tls !== undefined],
      transport: [minimal, (s) => s.broker.transport],
      websocket_path: [minimal, (s) => s.broker.websocketPath],
      protocol_version: [minimal, (s) => s.broker.mqttVersion],
      connect_timeout: [minimal, (s) => s.broker.connectTimeoutMs / 1000],
      tls_ca_only: [withTls, (s) => s.broker.tls?.ca?.length === 1],
      tls_insecure_skip_verify: [withTls, (s) => s.broker.tls?.rejectUnauthorized === false],
      message_qos: [minimal, (s) => ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'][s.messages.qos]],
      message_retained: [minimal, (s) => s.messages.retain],
      mqtt5_user_properties: [minimal, (s) => s.messages.mqtt5UserProperties],
      message_format: [minimal, (s) => s.messages.messageFormat],
      record_id: [minimal, (s) => s.messages.recordId],
      rejected_records: [minimal, (s) => s.sync.rejectedRecords],
      overwrite_cleanup: [minimal, (s) => s.sync.overwriteCleanup],
      topic_value_escaping: [minimal, (s) => s.messages.topicEscaping],
      clean_session: [minimal, (s) => s.broker.cleanSession],
      automatic_reconnect: [minimal, (s) => s.broker.automaticReconnect],
      reconnect_timeout_seconds: [minimal, (s) => s.broker.reconnectTimeoutMs / 1000],
      publisher_sync: [minimal, (s) => s.sync.publisherSync],
      session_expiry_seconds: [keptSession, (s) => s.broker.sessionExpirySeconds],
      shutdown_grace_seconds: [minimal, (s) => s.sync.shutdownGraceMs / 1000],
      connections: [minimal, (s) => s.sync.connections],
      ack_timeout_seconds: [minimal, (s) => s.sync.ackTimeoutMs / 1000],
      verify_delivery: [minimal, (s) => s.sync.verifyDelivery],
      batch_layout: [minimal, (s) => s.messages.packing.layout],
      batch_max_records: [minimal, (s) => s.messages.packing.maxRecords],
      batch_max_bytes: [minimal, (s) => s.messages.packing.maxBytes],
      batch_linger_ms: [minimal, (s) => s.messages.packing.lingerMs],
      payload_compression: [minimal, (s) => s.messages.packing.compression],
    };
    const declared = Object.entries(connectorSpec().connectionSpecification.properties).filter(
      ([, schema]) => schema.default !== undefined,
    );
    assert.ok(declared.length >= 15, 'spec.json declares its defaults');
    for (const [key, schema] of declared) {
      const row = observed[key];
      assert.ok(row, `spec.json declares a default for ${key}; say here where it shows in the settings`);
      assert.deepEqual(row[1](toSettings(row[0])), schema.default, `default of ${key}`);
    }
  });

  it('names fields by the titles spec.json gives them, and only fields it has', () => {
    const properties = connectorSpec().connectionSpecification.properties;
    const sources = readdirSync(join(PROJECT_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    );
    let calls = 0;
    for (const file of sources) {
      const text = readFileSync(join(PROJECT_ROOT, 'src', file), 'utf8');
      for (const [, key] of text.matchAll(/\bfield(?:Title)?\('([a-z0-9_]+)'\)/g)) {
        calls++;
        assert.ok(properties[key as string]?.title, `${file} names the field ${key}, which spec.json does not have`);
      }
      // A title typed by hand drifts from the spec: "Title" (key) must come from field('key').
      const code = text
        .split('\n')
        .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
        .join('\n');
      const typed = [...code.matchAll(/"([A-Z][^"]*)" \(([a-z0-9_]+)\)/g)];
      assert.deepEqual(
        typed.map((m) => m[0]),
        [],
        `${file} types field titles by hand`,
      );
    }
    assert.ok(calls > 20, `${calls} field names found`);
  });
});
