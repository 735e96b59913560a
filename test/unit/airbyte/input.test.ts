import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../../src/errors.js';
import { parseLine } from '../../../src/airbyte/input.js';
import { findPath, setMember } from '../../../src/text/raw-json.js';

describe('parseLine: records', () => {
  it('keeps record data exactly as written, big integers and long decimals included', () => {
    const data =
      '{"id": 12345678901234567890, "price": 19.990000000000000213, "nested": {"a": [1, {"b": "}"}]}, "s": "q\\"uote\\\\"}';
    const message = parseLine(
      `{"type":"RECORD","record":{"stream":"s","namespace":"n","emitted_at":1700000000123,"data":${data}}}`,
      1,
    );
    assert.equal(message.kind, 'record');
    assert.ok(message.kind === 'record');
    assert.equal(message.dataJson, data);
    assert.equal(message.emittedAtJson, '1700000000123');
    assert.equal(message.stream, 's');
    assert.equal(message.namespace, 'n');
  });

  it('finds data wherever it sits and whatever the spacing', () => {
    const line = '{ "record" : { "data" : { "x" : 1 } , "emitted_at" : 5 , "stream" : "s" } , "type" : "RECORD" }';
    const message = parseLine(line, 1);
    assert.ok(message.kind === 'record');
    assert.equal(message.dataJson, '{ "x" : 1 }');
    assert.equal(message.emittedAtJson, '5');
    assert.equal(message.namespace, undefined);
  });

  it('takes the last of duplicated keys, as JSON.parse does', () => {
    const message = parseLine(
      '{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":1},"data":{"b":2}}}',
      1,
    );
    assert.ok(message.kind === 'record');
    assert.equal(message.dataJson, '{"b":2}');
  });

  it('rejects records without stream, data or emitted_at, naming the field and the line', () => {
    assert.throws(
      () => parseLine('{"type":"RECORD","record":{"emitted_at":1,"data":{}}}', 7),
      /Input line 7: .*record\.stream/,
    );
    assert.throws(
      () => parseLine('{"type":"RECORD","record":{"stream":"s","emitted_at":1}}', 8),
      /Input line 8: .*"s".*record\.data/,
    );
    assert.throws(
      () => parseLine('{"type":"RECORD","record":{"stream":"s","data":{}}}', 9),
      /Input line 9: .*record\.emitted_at/,
    );
  });
});

describe('parseLine: states and other messages', () => {
  it('recognises STREAM, GLOBAL and LEGACY states', () => {
    const stream = parseLine(
      '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"u","namespace":"n"}}}}',
      1,
    );
    assert.ok(stream.kind === 'state');
    assert.deepEqual(stream.scope, { type: 'STREAM', stream: 'u', namespace: 'n' });
    const global = parseLine('{"type":"STATE","state":{"type":"GLOBAL","global":{"stream_states":[]}}}', 1);
    assert.ok(global.kind === 'state');
    assert.deepEqual(global.scope, { type: 'GLOBAL' });
    const legacy = parseLine('{"type":"STATE","state":{"data":{"c":1}}}', 1);
    assert.ok(legacy.kind === 'state');
    assert.deepEqual(legacy.scope, { type: 'LEGACY' });
  });

  it('refuses states the protocol does not allow, which echoed would break the output too, naming the line', () => {
    for (const [line, problem] of [
      [
        '{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{}}}}',
        /GLOBAL state has no "global.stream_states" list/,
      ],
      ['{"type":"STATE","state":{"type":"GLOBAL"}}', /GLOBAL state has no "global.stream_states" list/],
      ['{"type":"STATE","state":{"data":null}}', /LEGACY state has a "data" that is not an object/],
      ['{"type":"STATE","state":{"type":"LEGACY","data":[1]}}', /LEGACY state has a "data" that is not an object/],
    ] as const) {
      assert.throws(
        () => parseLine(line, 7),
        (err: unknown) => err instanceof InputError && /^Input line 7: /.test(err.message) && problem.test(err.message),
        line,
      );
    }
  });

  it('ignores TRACE, LOG and unknown message types', () => {
    assert.deepEqual(parseLine('{"type":"TRACE","trace":{}}', 1), { kind: 'other', type: 'TRACE' });
    assert.deepEqual(parseLine('{"type":"LOG","log":{}}', 1), { kind: 'other', type: 'LOG' });
    assert.deepEqual(parseLine('{"type":"SOMETHING_NEW"}', 1), { kind: 'other', type: 'SOMETHING_NEW' });
  });

  it('reports a line that is not JSON by number and length, without echoing it', () => {
    const secret = '{"type":"RECORD","record":{"data":{"password":"hunter2"';
    assert.throws(
      () => parseLine(secret, 42),
      (err: unknown) => {
        assert.ok(err instanceof InputError);
        assert.equal(err.lineNumber, 42);
        assert.equal(err.failureType, 'system_error');
        assert.match(err.message, /^Input line 42: is not valid JSON \(55 characters/);
        assert.doesNotMatch(err.message, /hunter2|password/);
        return true;
      },
    );
  });

  it('rejects JSON that is not an Airbyte message', () => {
    assert.throws(() => parseLine('[1,2]', 3), /Input line 3: is not an Airbyte message/);
    assert.throws(() => parseLine('{"record":{}}', 4), /Input line 4: is not an Airbyte message/);
    assert.throws(
      () => parseLine('{"type":"STATE","state":{"type":"STREAM","stream":{}}}', 5),
      /Input line 5: STREAM state has no/,
    );
    assert.throws(
      () => parseLine('{"type":"STATE","state":{"type":"WEIRD"}}', 6),
      /Input line 6: STATE has unknown type "WEIRD"/,
    );
  });
});

describe('raw JSON helpers', () => {
  it('sets a member without touching anything else', () => {
    const text = '{"state":{"a":12345678901234567890,"b":{"c":[1,2]}},"extra":true}';
    const span = findPath(text, ['state']);
    assert.ok(span);
    assert.equal(
      setMember(text, span, 'added', '{"n":1}'),
      '{"state":{"a":12345678901234567890,"b":{"c":[1,2]},"added":{"n":1}},"extra":true}',
    );
  });

  it('replaces an existing member and handles empty objects', () => {
    const text = '{"s":{"x":1,"added":{"old":true},"y":2}}';
    const span = findPath(text, ['s']);
    assert.ok(span);
    assert.equal(setMember(text, span, 'added', '2'), '{"s":{"x":1,"added":2,"y":2}}');
    const empty = '{"s":{ }}';
    const emptySpan = findPath(empty, ['s']);
    assert.ok(emptySpan);
    assert.equal(setMember(empty, emptySpan, 'k', '1'), '{"s":{ "k":1}}');
  });

  it('handles keys with escapes and strings full of structural characters', () => {
    const text = '{"a\\"b":{"x":"}]\\\\"},"target":[{"y":"[{"}]}';
    assert.deepEqual(JSON.parse(text.slice(findPath(text, ['target'])?.start, findPath(text, ['target'])?.end)), [
      { y: '[{' },
    ]);
    const escaped = findPath(text, ['a"b']);
    assert.ok(escaped);
    assert.equal(text.slice(escaped.start, escaped.end), '{"x":"}]\\\\"}');
  });
});
