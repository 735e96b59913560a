/**
 * A stream's lane on its own, built from real routes and settings: the topic, payload, id and per-message properties
 * of each record, the targets of its batches and tombstones, and the reasons a record is rejected. No broker: the
 * targets' encoded MQTT 5 properties are decoded here.
 */
import assert from 'node:assert/strict';
import { gunzipSync, inflateSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { routeStreams } from '../../../src/sync/routes.js';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import { NO_VALUES, type PublishTarget } from '../../../src/mqtt/packets.js';
import { MAX_TOPIC_BYTES, encodeKeyLevel } from '../../../src/payload/topic.js';
import { InputError } from '../../../src/errors.js';
import {
  Lane,
  type Publish,
  type RecordText,
  type Rejection,
  isCdcDelete,
  laneOf,
  lanesFor,
} from '../../../src/sync/lane.js';
import { configuredStream } from '../../support/messages.js';
import { mulberry32 } from '../../support/random.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const EMITTED_AT = '1700000000000';

function settingsOf(config: Record<string, unknown>): Settings {
  return toSettings({ broker_host: 'localhost', topic_pattern: '{stream}', ...config });
}

/** A lane for one stream (`users`, key `id`, mode append unless `stream` says otherwise). */
function laneFor(config: Record<string, unknown> = {}, stream: Partial<ConfiguredStream> = {}): Lane {
  const settings = settingsOf(config);
  const configured = configuredStream('users', stream);
  const route = routeStreams([configured], settings.messages.topicPattern, {
    escaping: settings.messages.topicEscaping,
    retain: settings.messages.retain,
  }).get(streamKey(configured.namespace, configured.name));
  assert.ok(route);
  return new Lane(route, settings.messages);
}

function record(dataJson: string, emittedAtJson = EMITTED_AT): RecordText {
  return { dataJson, emittedAtJson };
}

function published(result: Publish | Rejection): Publish {
  assert.equal(result.kind, 'publish', result.kind === 'reject' ? result.reason : '');
  return result;
}

function rejected(result: Publish | Rejection): Rejection {
  assert.equal(
    result.kind,
    'reject',
    result.kind === 'publish' ? `published to ${JSON.stringify(result.target.topic)}` : '',
  );
  return result;
}

interface Properties {
  payloadFormat?: number;
  expiry?: number;
  contentType?: string;
  user: Record<string, string>;
}

/** Decodes the MQTT 5 properties a target encodes once (only the kinds publishTarget writes). */
function propertiesOf(target: PublishTarget): Properties {
  const bytes = target.staticProperties;
  const found: Properties = { user: {} };
  let at = 0;
  const text = (): string => {
    const length = bytes.readUInt16BE(at);
    const value = bytes.toString('utf8', at + 2, at + 2 + length);
    at += 2 + length;
    return value;
  };
  while (at < bytes.length) {
    const id = bytes[at++];
    if (id === 0x01) found.payloadFormat = bytes[at++];
    else if (id === 0x02) {
      found.expiry = bytes.readUInt32BE(at);
      at += 4;
    } else if (id === 0x03) found.contentType = text();
    else if (id === 0x26) {
      const key = text();
      found.user[key] = text();
    } else assert.fail(`unexpected property ${String(id)}`);
  }
  return found;
}

function messagePropertyNames(target: PublishTarget): string[] {
  return target.messageProperties.map((name) => name.toString('utf8', 2));
}

const dedup = { mode: 'append_dedup' } as const;

describe('Lane.prepare: key topics', () => {
  it('puts each record on its own key topic where the pattern has {key}', () => {
    const lane = laneFor({ topic_pattern: 'devices/{key}/config' });
    assert.equal(published(lane.prepare(record('{"id":42}'), 1)).target.topic, 'devices/42/config');
    assert.equal(published(lane.prepare(record('{"name":"x","id":"a/b"}'), 2)).target.topic, 'devices/a%2Fb/config');
    assert.equal(published(lane.prepare(record('{"id":"$SYS"}'), 3)).target.topic, 'devices/%24SYS/config');
  });

  it('puts the key levels after the stream topic in a keyed mode, one level per key field, in key order', () => {
    const lane = laneFor({ topic_pattern: 'crm/{stream}' }, { ...dedup, primaryKey: [['region'], ['org', 'id']] });
    const result = published(lane.prepare(record('{"org":{"id":7,"name":"a"},"region":"eu"}'), 1));
    assert.equal(result.target.topic, 'crm/users/eu/7');
    assert.deepEqual(result.key, ['"eu"', '7']);
  });

  it('writes numbers and booleans exactly as the source did, and decodes JSON escapes in strings', () => {
    const lane = laneFor({}, dedup);
    const cases: [string, string][] = [
      ['{"id":12345678901234567890}', 'users/12345678901234567890'],
      ['{"id":1.50}', 'users/1.50'],
      ['{"id":-0}', 'users/-0'],
      ['{"id":true}', 'users/true'],
      ['{"id":"x\\"y\\u00e9\\/z"}', 'users/x"yé%2Fz'],
      ['{"id":"\\ud83d\\ude00"}', 'users/😀'],
      ['{"id" : "a b" }', 'users/a b'],
      ['{"id":""}', 'users/'],
    ];
    for (const [data, topic] of cases) assert.equal(published(lane.prepare(record(data), 1)).target.topic, topic, data);
  });

  it('escapes . white space * and > too with topic_value_escaping strict, in the stream topic and the key', () => {
    const lane = laneFor(
      { topic_pattern: '{namespace}/{stream}/{key}', topic_value_escaping: 'strict' },
      { namespace: 'crm.eu', name: 'user list' },
    );
    assert.equal(
      published(lane.prepare(record('{"id":"a.b c*>"}'), 1)).target.topic,
      'crm_eu/user_list/a%2Eb%20c%2A%3E',
    );
    const standard = laneFor(
      { topic_pattern: '{namespace}/{stream}/{key}' },
      { namespace: 'crm.eu', name: 'user list' },
    );
    assert.equal(published(standard.prepare(record('{"id":"a.b c*>"}'), 1)).target.topic, 'crm.eu/user list/a.b c*>');
  });

  it('gives every random key value the topic of its encoded level, which decodes back to it', () => {
    const random = mulberry32(7);
    const lane = laneFor({}, dedup);
    const alphabet = ['a', '/', '%', '+', '#', '$', '\u0000', '\n', '\u0085', 'é', '東', '😀', '"', '\\', ' '];
    for (let i = 0; i < 2000; i++) {
      let value = '';
      for (let n = Math.floor(random() * 6); n > 0; n--)
        value += alphabet[Math.floor(random() * alphabet.length)] as string;
      const result = published(lane.prepare(record(JSON.stringify({ id: value })), i));
      assert.equal(
        result.target.topic,
        `users/${encodeKeyLevel(value) as string}`,
        `seed 7, value ${JSON.stringify(value)}`,
      );
      assert.equal(
        decodeURIComponent(result.target.topic.slice('users/'.length)),
        value,
        `seed 7, value ${JSON.stringify(value)}`,
      );
    }
  });

  it('shares what is the same for the whole stream, and gives key topics no alias', () => {
    const lane = laneFor({ protocol_version: '5' }, dedup);
    const a = published(lane.prepare(record('{"id":1}'), 1)).target;
    const b = published(lane.prepare(record('{"id":2}'), 2)).target;
    assert.equal(a.staticProperties, b.staticProperties);
    assert.equal(a.aliasable, false);
    assert.equal(a.group, 'users/+');
    assert.equal(a.label, 'the record of stream "users"');
    assert.deepEqual(a.topicBytes, Buffer.from('users/1'));
  });

  it('publishes a stream that is not keyed to its one topic, with an alias allowed, and still reads its key', () => {
    const lane = laneFor({ topic_pattern: 'crm/{stream}' });
    const result = published(lane.prepare(record('{"id":5}'), 1));
    assert.equal(result.target, lane.target);
    assert.equal(result.target.topic, 'crm/users');
    assert.equal(result.target.aliasable, true);
    assert.deepEqual(result.key, ['5']);
    const keyless = published(lane.prepare(record('{"name":"no id"}'), 2));
    assert.equal(
      keyless.key,
      undefined,
      'a record without a usable key is still published when the stream is not keyed',
    );
    assert.equal(keyless.target.topic, 'crm/users');
  });

  it('never publishes to an empty topic when the key is the whole topic', () => {
    for (const [pattern, namespace] of [
      ['{key}', undefined],
      ['{namespace}/{key}', undefined],
    ] as const) {
      const result = laneFor({ topic_pattern: pattern }, { namespace }).prepare(record('{"id":""}'), 4);
      assert.ok(result.kind === 'reject' || result.target.topic !== '', `${pattern}: published to the empty topic`);
    }
  });
});

describe('Lane.prepare: field topics', () => {
  it('puts each record on the topic its fields give, dot paths and JSON Pointers alike, encoded as keys are', () => {
    const lane = laneFor({ topic_pattern: 'plant/{field:site}/{field:/a.b/c}/{field:device.id}/{stream}' });
    const cases: [string, string][] = [
      ['{"site":"berlin","a.b":{"c":3},"device":{"id":"x"}}', 'plant/berlin/3/x/users'],
      [
        '{"site":"a/b+#$","a.b":{"c":12345678901234567890},"device":{"id":true}}',
        'plant/a%2Fb%2B%23%24/12345678901234567890/true/users',
      ],
      ['{"site":"","a.b":{"c":-0.5},"device":{"id":"日本"}}', 'plant//-0.5/日本/users'],
    ];
    for (const [data, topic] of cases) assert.equal(published(lane.prepare(record(data), 1)).target.topic, topic, data);
  });

  it('routes a record by its topic, so that each topic keeps its order over one connection', () => {
    const lane = laneFor({ topic_pattern: 'site/{field:site}' });
    assert.deepEqual(published(lane.prepare(record('{"id":1,"site":"eu"}'), 1)).key, ['site/eu']);
  });

  it('rejects a record whose field is missing, null, an object or an array, naming the stream, line and field', () => {
    const lane = laneFor({ topic_pattern: 'site/{field:device.site}' });
    for (const [data, problem] of [
      ['{"device":{}}', 'is missing'],
      ['{"device":{"site":null}}', 'is null'],
      ['{"device":{"site":{"a":1}}}', 'is an object'],
      ['{"device":{"site":[1]}}', 'is an array'],
      ['{"device":7}', 'is missing'],
    ] as const) {
      assert.equal(
        rejected(lane.prepare(record(data), 9)).reason,
        `input line 9: the record of stream "users" has no topic of its own: its field {field:device.site} ${problem}`,
        data,
      );
    }
  });

  it('combines fields and the key, and keeps deterministic ids those of the key and cursor alone', () => {
    const config = { topic_pattern: 'site/{field:site}/{key}', record_id: 'deterministic' };
    const stream = { cursorField: ['updated'] };
    const withFields = published(laneFor(config, stream).prepare(record('{"id":7,"site":"eu","updated":1}'), 1));
    assert.equal(withFields.target.topic, 'site/eu/7');
    const without = published(
      laneFor({ ...config, topic_pattern: '{key}/x' }, stream).prepare(record('{"id":7,"site":"eu","updated":1}'), 1),
    );
    assert.equal(withFields.recordId, without.recordId);
  });
});

describe('Lane.prepare: tombstones', () => {
  for (const mode of ['append_dedup', 'overwrite'] as const) {
    it(`publishes a CDC delete of an ${mode} stream as a zero-byte retained message on the key topic`, () => {
      const lane = laneFor(
        { protocol_version: '5', message_expiry_seconds: 60 },
        { mode, generationId: 3, minimumGenerationId: mode === 'overwrite' ? 0 : 3 },
      );
      const result = published(
        lane.prepare(record('{"id":9,"_ab_cdc_deleted_at":"2024-05-01T00:00:00Z","name":"gone"}'), 1),
      );
      assert.equal(result.tombstone, true);
      assert.equal(result.payload, '');
      assert.equal(result.bytes, 0);
      assert.equal(result.values, NO_VALUES);
      assert.deepEqual(result.key, ['9']);
      assert.equal(result.target.topic, 'users/9');
      assert.equal(result.target.retain, true);
      assert.deepEqual(messagePropertyNames(result.target), [], 'an empty message carries no per-message properties');
      const properties = propertiesOf(result.target);
      assert.equal(properties.contentType, undefined);
      assert.deepEqual(properties.user, {});
    });
  }

  it('publishes the record, not a tombstone, when _ab_cdc_deleted_at is null', () => {
    const lane = laneFor({}, dedup);
    for (const data of ['{"id":9,"_ab_cdc_deleted_at":null}', '{"id":9, "_ab_cdc_deleted_at" :  null }']) {
      const result = published(lane.prepare(record(data), 1));
      assert.equal(result.tombstone, false, data);
      assert.ok(result.payload.includes(data), data);
      assert.equal(result.target.retain, true);
    }
  });

  it('publishes the record when _ab_cdc_deleted_at is only nested, or only text', () => {
    const lane = laneFor({}, dedup);
    for (const data of [
      '{"id":9,"old":{"_ab_cdc_deleted_at":"2024-05-01"}}',
      '{"id":9,"note":"_ab_cdc_deleted_at"}',
      '{"id":9,"rows":[{"_ab_cdc_deleted_at":1}]}',
    ]) {
      const result = published(lane.prepare(record(data), 1));
      assert.equal(result.tombstone, false, data);
      assert.notEqual(result.payload, '', data);
    }
  });

  it('never makes a tombstone where messages are not retained', () => {
    const deleted = '{"id":9,"_ab_cdc_deleted_at":"2024-05-01"}';
    for (const config of [
      {},
      { message_retained: true },
      { topic_pattern: '{stream}/{key}' },
      { topic_pattern: '{stream}/{key}', message_retained: true },
    ]) {
      const result = published(laneFor(config).prepare(record(deleted), 1));
      assert.equal(result.tombstone, false, JSON.stringify(config));
      assert.ok(result.payload.includes(deleted), JSON.stringify(config));
    }
  });

  it('rejects a CDC delete without a usable key rather than clearing some other topic', () => {
    rejected(laneFor({}, dedup).prepare(record('{"_ab_cdc_deleted_at":"2024-05-01"}'), 1));
  });

  it('gives the target of a clearing message for any key topic of the stream', () => {
    const target = laneFor({ protocol_version: '5' }, dedup).tombstone('users/old');
    assert.equal(target.topic, 'users/old');
    assert.equal(target.retain, true);
    assert.equal(propertiesOf(target).contentType, undefined);
  });
});

describe('isCdcDelete', () => {
  it('is true when _ab_cdc_deleted_at is present at the top and not null', () => {
    for (const data of [
      '{"_ab_cdc_deleted_at":"2024-05-01T00:00:00Z"}',
      '{"id":1,"_ab_cdc_deleted_at":1714521600000}',
      '{ "_ab_cdc_deleted_at" : "x" , "id" : 1 }',
      '{"_ab_cdc_deleted_at":null,"_ab_cdc_deleted_at":"later"}',
    ]) {
      assert.equal(isCdcDelete(data), true, data);
    }
  });

  it('is false when it is missing, null, nested or only text', () => {
    for (const data of [
      '{}',
      '{"id":1}',
      '{"_ab_cdc_deleted_at":null}',
      '{"_ab_cdc_deleted_at" : null}',
      '{"_ab_cdc_deleted_at":"x","_ab_cdc_deleted_at":null}',
      '{"row":{"_ab_cdc_deleted_at":"x"}}',
      '{"rows":[{"_ab_cdc_deleted_at":"x"}]}',
      '{"note":"_ab_cdc_deleted_at"}',
      '{"_ab_cdc_deleted_at_x":"x"}',
    ]) {
      assert.equal(isCdcDelete(data), false, data);
    }
  });
});

describe('Lane.prepare: rejections', () => {
  const lane = laneFor({}, { namespace: 'crm', mode: 'append_dedup', primaryKey: [['org', 'id']] });

  const cases: [string, string][] = [
    ['{"name":"x"}', 'is missing'],
    ['{"org":{}}', 'is missing'],
    ['{"org":null}', 'is missing'],
    ['{"org":{"id":null}}', 'is null'],
    ['{"org":{"id":{"n":1}}}', 'is an object'],
    ['{"org":{"id":[1]}}', 'is an array'],
  ];
  for (const [data, problem] of cases) {
    it(`rejects ${data}, naming line, stream and field: ${problem}`, () => {
      const result = rejected(lane.prepare(record(data), 17));
      assert.equal(
        result.reason,
        `input line 17: the record of stream "crm.users" has no topic of its own: its primary key field "org.id" ${problem}`,
      );
      assert.match(result.recordId, UUID);
    });
  }

  it('names the first key field that has no usable value', () => {
    const twoFields = laneFor({}, { ...dedup, primaryKey: [['a'], ['b']] });
    assert.match(rejected(twoFields.prepare(record('{"a":1,"b":null}'), 3)).reason, /field "b" is null/);
    assert.match(rejected(twoFields.prepare(record('{"a":[],"b":null}'), 3)).reason, /field "a" is an array/);
  });

  it('rejects for a {key} topic in append mode too', () => {
    assert.match(
      rejected(laneFor({ topic_pattern: 'x/{key}' }).prepare(record('{}'), 2)).reason,
      /^input line 2: .*"users".*"id" is missing/,
    );
  });

  it('rejects a key with a lone surrogate, naming line, stream and field', () => {
    const result = rejected(
      laneFor({}, { ...dedup, primaryKey: [['a'], ['b']] }).prepare(record('{"a":"ok","b":"x\\ud800"}'), 5),
    );
    assert.equal(
      result.reason,
      'input line 5: the record of stream "users" has primary key field "b" with a lone UTF-16 surrogate, which no topic can hold',
    );
  });

  it('never echoes the record in a reason', () => {
    const result = rejected(lane.prepare(record('{"secret":"hunter2-value","org":{"id":{"x":"also-secret"}}}'), 1));
    assert.doesNotMatch(result.reason, /hunter2|also-secret/);
  });
});

describe('Lane.prepare: topic length', () => {
  function check(pattern: string, keyOf: (n: number) => string, fits: number): void {
    const lane = laneFor({ topic_pattern: pattern });
    const ok = published(lane.prepare(record(JSON.stringify({ id: keyOf(fits) })), 1));
    assert.equal(Buffer.byteLength(ok.target.topic), MAX_TOPIC_BYTES, `${pattern}: ${fits} fits exactly`);
    const tooLong = rejected(lane.prepare(record(JSON.stringify({ id: keyOf(fits + 1) })), 9));
    assert.equal(
      tooLong.reason,
      `input line 9: the record of stream "users" has a key whose topic is longer than the ${MAX_TOPIC_BYTES} bytes MQTT allows`,
    );
  }

  it('accepts a key topic of exactly 65,535 bytes and rejects one byte more', () => {
    check('{key}', (n) => 'x'.repeat(n), MAX_TOPIC_BYTES);
    check('users/{key}', (n) => 'x'.repeat(n), MAX_TOPIC_BYTES - 'users/'.length);
  });

  it('counts bytes, not characters, for multi-byte keys', () => {
    check('{key}/ab', (n) => 'é'.repeat(n), (MAX_TOPIC_BYTES - 3) / 2);
    check('{key}', (n) => '東'.repeat(n), MAX_TOPIC_BYTES / 3);
  });

  it('counts the key after escaping', () => {
    check('{key}', (n) => '%'.repeat(n), MAX_TOPIC_BYTES / 3);
  });

  it('rejects a topic of four-byte characters one over the limit', () => {
    const lane = laneFor({ topic_pattern: '{key}/ab' });
    assert.equal(
      Buffer.byteLength(published(lane.prepare(record(JSON.stringify({ id: '😀'.repeat(16_383) })), 1)).target.topic),
      MAX_TOPIC_BYTES,
    );
    rejected(lane.prepare(record(JSON.stringify({ id: `${'😀'.repeat(16_383)}x` })), 1));
  });

  it('counts every key field and the slashes between them', () => {
    const lane = laneFor({ topic_pattern: '{key}' }, { primaryKey: [['a'], ['b']] });
    published(lane.prepare(record(JSON.stringify({ a: 'x'.repeat(32_767), b: 'y'.repeat(32_767) })), 1));
    rejected(lane.prepare(record(JSON.stringify({ a: 'x'.repeat(32_768), b: 'y'.repeat(32_767) })), 1));
  });
});

describe('Lane: per-message values and properties', () => {
  it('sends the emitted_at and the record id with each message with MQTT 5 and user properties', () => {
    for (const stream of [{}, dedup]) {
      const lane = laneFor({ protocol_version: '5', mqtt5_user_properties: true }, stream);
      const result = published(lane.prepare(record('{"id":1}', '1700000000123'), 1));
      assert.deepEqual(result.values, ['1700000000123', result.recordId]);
      assert.match(result.recordId, UUID);
      assert.deepEqual(messagePropertyNames(result.target), ['airbyte_emitted_at', 'airbyte_record_id']);
    }
  });

  it('sends no per-message values without user properties or below MQTT 5', () => {
    for (const config of [
      { protocol_version: '5', mqtt5_user_properties: false },
      { protocol_version: '3.1.1', mqtt5_user_properties: true },
      { protocol_version: '3.1', mqtt5_user_properties: true },
    ]) {
      for (const stream of [{}, dedup]) {
        const result = published(laneFor(config, stream).prepare(record('{"id":1}'), 1));
        assert.deepEqual(result.values, [], JSON.stringify(config));
        assert.deepEqual(result.target.messageProperties, [], JSON.stringify(config));
      }
    }
  });

  it('encodes the stream properties once: stream, namespace and the content type', () => {
    const withNamespace = laneFor({ protocol_version: '5' }, { namespace: 'crm' });
    assert.deepEqual(propertiesOf(withNamespace.target), {
      payloadFormat: 1,
      contentType: 'application/json',
      user: { airbyte_stream: 'users', airbyte_namespace: 'crm' },
    });
    assert.deepEqual(propertiesOf(laneFor({ protocol_version: '5' }).target).user, { airbyte_stream: 'users' });
    assert.deepEqual(propertiesOf(laneFor({ protocol_version: '5', mqtt5_user_properties: false }).target).user, {});
    assert.equal(propertiesOf(laneFor({ protocol_version: '5', message_expiry_seconds: 3600 }).target).expiry, 3600);
    assert.equal(laneFor({ protocol_version: '3.1.1' }).target.staticProperties.length, 0);
  });

  it('tags retained messages with their generation, whatever mqtt5_user_properties says', () => {
    for (const mode of ['append_dedup', 'overwrite'] as const) {
      const tagged = laneFor({ protocol_version: '5', mqtt5_user_properties: false }, { mode, generationId: 7 });
      assert.deepEqual(propertiesOf(tagged.target).user, { airbyte_generation_id: '7' }, mode);
    }
    assert.deepEqual(propertiesOf(laneFor({ protocol_version: '5' }, { ...dedup, generationId: 2 }).target).user, {
      airbyte_stream: 'users',
      airbyte_generation_id: '2',
    });
    // Retained by message_retained rather than by the mode: what the broker keeps carries its generation all the same.
    assert.deepEqual(
      propertiesOf(
        laneFor({ protocol_version: '5', message_retained: true, mqtt5_user_properties: false }, { generationId: 7 })
          .target,
      ).user,
      {
        airbyte_generation_id: '7',
      },
    );
    assert.deepEqual(
      propertiesOf(laneFor({ protocol_version: '5', mqtt5_user_properties: false }, { generationId: 7 }).target).user,
      {},
    );
  });
});

describe('Lane: the retain flag', () => {
  it('retains by sync mode, and for append only with message_retained', () => {
    const cases: [Record<string, unknown>, Partial<ConfiguredStream>, boolean][] = [
      [{}, {}, false],
      [{ message_retained: true }, {}, true],
      [{ topic_pattern: '{stream}/{key}' }, {}, false],
      [{ topic_pattern: '{stream}/{key}', message_retained: true }, {}, true],
      [{}, { mode: 'append_dedup' }, true],
      [{ message_retained: false }, { mode: 'overwrite' }, true],
    ];
    for (const [config, stream, retain] of cases) {
      const lane = laneFor(config, stream);
      assert.equal(lane.target.retain, retain, JSON.stringify([config, stream]));
      assert.equal(
        published(lane.prepare(record('{"id":1}'), 1)).target.retain,
        retain,
        JSON.stringify([config, stream]),
      );
    }
  });
});

describe('Lane: payloads', () => {
  it('wraps the data in the envelope, byte for byte, with the record id', () => {
    const data = '{"id":9007199254740993,"total":19.990000000000000213,"name":"Zoë"}';
    const result = published(laneFor({ protocol_version: '5' }, dedup).prepare(record(data), 1));
    assert.equal(
      result.payload,
      `{"_airbyte_ab_id":"${result.recordId}","_airbyte_stream":"users","_airbyte_emitted_at":${EMITTED_AT},"_airbyte_data":${data}}`,
    );
    assert.equal(result.bytes, Buffer.byteLength(result.payload, 'utf8'));
    assert.equal(result.tombstone, false);
  });

  it('publishes the data alone with message_format data', () => {
    const data = '{"id":1,"city":"東京"}';
    const result = published(laneFor({ message_format: 'data' }).prepare(record(data), 1));
    assert.equal(result.payload, data);
    assert.equal(result.bytes, Buffer.byteLength(data, 'utf8'));
  });

  it('gives every record its own id', () => {
    const lane = laneFor();
    const ids = new Set(Array.from({ length: 100 }, (_, i) => published(lane.prepare(record('{"id":1}'), i)).recordId));
    assert.equal(ids.size, 100);
  });
});

describe('Lane.prepare: emitted_at', () => {
  it('stops the sync with an input error naming the line and stream when emitted_at is not milliseconds', () => {
    const lane = laneFor({}, { namespace: 'crm' });
    for (const emittedAt of ['"1700000000000"', 'null', '1e400', 'true']) {
      assert.throws(
        () => lane.prepare(record('{"id":1}', emittedAt), 12),
        (error: unknown) =>
          error instanceof InputError &&
          error.lineNumber === 12 &&
          error.message ===
            'Input line 12: RECORD of stream "crm.users" has an "emitted_at" that is not a number of milliseconds',
        emittedAt,
      );
    }
  });

  it('publishes a CDC delete as a tombstone without reading its emitted_at', () => {
    const result = published(laneFor({}, dedup).prepare(record('{"id":1,"_ab_cdc_deleted_at":"x"}', 'null'), 1));
    assert.equal(result.tombstone, true);
  });
});

describe('Lane.prepare: keys and ids', () => {
  it('gives a record of a stream without a primary key no routing key', () => {
    const result = published(laneFor({}, { primaryKey: [] }).prepare(record('{"id":1}'), 1));
    assert.equal(result.key, undefined);
  });

  it('makes deterministic ids of the key and the cursor: a new cursor value is a new id, other fields are not', () => {
    for (const topic_pattern of ['{stream}', 'site/{field:site}/{key}']) {
      const lane = laneFor({ topic_pattern, record_id: 'deterministic' }, { cursorField: ['updated'] });
      const id = (data: string): string => published(lane.prepare(record(data), 1)).recordId;
      const first = id('{"id":7,"site":"eu","updated":1}');
      assert.equal(id('{"site":"eu","updated":1,"id":7,"name":"x"}'), first, topic_pattern);
      assert.notEqual(id('{"id":7,"site":"eu","updated":2}'), first, topic_pattern);
      assert.notEqual(id('{"id":8,"site":"eu","updated":1}'), first, topic_pattern);
    }
  });
});

describe('Lane.prepare: topic rejections', () => {
  it('rejects a record whose key makes the whole topic empty, saying why', () => {
    assert.equal(
      rejected(laneFor({ topic_pattern: '{key}' }).prepare(record('{"id":""}'), 4)).reason,
      'input line 4: the record of stream "users" has an empty key, which makes an empty topic (MQTT allows none)',
    );
  });

  it('rejects a record whose fields make its topic too long, calling it a topic', () => {
    const lane = laneFor({ topic_pattern: 'a/{field:site}' });
    published(lane.prepare(record(JSON.stringify({ site: 'x'.repeat(MAX_TOPIC_BYTES - 2) })), 1));
    assert.equal(
      rejected(lane.prepare(record(JSON.stringify({ site: 'x'.repeat(MAX_TOPIC_BYTES - 1) })), 6)).reason,
      `input line 6: the record of stream "users" has a topic longer than the ${MAX_TOPIC_BYTES} bytes MQTT allows`,
    );
  });

  it('names a field with a lone surrogate by its placeholder', () => {
    assert.equal(
      rejected(laneFor({ topic_pattern: 'a/{field:site}' }).prepare(record('{"site":"\\udc00"}'), 2)).reason,
      'input line 2: the record of stream "users" has field {field:site} with a lone UTF-16 surrogate, ' +
        'which no topic can hold',
    );
  });
});

describe('Lane: CloudEvents subject', () => {
  it('gives a CloudEvents record its key as subject', () => {
    const lane = laneFor({ message_format: 'cloudevents' }, { primaryKey: [['org'], ['id']] });
    const event = JSON.parse(published(lane.prepare(record('{"org":"eu","id":7}'), 1)).payload as string) as Record<
      string,
      unknown
    >;
    assert.equal(event.subject, 'eu/7');
  });
});

describe('Lane: compression', () => {
  for (const [compression, inflate] of [
    ['gzip', gunzipSync],
    ['deflate', inflateSync],
  ] as const) {
    it(`compresses each record alone with ${compression}, says so in content-encoding, and counts its bytes`, () => {
      const lane = laneFor({ protocol_version: '5', payload_compression: compression });
      const result = published(lane.prepare(record('{"id":1,"city":"東京"}'), 1));
      assert.ok(Buffer.isBuffer(result.payload));
      const text = inflate(result.payload).toString('utf8');
      assert.match(text, /"_airbyte_data":\{"id":1,"city":"東京"\}\}$/);
      assert.equal(result.bytes, result.payload.length);
      assert.deepEqual(propertiesOf(lane.target), {
        contentType: 'application/json',
        user: { airbyte_stream: 'users', 'content-encoding': compression },
      });
    });
  }

  it('leaves each record of a batch uncompressed, and compresses the batch instead', () => {
    const lane = laneFor({ protocol_version: '5', batch_layout: 'jsonl', payload_compression: 'gzip' });
    const result = published(lane.prepare(record('{"id":1}'), 1));
    assert.equal(typeof result.payload, 'string');
    assert.deepEqual(propertiesOf(lane.target), {
      payloadFormat: 1,
      contentType: 'application/json',
      user: { airbyte_stream: 'users' },
    });
    assert.ok(lane.batchTarget);
    assert.deepEqual(propertiesOf(lane.batchTarget), {
      contentType: 'application/jsonl',
      user: { airbyte_stream: 'users', 'content-encoding': 'gzip' },
    });
  });
});

describe('Lane: batch targets', () => {
  it('has no batch target without batch_layout', () => {
    assert.equal(laneFor({ protocol_version: '5' }).batchTarget, undefined);
  });

  it('gives batches the content type of their layout and format', () => {
    const cases: [string, string, string][] = [
      ['jsonl', 'airbyte_envelope', 'application/jsonl'],
      ['jsonl', 'cloudevents', 'application/jsonl'],
      ['json_array', 'airbyte_envelope', 'application/json'],
      ['json_array', 'data', 'application/json'],
      ['json_array', 'cloudevents', 'application/cloudevents-batch+json'],
    ];
    for (const [batch_layout, message_format, contentType] of cases) {
      const lane = laneFor({ protocol_version: '5', batch_layout, message_format });
      assert.ok(lane.batchTarget);
      assert.deepEqual(
        propertiesOf(lane.batchTarget),
        { payloadFormat: 1, contentType, user: { airbyte_stream: 'users' } },
        `${batch_layout} ${message_format}`,
      );
    }
  });

  it('names the batch count and the first and last record ids as per-message properties, and the stream', () => {
    const lane = laneFor({ protocol_version: '5', batch_layout: 'jsonl' }, { namespace: 'crm' });
    const target = lane.batchTargetFor('crm/users');
    assert.deepEqual(messagePropertyNames(target), [
      'airbyte_batch_count',
      'airbyte_first_record_id',
      'airbyte_last_record_id',
    ]);
    assert.equal(target.label, 'a batch of stream "crm.users"');
    assert.equal(target.topic, 'crm/users');
  });
});

describe('lanesFor and laneOf', () => {
  const settings = settingsOf({ protocol_version: '5' });
  const routes = routeStreams(
    [configuredStream('users', { namespace: 'crm' }), configuredStream('orders')],
    settings.messages.topicPattern,
  );

  it('builds a lane for each stream of the catalog, by stream key', () => {
    const lanes = lanesFor(routes, settings.messages);
    assert.deepEqual([...lanes.keys()], [...routes.keys()]);
    for (const [key, lane] of lanes) {
      assert.equal(lane.key, key);
      assert.equal(lane.route, routes.get(key));
    }
  });

  it('finds the lane of a record by namespace and stream', () => {
    const lanes = lanesFor(routes, settings.messages);
    assert.equal(laneOf(lanes, 'crm', 'users', 1), lanes.get(streamKey('crm', 'users')));
    assert.equal(laneOf(lanes, undefined, 'orders', 1), lanes.get(streamKey(undefined, 'orders')));
  });

  it('stops with an input error naming the line and the stream when the catalog has no such stream', () => {
    const lanes = lanesFor(routes, settings.messages);
    for (const [namespace, stream, named] of [
      [undefined, 'users', '"users"'],
      ['crm', 'orders', '"crm.orders"'],
    ] as const) {
      assert.throws(
        () => laneOf(lanes, namespace, stream, 8),
        (error: unknown) =>
          error instanceof InputError &&
          error.lineNumber === 8 &&
          error.message === `Input line 8: record of stream ${named}, which is not in the configured catalog`,
      );
    }
  });
});
