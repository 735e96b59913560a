import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyValues } from '../../../src/payload/key-values.js';
import {
  canonicalNumber,
  RECORD_ID_NAMESPACE,
  recordIds,
  type IdStream,
  uuidV5,
} from '../../../src/payload/record-id.js';

const DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const URL_NS = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';
const OID = '6ba7b812-9dad-11d1-80b4-00c04fd430c8';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const USERS: IdStream = { name: 'users', namespace: 'crm', primaryKey: [['id']], cursorField: ['updated_at'] };

function idOf(stream: IdStream, data: string): string {
  return recordIds('deterministic', stream).idOf(data);
}

describe('uuidV5', () => {
  it('gives the published test vectors', () => {
    // RFC 9562, appendix A.4.
    assert.equal(uuidV5(DNS, 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
    // Python's uuid documentation.
    assert.equal(uuidV5(DNS, 'python.org'), '886313e1-3b8a-5372-9b90-0c9aee199e5d');
    // Computed with Python's uuid.uuid5, an independent implementation: a multi-byte name, and an empty one.
    assert.equal(uuidV5(URL_NS, 'https://example.com/ünïcödé'), '830ffd79-86a2-55c7-977c-753935f92333');
    assert.equal(uuidV5(OID, ''), '0a68eb57-c88a-5f34-9e9d-27f85e68af4f');
  });

  it('hashes a string name as UTF-8, the same as its bytes', () => {
    assert.equal(uuidV5(DNS, new TextEncoder().encode('www.example.com')), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('accepts the namespace in either case and refuses what is not a UUID', () => {
    assert.equal(uuidV5(DNS.toUpperCase(), 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
    assert.throws(() => uuidV5('6ba7b810', 'x'), TypeError);
  });

  it('uses a project namespace that anyone can derive from the documentation URL', () => {
    assert.equal(
      uuidV5(URL_NS, 'https://docs.airbyte.com/integrations/destinations/mqtt#record_id'),
      RECORD_ID_NAMESPACE,
    );
  });
});

describe('canonicalNumber', () => {
  it('writes one text for every spelling of a value', () => {
    for (const text of ['1.5', '1.50', '15e-1', '0.15e1', '0.15E+1', '150e-2'])
      assert.equal(canonicalNumber(text), '15e-1', text);
    for (const text of ['1', '1.0', '10e-1', '1e0', '0.001e3']) assert.equal(canonicalNumber(text), '1e0', text);
    for (const text of ['0', '-0', '0.000', '0e5', '-0.0e-3']) assert.equal(canonicalNumber(text), '0', text);
    assert.equal(canonicalNumber('1700000000000'), '17e11');
    assert.equal(canonicalNumber('-120'), '-12e1');
  });

  it('keeps different values apart, beyond double precision and with absurd exponents', () => {
    assert.equal(canonicalNumber('12345678901234567890'), '1234567890123456789e1');
    assert.equal(canonicalNumber('12345678901234567891'), '12345678901234567891e0');
    assert.notEqual(canonicalNumber('1e400000000000000000000'), canonicalNumber('1e400000000000000000001'));
    assert.notEqual(canonicalNumber('1'), canonicalNumber('-1'));
  });

  it('refuses text that is not a JSON number', () => {
    assert.throws(() => canonicalNumber('01'), TypeError);
    assert.throws(() => canonicalNumber('"1"'), TypeError);
  });
});

describe('recordIds random', () => {
  it('gives a new UUID v4 to every record, whatever its data', () => {
    const ids = recordIds('random', USERS);
    assert.deepEqual(ids.keyPaths, []);
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = ids.idOf('{"id":1,"updated_at":"x"}');
      assert.match(id, UUID_V4);
      seen.add(id);
    }
    assert.equal(seen.size, 10_000);
  });
});

describe('recordIds deterministic, by primary key and cursor', () => {
  it('names the primary key paths, then the cursor', () => {
    const stream: IdStream = {
      name: 's',
      namespace: undefined,
      primaryKey: [['org', 'id'], ['id']],
      cursorField: ['meta', 'ts'],
    };
    assert.deepEqual(recordIds('deterministic', stream).keyPaths, [['org', 'id'], ['id'], ['meta', 'ts']]);
  });

  it('is the UUID v5 of the documented name (golden values computed with Python)', () => {
    assert.equal(
      idOf(USERS, '{"id":42,"updated_at":"2024-05-01T00:00:00Z","name":"x"}'),
      'd3be1c7b-5bd1-5ea8-9192-066f145d8009',
    );
    const composite: IdStream = {
      name: 'users',
      namespace: undefined,
      primaryKey: [['k'], ['n']],
      cursorField: ['ts'],
    };
    assert.equal(idOf(composite, '{"ts":1700000000000,"n":1.50,"k":"a"}'), '0fdbff06-aa51-5718-8bc7-c3a2315724c2');
  });

  it('gives a record read again the same id, even when other fields changed', () => {
    const first = idOf(USERS, '{"id":7,"updated_at":"2024-05-01","name":"a"}');
    assert.match(first, UUID_V5);
    assert.equal(idOf(USERS, '{"id":7,"updated_at":"2024-05-01","name":"a"}'), first);
    assert.equal(idOf(USERS, '{"name":"b",  "updated_at" : "2024-05-01","id":7}'), first);
  });

  it('gives another id when the key or the cursor differs', () => {
    const base = idOf(USERS, '{"id":7,"updated_at":"2024-05-01"}');
    assert.notEqual(idOf(USERS, '{"id":8,"updated_at":"2024-05-01"}'), base);
    assert.notEqual(idOf(USERS, '{"id":7,"updated_at":"2024-05-02"}'), base);
    assert.notEqual(
      idOf(USERS, '{"id":12345678901234567890,"updated_at":1}'),
      idOf(USERS, '{"id":12345678901234567891,"updated_at":1}'),
    );
  });

  it('treats equal values alike however they are spelled, and 1 and "1" as different', () => {
    const one = idOf(USERS, '{"id":1,"updated_at":"A"}');
    assert.equal(idOf(USERS, '{"id":1.0,"updated_at":"\\u0041"}'), one);
    assert.equal(idOf(USERS, '{"id":10e-1,"updated_at":"A"}'), one);
    assert.notEqual(idOf(USERS, '{"id":"1","updated_at":"A"}'), one);
    assert.notEqual(idOf(USERS, '{"id":true,"updated_at":"A"}'), idOf(USERS, '{"id":"true","updated_at":"A"}'));
  });

  it('cannot be fooled by values that run into each other', () => {
    const pair: IdStream = { name: 's', namespace: undefined, primaryKey: [['a'], ['b']], cursorField: ['c'] };
    const ids = new Set([
      idOf(pair, '{"a":"x,y","b":"z","c":1}'),
      idOf(pair, '{"a":"x","b":"y,z","c":1}'),
      idOf(pair, '{"a":"x\\",\\"y","b":"z","c":1}'),
      idOf(pair, '{"a":"x","b":"\\",\\"y\\",\\"z","c":1}'),
      idOf(pair, '{"a":"x","b":"y","c":"z"}'),
      idOf(pair, '{"a":"x],[y","b":"z","c":1}'),
    ]);
    assert.equal(ids.size, 6);
  });

  it('keeps streams and namespaces apart, and treats a missing namespace as an empty one', () => {
    const data = '{"id":1,"updated_at":2}';
    const id = (name: string, namespace: string | undefined): string => idOf({ ...USERS, name, namespace }, data);
    assert.equal(id('users', undefined), id('users', ''));
    const ids = new Set([
      id('users', undefined),
      id('users', 'crm'),
      id('orders', 'crm'),
      id('crm', 'users'),
      id('a","b', ''),
      id('b', 'a'),
    ]);
    assert.equal(ids.size, 6);
  });

  it('uses values the caller extracted already, with the same result', () => {
    const ids = recordIds('deterministic', USERS);
    const data = '{"id":5,"updated_at":"t"}';
    assert.equal(ids.idOf(data, keyValues(data, ids.keyPaths)), ids.idOf(data));
  });
});

describe('recordIds deterministic, by data', () => {
  const dataName = (stream: IdStream, data: string): string =>
    `["data",${JSON.stringify(stream.namespace ?? '')},${JSON.stringify(stream.name)},${data}]`;

  it('is the UUID v5 of the documented name (golden value computed with Python)', () => {
    const stream: IdStream = { name: 'users', namespace: 'crm', primaryKey: [] };
    assert.equal(idOf(stream, '{"id":1, "note":"Zürich"}'), '2faf7b8c-211c-5fdf-ba2c-ff6852f3d7e6');
  });

  it('is used without a primary key, with a primary key but no cursor, and with a cursor but no primary key', () => {
    const data = '{"id":1,"updated_at":2,"v":"x"}';
    for (const stream of [
      { name: 's', namespace: undefined, primaryKey: [] },
      { name: 's', namespace: undefined, primaryKey: [['id']] },
      { name: 's', namespace: undefined, primaryKey: [['id']], cursorField: [] },
      { name: 's', namespace: undefined, primaryKey: [], cursorField: ['updated_at'] },
    ] satisfies IdStream[]) {
      const ids = recordIds('deterministic', stream);
      assert.deepEqual(ids.keyPaths, []);
      assert.equal(ids.idOf(data), uuidV5(RECORD_ID_NAMESPACE, dataName(stream, data)));
    }
  });

  it('is used when a key or cursor value is missing, null, an object or an array', () => {
    for (const data of [
      '{"updated_at":2}',
      '{"id":null,"updated_at":2}',
      '{"id":1,"updated_at":null}',
      '{"id":1}',
      '{"id":{"a":1},"updated_at":2}',
      '{"id":1,"updated_at":[2]}',
    ]) {
      assert.equal(idOf(USERS, data), uuidV5(RECORD_ID_NAMESPACE, dataName(USERS, data)), data);
    }
  });

  it('changes with any byte of the data, and repeats for the same bytes', () => {
    const stream: IdStream = { name: 's', namespace: undefined, primaryKey: [] };
    assert.equal(idOf(stream, '{"a":1}'), idOf(stream, '{"a":1}'));
    assert.notEqual(idOf(stream, '{"a":1}'), idOf(stream, '{"a":1.0}'));
    assert.notEqual(idOf(stream, '{"a":1}'), idOf(stream, '{ "a":1}'));
  });

  it('is right for records of every size and alphabet, however the name is hashed', () => {
    const stream: IdStream = { name: 's', namespace: 'n', primaryKey: [] };
    const ids = recordIds('deterministic', stream);
    // Small, growing past the first buffer, past the largest buffer, then small again; ASCII and up to 4 UTF-8 bytes.
    for (const size of [0, 10, 900, 5000, 40_000, 70_000, 200_000, 10]) {
      for (const unit of ['a', 'é', '東', '😀']) {
        const data = `{"v":"${unit.repeat(size)}"}`;
        assert.equal(ids.idOf(data), uuidV5(RECORD_ID_NAMESPACE, dataName(stream, data)), `${size} x ${unit}`);
      }
    }
  });
});
