/**
 * Routes from the configured catalog and topic_pattern: each stream's topic or key filter, whether it is keyed,
 * retained and truncated, and what a truncation clears; the catalogs it refuses before anything is published (no
 * primary key for {key}, invalid topics, a truncation that would clear the whole broker); streams that would share
 * topics (`sharedTopics`), what messages say about their stream (`messageIdentity`), and the warnings for field topics
 * of keyed retained streams (`fieldTopicWarnings`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { toSettings } from '../../../src/config/settings.js';
import { field } from '../../../src/config/spec.js';
import { ConfigError, type ConnectorError } from '../../../src/errors.js';
import {
  type RoutingOptions,
  type StreamRoute,
  fieldTopicWarnings,
  messageIdentity,
  routeStreams,
  sharedTopics,
} from '../../../src/sync/routes.js';
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
    assert.ok(
      err.message.includes(`stream "crm.users" has no primary key, which ${field('topic_pattern')} needs for {key}`),
      err.message,
    );
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
    assert.ok(err.message.includes('per key); stream "ns.b"'), 'the problems are separated by "; "');
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

  it('shortens only a topic longer than 120 characters in the error', () => {
    const empty = fails(ConfigError, () => routeStreams([stream('users')], '{namespace}'));
    assert.ok(empty.message.includes('(topic "")'), empty.message);
    // A literal non-character in the pattern makes the topic invalid at any length.
    const topic = `${'x'.repeat(113)}\ufffe/users`;
    assert.equal(topic.length, 120);
    const exact = fails(ConfigError, () => routeStreams([stream('users')], `${'x'.repeat(113)}\ufffe/{stream}`));
    assert.ok(exact.message.includes(`(topic ${JSON.stringify(topic)})`), 'a topic of 120 characters is shown whole');
    const longer = fails(ConfigError, () => routeStreams([stream('users')], `${'x'.repeat(114)}\ufffe/{stream}`));
    assert.ok(longer.message.includes(`(topic ${JSON.stringify(`x${topic}`.slice(0, 120) + '...')})`), longer.message);
  });

  it('refuses a wildcard the pattern itself puts in a plain topic, but not the + of a filter for slots', () => {
    const err = fails(ConfigError, () => routeStreams([stream('users')], 'a+b/{stream}'));
    assert.match(err.message, /stream "users": MQTT does not allow the wildcards \+ and #/);
    assert.equal(
      route(routeStreams([stream('users')], '{stream}/{field:site}'), undefined, 'users').topicName,
      'users/+',
    );
  });

  it('refuses to truncate a retained stream whose filter is nothing but +, naming the stream, mode and filter', () => {
    const cases: [Partial<ConfiguredStream>, string, string, RoutingOptions][] = [
      [{ mode: 'overwrite' }, '{key}', '+', {}],
      [{ mode: 'overwrite', primaryKey: [['region'], ['id']] }, '{key}', '+/+', {}],
      [{ mode: 'append_dedup', generationId: 3, minimumGenerationId: 3 }, '{field:site}', '+/+', {}],
      [{ generationId: 3, minimumGenerationId: 3 }, '{key}', '+', { retain: true }],
    ];
    for (const [overrides, pattern, filter, options] of cases) {
      const label = `${JSON.stringify(overrides)} ${pattern}`;
      const err = fails(ConfigError, () => routeStreams([stream('users', overrides)], pattern, options));
      assert.ok(
        err.message.includes(
          `stream "users" is truncated (${overrides.mode ?? 'append'}), ` +
            `which clears retained keys under "${filter}": ` +
            "that filter is not the stream's own. Put the keys under a level of the stream, as in {stream}/{key}",
        ),
        `${label}: ${err.message}`,
      );
    }
    // Not truncated, or not retained, or under a level of its own: nothing to refuse.
    assert.doesNotThrow(() => routeStreams([stream('users', { mode: 'append_dedup' })], '{key}'));
    assert.doesNotThrow(() => routeStreams([stream('users', { generationId: 3, minimumGenerationId: 3 })], '{key}'));
    assert.doesNotThrow(() => routeStreams([stream('users', { mode: 'overwrite' })], 'crm/{key}'));
  });

  it('leaves out of a non-retained truncation a key filter of several levels that are all +', () => {
    const twoFields = { primaryKey: [['region'], ['id']], generationId: 2, minimumGenerationId: 2 };
    const users = route(routeStreams([stream('users', twoFields)], '{key}'), undefined, 'users');
    assert.equal(users.topicName, '+/+');
    assert.deepEqual(users.territory, []);
    const site = route(routeStreams([stream('users', twoFields)], 'crm/{key}'), undefined, 'users');
    assert.deepEqual(site.territory, ['crm/+/+']);
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
    // The truncated stream second in the catalog.
    const second = [stream('orders'), stream('users', { generationId: 2, minimumGenerationId: 2 })];
    assert.match(
      fails(ConfigError, () => sharedTopics(routeStreams(second, 'fixed/topic', { retain: true }), full)).message,
      /streams "orders" and "users" would keep their keys under the same topics "fixed\/topic"/,
    );
    // Not truncated, the shared retained topic only holds whichever message came last: a warning, as before.
    assert.equal(
      sharedTopics(routeStreams([stream('users'), stream('orders')], 'fixed/topic', { retain: true }), full).length,
      1,
    );
  });

  it('calls messages indistinguishable, not keys, when the shared topic is only retained or only truncated', () => {
    const retained = routeStreams([stream('users'), stream('orders')], 'fixed/topic', { retain: true });
    const truncated = routeStreams(
      [stream('users', { generationId: 2, minimumGenerationId: 2 }), stream('orders')],
      'fixed/topic',
    );
    for (const routes of [retained, truncated]) {
      assert.match(
        fails(ConfigError, () => sharedTopics(routes, anonymous)).message,
        /streams "users" and "orders" would publish indistinguishable messages to the same topic "fixed\/topic"/,
      );
    }
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
    assert.equal(
      warnings[0],
      'Streams "users" and "orders" share the topic "fixed/topic"; ' +
        'their messages say which stream each is, so consumers must look there.',
    );
  });

  it('fails for keyed streams on one filter whatever the messages carry', () => {
    for (const mode of ['append_dedup', 'overwrite'] as const) {
      const keyed = regional.map((s) => ({ ...s, mode }));
      const err = fails(ConfigError, () => sharedTopics(routeStreams(keyed, 'crm/{stream}'), full));
      // The one problem of the shared filter, not also reported as two filters that overlap.
      assert.equal(
        err.message,
        `${field('topic_pattern')} merges streams: ` +
          'streams "eu.users" and "us.users" would keep their keys under the same topics "crm/users/+". ' +
          'Add {namespace} (or {stream}) to the pattern so that each stream gets topics of its own.',
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
    const err = fails(ConfigError, () => sharedTopics(routes, full));
    assert.equal(
      err.message,
      `${field('topic_pattern')} merges streams: ` +
        'streams "x" and "x.y" would share topics ("x/+/+" and "x/y/+" overlap). ' +
        'Add {namespace} (or {stream}) to the pattern so that each stream gets topics of its own.',
    );
    // Whichever comes first in the catalog.
    const reversed = routeStreams(
      [
        stream('y', { namespace: 'x', mode: 'append_dedup' }),
        stream('x', { mode: 'append_dedup', primaryKey: [['a'], ['b']] }),
      ],
      '{namespace}/{stream}/{key}',
    );
    assert.match(
      fails(ConfigError, () => sharedTopics(reversed, full)).message,
      /streams "x\.y" and "x" would share topics \("x\/y\/\+" and "x\/\+\/\+" overlap\)\./,
    );
  });

  it('lets keyed streams have filters of the same depth that differ in a level', () => {
    const keyed = regional.map((s) => ({ ...s, mode: 'append_dedup' as const }));
    assert.deepEqual(sharedTopics(routeStreams(keyed, '{namespace}/{stream}'), anonymous), []);
  });

  it("fails for a keyed stream whose filter takes in another stream's plain topic", () => {
    // The key 1 of "users" would land on the topic of stream "users/1", and a truncation would clear it.
    for (const streams of [
      [stream('users/1'), stream('users', { mode: 'append_dedup' })],
      [stream('users', { mode: 'append_dedup' }), stream('users/1')],
    ]) {
      const err = fails(ConfigError, () => sharedTopics(routeStreams(streams, '{stream}'), full));
      assert.match(err.message, /would share topics \("users(\/1|\/\+)" and "users(\/1|\/\+)" overlap\)/);
    }
  });

  it('lets plain streams whose field topics overlap publish when their messages say which stream each is', () => {
    const routes = routeStreams([stream('c', { namespace: 'a' }), stream('b/c')], '{namespace}/{field:site}/{stream}');
    assert.equal(route(routes, 'a', 'c').topicName, 'a/+/c');
    assert.equal(route(routes, undefined, 'b/c').topicName, '+/b/c');
    assert.deepEqual(sharedTopics(routes, full), []);
  });

  it('tells streams apart by namespace when one of them has none, in either order', () => {
    for (const streams of [
      [stream('users', { namespace: 'eu' }), stream('users')],
      [stream('users'), stream('users', { namespace: 'eu' })],
    ]) {
      const warnings = sharedTopics(routeStreams(streams, 'crm/{stream}'), full);
      assert.equal(warnings.length, 1, streams.map((s) => s.namespace).join());
      const err = fails(ConfigError, () => sharedTopics(routeStreams(streams, 'crm/{stream}'), named));
      assert.match(err.message, /would publish indistinguishable messages/);
    }
  });

  it('reports every merged topic in one error', () => {
    const routes = routeStreams(
      [...regional, stream('orders', { namespace: 'eu' }), stream('orders', { namespace: 'us' })],
      'crm/{stream}',
    );
    const err = fails(ConfigError, () => sharedTopics(routes, anonymous));
    assert.ok(
      err.message.includes(
        'to the same topic "crm/users"; streams "eu.orders" and "us.orders" would publish indistinguishable messages',
      ),
      err.message,
    );
  });
});

describe('messageIdentity', () => {
  function identityOf(format: string, protocol: string, userProperties: boolean): unknown {
    return messageIdentity(
      toSettings({
        broker_host: 'localhost',
        topic_pattern: 'airbyte/{stream}',
        message_format: format,
        protocol_version: protocol,
        mqtt5_user_properties: userProperties,
      }).messages,
    );
  }

  it("says what the format's own fields carry without MQTT 5 user properties", () => {
    const cases: [string, boolean, boolean][] = [
      ['data', false, false],
      ['airbyte_v2', false, false],
      ['airbyte_envelope', true, false],
      ['cloudevents', true, true],
    ];
    for (const [format, carriesStream, carriesNamespace] of cases) {
      for (const [protocol, userProperties] of [
        ['3.1.1', true],
        ['3.1.1', false],
        ['5', false],
      ] as const) {
        assert.deepEqual(
          identityOf(format, protocol, userProperties),
          { carriesStream, carriesNamespace },
          `${format} ${protocol} ${userProperties}`,
        );
      }
    }
  });

  it('says every message carries stream and namespace with MQTT 5 user properties, whatever the format', () => {
    for (const format of ['data', 'airbyte_v2', 'airbyte_envelope', 'cloudevents']) {
      assert.deepEqual(identityOf(format, '5', true), { carriesStream: true, carriesNamespace: true }, format);
    }
  });
});

describe('fieldTopicWarnings', () => {
  const site = { mode: 'append_dedup' as const, primaryKey: [['device', 'id']] };

  it('warns once per keyed retained stream whose topic holds fields outside its primary key, naming them', () => {
    const routes = routeStreams(
      [stream('devices', { ...site, namespace: 'fleet' }), stream('sensors', site)],
      '{namespace}/{stream}/{field:site}/{field:/room}/{key}',
    );
    assert.deepEqual(fieldTopicWarnings(routes), [
      'Stream "fleet.devices" keeps one retained message per key on topics that hold {field:site} and ' +
        '{field:/room}, which is not part of its primary key: a key whose value there changes leaves its old ' +
        'retained message behind, until an overwrite or a truncating refresh clears it.',
      'Stream "sensors" keeps one retained message per key on topics that hold {field:site} and ' +
        '{field:/room}, which is not part of its primary key: a key whose value there changes leaves its old ' +
        'retained message behind, until an overwrite or a truncating refresh clears it.',
    ]);
  });

  it('names only the fields that are not part of the primary key, compared path by path', () => {
    const routes = routeStreams(
      [stream('devices', site)],
      '{stream}/{field:device.id}/{field:/device/id}/{field:site}',
    );
    const [warning, ...more] = fieldTopicWarnings(routes);
    assert.deepEqual(more, []);
    assert.match(warning ?? '', /on topics that hold \{field:site\}, which is not part/);
    // The path ["device", "id"] is not the field named "deviceid".
    const joined = routeStreams(
      [stream('devices', { ...site, primaryKey: [['deviceid']] })],
      '{stream}/{field:device.id}',
    );
    assert.match(fieldTopicWarnings(joined)[0] ?? '', /hold \{field:device\.id\}, which/);
  });

  it('has nothing to say for fields of the primary key, or streams that are not keyed or not retained', () => {
    const cases: [Partial<ConfiguredStream>, string, RoutingOptions][] = [
      [site, '{stream}/{field:device.id}', {}],
      [site, '{stream}', {}],
      // Keyed by {key}, not retained: a record whose field changes leaves nothing behind.
      [{}, '{stream}/{field:site}/{key}', {}],
      // Retained, not keyed: one topic per field value, each holding the last message.
      [{}, '{stream}/{field:site}', { retain: true }],
    ];
    for (const [overrides, pattern, options] of cases) {
      assert.deepEqual(fieldTopicWarnings(routeStreams([stream('devices', overrides)], pattern, options)), [], pattern);
    }
    assert.equal(
      fieldTopicWarnings(routeStreams([stream('devices')], '{stream}/{field:site}/{key}', { retain: true })).length,
      1,
    );
  });
});
