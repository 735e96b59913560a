import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TOPIC_BYTES, encodeKeyLevel, patternProblem, renderTopic, sanitizeTopicValue, topicProblem } from '../../../src/payload/topic.js';

describe('renderTopic', () => {
  it('substitutes namespace and stream', () => {
    assert.equal(renderTopic('airbyte/{namespace}/{stream}', 'crm', 'users'), 'airbyte/crm/users');
    assert.equal(renderTopic('{stream}.{namespace}', 'crm', 'users'), 'users.crm');
    assert.equal(renderTopic('fixed/topic', 'crm', 'users'), 'fixed/topic');
  });

  it('drops a level left empty by a missing namespace', () => {
    assert.equal(renderTopic('airbyte/{namespace}/{stream}', undefined, 'users'), 'airbyte/users');
    assert.equal(renderTopic('{namespace}/{stream}', undefined, 'users'), 'users');
    assert.equal(renderTopic('airbyte/{stream}/{namespace}', '', 'users'), 'airbyte/users');
  });

  it('keeps empty levels written in the pattern itself', () => {
    assert.equal(renderTopic('airbyte//{stream}', 'crm', 'users'), 'airbyte//users');
    assert.equal(renderTopic('/{namespace}/{stream}/', undefined, 'users'), '/users/');
  });

  it('keeps a level whose placeholder is only part of it', () => {
    assert.equal(renderTopic('airbyte/ns-{namespace}/{stream}', undefined, 'users'), 'airbyte/ns-/users');
  });

  it('replaces wildcards and control characters in substituted values', () => {
    assert.equal(renderTopic('a/{namespace}/{stream}', 'n+s', 'users#1\u0000\n\u007f'), 'a/n_s/users_1___');
  });

  it('replaces lone surrogates, which cannot be encoded as UTF-8, and keeps valid pairs', () => {
    assert.equal(sanitizeTopicValue('a\ud800b'), 'a_b');
    assert.equal(sanitizeTopicValue('a\udc00'), 'a_');
    assert.equal(sanitizeTopicValue('emoji\ud83d\ude00'), 'emoji\ud83d\ude00');
    assert.equal(sanitizeTopicValue('Zürich/東京'), 'Zürich/東京');
  });
});

describe('topicProblem', () => {
  it('accepts ordinary topics', () => {
    assert.equal(topicProblem('airbyte/crm/users'), undefined);
    assert.equal(topicProblem('$aws/rules/ingest'), undefined);
  });

  it('rejects empty topics, wildcards, NUL and oversized topics', () => {
    assert.match(topicProblem('') ?? '', /empty/);
    assert.match(topicProblem('a/+/b') ?? '', /wildcard/);
    assert.match(topicProblem('a/#') ?? '', /wildcard/);
    assert.match(topicProblem('a\u0000b') ?? '', /U\+0000/);
    assert.equal(topicProblem('x'.repeat(MAX_TOPIC_BYTES)), undefined);
    assert.match(topicProblem('é'.repeat(MAX_TOPIC_BYTES / 2 + 1)) ?? '', /65536 bytes long/);
  });
});

describe('patternProblem', () => {
  it('reports wildcards the user wrote, not ones a value might bring', () => {
    assert.match(patternProblem('airbyte/#') ?? '', /wildcard/);
    assert.match(patternProblem('airbyte/+/{stream}') ?? '', /wildcard/);
    assert.equal(patternProblem('airbyte/{namespace}/{stream}'), undefined);
    assert.match(patternProblem('airbyte/\u0000/{stream}') ?? '', /U\+0000/);
  });
});

describe('strict topic value escaping', () => {
  it('keeps . space * and > out of stream and namespace values, for brokers that map topics to subjects', () => {
    assert.equal(renderTopic('{namespace}/{stream}', 'crm.eu', 'user list*>', 'strict'), 'crm_eu/user_list__');
    assert.equal(renderTopic('{namespace}/{stream}', 'crm.eu', 'user list', 'standard'), 'crm.eu/user list');
  });

  it('percent-encodes them in key values, so keys stay distinct and decodable', () => {
    assert.equal(encodeKeyLevel('a.b c*>', 'strict'), 'a%2Eb%20c%2A%3E');
    assert.equal(decodeURIComponent(encodeKeyLevel('a.b c*>', 'strict') as string), 'a.b c*>');
    assert.equal(encodeKeyLevel('a.b c', 'standard'), 'a.b c');
  });
});
