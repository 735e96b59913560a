/**
 * How `write` stops: bad input, unknown streams, invalid topics, and a broker that withholds acknowledgements. In
 * every case: one TRACE error with the right failure_type, a non-zero exit, and no state the broker's
 * acknowledgements do not cover.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { runConnector, runWrite, writeTempJson } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { startProxy } from '../support/proxy.js';

const EVENTS = { name: 'events' };
const USERS = { name: 'users', namespace: 'crm' };
const CATALOG = catalogOf([EVENTS, USERS]);

/** MQTT 3.1.1 CONNACK is four bytes; holding everything after it means no PUBACK or PUBREC reaches the connector. */
const CONNACK_BYTES = 4;

const broker = withAedes();

/** Failures of the publishing connection: delivery verification (its own connection through the proxy) stays off. */
function config(port: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    broker_host: '127.0.0.1',
    broker_port: port,
    topic_pattern: 'fail/{namespace}/{stream}',
    verify_delivery: false,
    ...overrides,
  };
}

describe('write stops cleanly on bad input', () => {
  it('fails on a line that is not JSON, naming the line and never echoing it', async () => {
    const input = [
      recordLine(EVENTS, { a: 1 }),
      '',
      '{"type":"RECORD","record":{"data":{"ssn":"123-45-6789"',
      recordLine(EVENTS, { a: 2 }),
    ].join('\n');
    const result = await runWrite(config(broker.port), CATALOG, input);
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'system_error');
    assert.match(String(error.message), /^Input line 3: is not valid JSON \(\d+ characters/);
    assert.doesNotMatch(result.stdout + result.stderr, /123-45-6789/);
    assert.ok(
      !broker.received.some((p) => p.payload.toString().includes('"a":2')),
      'nothing after the bad line is published',
    );
  });

  it('fails on a record of a stream that is not in the catalog, naming the stream and the line', async () => {
    const input = [recordLine(EVENTS, { a: 1 }), recordLine({ name: 'users', namespace: 'other' }, { a: 1 })].join(
      '\n',
    );
    const result = await runWrite(config(broker.port), CATALOG, input);
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.match(
      String(error.message),
      /^Input line 2: record of stream "other\.users", which is not in the configured catalog/,
    );
    assert.equal(typeof (result.ofType('TRACE')[0]?.trace as { emitted_at: unknown }).emitted_at, 'number');
  });

  it('fails with a config error naming the stream when a topic cannot be rendered, before publishing anything', async () => {
    const before = broker.received.length;
    const result = await runWrite(
      config(broker.port, { topic_pattern: '{namespace}' }),
      CATALOG,
      `${recordLine(USERS, { a: 1 })}\n`,
    );
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(String(error.message), /stream "events": the topic is empty/);
    assert.doesNotMatch(String(error.message), /crm\.users/);
    assert.equal(broker.received.length, before);
  });

  it('fails with a config error for an invalid configuration and an unreadable catalog', async () => {
    const bad = await runWrite({ broker_host: '127.0.0.1', topic_pattern: 'a/+' }, CATALOG, '');
    assert.equal(bad.code, 1);
    assert.equal(bad.traceError().failure_type, 'config_error');
    assert.match(String(bad.traceError().message), /topic_pattern/);
    const missing = await runConnector([
      'write',
      '--config',
      writeTempJson(config(broker.port)),
      '--catalog',
      '/nonexistent/catalog.json',
    ]);
    assert.equal(missing.code, 1);
    assert.match(
      String(missing.traceError().message),
      /Cannot read the catalog file \/nonexistent\/catalog\.json: ENOENT/,
    );
  });
});

describe('write never emits a state the broker has not acknowledged', () => {
  it('withholds the state when the sync fails before its records are acknowledged', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    try {
      const input = [
        recordLine(EVENTS, { a: 1 }),
        recordLine(EVENTS, { a: 2 }),
        streamStateLine(EVENTS, 'c1'),
        'not json',
      ].join('\n');
      const result = await runWrite(config(proxy.port), CATALOG, input);
      assert.equal(result.code, 1);
      assert.match(String(result.traceError().message), /Input line 4/);
      assert.equal(result.states().length, 0, 'the state must not go out: its records were never acknowledged');
      assert.match(result.stdout, /1 state message\(s\) withheld/);
    } finally {
      await proxy.close();
    }
  });

  it('emits only the states whose records were acknowledged before a failure', async () => {
    const input = [
      recordLine(EVENTS, { a: 1 }),
      streamStateLine(EVENTS, 'c1'),
      recordLine(EVENTS, { a: 2 }),
      streamStateLine(EVENTS, 'c2'),
      'not json',
    ].join('\n');
    const result = await runWrite(config(broker.port), CATALOG, input);
    assert.equal(result.code, 1);
    // Whatever got out must be covered by records the broker holds.
    for (const state of result.states()) {
      const cursor = (state.stream as { stream_state: { cursor: string } }).stream_state.cursor;
      const needed = cursor === 'c1' ? ['"a":1'] : ['"a":1', '"a":2'];
      for (const data of needed)
        assert.ok(
          broker.received.some((p) => p.payload.toString().includes(data)),
          `${cursor} emitted before ${data} was on the broker`,
        );
    }
  });

  it('pauses input while the window is full and resumes when acknowledgements come', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    const topic = 'paused/events';
    const before = broker.received.filter((p) => p.topic === topic).length;
    try {
      const window = 50;
      const total = 20_000;
      const line = (i: number): string => `${recordLine(EVENTS, { i, filler: 'x'.repeat(400) })}\n`;
      const cfg = writeTempJson(config(proxy.port, { max_inflight: window, topic_pattern: 'paused/{stream}' }));
      let offered = 0;
      const run = runConnector(['write', '--config', cfg, '--catalog', writeTempJson(CATALOG)], {
        timeoutMs: 60_000,
        onSpawn: (child) => {
          let i = 0;
          const pump = (): void => {
            while (i < total) {
              const text = line(i++);
              offered += text.length;
              if (!child.stdin?.write(text)) {
                child.stdin?.once('drain', pump);
                return;
              }
            }
            child.stdin?.end(`${streamStateLine(EVENTS, 'done')}\n`);
          };
          pump();
        },
      });
      // A full window has reached the broker and nothing is acknowledged. The connector must now stop reading.
      const published = (): number => broker.received.filter((p) => p.topic === topic).length - before;
      await proxy.whenUpstream(window * line(0).length);
      const offeredAtFull = offered;
      // Absence of activity can only be observed over time: give the connector ample opportunity to misbehave.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(published(), window, 'no message beyond the window may be sent while none is acknowledged');
      assert.ok(offered < (total * line(0).length) / 2, `input must be paused, not buffered: ${offered} bytes taken`);
      assert.ok(offered - offeredAtFull < 2_000_000, 'reading stopped once the window was full');
      proxy.release();
      const result = await run;
      assert.equal(result.code, 0, result.stdout);
      assert.equal(published(), total);
      assert.equal((result.states()[0]?.destinationStats as { recordCount: number }).recordCount, total);
    } finally {
      await proxy.close();
    }
  });
});
