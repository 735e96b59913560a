import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScalar, keyValues, unusableKeyReason } from '../../../src/payload/key-values.js';

const DATA =
  '{"id":12345678901234567890,"s":"a\\"b\\u00e9","t":true,"f":false,"n":null,"o":{"x":1},"a":[1,2],"d":1.50,"e":-1.5e-400,' +
  '"org":{"id":"o-1","deep":{"k":7},"nil":null},"list":[{"id":1}]}';

describe('keyValues', () => {
  it('gives each value exactly as written, with its kind', () => {
    const values = keyValues(DATA, [['id'], ['s'], ['t'], ['f'], ['n'], ['o'], ['a'], ['d'], ['e']]);
    assert.deepEqual(values, [
      { kind: 'number', json: '12345678901234567890' },
      { kind: 'string', json: '"a\\"b\\u00e9"' },
      { kind: 'boolean', json: 'true' },
      { kind: 'boolean', json: 'false' },
      { kind: 'null', json: 'null' },
      { kind: 'object', json: '{"x":1}' },
      { kind: 'array', json: '[1,2]' },
      { kind: 'number', json: '1.50' },
      { kind: 'number', json: '-1.5e-400' },
    ]);
  });

  it('follows nested paths, and tells a missing field from a null one', () => {
    assert.deepEqual(
      keyValues(DATA, [['org', 'id'], ['org', 'deep', 'k'], ['org', 'nil'], ['org', 'none'], ['none']]),
      [
        { kind: 'string', json: '"o-1"' },
        { kind: 'number', json: '7' },
        { kind: 'null', json: 'null' },
        { kind: 'missing', json: '' },
        { kind: 'missing', json: '' },
      ],
    );
  });

  it('finds nothing through a value that is not an object', () => {
    assert.deepEqual(
      keyValues(DATA, [
        ['n', 'id'],
        ['list', 'id'],
        ['id', 'x'],
        ['org', 'nil', 'x'],
      ]),
      [
        { kind: 'missing', json: '' },
        { kind: 'missing', json: '' },
        { kind: 'missing', json: '' },
        { kind: 'missing', json: '' },
      ],
    );
  });

  it('keeps the order of the paths, repeats included, and gives nothing for no paths', () => {
    assert.deepEqual(
      keyValues(DATA, [['t'], ['id'], ['t']]).map((v) => v.json),
      ['true', '12345678901234567890', 'true'],
    );
    assert.deepEqual(keyValues(DATA, []), []);
  });

  it('lets the last of duplicated members win, as JSON.parse does', () => {
    assert.deepEqual(keyValues('{"id":1,"x":0,"id":"2"}', [['id']]), [{ kind: 'string', json: '"2"' }]);
    assert.deepEqual(
      keyValues('{"o":{"id":1},"o":{"k":2}}', [
        ['o', 'id'],
        ['o', 'k'],
      ]),
      [
        { kind: 'missing', json: '' },
        { kind: 'number', json: '2' },
      ],
    );
  });

  it('matches member names by their decoded value, and copes with whitespace and unicode', () => {
    const data = ' { "\\u0069d" :\t"Zürich 東京 😀\u2028" , "ключ" : { "v" : [ ] } } ';
    assert.deepEqual(keyValues(data, [['id'], ['ключ', 'v']]), [
      { kind: 'string', json: '"Zürich 東京 😀\u2028"' },
      { kind: 'array', json: '[ ]' },
    ]);
  });

  it('refuses data that is not a JSON object', () => {
    assert.throws(() => keyValues('[1]', [['id']]), TypeError);
    assert.throws(() => keyValues('{"id":', [['id']]), TypeError);
  });
});

describe('isScalar and unusableKeyReason', () => {
  it('accept strings, numbers and booleans, and say what is wrong with the rest', () => {
    const [number, string, bool, nil, object, array, missing] = keyValues(DATA, [
      ['id'],
      ['s'],
      ['t'],
      ['n'],
      ['o'],
      ['a'],
      ['x'],
    ]);
    for (const value of [number, string, bool]) {
      assert.ok(value && isScalar(value));
      assert.equal(unusableKeyReason(value), undefined);
    }
    const reasons = [nil, object, array, missing].map((value) => {
      assert.ok(value && !isScalar(value));
      return unusableKeyReason(value);
    });
    assert.deepEqual(reasons, ['is null', 'is an object', 'is an array', 'is missing']);
  });
});
