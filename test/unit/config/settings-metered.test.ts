/** The settings for brokers that meter messages: batches, compression, custom user properties, the status topic. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toSettings } from '../../../src/config/settings.js';
import { ConfigError } from '../../../src/errors.js';
import { PROJECT_ROOT } from '../../support/connector.js';

const BASE = { broker_host: 'h', topic_pattern: '{stream}' };
const MQTT5 = { ...BASE, protocol_version: '5' };

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

/** The defaults spec.json declares, read from the file itself. */
function specDefault(key: string): unknown {
  const spec = JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')) as {
    connectionSpecification: { properties: Record<string, { default?: unknown }> };
  };
  const value = spec.connectionSpecification.properties[key]?.default;
  assert.notEqual(value, undefined, `spec.json declares a default for ${key}`);
  return value;
}

describe('toSettings: batches', () => {
  it('packs one record per message, uncompressed, by default, with the batch limits spec.json declares', () => {
    assert.deepEqual(toSettings(BASE).messages.packing, {
      layout: specDefault('batch_layout'),
      maxRecords: specDefault('batch_max_records'),
      maxBytes: specDefault('batch_max_bytes'),
      lingerMs: specDefault('batch_linger_ms'),
      compression: specDefault('payload_compression'),
    });
    assert.equal(toSettings(BASE).messages.packing.layout, 'none');
    assert.equal(toSettings(BASE).messages.packing.compression, 'none');
  });

  it('reads every packing key', () => {
    const { packing } = toSettings({
      ...BASE,
      batch_layout: 'jsonl',
      batch_max_records: 7,
      batch_max_bytes: 4096,
      batch_linger_ms: 0,
      payload_compression: 'deflate',
    }).messages;
    assert.deepEqual(packing, { layout: 'jsonl', maxRecords: 7, maxBytes: 4096, lingerMs: 0, compression: 'deflate' });
  });

  it('refuses batches with {key} in the topic pattern, naming both fields and saying why', () => {
    const { message } = configError({ ...BASE, topic_pattern: '{stream}/{key}', batch_layout: 'json_array' });
    assert.match(
      message,
      /"Batch layout" \(batch_layout\) is json_array, but "Topic pattern" \(topic_pattern\) puts \{key\} in the topic: a retained keyspace needs one message per key, so batches cannot be used with it/,
    );
    assert.doesNotMatch(message, /message_retained/);
  });

  it('refuses batches with retained messages, naming both fields and saying why', () => {
    const { message } = configError({ ...BASE, message_retained: true, batch_layout: 'jsonl' });
    assert.match(
      message,
      /"Batch layout" \(batch_layout\) is jsonl, but "Retain messages" \(message_retained\) retains every message: a retained keyspace needs one message per key/,
    );
    assert.doesNotMatch(message, /topic_pattern/);
  });

  it('reports both reasons at once when both hold', () => {
    const { message } = configError({
      ...BASE,
      topic_pattern: 'a/{key}',
      message_retained: true,
      batch_layout: 'jsonl',
    });
    assert.match(
      message,
      /\(topic_pattern\) puts \{key\} in the topic.*; .*\(message_retained\) retains every message/,
    );
  });

  it('allows {key} topics and retained messages when records go one per message', () => {
    const settings = toSettings({ ...BASE, topic_pattern: '{stream}/{key}', message_retained: true });
    assert.equal(settings.messages.packing.layout, 'none');
    assert.equal(toSettings({ ...BASE, message_retained: false, batch_layout: 'jsonl' }).messages.retain, false);
  });
});

describe('toSettings: custom user properties', () => {
  it('keeps them as name-value pairs, in the order given', () => {
    const settings = toSettings({
      ...MQTT5,
      mqtt5_custom_user_properties: [
        { name: 'tenant', value: 'acme' },
        { name: 'source', value: 'postgres' },
        { name: 'tenant', value: 'second' },
        { name: 'empty', value: '' },
      ],
    });
    assert.deepEqual(settings.messages.customUserProperties, [
      ['tenant', 'acme'],
      ['source', 'postgres'],
      ['tenant', 'second'],
      ['empty', ''],
    ]);
    assert.deepEqual(toSettings(MQTT5).messages.customUserProperties, []);
  });

  it('needs MQTT 5, and says which field and what to change', () => {
    for (const version of [undefined, '3.1', '3.1.1']) {
      const { message } = configError({
        ...BASE,
        ...(version ? { protocol_version: version } : {}),
        mqtt5_custom_user_properties: [{ name: 'tenant', value: 'acme' }],
      });
      assert.match(
        message,
        /"Custom user properties" \(mqtt5_custom_user_properties\) needs MQTT 5; set protocol_version to 5/,
        String(version),
      );
    }
    assert.deepEqual(
      toSettings({ ...BASE, mqtt5_custom_user_properties: [] }).messages.customUserProperties,
      [],
      'an empty list needs nothing',
    );
  });

  it('refuses a name or a value longer than MQTT can encode, in UTF-8 bytes, saying which', () => {
    // 32,768 two-byte characters: 65,536 bytes, though fewer characters than the limit.
    const long = 'é'.repeat(32_768);
    const name = configError({ ...MQTT5, mqtt5_custom_user_properties: [{ name: long, value: 'v' }] }).message;
    assert.match(
      name,
      /\(mqtt5_custom_user_properties\): the name of "é{40}" is 65536 bytes long in UTF-8; MQTT allows at most 65535/,
    );
    assert.doesNotMatch(name, /the value of/);
    const value = configError({ ...MQTT5, mqtt5_custom_user_properties: [{ name: 'tenant', value: long }] }).message;
    assert.match(
      value,
      /\(mqtt5_custom_user_properties\): the value of "tenant" is 65536 bytes long in UTF-8; MQTT allows at most 65535/,
    );
    assert.doesNotMatch(value, /the name of/);
  });

  it('accepts a name and a value of exactly 65,535 bytes', () => {
    const most = 'a'.repeat(65_535);
    const settings = toSettings({ ...MQTT5, mqtt5_custom_user_properties: [{ name: most, value: most }] });
    assert.deepEqual(settings.messages.customUserProperties, [[most, most]]);
  });
});

describe('toSettings: status topic', () => {
  it('is unset by default, and kept as given', () => {
    assert.equal(toSettings(BASE).sync.statusTopic, undefined);
    assert.equal(toSettings({ ...BASE, status_topic: 'airbyte/status/x' }).sync.statusTopic, 'airbyte/status/x');
  });

  it('refuses a topic no message can be published to, naming the field', () => {
    for (const topic of ['airbyte/+/status', 'airbyte/#', 'a\u0000b']) {
      const { message } = configError({ ...BASE, status_topic: topic });
      assert.match(message, /"Status topic" \(status_topic\) is invalid: MQTT does not allow/, JSON.stringify(topic));
    }
  });
});
