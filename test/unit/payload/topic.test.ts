import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_TOPIC_BYTES,
  type StreamTopic,
  type TopicEscaping,
  encodeKeyLevel,
  fieldPath,
  fillTopic,
  patternFields,
  patternLevels,
  patternHasKey,
  patternProblem,
  renderTopic,
  sanitizeTopicValue,
  streamTopic,
  topicFilter,
  topicProblem,
} from '../../../src/payload/topic.js';
import { type Random, mulberry32 } from '../../support/random.js';

const KEY_SLOT = { kind: 'key' } as const;

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

// ---------------------------------------------------------------------------------------------------------------
// Key topics: `{key}`, keyed sync modes, and the encoding of key values as topic levels.
// ---------------------------------------------------------------------------------------------------------------

/** Cases per property; PROPERTY_SEED replays the one case with that seed. */
const KEY_CASES = Number(process.env.PROPERTY_CASES ?? 300);
const ONLY_SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);

function seeds(): number[] {
  return ONLY_SEED === undefined ? Array.from({ length: KEY_CASES }, (_, i) => i + 1) : [ONLY_SEED];
}

/** Runs `check` once per seed; a failure names the seed that replays it. */
function forEachSeed(check: (random: Random, seed: number) => void): void {
  for (const seed of seeds()) {
    try {
      check(mulberry32(seed), seed);
    } catch (err) {
      throw new Error(`case with seed ${seed} failed (replay with PROPERTY_SEED=${seed}): ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c)),
  ...Array.from({ length: 0x21 }, (_, c) => String.fromCharCode(0x7f + c)),
];
/** Pieces key values are built from: what must be escaped, what only looks escaped, and text of every UTF-8 length. */
const PIECES = [
  'a',
  'Z',
  '0',
  '42',
  ' ',
  '/',
  '%',
  '%25',
  '%2F',
  '+',
  '#',
  '$',
  '$SYS',
  '?',
  '&',
  '=',
  '\\',
  '"',
  '.',
  '*',
  '>',
  '-',
  'é',
  'ß',
  '東京',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '😀',
  '\u{10ffff}',
  '\u{1f1e9}\u{1f1ea}',
  ...CONTROLS,
];

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** A key value: often empty or a single piece (where collisions would show first), sometimes longer. */
function keyString(random: Random): string {
  const r = random();
  if (r < 0.1) return '';
  const pieces = r < 0.4 ? 1 : 1 + Math.floor(random() * 6);
  let text = '';
  for (let i = 0; i < pieces; i++) text += pick(random, PIECES);
  return text;
}

/** The levels of `topic` (a key topic of `stream`) that hold the key. */
function keyLevelsOf(topic: string, stream: StreamTopic): string[] {
  const [before = '', after = ''] = stream.texts;
  assert.ok(topic.startsWith(before), `${JSON.stringify(topic)} starts with ${JSON.stringify(before)}`);
  assert.ok(topic.endsWith(after), `${JSON.stringify(topic)} ends with ${JSON.stringify(after)}`);
  return topic.slice(before.length, topic.length - after.length).split('/');
}

/** Whether `topic` matches the subscription `filter` (only `+` wildcards, as key filters have). */
function matchesFilter(topic: string, filter: string): boolean {
  const levels = topic.split('/');
  const wanted = filter.split('/');
  return levels.length === wanted.length && wanted.every((level, i) => level === '+' || level === levels[i]);
}

function encodeAll(values: readonly string[], escaping: TopicEscaping = 'standard'): string[] {
  return values.map((value) => {
    const level = encodeKeyLevel(value, escaping);
    assert.notEqual(level, undefined, `${JSON.stringify(value)} is a valid key value`);
    return level as string;
  });
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what must not be in a level
const FORBIDDEN_IN_LEVEL = /[/+#$\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex -- as above
const FORBIDDEN_IN_STRICT_LEVEL = /[/+#$.\s*>\u0000-\u001f\u007f-\u009f]/;
const FORBIDDEN: Readonly<Record<TopicEscaping, RegExp>> = {
  standard: FORBIDDEN_IN_LEVEL,
  strict: FORBIDDEN_IN_STRICT_LEVEL,
};
const ESCAPINGS: readonly TopicEscaping[] = ['standard', 'strict'];

describe('streamTopic', () => {
  it('gives one topic and no key place when the pattern has no {key} and the stream is not keyed', () => {
    assert.deepEqual(streamTopic('airbyte/{namespace}/{stream}', 'crm', 'users', false), {
      texts: ['airbyte/crm/users'],
      slots: [],
    });
    assert.deepEqual(streamTopic('airbyte/{namespace}/{stream}', undefined, 'users', false), {
      texts: ['airbyte/users'],
      slots: [],
    });
  });

  it('splits the topic around a {key} level wherever it is', () => {
    assert.deepEqual(streamTopic('devices/{key}/config', undefined, 'users', false), {
      texts: ['devices/', '/config'],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{key}/{stream}', undefined, 'users', false), {
      texts: ['', '/users'],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}/{stream}/{key}', 'crm', 'users', false), {
      texts: ['crm/users/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{key}', 'crm', 'users', false), { texts: ['', ''], slots: [KEY_SLOT] });
  });

  it('puts the key levels after the stream topic for a keyed stream whose pattern has no {key}', () => {
    assert.deepEqual(streamTopic('airbyte/{namespace}/{stream}', 'crm', 'users', true), {
      texts: ['airbyte/crm/users/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{stream}', undefined, 'users', true), { texts: ['users/', ''], slots: [KEY_SLOT] });
    // keyed changes nothing when the pattern places the key itself
    assert.deepEqual(streamTopic('devices/{key}/config', undefined, 'users', true), {
      texts: ['devices/', '/config'],
      slots: [KEY_SLOT],
    });
  });

  it('drops a level left empty by a missing namespace, also around the key', () => {
    assert.deepEqual(streamTopic('{namespace}/{key}', undefined, 'users', false), {
      texts: ['', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('a/{namespace}/{key}/{namespace}', undefined, 'users', false), {
      texts: ['a/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}', undefined, 'users', true), { texts: ['', ''], slots: [KEY_SLOT] });
    assert.deepEqual(streamTopic('a//{key}', undefined, 'users', false), { texts: ['a//', ''], slots: [KEY_SLOT] });
  });

  it('cleans substituted values as renderTopic does, on both sides of the key', () => {
    assert.deepEqual(streamTopic('{namespace}/{key}/{stream}', 'n+s', 'u#\u0000\u009f', false), {
      texts: ['n_s/', '/u___'],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}/{key}/{stream}', 'crm.eu', 'user list', false, 'strict'), {
      texts: ['crm_eu/', '/user_list'],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}/{stream}', 'crm.eu', 'a*>', true, 'strict'), {
      texts: ['crm_eu/a__/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}/{stream}', 'crm.eu', 'a b', true), {
      texts: ['crm.eu/a b/', ''],
      slots: [KEY_SLOT],
    });
  });

  it('never lets a substituted value start the topic with $, and keeps a $ the pattern starts with', () => {
    assert.deepEqual(streamTopic('{stream}/{key}', undefined, '$SYS', false), {
      texts: ['_SYS/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}/{stream}', undefined, '$share', true), {
      texts: ['_share/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('{namespace}/{key}', '$aws', 'users', false), {
      texts: ['_aws/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('$aws/things/{stream}/{key}', undefined, '$x', false), {
      texts: ['$aws/things/$x/', ''],
      slots: [KEY_SLOT],
    });
    assert.deepEqual(streamTopic('${stream}/{key}', undefined, 'x', false), { texts: ['$x/', ''], slots: [KEY_SLOT] });
  });
});

describe('patternHasKey', () => {
  it('is true only for {key} as a whole level', () => {
    assert.equal(patternHasKey('devices/{key}/config'), true);
    assert.equal(patternHasKey('{key}'), true);
    assert.equal(patternHasKey('{stream}/{key}'), true);
    assert.equal(patternHasKey('{stream}'), false);
    assert.equal(patternHasKey('devices/{key}x'), false);
    assert.equal(patternHasKey('devices/{KEY}'), false);
    assert.equal(patternHasKey('devices/key'), false);
  });
});

describe('fillTopic and topicFilter', () => {
  const config = streamTopic('devices/{key}/config', undefined, 'users', false);
  const trailing = streamTopic('{stream}', undefined, 'users', true);
  const bare = streamTopic('{key}', undefined, 'users', false);

  it('puts one level per key field between the parts of the stream topic', () => {
    assert.equal(fillTopic(config, ['42'], []), 'devices/42/config');
    assert.equal(fillTopic(config, ['eu', '42'], []), 'devices/eu/42/config');
    assert.equal(fillTopic(trailing, ['42'], []), 'users/42');
    assert.equal(fillTopic(trailing, ['eu', '', '42'], []), 'users/eu//42');
    assert.equal(fillTopic(bare, ['a', 'b'], []), 'a/b');
  });

  it('gives the filter with one + per key field', () => {
    assert.equal(topicFilter(config, 1), 'devices/+/config');
    assert.equal(topicFilter(config, 3), 'devices/+/+/+/config');
    assert.equal(topicFilter(trailing, 2), 'users/+/+');
    assert.equal(topicFilter(bare, 1), '+');
  });

  it('gives topics that match their filter and hold the key levels where the filter has +', () => {
    forEachSeed((random) => {
      const stream = pick(random, [
        config,
        trailing,
        bare,
        streamTopic('a/{namespace}/{key}/{stream}/b', 'ns', 's', false),
      ]);
      const fields = 1 + Math.floor(random() * 3);
      const values = Array.from({ length: fields }, () => keyString(random));
      const topic = fillTopic(stream, encodeAll(values), []);
      assert.ok(
        matchesFilter(topic, topicFilter(stream, fields)),
        `${JSON.stringify(topic)} matches ${topicFilter(stream, fields)}`,
      );
      assert.deepEqual(keyLevelsOf(topic, stream).map(decodeURIComponent), values);
    });
  });
});

describe('encodeKeyLevel', () => {
  it('leaves ordinary text alone, the same string', () => {
    for (const text of ['42', 'true', 'user@example.com', 'a b?c&d=e', 'Zürich', '東京', '😀', 'ÿ\u00a0']) {
      assert.equal(encodeKeyLevel(text), text);
    }
  });

  it('keeps an empty value as an empty level', () => {
    assert.equal(encodeKeyLevel(''), '');
  });

  it('percent-encodes % / + # $ and control characters as upper-case UTF-8 bytes', () => {
    assert.equal(encodeKeyLevel('%'), '%25');
    assert.equal(encodeKeyLevel('a/b'), 'a%2Fb');
    assert.equal(encodeKeyLevel('+'), '%2B');
    assert.equal(encodeKeyLevel('#1'), '%231');
    assert.equal(encodeKeyLevel('$SYS'), '%24SYS');
    assert.equal(encodeKeyLevel('\u0000'), '%00');
    assert.equal(encodeKeyLevel('\t\n\r'), '%09%0A%0D');
    assert.equal(encodeKeyLevel('\u001f'), '%1F');
    assert.equal(encodeKeyLevel('\u007f'), '%7F');
    assert.equal(encodeKeyLevel('\u0080'), '%C2%80');
    assert.equal(encodeKeyLevel('\u009f'), '%C2%9F');
    assert.equal(encodeKeyLevel('50%/é+#$'), '50%25%2Fé%2B%23%24');
  });

  it('encodes text that looks encoded already, so it does not decode to something else', () => {
    assert.equal(encodeKeyLevel('%2F'), '%252F');
    assert.notEqual(encodeKeyLevel('%2F'), encodeKeyLevel('/'));
  });

  it('leaves no character a topic level must not hold, in either escaping', () => {
    for (const escaping of ESCAPINGS) {
      for (let code = 0; code < 0x3100; code++) {
        if (code >= 0x800 && code < 0x2000) continue;
        const char = String.fromCharCode(code);
        const level = encodeKeyLevel(`x${char}x`, escaping) as string;
        assert.doesNotMatch(level, FORBIDDEN[escaping], `${escaping} U+${code.toString(16)}`);
        assert.equal(decodeURIComponent(level), `x${char}x`, `${escaping} U+${code.toString(16)}`);
      }
    }
  });

  it('encodes . white space * and > only when strict', () => {
    assert.equal(encodeKeyLevel('a.b c\t*>\u00a0\u2028\u3000', 'strict'), 'a%2Eb%20c%09%2A%3E%C2%A0%E2%80%A8%E3%80%80');
    assert.equal(encodeKeyLevel('a.b c*>\u00a0', 'standard'), 'a.b c*>\u00a0');
    assert.equal(encodeKeyLevel('$/\ud800', 'strict'), undefined);
  });

  it('gives undefined for a lone surrogate, which has no UTF-8 form, and keeps surrogate pairs', () => {
    assert.equal(encodeKeyLevel('\ud800'), undefined);
    assert.equal(encodeKeyLevel('\udfff'), undefined);
    assert.equal(encodeKeyLevel('a\ud83d'), undefined);
    assert.equal(encodeKeyLevel('\ude00a'), undefined);
    assert.equal(encodeKeyLevel('\ude00\ud83d'), undefined, 'a pair in the wrong order is two lone surrogates');
    assert.equal(encodeKeyLevel('/\ud800/'), undefined, 'even when other characters need escaping');
    assert.equal(encodeKeyLevel('\ud83d\ude00'), '\ud83d\ude00');
    assert.equal(encodeKeyLevel('\u{10fffd}/'), '\u{10fffd}%2F');
    assert.equal(
      encodeKeyLevel('\u{10ffff}/'),
      '%F4%8F%BF%BF%2F',
      'the last code point is a non-character, which brokers refuse',
    );
  });

  it('gives undefined whenever a random value holds a lone surrogate', () => {
    forEachSeed((random) => {
      const lone = String.fromCharCode(0xd800 + Math.floor(random() * 0x800));
      const value = keyString(random);
      const at = Math.floor(random() * (value.length + 1));
      const spoilt = value.slice(0, at) + lone + value.slice(at);
      // Inserting into a valid pair can make a new pair only with the right half on the right side; skip those.
      if (!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(spoilt)) return;
      assert.equal(encodeKeyLevel(spoilt), undefined, JSON.stringify(spoilt));
    });
  });

  it('decodes back to the value with decodeURIComponent, and holds nothing forbidden', () => {
    forEachSeed((random) => {
      for (let i = 0; i < 20; i++) {
        const escaping = pick(random, ESCAPINGS);
        const value = keyString(random);
        const level = encodeKeyLevel(value, escaping);
        assert.equal(typeof level, 'string', JSON.stringify(value));
        assert.doesNotMatch(
          level as string,
          FORBIDDEN[escaping],
          `${escaping}: ${JSON.stringify(value)} -> ${JSON.stringify(level)}`,
        );
        assert.equal(decodeURIComponent(level as string), value, JSON.stringify(value));
        assert.equal(topicProblem(`t/${level as string}`), undefined, JSON.stringify(value));
      }
    });
  });

  // Mosquitto 2.0 closes the connection ("malformed packet") when a topic holds a Unicode non-character (U+FDD0 to
  // U+FDEF, and the last two code points of every plane): checked against mosquitto 2.0.11. A key value holding one
  // would make the broker drop the connection on that message, every time it is sent again.
  it('encodes Unicode non-characters, which Mosquitto refuses in topics', () => {
    assert.equal(encodeKeyLevel('\ufffe'), '%EF%BF%BE');
    assert.equal(encodeKeyLevel('\uffff'), '%EF%BF%BF');
    assert.equal(encodeKeyLevel('\ufdd0'), '%EF%B7%90');
    assert.equal(encodeKeyLevel('\u{1ffff}'), '%F0%9F%BF%BF');
  });
  it('replaces Unicode non-characters in substituted values too', () => {
    assert.equal(renderTopic('a/{stream}', undefined, 'x\ufffe'), 'a/x_');
    assert.notEqual(topicProblem('a/\ufdd0'), undefined);
  });
});

describe('key topics as a whole', () => {
  it('give distinct topics for distinct key tuples', () => {
    forEachSeed((random, seed) => {
      const stream = pick(random, [
        streamTopic('devices/{key}/config', undefined, 'users', false),
        streamTopic('{stream}', undefined, 'users', true),
        streamTopic('{key}', undefined, 'users', false),
      ]);
      const fields = 1 + Math.floor(random() * 3);
      const escaping = pick(random, ESCAPINGS);
      const seen = new Map<string, string>();
      for (let i = 0; i < 200; i++) {
        const values = Array.from({ length: fields }, () => keyString(random));
        const tuple = JSON.stringify(values);
        const topic = fillTopic(stream, encodeAll(values, escaping), []);
        const earlier = seen.get(topic);
        assert.ok(
          earlier === undefined || earlier === tuple,
          `seed ${seed}: ${earlier} and ${tuple} share the topic ${JSON.stringify(topic)}`,
        );
        seen.set(topic, tuple);
        assert.deepEqual(keyLevelsOf(topic, stream).map(decodeURIComponent), values);
      }
    });
  });

  it('tell apart the tuples that differ only in where a / or an empty value is', () => {
    const stream = streamTopic('{stream}', undefined, 'users', true);
    const tuples = [
      ['a/b', ''],
      ['a', 'b/'],
      ['a', '/b'],
      ['a/', 'b'],
      ['', 'a/b'],
      ['a', 'b'],
      ['ab', ''],
      ['', 'ab'],
      ['', ''],
      ['%2F', ''],
      ['/', ''],
      ['', '/'],
    ];
    const topics = tuples.map((tuple) => fillTopic(stream, encodeAll(tuple), []));
    assert.equal(new Set(topics).size, tuples.length, topics.join(' '));
  });
});

describe('fields in patterns', () => {
  it('reads dot paths and JSON Pointers, and says what is wrong with one that names no field', () => {
    assert.deepEqual(fieldPath('site'), ['site']);
    assert.deepEqual(fieldPath('device.id'), ['device', 'id']);
    assert.deepEqual(fieldPath('/a.b/c'), ['a.b', 'c']);
    assert.deepEqual(fieldPath('/a~1b/c~0d'), ['a/b', 'c~d']);
    assert.deepEqual(fieldPath('/'), ['']);
    assert.match(String(fieldPath('')), /names no field/);
    assert.match(String(fieldPath('a..b')), /JSON Pointer/);
    assert.match(String(fieldPath('/a~2')), /~0 \(for ~\) or ~1/);
  });

  it('finds the fields of a pattern in order, a JSON Pointer with slashes as one level', () => {
    assert.deepEqual(patternLevels('a/{field:/x.y/z}/{stream}'), ['a', '{field:/x.y/z}', '{stream}']);
    assert.deepEqual(
      patternFields('p/{field:site}/{key}/{field:/a.b/c}').map((field) => [field.placeholder, field.path]),
      [
        ['{field:site}', ['site']],
        ['{field:/a.b/c}', ['a.b', 'c']],
      ],
    );
  });

  it('makes a template with a slot per field and the key, and fills and filters it', () => {
    const topic = streamTopic('p/{field:site}/{namespace}/{key}/{field:line}', undefined, 'users', false);
    assert.deepEqual(topic, {
      texts: ['p/', '/', '/', ''],
      slots: [{ kind: 'field', field: 0 }, { kind: 'key' }, { kind: 'field', field: 1 }],
    });
    assert.equal(fillTopic(topic, ['k1', 'k2'], ['eu', '3']), 'p/eu/k1/k2/3');
    assert.equal(topicFilter(topic, 2), 'p/+/+/+/+');
    // Keyed by the mode without {key}: the key's levels follow every field level.
    assert.deepEqual(streamTopic('{stream}/{field:site}', undefined, 'users', true).slots, [
      { kind: 'field', field: 0 },
      { kind: 'key' },
    ]);
  });

  it('refuses a placeholder it does not know, naming it and listing the known ones', () => {
    for (const pattern of ['a/{strem}', '{namespace}/{field:}', 'x/{fields:a}', 'a/{b', 'a/{}']) {
      assert.match(
        patternProblem(pattern) ?? '',
        /\{namespace\}, \{stream\}, \{key\} and \{field:PATH\}|names no field/,
        pattern,
      );
    }
    assert.match(
      patternProblem('a/{strem}') ?? '',
      /it contains \{strem\}, which is not a placeholder the connector knows/,
    );
  });

  it('wants each field placeholder as a level of its own, and refuses {key} where none is allowed', () => {
    assert.match(patternProblem('a/site-{field:site}') ?? '', /\{field:site\} must be a topic level of its own/);
    assert.match(patternProblem('a/{field:site}/x{field:site}') ?? '', /must be a topic level of its own/);
    assert.equal(patternProblem('a/{field:site}/{field:site}'), undefined);
    assert.equal(patternProblem('dead/{stream}/{field:/a.b/c}', false), undefined);
    assert.match(
      patternProblem('dead/{key}', false) ?? '',
      /\{key\}, which is not a placeholder .*\{namespace\}, \{stream\} and \{field:PATH\}/,
    );
  });

  it('lets a field value hold what a literal level may not: wildcards are only refused in the literal parts', () => {
    assert.equal(patternProblem('{field:a+b}'), undefined);
    assert.match(patternProblem('x+/{field:a}') ?? '', /wildcard/);
  });
});

describe('patternProblem with {key}', () => {
  it('accepts {key} as a whole level, once', () => {
    for (const pattern of [
      'devices/{key}/config',
      '{key}',
      '{namespace}/{stream}/{key}',
      '{key}/{stream}',
      '$aws/things/{key}/shadow/update',
      'a//{key}/',
    ]) {
      assert.equal(patternProblem(pattern), undefined, pattern);
    }
  });

  it('rejects {key} more than once', () => {
    assert.match(patternProblem('a/{key}/{key}') ?? '', /more than once/);
    assert.match(patternProblem('{key}/{stream}/{key}') ?? '', /more than once/);
  });

  it('rejects {key} that is only part of a level', () => {
    for (const pattern of ['devices/id-{key}', 'devices/{key}.json', '{stream}{key}', '{key}{key}', 'a/{key}b/c']) {
      assert.match(patternProblem(pattern) ?? '', /level of its own/, pattern);
    }
  });

  it('rejects a second {key} inside a level when a whole-level {key} is there too', () => {
    assert.notEqual(patternProblem('a/{key}/b{key}'), undefined);
    assert.notEqual(patternProblem('{key}/x-{key}'), undefined);
  });

  it('still reports wildcards and NUL the pattern itself holds next to a {key}', () => {
    assert.match(patternProblem('+/{key}') ?? '', /wildcard/);
    assert.match(patternProblem('{key}/#') ?? '', /wildcard/);
    assert.match(patternProblem('{key}/a\u0000') ?? '', /U\+0000/);
  });
});

describe('renderTopic and the leading $', () => {
  it('replaces a $ a substituted value would start the topic with', () => {
    assert.equal(renderTopic('{stream}', undefined, '$SYS'), '_SYS');
    assert.equal(renderTopic('{stream}', undefined, '$'), '_');
    assert.equal(renderTopic('{namespace}/{stream}', undefined, '$share/g'), '_share/g');
    assert.equal(renderTopic('{namespace}{stream}', '', '$x'), '_x');
    assert.equal(renderTopic('{namespace}.{stream}', '$crm', 'users'), '_crm.users');
  });

  it('keeps a $ a substituted value brings anywhere else', () => {
    assert.equal(renderTopic('a/{stream}', undefined, '$SYS'), 'a/$SYS');
    assert.equal(renderTopic('{namespace}/{stream}', 'crm', '$x'), 'crm/$x');
    assert.equal(renderTopic('x{stream}', undefined, '$x'), 'x$x');
  });

  it('keeps a $ the pattern starts with', () => {
    assert.equal(renderTopic('$aws/rules/{stream}', undefined, 'users'), '$aws/rules/users');
    assert.equal(renderTopic('${stream}', undefined, 'x'), '$x');
    assert.equal(renderTopic('$', undefined, 'x'), '$');
  });

  it('starts the topic with $ exactly when the pattern does, whatever the values', () => {
    const parts = ['{namespace}', '{stream}', '$', '$a', 'a', '', 'a$'];
    const values = ['', '$', '$x', 'x', '$/$', '/$', 'x/$', '+$', '\u0000$'];
    forEachSeed((random) => {
      const levels = Array.from(
        { length: 1 + Math.floor(random() * 3) },
        () => pick(random, parts) + (random() < 0.3 ? pick(random, parts) : ''),
      );
      const pattern = levels.join('/');
      const namespace = random() < 0.3 ? undefined : pick(random, values);
      const topic = renderTopic(pattern, namespace, pick(random, values));
      assert.equal(
        topic.startsWith('$'),
        pattern.startsWith('$'),
        `${JSON.stringify(pattern)} -> ${JSON.stringify(topic)}`,
      );
    });
  });
});
