import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { ConfigError, type ConnectorError } from '../../../src/errors.js';
import { type StreamRoute, routeStreams, sharedTopics } from '../../../src/sync/routes.js';
import { configuredStream } from '../../support/messages.js';

const stream = configuredStream;

function route(routes: ReadonlyMap<string, StreamRoute>, namespace: string | undefined, name: string): StreamRoute {
  const found = routes.get(streamKey(namespace, name));
  assert.ok(found, `a route for ${namespace ?? ''}.${name}`);
  return found;
}

function fails<T extends ConnectorError>(kind: new (...args: never[]) => T, run: () => unknown): T {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof kind, `expected a ${kind.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected a ${kind.name}`);
}

describe('routeStreams', () => {
  it('routes an append stream to one plain topic: not keyed, not retained, not truncated', () => {
    const users = route(
      routeStreams([stream('users', { namespace: 'crm' })], 'airbyte/{namespace}/{stream}'),
      'crm',
      'users',
    );
    assert.equal(users.keyed, false);
    assert.equal(users.retained, false);
    assert.equal(users.truncate, false);
    assert.equal(users.topicName, 'airbyte/crm/users');
    assert.deepEqual(users.topic, { texts: ['airbyte/crm/users'], slots: [] });
    assert.equal(users.streamJson, '"users"');
    assert.equal(users.namespace, 'crm');
    assert.deepEqual(users.primaryKey, [['id']]);
  });

  it('sets keyed, retained, truncate and the territory a truncation clears by sync mode and generations', () => {
    type Case = [ConfiguredStream['mode'], number, number, string, boolean, boolean, boolean, string, string[]];
    const cases: Case[] = [
      // mode, generation, minimum, pattern, keyed, retained, truncate, topicName, territory
      ['append', 0, 0, 'crm/{stream}', false, false, false, 'crm/users', []],
      ['append', 5, 0, 'crm/{stream}', false, false, false, 'crm/users', []],
      // "Overwrite" and a Clear from a platform with refreshes: append, truncated. Its own messages are not retained,
      // but keys an earlier deduped sync (or message_retained) left are still the stream's to clear.
      ['append', 5, 5, 'crm/{stream}', false, false, true, 'crm/users', ['crm/users/+', 'crm/users']],
      ['append', 0, 0, 'crm/{stream}/{key}', true, false, false, 'crm/users/+', []],
      ['append', 2, 2, 'crm/{key}/{stream}', true, false, true, 'crm/+/users', ['crm/+/users']],
      // Not the stream's own filter, and nothing of the stream's is retained there: left out.
      ['append', 2, 2, '{key}', true, false, true, '+', []],
      ['append_dedup', 0, 0, 'crm/{stream}', true, true, false, 'crm/users/+', []],
      ['append_dedup', 3, 0, 'crm/{stream}', true, true, false, 'crm/users/+', []],
      ['append_dedup', 3, 3, 'crm/{stream}', true, true, true, 'crm/users/+', ['crm/users/+', 'crm/users']],
      ['append_dedup', 0, 0, 'crm/{key}/{stream}', true, true, false, 'crm/+/users', []],
      ['overwrite', 0, 0, 'crm/{stream}', true, true, true, 'crm/users/+', ['crm/users/+', 'crm/users']],
      ['overwrite', 4, 0, 'crm/{stream}', true, true, true, 'crm/users/+', ['crm/users/+', 'crm/users']],
      ['overwrite', 4, 4, 'crm/{stream}/{key}', true, true, true, 'crm/users/+', ['crm/users/+']],
      ['overwrite_dedup', 0, 0, 'crm/{stream}', true, true, true, 'crm/users/+', ['crm/users/+', 'crm/users']],
    ];
    for (const [
      mode,
      generationId,
      minimumGenerationId,
      pattern,
      keyed,
      retained,
      truncate,
      topicName,
      territory,
    ] of cases) {
      const label = `${mode} generation ${generationId} minimum ${minimumGenerationId} ${pattern}`;
      const users = route(
        routeStreams([stream('users', { mode, generationId, minimumGenerationId })], pattern),
        undefined,
        'users',
      );
      assert.deepEqual(
        {
          keyed: users.keyed,
          retained: users.retained,
          truncate: users.truncate,
          topicName: users.topicName,
          territory: users.territory,
        },
        { keyed, retained, truncate, topicName, territory },
        label,
      );
      assert.equal(users.mode, mode, label);
      assert.equal(users.generationId, generationId, label);
    }
    // A stream without a primary key has only its topic to clear.
    const plain = route(
      routeStreams([stream('events', { primaryKey: [], generationId: 2, minimumGenerationId: 2 })], 'crm/{stream}'),
      undefined,
      'events',
    );
    assert.deepEqual(plain.territory, ['crm/events']);
    // With message_retained, an append stream's messages are retained too, so a truncation replaces them: a keyspace
    // with {key}, the stream's one topic without.
    const retainedCases: [number, number, string, boolean, boolean, string][] = [
      [5, 5, 'crm/{stream}/{key}', true, true, 'crm/users/+'],
      [5, 5, 'crm/{stream}', false, true, 'crm/users'],
      [5, 0, 'crm/{stream}/{key}', true, false, 'crm/users/+'],
      [0, 0, 'crm/{stream}', false, false, 'crm/users'],
    ];
    for (const [generationId, minimumGenerationId, pattern, keyed, truncate, topicName] of retainedCases) {
      const label = `append with message_retained, generation ${generationId} minimum ${minimumGenerationId} ${pattern}`;
      const users = route(
        routeStreams([stream('users', { generationId, minimumGenerationId })], pattern, { retain: true }),
        undefined,
        'users',
      );
      assert.deepEqual(
        {
          keyed: users.keyed,
          deduped: users.deduped,
          retained: users.retained,
          truncate: users.truncate,
          topicName: users.topicName,
        },
        { keyed, deduped: false, retained: true, truncate, topicName },
        label,
      );
    }
  });

  it('gives a keyed stream the filter with one + per key field, wherever the key goes', () => {
    const twoFields = { primaryKey: [['region'], ['org', 'id']], mode: 'append_dedup' as const };
    assert.equal(
      route(routeStreams([stream('users', twoFields)], '{stream}'), undefined, 'users').topicName,
      'users/+/+',
    );
    assert.equal(
      route(routeStreams([stream('users', twoFields)], 'devices/{key}/config'), undefined, 'users').topicName,
      'devices/+/+/config',
    );
    const keyed = route(routeStreams([stream('users', twoFields)], 'devices/{key}/config'), undefined, 'users');
    assert.deepEqual(keyed.topic, { texts: ['devices/', '/config'], slots: [{ kind: 'key' }] });
  });

  it('keys routes by namespace and stream, a missing namespace the same as an empty one', () => {
    const routes = routeStreams(
      [stream('users'), stream('users', { namespace: 'crm' }), stream('orders', { namespace: '' })],
      '{namespace}/{stream}',
    );
    assert.equal(routes.size, 3);
    assert.equal(route(routes, undefined, 'users').topicName, 'users');
    assert.equal(route(routes, 'crm', 'users').topicName, 'crm/users');
    assert.equal(route(routes, '', 'orders').topicName, 'orders');
    assert.equal(routes.get(streamKey(null, 'orders')), route(routes, undefined, 'orders'));
  });

  it('renders topics with the escaping asked for', () => {
    const streams = [stream('user list', { namespace: 'crm.eu' }), stream('a*b', { mode: 'append_dedup' })];
    const strict = routeStreams(streams, '{namespace}/{stream}', { escaping: 'strict' });
    assert.equal(route(strict, 'crm.eu', 'user list').topicName, 'crm_eu/user_list');
    assert.equal(route(strict, undefined, 'a*b').topicName, 'a_b/+');
    const standard = routeStreams(streams, '{namespace}/{stream}');
    assert.equal(route(standard, 'crm.eu', 'user list').topicName, 'crm.eu/user list');
    assert.equal(route(standard, undefined, 'a*b').topicName, 'a*b/+');
  });

  it('encodes the stream name as JSON once', () => {
    assert.equal(
      route(routeStreams([stream('a "b"\\é')], 'x/{stream}'), undefined, 'a "b"\\é').streamJson,
      JSON.stringify('a "b"\\é'),
    );
  });

  it('refuses {key} for a stream without a primary key, naming the stream and topic_pattern', () => {
    const err = fails(ConfigError, () =>
      routeStreams([stream('users', { namespace: 'crm', primaryKey: [] })], 'crm/{key}'),
    );
    assert.equal(err.failureType, 'config_error');
    assert.match(err.message, /stream "crm\.users" has no primary key/);
    assert.match(err.message, /topic_pattern/);
    assert.match(err.message, /\{key\}/);
  });

  for (const mode of ['append_dedup', 'overwrite'] as const) {
    it(`refuses ${mode} for a stream without a primary key, naming the stream and the mode`, () => {
      const err = fails(ConfigError, () => routeStreams([stream('events', { primaryKey: [], mode })], '{stream}'));
      assert.match(err.message, /stream "events" has no primary key/);
      assert.match(err.message, new RegExp(`sync mode ${mode}`));
    });
  }

  it('accepts an append stream without a primary key when the pattern has no {key}', () => {
    const events = route(routeStreams([stream('events', { primaryKey: [] })], '{stream}'), undefined, 'events');
    assert.equal(events.keyed, false);
  });

  it('reports every stream with a problem in one error', () => {
    const err = fails(ConfigError, () =>
      routeStreams(
        [
          stream('a', { primaryKey: [], mode: 'overwrite' }),
          stream('fine'),
          stream('b', { namespace: 'ns', primaryKey: [], mode: 'append_dedup' }),
        ],
        '{namespace}/{stream}',
      ),
    );
    assert.match(err.message, /stream "a" has no primary key/);
    assert.match(err.message, /stream "ns\.b" has no primary key/);
    assert.doesNotMatch(err.message, /"fine"/);
  });

  it('refuses a topic that is empty or too long, naming the stream and the topic, shortened', () => {
    const empty = fails(ConfigError, () => routeStreams([stream('users')], '{namespace}'));
    assert.match(empty.message, /stream "users": the topic is empty/);
    const tooLong = fails(ConfigError, () => routeStreams([stream('users')], `${'x'.repeat(69_994)}/{stream}`));
    assert.match(tooLong.message, /stream "users": the topic is 70000 bytes long/);
    assert.ok(tooLong.message.includes(`(topic "${'x'.repeat(120)}...")`), 'the topic is shortened');
    // A keyed stream's filter counts each + as a one-byte key level.
    const keyedLong = fails(ConfigError, () =>
      routeStreams([stream('k'.repeat(65_534), { mode: 'append_dedup' })], '{stream}'),
    );
    assert.match(keyedLong.message, /65536 bytes long/);
    assert.doesNotThrow(() => routeStreams([stream('k'.repeat(65_533), { mode: 'append_dedup' })], '{stream}'));
  });
});

describe('sharedTopics', () => {
  const anonymous = { carriesStream: false, carriesNamespace: false };
  const named = { carriesStream: true, carriesNamespace: false };
  const full = { carriesStream: true, carriesNamespace: true };
  const regional = [stream('users', { namespace: 'eu' }), stream('users', { namespace: 'us' })];

  it('has nothing to say when every stream has a topic of its own', () => {
    const routes = routeStreams([...regional, stream('orders', { namespace: 'eu' })], '{namespace}/{stream}');
    assert.deepEqual(sharedTopics(routes, anonymous), []);
  });

  it('fails for streams that nothing in their messages tells apart, naming both and the topic', () => {
    for (const identity of [anonymous, named]) {
      const err = fails(ConfigError, () => sharedTopics(routeStreams(regional, 'crm/{stream}'), identity));
      assert.match(
        err.message,
        /streams "eu\.users" and "us\.users" would publish indistinguishable messages to the same topic "crm\/users"/,
      );
      assert.match(err.message, /Add \{namespace\}/);
    }
  });

  it('fails for a retained topic a truncation clears when another stream shares it, however the messages differ', () => {
    const truncated = [stream('users', { generationId: 2, minimumGenerationId: 2 }), stream('orders')];
    const err = fails(ConfigError, () => sharedTopics(routeStreams(truncated, 'fixed/topic', { retain: true }), full));
    assert.match(
      err.message,
      /streams "users" and "orders" would keep their keys under the same topics "fixed\/topic"/,
    );
    // Not truncated, the shared retained topic only holds whichever message came last: a warning, as before.
    assert.equal(
      sharedTopics(routeStreams([stream('users'), stream('orders')], 'fixed/topic', { retain: true }), full).length,
      1,
    );
  });

  it('fails for streams of different names when messages do not carry the stream', () => {
    const err = fails(ConfigError, () =>
      sharedTopics(routeStreams([stream('users'), stream('orders')], 'fixed/topic'), anonymous),
    );
    assert.match(err.message, /"users" and "orders"/);
  });

  it('warns once per shared topic when messages say which stream each is', () => {
    const routes = routeStreams(
      [
        ...regional,
        stream('users', { namespace: 'ap' }),
        stream('orders', { namespace: 'eu' }),
        stream('orders', { namespace: 'us' }),
      ],
      'crm/{stream}',
    );
    const warnings = sharedTopics(routes, full);
    assert.equal(warnings.length, 2, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /Streams "eu\.users" and "us\.users" and "ap\.users" share the topic "crm\/users"/);
    assert.match(warnings[1] ?? '', /Streams "eu\.orders" and "us\.orders" share the topic "crm\/orders"/);
  });

  it('warns for streams of different names when messages carry the stream name', () => {
    const warnings = sharedTopics(routeStreams([stream('users'), stream('orders')], 'fixed/topic'), named);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /"users" and "orders" share the topic "fixed\/topic"/);
  });

  it('fails for keyed streams on one filter whatever the messages carry', () => {
    for (const mode of ['append_dedup', 'overwrite'] as const) {
      const keyed = regional.map((s) => ({ ...s, mode }));
      const err = fails(ConfigError, () => sharedTopics(routeStreams(keyed, 'crm/{stream}'), full));
      assert.match(
        err.message,
        /streams "eu\.users" and "us\.users" would keep their keys under the same topics "crm\/users\/\+"/,
        mode,
      );
    }
    const err = fails(ConfigError, () =>
      sharedTopics(routeStreams([stream('users'), stream('orders')], 'crm/{key}'), full),
    );
    assert.match(err.message, /"users" and "orders" would keep their keys/);
  });

  it('lets keyed streams with different numbers of key fields share a prefix: their topics differ in depth', () => {
    const routes = routeStreams(
      [
        stream('users', { namespace: 'eu', mode: 'append_dedup' }),
        stream('users', { namespace: 'us', mode: 'append_dedup', primaryKey: [['a'], ['b']] }),
      ],
      'crm/{stream}',
    );
    assert.deepEqual(sharedTopics(routes, full), []);
  });

  it('fails for keyed streams whose filters overlap without being equal', () => {
    // Stream "x" (no namespace, two key fields) gets x/+/+; stream "x.y" (one key field) gets x/y/+. The record
    // {"a":"y","b":1} of the first and {"id":1} of the second both go to x/y/1, each overwriting the other's key.
    const routes = routeStreams(
      [
        stream('x', { mode: 'append_dedup', primaryKey: [['a'], ['b']] }),
        stream('y', { namespace: 'x', mode: 'append_dedup' }),
      ],
      '{namespace}/{stream}/{key}',
    );
    assert.equal(route(routes, undefined, 'x').topicName, 'x/+/+');
    assert.equal(route(routes, 'x', 'y').topicName, 'x/y/+');
    fails(ConfigError, () => sharedTopics(routes, full));
  });
});
