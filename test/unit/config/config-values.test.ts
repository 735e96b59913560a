/**
 * Reading single values of a configuration as the platform saves it: an empty or mistyped value reads as absent (the
 * schema validation reports it), so that no reader ever works with a value of the wrong type.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  aliased,
  booleanOf,
  integerOf,
  isConfig,
  stringOf,
  stringsOf,
  valueAt,
} from '../../../src/config/config-values.js';

describe('configuration values', () => {
  it('isConfig: a plain object, not null or an array', () => {
    assert.equal(isConfig({}), true);
    assert.equal(isConfig(null), false);
    assert.equal(isConfig([]), false);
    assert.equal(isConfig('x'), false);
  });

  it('stringOf: a non-empty string, else absent', () => {
    const config = { a: 'x', empty: '', n: 1, o: {} };
    assert.equal(stringOf(config, 'a'), 'x');
    for (const key of ['empty', 'n', 'o', 'missing']) assert.equal(stringOf(config, key), undefined, key);
  });

  it('valueAt: follows a dotted path while every step is an object', () => {
    const config = { auth_method: { client_secret: 's', nested: { deep: 1 } }, top: 'x' };
    assert.equal(valueAt(config, 'auth_method.client_secret'), 's');
    assert.equal(valueAt(config, 'auth_method.nested.deep'), 1);
    assert.equal(valueAt(config, 'top'), 'x');
    assert.equal(valueAt(config, 'top.below'), undefined);
    assert.equal(valueAt(config, 'missing.below'), undefined);
  });

  it('booleanOf: a boolean, else the fallback', () => {
    assert.equal(booleanOf({ b: false }, 'b', true), false);
    assert.equal(booleanOf({ b: 'false' }, 'b', true), true);
    assert.equal(booleanOf({}, 'b', false), false);
  });

  it('integerOf: a number, else absent', () => {
    assert.equal(integerOf({ n: 0 }, 'n'), 0);
    assert.equal(integerOf({ n: '1' }, 'n'), undefined);
  });

  it('stringsOf: the non-empty strings of a list, absent when it is no list', () => {
    assert.deepEqual(stringsOf({ l: ['a', '', 3, 'b'] }, 'l'), ['a', 'b']);
    assert.equal(stringsOf({ l: 'a' }, 'l'), undefined);
  });

  it('aliased: either key, the documented one first; two different values are a problem naming both', () => {
    const problems: string[] = [];
    assert.equal(aliased({ topic_test: 't' }, 'topic_test', 'test_topic', problems), 't');
    assert.equal(aliased({ test_topic: 'l' }, 'topic_test', 'test_topic', problems), 'l');
    assert.equal(aliased({ topic_test: 't', test_topic: 't' }, 'topic_test', 'test_topic', problems), 't');
    assert.deepEqual(problems, []);
    assert.equal(aliased({ topic_test: 't', test_topic: 'l' }, 'topic_test', 'test_topic', problems), 't');
    assert.deepEqual(problems, [
      'topic_test and test_topic are both set, to different values (test_topic is an older name of topic_test; ' +
        'keep only topic_test)',
    ]);
  });
});
