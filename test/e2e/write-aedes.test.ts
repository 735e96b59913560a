/**
 * `write` end to end against aedes: the connector runs as its own process, a separate client subscribes, and what
 * arrived is compared with what was sent, for every QoS and every kind of state.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { PROJECT_ROOT, runWrite } from '../support/connector.js';
import { assertDelivered } from '../support/expect.js';
import { catalogOf, globalStateLine, legacyStateLine, recordLine, streamStateLine } from '../support/messages.js';
import { subscribe } from '../support/subscriber.js';

const USERS = { name: 'users', namespace: 'crm' };
const EVENTS = { name: 'events' };
const CATALOG = catalogOf([USERS, EVENTS]);
const QOS_NAMES = ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'] as const;

const broker = withAedes();

function config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    broker_host: '127.0.0.1',
    broker_port: broker.port,
    topic_pattern: 'airbyte/{namespace}/{stream}',
    ...overrides,
  };
}

/** Records of two streams with exact-number payloads, and states of the given kind every few records. */
function scenario(kind: 'STREAM' | 'GLOBAL' | 'LEGACY', prefix: string, records = 60) {
  const lines: string[] = [];
  const expected: { topic: string; stream: string; dataJson: string; emittedAt: number }[] = [];
  const expectedStates: { cursor: number; count: number }[] = [];
  let sinceUsers = 0;
  let sinceEvents = 0;
  let sinceAny = 0;
  for (let i = 0; i < records; i++) {
    const stream = i % 3 === 0 ? EVENTS : USERS;
    const dataJson = `{"i":${i},"big":${9007199254740993n + BigInt(i)},"price":0.1000000000000000055511151231257827${i},"text":"${prefix} \\"quoted\\" é"}`;
    lines.push(recordLine(stream, dataJson, 1_700_000_000_000 + i));
    expected.push({
      topic: stream === USERS ? `${prefix}/crm/users` : `${prefix}/events`,
      stream: stream.name,
      dataJson,
      emittedAt: 1_700_000_000_000 + i,
    });
    sinceAny++;
    if (stream === USERS) sinceUsers++;
    else sinceEvents++;
    if (i % 7 === 6) {
      const cursor = 12345678901234567000 + i;
      if (kind === 'STREAM') {
        lines.push(streamStateLine(stream, cursor));
        expectedStates.push({ cursor, count: stream === USERS ? sinceUsers : sinceEvents });
        if (stream === USERS) sinceUsers = 0;
        else sinceEvents = 0;
      } else {
        lines.push(kind === 'GLOBAL' ? globalStateLine(cursor) : legacyStateLine(cursor));
        expectedStates.push({ cursor, count: sinceAny });
        sinceAny = 0;
      }
    }
  }
  return { input: `${lines.join('\n')}\n`, lines, expected, expectedStates };
}

describe('write against aedes', () => {
  for (const kind of ['STREAM', 'GLOBAL', 'LEGACY'] as const) {
    for (const qos of [0, 1, 2] as const) {
      it(`delivers every record and echoes every ${kind} state at QoS ${qos}`, async () => {
        const prefix = `t-${kind.toLowerCase()}-${qos}`;
        const { input, lines, expected, expectedStates } = scenario(kind, prefix);
        const subscriber = await subscribe(broker.url, `${prefix}/#`);
        try {
          const result = await runWrite(
            config({ topic_pattern: `${prefix}/{namespace}/{stream}`, message_qos: QOS_NAMES[qos] }),
            CATALOG,
            input,
          );
          assert.equal(result.code, 0, result.stdout + result.stderr);
          const deliveries = await subscriber.waitFor(expected.length);
          assertDelivered(deliveries, expected);
          assert.ok(deliveries.every((d) => d.qos === qos && !d.retain));

          // Each state comes back exactly as sent plus destinationStats, byte for byte, in input order.
          const stateLines = lines.filter((l) => l.includes('"type":"STATE"'));
          const emitted = result.stdout.split('\n').filter((l) => l.includes('"type":"STATE"'));
          assert.equal(emitted.length, expectedStates.length);
          emitted.forEach((line, i) => {
            const sent = stateLines[i] as string;
            const count = (expectedStates[i] as { count: number }).count;
            assert.equal(line, `${sent.slice(0, -2)},"destinationStats":{"recordCount":${count}.0}}}`);
          });
          assert.equal(result.ofType('TRACE').length, 0);
        } finally {
          await subscriber.close();
        }
      });
    }
  }

  it('publishes integration_tests/messages.jsonl to the rendered topics, big numbers exact', async () => {
    const subscriber = await subscribe(broker.url, 'airbyte/#');
    try {
      const catalog = JSON.parse(
        readFileSync(join(PROJECT_ROOT, 'integration_tests/configured_catalog.json'), 'utf8'),
      ) as Record<string, unknown>;
      const input = readFileSync(join(PROJECT_ROOT, 'integration_tests/messages.jsonl'), 'utf8');
      const result = await runWrite(config(), catalog, input);
      assert.equal(result.code, 0, result.stdout);
      const deliveries = await subscriber.waitFor(6);
      assert.deepEqual(deliveries.map((d) => d.topic).sort(), [
        'airbyte/crm/orders',
        'airbyte/crm/orders',
        'airbyte/crm/users',
        'airbyte/crm/users',
        'airbyte/sensor_readings',
        'airbyte/sensor_readings',
      ]);
      const order = deliveries.find((d) => d.payload.includes('9007199254740993'));
      assert.match(
        order?.payload ?? '',
        /"_airbyte_data":\{"order_id":9007199254740993,"user_id":1,"total":19\.990000000000000213\}/,
      );
      const states = result.states();
      assert.equal(states.length, 3);
      assert.deepEqual(
        states.map((s) => (s.destinationStats as { recordCount: number }).recordCount),
        [2, 2, 2],
      );
      assert.match(result.stdout, /"last_id":12345678901234567890/);
    } finally {
      await subscriber.close();
    }
  });

  it('publishes with the retain flag when message_retained is on', async () => {
    const result = await runWrite(
      config({ topic_pattern: 'retained/{stream}', message_retained: true }),
      CATALOG,
      `${recordLine(EVENTS, { v: 1 })}\n${recordLine(EVENTS, { v: 2 })}\n`,
    );
    assert.equal(result.code, 0, result.stdout);
    // A subscriber that arrives afterwards gets the last message, flagged as retained.
    const late = await subscribe(broker.url, 'retained/#');
    try {
      const [delivery] = await late.waitFor(1);
      assert.equal(delivery?.topic, 'retained/events');
      assert.equal(delivery?.retain, true);
      assert.match(delivery?.payload ?? '', /"_airbyte_data":\{"v":2\}/);
    } finally {
      await late.close();
    }
  });

  it('skips blank lines and ignores TRACE, LOG and unknown messages', async () => {
    const subscriber = await subscribe(broker.url, 'blank/#');
    try {
      const input = [
        '',
        '   ',
        '{"type":"LOG","log":{"level":"INFO","message":"x"}}',
        recordLine(EVENTS, { a: 1 }),
        '\t',
        '{"type":"TRACE","trace":{"type":"STREAM_STATUS"}}',
        '{"type":"CONTROL"}',
        streamStateLine(EVENTS, 1),
        '',
      ].join('\n');
      const result = await runWrite(config({ topic_pattern: 'blank/{stream}' }), CATALOG, input);
      assert.equal(result.code, 0, result.stdout);
      await subscriber.waitFor(1);
      assert.equal(result.states().length, 1);
    } finally {
      await subscriber.close();
    }
  });

  it('accepts input without a final newline and with CRLF line ends', async () => {
    const subscriber = await subscribe(broker.url, 'crlf/#');
    try {
      const input = `${recordLine(EVENTS, { a: 1 })}\r\n${recordLine(EVENTS, { a: 2 })}\r\n${streamStateLine(EVENTS, 'end')}`;
      const result = await runWrite(config({ topic_pattern: 'crlf/{stream}' }), CATALOG, input);
      assert.equal(result.code, 0, result.stdout);
      assertDelivered(await subscriber.waitFor(2), [
        { topic: 'crlf/events', stream: 'events', dataJson: '{"a":1}' },
        { topic: 'crlf/events', stream: 'events', dataJson: '{"a":2}' },
      ]);
      assert.equal((result.states()[0]?.destinationStats as { recordCount: number }).recordCount, 2);
    } finally {
      await subscriber.close();
    }
  });

  it('logs the effective configuration without secrets, and honours LOG_LEVEL', async () => {
    const input = `${recordLine(EVENTS, { a: 1 })}\n`;
    const secretConfig = config({ topic_pattern: 'logs/{stream}', username: 'u', password: 'sw0rdf1sh-secret' });
    const info = await runWrite(secretConfig, CATALOG, input);
    assert.equal(info.code, 0, info.stdout);
    const effective = info
      .ofType('LOG')
      .map((m) => (m.log as { message: string }).message)
      .find((m) => m.startsWith('Effective configuration: '));
    assert.ok(effective, info.stdout);
    const described = JSON.parse(effective.slice('Effective configuration: '.length)) as Record<
      'broker' | 'messages',
      Record<string, unknown>
    >;
    assert.equal(described.broker.password, '**********');
    assert.equal(described.messages.topicPattern, 'logs/{stream}');
    assert.equal(described.messages.qos, 1);
    assert.doesNotMatch(info.stdout + info.stderr, /sw0rdf1sh/);
    assert.ok(!info.ofType('LOG').some((m) => (m.log as { level: string }).level === 'DEBUG'));

    const debug = await runWrite(secretConfig, CATALOG, input, { env: { LOG_LEVEL: 'debug' } });
    assert.match(debug.stdout, /"level":"DEBUG","message":"Connected; broker limits: none announced\."/);
    const quiet = await runWrite(secretConfig, CATALOG, input, { env: { LOG_LEVEL: 'WARN' } });
    assert.equal(quiet.code, 0);
    assert.deepEqual(quiet.ofType('LOG'), []);
    assert.equal(quiet.states().length, 0);
  });

  it('publishes one message at a time with publisher_sync', async () => {
    const subscriber = await subscribe(broker.url, 'sync/#');
    try {
      const lines = Array.from({ length: 30 }, (_, i) => recordLine(EVENTS, { i }));
      const result = await runWrite(
        config({ topic_pattern: 'sync/{stream}', publisher_sync: true }),
        CATALOG,
        `${lines.join('\n')}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /up to 1 message\(s\) in flight/);
      assert.deepEqual(
        (await subscriber.waitFor(30)).map(
          (d) => (JSON.parse(d.payload) as { _airbyte_data: { i: number } })._airbyte_data.i,
        ),
        Array.from({ length: 30 }, (_, i) => i),
      );
    } finally {
      await subscriber.close();
    }
  });
});
