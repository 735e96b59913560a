import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cloudEventsSource, keySubject } from '../../../src/payload/cloudevents.js';
import { keyValues } from '../../../src/payload/key-values.js';

function subjectOf(data: string, ...paths: string[][]): string | undefined {
  return keySubject(keyValues(data, paths));
}

/** What CloudEvents forbids in a String (spec.md, "Type System"). */
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
  /[\u0000-\u001f\u007f-\u009f\ufdd0-\ufdef\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('cloudEventsSource', () => {
  it('is airbyte:<stream> or airbyte:<namespace>/<stream>', () => {
    assert.equal(cloudEventsSource(undefined, 'users'), 'airbyte:users');
    assert.equal(cloudEventsSource('', 'users'), 'airbyte:users');
    assert.equal(cloudEventsSource('public', 'users'), 'airbyte:public/users');
  });

  it('percent-encodes each name, so different streams never share a source', () => {
    assert.equal(cloudEventsSource(undefined, 'a/b'), 'airbyte:a%2Fb');
    assert.equal(cloudEventsSource('a', 'b'), 'airbyte:a/b');
    assert.equal(cloudEventsSource('ns:1', 'Zürich 東京#?'), 'airbyte:ns%3A1/Z%C3%BCrich%20%E6%9D%B1%E4%BA%AC%23%3F');
    assert.notEqual(cloudEventsSource('A', 'b'), cloudEventsSource('a', 'b'));
  });

  it('writes a lone surrogate, which has no UTF-8 form, as U+FFFD instead of failing', () => {
    assert.equal(cloudEventsSource(undefined, 'a\ud800'), 'airbyte:a%EF%BF%BD');
  });
});

describe('keySubject', () => {
  it('joins key values with /, strings by their content and numbers as written', () => {
    assert.equal(subjectOf('{"id":12345678901234567890}', ['id']), '12345678901234567890');
    assert.equal(subjectOf('{"org":"acme","id":1.50,"on":true}', ['org'], ['id'], ['on']), 'acme/1.50/true');
    assert.equal(subjectOf('{"s":"\\u0041\\"b"}', ['s']), 'A"b');
  });

  it('escapes / and %, so the key can be read back', () => {
    const subject = subjectOf('{"a":"x/y","b":"100%","c":"%2F"}', ['a'], ['b'], ['c']);
    assert.equal(subject, 'x%2Fy/100%25/%252F');
    assert.deepEqual(subject?.split('/').map(decodeURIComponent), ['x/y', '100%', '%2F']);
    assert.notEqual(subjectOf('{"a":"x/y","b":"z"}', ['a'], ['b']), subjectOf('{"a":"x","b":"y/z"}', ['a'], ['b']));
  });

  it('escapes what a CloudEvents String must not contain, and keeps other unicode', () => {
    const subject = subjectOf('{"k":"a\\u0000b\\n\\u007f\\u0085\\ufdd0\\uffff\\ud83f\\udffe\\ud800 Zürich 😀"}', ['k']);
    assert.equal(subject, 'a%00b%0A%7F%C2%85%EF%B7%90%EF%BF%BF%F0%9F%BF%BE%EF%BF%BD Zürich 😀');
    assert.doesNotMatch(subject ?? '', FORBIDDEN);
  });

  it('is left out when the key is absent or unusable, or would be empty', () => {
    assert.equal(keySubject([]), undefined);
    for (const data of ['{}', '{"id":null}', '{"id":{"a":1}}', '{"id":[1]}', '{"id":""}'])
      assert.equal(subjectOf(data, ['id']), undefined, data);
    assert.equal(subjectOf('{"a":"","b":""}', ['a'], ['b']), '/');
  });
});
