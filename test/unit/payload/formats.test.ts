import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SystemError } from '../../../src/errors.js';
import { metaChanges, prepareFormat } from '../../../src/payload/formats.js';
import type { MessageFormat, PayloadParts } from '../../../src/payload/payload-format.js';

const ID = '0c2f4c1e-8a0b-4c1e-9d2f-6b1e2a3c4d5e';
const STREAM = { name: 'orders', namespace: 'shop', syncId: 42, generationId: 3 };
const FORMATS: readonly MessageFormat[] = ['airbyte_envelope', 'data', 'airbyte_v2', 'cloudevents'];

/** Data that a parse-and-reserialise would change: every one must come out byte for byte. */
const TRICKY_DATA = [
  '{"order_id":9007199254740993,"total":19.990000000000000213}',
  '{"big":12345678901234567890,"neg":-12345678901234567890123,"dec":0.1000000000000000000000001,"tiny":-1.5e-400,"huge":1E+400}',
  '{"unicode":"Zürich 東京 😀","escaped":"a\\"b\\\\c\\/d\\n\\t\\u0000\\u001f","ls":"\u2028\u2029","ls_escaped":"\\u2028\\u2029"}',
  '{"lone":"\\ud800","pair":"\\ud83d\\ude00","key\\u0020with\\"quote":1}',
  '{ "spaced" : [ 1 , 2.50 , { "x" : null } ] ,\t"nested":{"a":{"b":{"c":[[],{}]}}} }',
  '{}',
];

function parts(dataJson: string, extra: Partial<PayloadParts> = {}): PayloadParts {
  return { id: ID, dataJson, emittedAtMs: '1700000000002', ...extra };
}

/** Where each format puts the record's data. */
function dataOf(format: MessageFormat, payload: string): unknown {
  const parsed = JSON.parse(payload) as Record<string, unknown>;
  if (format === 'data') return parsed;
  return format === 'cloudevents' ? parsed.data : parsed._airbyte_data;
}

describe('every format', () => {
  for (const format of FORMATS) {
    it(`${format}: is valid JSON and carries the data byte for byte`, () => {
      const prepared = prepareFormat(format, STREAM);
      for (const dataJson of TRICKY_DATA) {
        const payload = prepared.render(parts(dataJson, { metaJson: '{"changes":[]}', subject: '7' }));
        assert.deepEqual(dataOf(format, payload), JSON.parse(dataJson));
        // The data is the payload's last member (or the payload itself): its text is there unchanged.
        assert.ok(format === 'data' ? payload === dataJson : payload.endsWith(`:${dataJson}}`), payload);
      }
    });
  }

  it('has a content type, and says what it carries', () => {
    const summary = FORMATS.map((format) => {
      const { contentType, carriesId, carriesStream, carriesNamespace } = prepareFormat(format, STREAM);
      return { format, contentType, carriesId, carriesStream, carriesNamespace };
    });
    assert.deepEqual(summary, [
      {
        format: 'airbyte_envelope',
        contentType: 'application/json',
        carriesId: true,
        carriesStream: true,
        carriesNamespace: false,
      },
      {
        format: 'data',
        contentType: 'application/json',
        carriesId: false,
        carriesStream: false,
        carriesNamespace: false,
      },
      {
        format: 'airbyte_v2',
        contentType: 'application/json',
        carriesId: true,
        carriesStream: false,
        carriesNamespace: false,
      },
      {
        format: 'cloudevents',
        contentType: 'application/cloudevents+json',
        carriesId: true,
        carriesStream: true,
        carriesNamespace: true,
      },
    ]);
  });

  it('covers every message_format the spec offers', () => {
    const property = (
      JSON.parse(readFileSync(new URL('../../../../spec.json', import.meta.url), 'utf8')) as {
        connectionSpecification: { properties: Record<string, { enum?: string[] } | undefined> };
      }
    ).connectionSpecification.properties.message_format;
    // Every format the spec offers renders, and renders JSON.
    for (const format of property?.enum ?? FORMATS) {
      const prepared = prepareFormat(format as MessageFormat, STREAM);
      assert.equal(prepared.format, format);
      assert.doesNotThrow(() => JSON.parse(prepared.render(parts('{"a":1}'))) as unknown);
    }
  });
});

describe('airbyte_envelope', () => {
  it('is the envelope published so far, byte for byte', () => {
    const envelope = prepareFormat('airbyte_envelope', STREAM);
    for (const dataJson of TRICKY_DATA) {
      assert.equal(
        envelope.render(parts(dataJson)),
        `{"_airbyte_ab_id":"${ID}","_airbyte_stream":"orders","_airbyte_emitted_at":1700000000002,"_airbyte_data":${dataJson}}`,
      );
    }
  });

  it('matches the golden example', () => {
    const stream = { name: 'or"ders', namespace: 'ignored' };
    assert.equal(
      prepareFormat('airbyte_envelope', stream).render(
        parts('{"order_id":9007199254740993,"total":19.990000000000000213}'),
      ),
      `{"_airbyte_ab_id":"${ID}","_airbyte_stream":"or\\"ders","_airbyte_emitted_at":1700000000002,"_airbyte_data":{"order_id":9007199254740993,"total":19.990000000000000213}}`,
    );
  });
});

describe('data', () => {
  it('is the data and nothing else', () => {
    const data = prepareFormat('data', STREAM);
    for (const dataJson of TRICKY_DATA)
      assert.equal(data.render(parts(dataJson, { metaJson: '{"changes":[1]}', subject: 's' })), dataJson);
  });
});

describe('airbyte_v2', () => {
  it('matches the golden example', () => {
    const meta = '{"changes":[{"field":"note","change":"TRUNCATED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}';
    assert.equal(
      prepareFormat('airbyte_v2', STREAM).render(parts('{"order_id":9007199254740993}', { metaJson: meta })),
      `{"_airbyte_raw_id":"${ID}","_airbyte_extracted_at":1700000000002,` +
        `"_airbyte_meta":{"sync_id":42,"changes":[{"field":"note","change":"TRUNCATED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]},` +
        `"_airbyte_generation_id":3,"_airbyte_data":{"order_id":9007199254740993}}`,
    );
  });

  it('has the fields and types of Airbyte raw records', () => {
    const record = JSON.parse(prepareFormat('airbyte_v2', STREAM).render(parts('{"a":1}'))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(record), [
      '_airbyte_raw_id',
      '_airbyte_extracted_at',
      '_airbyte_meta',
      '_airbyte_generation_id',
      '_airbyte_data',
    ]);
    assert.equal(record._airbyte_raw_id, ID);
    assert.equal(record._airbyte_extracted_at, 1700000000002);
    assert.deepEqual(record._airbyte_meta, { sync_id: 42, changes: [] });
    assert.equal(record._airbyte_generation_id, 3);
  });

  it('defaults the generation to 0 and writes a null sync_id for a catalog without them', () => {
    const record = JSON.parse(
      prepareFormat('airbyte_v2', { name: 's', namespace: undefined }).render(parts('{}')),
    ) as Record<string, unknown>;
    assert.deepEqual(record._airbyte_meta, { sync_id: null, changes: [] });
    assert.equal(record._airbyte_generation_id, 0);
  });

  it('refuses catalog ids that are not whole numbers, naming the stream', () => {
    assert.throws(
      () => prepareFormat('airbyte_v2', { ...STREAM, syncId: 1.5 }),
      (err: unknown) => err instanceof SystemError && /"orders".*sync_id/.test(err.message),
    );
    assert.throws(() => prepareFormat('airbyte_v2', { ...STREAM, generationId: Number.NaN }), /generation_id/);
    assert.throws(() => prepareFormat('airbyte_v2', { ...STREAM, generationId: 2 ** 60 }), /generation_id/);
  });
});

describe('metaChanges', () => {
  it('keeps the changes exactly as the source wrote them, unknown fields included', () => {
    const changes =
      '[ {"field":"a.b","change":"NULLED","reason":"SOURCE_SERIALIZATION_ERROR","extra":12345678901234567890} ]';
    assert.equal(metaChanges(`{"other":{"changes":1},"changes":${changes}}`), changes);
  });

  it('gives [] without meta, without changes, or with changes that are not a list', () => {
    for (const meta of [undefined, '{}', '{"changes":null}', '{"changes":{}}', '{"changes":"x"}', '{"other":[1]}'])
      assert.equal(metaChanges(meta), '[]', meta);
  });
});

describe('cloudevents', () => {
  const render = (
    stream: { name: string; namespace: string | undefined },
    extra: Partial<PayloadParts> = {},
  ): Record<string, unknown> =>
    JSON.parse(prepareFormat('cloudevents', stream).render(parts('{"id":7}', extra))) as Record<string, unknown>;

  it('matches the golden example', () => {
    assert.equal(
      prepareFormat('cloudevents', STREAM).render(
        parts('{"order_id":9007199254740993}', { subject: '9007199254740993' }),
      ),
      `{"specversion":"1.0","id":"${ID}","source":"airbyte:shop/orders","type":"io.airbyte.record","subject":"9007199254740993",` +
        `"time":"2023-11-14T22:13:20.002Z","datacontenttype":"application/json","data":{"order_id":9007199254740993}}`,
    );
  });

  it('has every required attribute, with the types CloudEvents 1.0 asks for', () => {
    const event = render(STREAM);
    assert.equal(event.specversion, '1.0');
    for (const attribute of ['id', 'source', 'type']) {
      assert.equal(typeof event[attribute], 'string', attribute);
      assert.notEqual(event[attribute], '', attribute);
    }
    // An absolute URI: a scheme, a colon, then no whitespace.
    assert.match(String(event.source), /^[a-z][a-z0-9+.-]*:\S+$/);
    assert.match(String(event.type), /^io\.airbyte\./);
    assert.match(String(event.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.equal(event.datacontenttype, 'application/json');
    assert.deepEqual(event.data, { id: 7 });
    // Attribute names are lower-case letters and digits; `data` is the payload.
    for (const key of Object.keys(event)) assert.match(key, /^[a-z0-9]{1,20}$/);
  });

  it('says the subject when there is one, and leaves it out otherwise', () => {
    assert.equal(render(STREAM, { subject: 'a%2Fb/7' }).subject, 'a%2Fb/7');
    assert.ok(!('subject' in render(STREAM)));
    assert.ok(!('subject' in render(STREAM, { subject: '' })));
  });

  it('leaves out a time RFC 3339 cannot write', () => {
    const event = render(STREAM, { emittedAtMs: '253402300800000' });
    assert.ok(!('time' in event));
    assert.equal(event.id, ID);
  });

  it('writes each record its own time, when consecutive records share or alternate emitted_at', () => {
    const prepared = prepareFormat('cloudevents', STREAM);
    const times = ['0', '0', '1700000000000', '0', '253402300800000', '253402300800000', '1'].map(
      (emittedAtMs) => (JSON.parse(prepared.render(parts('{}', { emittedAtMs }))) as { time?: string }).time,
    );
    assert.deepEqual(times, [
      '1970-01-01T00:00:00.000Z',
      '1970-01-01T00:00:00.000Z',
      '2023-11-14T22:13:20.000Z',
      '1970-01-01T00:00:00.000Z',
      undefined,
      undefined,
      '1970-01-01T00:00:00.001Z',
    ]);
  });

  it('names the stream in source, stably and without ambiguity', () => {
    assert.equal(render({ name: 'users', namespace: undefined }).source, 'airbyte:users');
    assert.equal(render({ name: 'users', namespace: '' }).source, 'airbyte:users');
    assert.equal(render({ name: 'Users', namespace: 'CRM' }).source, 'airbyte:CRM/Users');
    assert.equal(render({ name: 'a/b', namespace: undefined }).source, 'airbyte:a%2Fb');
    assert.equal(render({ name: 'b', namespace: 'a' }).source, 'airbyte:a/b');
  });
});
