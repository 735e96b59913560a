/**
 * Faults between the connector and the broker, and input that breaks the rules. Each test asserts on what the broker
 * received and on every state emitted: nothing lost, no state ahead of the broker's acknowledgements, no hang, and one
 * clear error when the sync cannot go on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { type RunResult, runWrite, startWrite, logMessages } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { startProxy } from '../support/proxy.js';

const EVENTS = { name: 'events' };
const CATALOG = catalogOf([EVENTS]);
/** An MQTT 3.1.1 CONNACK is 4 bytes, and so is each PUBACK. */
const CONNACK_BYTES = 4;
const PUBACK_BYTES = 4;

const broker = withAedes();

/** Faults of the publishing connection: delivery verification (its own connection through the proxy) stays off. */
function config(port: number, topic: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    broker_host: '127.0.0.1',
    broker_port: port,
    topic_pattern: `faults/${topic}/{stream}`,
    verify_delivery: false,
    ...overrides,
  };
}

/** `count` records keyed `0..count-1`, a STREAM state with cursor = records so far after every `every` records. */
function syncInput(count: number, every: number, filler = 100): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(recordLine(EVENTS, { k: i, filler: 'x'.repeat(filler) }));
    if ((i + 1) % every === 0) lines.push(streamStateLine(EVENTS, i + 1));
  }
  return lines;
}

/** How many times the broker received each record key on `topic`. */
function receivedKeys(topic: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const packet of broker.received) {
    if (packet.topic !== `faults/${topic}/events`) continue;
    const { k } = (JSON.parse(packet.payload.toString()) as { _airbyte_data: { k: number } })._airbyte_data;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** Every emitted state's cursor is the number of records before it: each of those must be on the broker. */
function assertStatesCovered(result: RunResult, keys: Map<number, number>): number {
  let last = 0;
  for (const state of result.states()) {
    const cursor = (state.stream as { stream_state: { cursor: number } }).stream_state.cursor;
    assert.ok(cursor > last, 'states in input order');
    for (let k = 0; k < cursor; k++)
      assert.ok(keys.has(k), `state ${cursor} emitted but record ${k} is not on the broker`);
    last = cursor;
  }
  return last;
}

function assertComplete(result: RunResult, topic: string, count: number, every: number): Map<number, number> {
  assert.equal(result.code, 0, result.stdout);
  const keys = receivedKeys(topic);
  for (let k = 0; k < count; k++) assert.ok(keys.has(k), `record ${k} never reached the broker`);
  const states = result.states();
  assert.equal(states.length, count / every);
  for (const state of states) assert.deepEqual(state.destinationStats, { recordCount: every });
  assertStatesCovered(result, keys);
  return keys;
}

function duplicates(keys: Map<number, number>): number {
  let extra = 0;
  for (const n of keys.values()) extra += n - 1;
  return extra;
}

describe('connection loss mid-sync', () => {
  it('reconnects after a cut and republishes what was not acknowledged', async () => {
    const proxy = await startProxy(broker.port);
    const lines = syncInput(20_000, 1000);
    const bytes = lines.join('\n').length;
    // Cut the first connection a third of the way through.
    proxy.onConnection((connection) => {
      if (connection.index === 0) void proxy.whenUpstream(bytes / 3, 20_000).then(() => connection.cut());
    });
    try {
      const result = await runWrite(
        config(proxy.port, 'once', { max_inflight: 200 }),
        CATALOG,
        `${lines.join('\n')}\n`,
      );
      const keys = assertComplete(result, 'once', 20_000, 1000);
      assert.equal(proxy.connections.length, 2);
      const [lost] = logMessages(result, /^The connection to the broker was lost/);
      // A reset reads as ECONNRESET, or, when it lands between reads, as a plain close.
      assert.match(
        lost ?? '',
        /lost \((ECONNRESET|EPIPE|closed by the broker or the network)\) with \d+ message\(s\) not yet acknowledged/,
      );
      const [restored] = logMessages(result, /^Reconnected after/);
      const resent = Number(/sending the (\d+) unacknowledged/.exec(restored ?? '')?.[1]);
      assert.ok(resent <= 200, `at most the window is in flight, ${resent}`);
      assert.ok(
        duplicates(keys) <= resent,
        `only messages in flight at the cut may arrive twice: ${duplicates(keys)} > ${resent}`,
      );
    } finally {
      await proxy.close();
    }
  });

  it('survives repeated cuts, each with messages in flight, at QoS 2', async () => {
    const proxy = await startProxy(broker.port);
    const lines = syncInput(3000, 100);
    // Three connections acknowledge a few messages, then hold the rest back and are cut while the connector waits.
    // They live longer than a takeover would allow (2 s), so the cuts read as network faults.
    proxy.onConnection((connection) => {
      if (connection.index > 2) return;
      connection.holdAfter(CONNACK_BYTES + 2 * PUBACK_BYTES * 10 * (connection.index + 1));
      setTimeout(() => connection.cut(), 2600);
    });
    try {
      const result = await runWrite(
        config(proxy.port, 'repeated', { message_qos: 'EXACTLY_ONCE' }),
        CATALOG,
        `${lines.join('\n')}\n`,
        { timeoutMs: 40_000 },
      );
      assertComplete(result, 'repeated', 3000, 100);
      assert.equal(proxy.connections.length, 4);
      const restored = logMessages(result, /^Reconnected after/);
      assert.equal(restored.length, 3);
      for (const line of restored)
        assert.match(line, /in a new session; sending the [1-9]\d* unacknowledged message\(s\) again/);
    } finally {
      await proxy.close();
    }
  });

  it('recognises a connection closed again and again right after it receives messages, and blames them rather than a client ID', async () => {
    const proxy = await startProxy(broker.port);
    proxy.onConnection((connection) => {
      connection.holdAfter(CONNACK_BYTES);
      void proxy.whenUpstream(proxy.upstreamBytes + 500).then(() => connection.cut());
    });
    try {
      const lines = syncInput(5000, 100);
      const result = await runWrite(
        config(proxy.port, 'quick', { client: 'airbyte-twin' }),
        CATALOG,
        `${lines.join('\n')}\n`,
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /closed the connection 3 times in a row within 2 s of accepting it, each time after receiving messages it did not acknowledge \(last: .*the first a message at QoS 1, not retained, on topic "faults\/quick\/events" \(payload \d+ bytes\)\)\. It refuses something about them rather than another client taking the session over\. Likely causes, most likely first: \(1\) /,
      );
      assert.doesNotMatch(String(error.message), /another client is connected/);
      assert.equal(result.states().length, 0, 'nothing was acknowledged');
      assert.equal(proxy.connections.length, 3);
    } finally {
      await proxy.close();
    }
  });

  it('fails at once with a transient error when automatic_reconnect is off, emitting only covered states', async () => {
    const proxy = await startProxy(broker.port);
    const lines = syncInput(20_000, 500);
    proxy.onConnection(
      (connection) => void proxy.whenUpstream(lines.join('\n').length / 2, 20_000).then(() => connection.cut()),
    );
    try {
      const result = await runWrite(
        config(proxy.port, 'noreconnect', { automatic_reconnect: false }),
        CATALOG,
        `${lines.join('\n')}\n`,
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'transient_error');
      assert.match(
        String(error.message),
        /connection to the broker was lost \((ECONNRESET|EPIPE|closed by the broker or the network)\) and "Automatic reconnect" \(automatic_reconnect\) is off/,
      );
      assert.equal(proxy.connections.length, 1);
      const covered = assertStatesCovered(result, receivedKeys('noreconnect'));
      assert.ok(covered < 20_000, 'the last state cannot have gone out');
    } finally {
      await proxy.close();
    }
  });

  it('gives up with a transient error when the broker stays unreachable beyond reconnect_timeout_seconds', async () => {
    const proxy = await startProxy(broker.port);
    // After the cut the "broker" accepts TCP and never answers CONNECT.
    proxy.onConnection((connection) => {
      connection.holdAfter(CONNACK_BYTES);
      void proxy.whenUpstream(2000).then(() => {
        proxy.mode = 'silent';
        connection.cut();
      });
    });
    try {
      const lines = syncInput(2000, 100);
      const result = await runWrite(
        config(proxy.port, 'unreachable', { reconnect_timeout_seconds: 3, connect_timeout: 1 }),
        CATALOG,
        `${lines.join('\n')}\n`,
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'transient_error');
      assert.match(
        String(error.message),
        /could not be reached again within 3 s of losing the connection \("Reconnect timeout \(seconds\)" \(reconnect_timeout_seconds\)\), after [1-9]\d* attempt\(s\); last: The broker at mqtt:\/\/127\.0\.0\.1:\d+ did not accept the connection within 1 s/,
      );
      assert.equal(result.states().length, 0);
      assert.ok(result.elapsedMs < 10_000, `gave up in ${result.elapsedMs} ms`);
    } finally {
      await proxy.close();
    }
  });

  it('fails within the connect timeout when the broker accepts TCP and never answers CONNECT', async () => {
    const proxy = await startProxy(broker.port);
    proxy.mode = 'silent';
    try {
      const result = await runWrite(
        config(proxy.port, 'silent', { connect_timeout: 1 }),
        CATALOG,
        `${syncInput(10, 10).join('\n')}\n`,
      );
      assert.equal(result.code, 1);
      assert.equal(result.traceError().failure_type, 'transient_error');
      assert.match(String(result.traceError().message), /did not accept the connection within 1 s/);
      assert.equal(result.states().length, 0);
    } finally {
      await proxy.close();
    }
  });
});

describe('input the broker cannot take, or that breaks the rules', () => {
  it('fails before sending a record larger than max_message_bytes, naming the stream, the line and the size', async () => {
    const lines = [
      recordLine(EVENTS, { k: 0 }),
      streamStateLine(EVENTS, 1),
      recordLine(EVENTS, { k: 1, big: 'x'.repeat(2000) }),
      recordLine(EVENTS, { k: 2 }),
    ];
    const result = await runWrite(
      config(broker.port, 'toolarge', { max_message_bytes: 1024 }),
      CATALOG,
      `${lines.join('\n')}\n`,
    );
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /^Input line 3: the record of stream "events" makes a 2\d{3}-byte MQTT message, larger than the 1024 bytes allowed by "Maximum message size \(bytes\)" \(max_message_bytes\)/,
    );
    const keys = receivedKeys('toolarge');
    assert.ok(!keys.has(1) && !keys.has(2), 'neither the large record nor anything after it is published');
    assertStatesCovered(result, keys);
  });

  it('publishes records of 10 MB intact', async () => {
    const big = (i: number): string => `${String(i)}${'é'.repeat(5 * 1024 * 1024)}`;
    const lines = [0, 1, 2].map((i) => recordLine(EVENTS, { k: i, text: big(i) }));
    lines.push(streamStateLine(EVENTS, 3));
    const result = await runWrite(config(broker.port, 'huge'), CATALOG, lines.join('\n'), { timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stdout.slice(0, 2000));
    const packets = broker.received.filter((p) => p.topic === 'faults/huge/events');
    assert.equal(packets.length, 3);
    for (const [i, packet] of packets.entries()) {
      const data = (JSON.parse(packet.payload.toString()) as { _airbyte_data: { k: number; text: string } })
        ._airbyte_data;
      assert.equal(data.k, i);
      assert.ok(data.text === big(i), `record ${i} arrived intact (${data.text.length} characters)`);
    }
    assert.deepEqual(result.states()[0]?.destinationStats, { recordCount: 3 });
  });

  it('fails on invalid UTF-8, naming the line, without publishing it or anything after it', async () => {
    const input = Buffer.concat([
      Buffer.from(`${recordLine(EVENTS, { k: 0 })}\n${streamStateLine(EVENTS, 1)}\n`),
      Buffer.from(recordLine(EVENTS, { k: 1, name: 'caf\u00e9' }).replace('caf\u00e9', 'caf')),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`\n${recordLine(EVENTS, { k: 2 })}\n`),
    ]);
    const result = await runWrite(config(broker.port, 'utf8'), CATALOG, input);
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'system_error');
    assert.match(String(error.message), /^Input line 3: is not valid UTF-8/);
    const keys = receivedKeys('utf8');
    assert.ok(!keys.has(1) && !keys.has(2));
    assertStatesCovered(result, keys);
  });
});

describe('interruption and progress', () => {
  it('on SIGTERM stops reading, emits the states acknowledged within the grace period, and exits non-zero', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    const lines = syncInput(50_000, 50);
    const window = 100;
    try {
      const run = startWrite(
        config(proxy.port, 'sigterm', { max_inflight: window, shutdown_grace_seconds: 60 }),
        CATALOG,
        {
          onSpawn: (child) => child.stdin?.write(`${lines.join('\n')}\n`),
        },
      );
      const perRecord = lines[0]?.length ?? 0;
      await proxy.whenUpstream(window * perRecord);
      run.child.kill('SIGTERM');
      await run.waitForLine(
        /Received SIGTERM: reading no more input; waiting up to 60 s for the broker to acknowledge 100 message/,
      );
      proxy.release();
      const result = await run.result;
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'transient_error');
      assert.match(
        String(error.message),
        /^The sync was interrupted by SIGTERM before its input was complete: 100 of 100 record\(s\) acknowledged by the broker, [12] state message\(s\) emitted/,
      );
      const keys = receivedKeys('sigterm');
      assert.equal(keys.size, window, 'no record was read after the signal');
      assert.ok(
        assertStatesCovered(result, keys) >= 50,
        'the acknowledgements during the grace period released their states',
      );
    } finally {
      await proxy.close();
    }
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`on ${signal} waits no longer than the grace period, and emits no state the broker has not acknowledged`, async () => {
      const proxy = await startProxy(broker.port);
      proxy.holdDownstream(CONNACK_BYTES);
      const lines = syncInput(50_000, 50);
      try {
        const run = startWrite(
          config(proxy.port, signal.toLowerCase(), { max_inflight: 100, shutdown_grace_seconds: 1 }),
          CATALOG,
          {
            onSpawn: (child) => child.stdin?.write(`${lines.join('\n')}\n`),
          },
        );
        await proxy.whenUpstream(100 * (lines[0]?.length ?? 0));
        run.child.kill(signal);
        const result = await run.result;
        assert.equal(result.code, 1);
        assert.match(
          String(result.traceError().message),
          new RegExp(
            `^The sync was interrupted by ${signal} before its input was complete: 0 of 100 record\\(s\\) acknowledged by the broker, 0 state message\\(s\\) emitted, [12] withheld`,
          ),
        );
        // The broker has every record of the states read so far, but acknowledged none: no state may go out.
        assert.equal(receivedKeys(signal.toLowerCase()).size, 100);
        assert.equal(result.states().length, 0);
        assert.ok(result.elapsedMs < 15_000, `stopped after ${result.elapsedMs} ms`);
      } finally {
        await proxy.close();
      }
    });
  }

  it('logs progress while records are in flight, and a summary per stream at the end', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    const lines = syncInput(1000, 100);
    try {
      const run = startWrite(config(proxy.port, 'progress', { max_inflight: 300 }), CATALOG, {
        env: { LOG_PROGRESS_SECONDS: '1' },
        onSpawn: (child) => child.stdin?.end(`${lines.join('\n')}\n`),
      });
      const line = await run.waitForLine(/Progress:/);
      assert.match(
        line,
        /Progress: 300 record\(s\) received, 0 acknowledged, 300 in flight, 0 state\(s\) emitted; 0 record\(s\)\/s acknowledged over the last \d+\.\d s; \d+ input byte\(s\) read/,
      );
      proxy.release();
      const result = await run.result;
      assert.equal(result.code, 0, result.stdout);
      assert.equal(
        logMessages(
          result,
          /^Stream "events": 1000 record\(s\), \d+ payload bytes, published to "faults\/progress\/events"\.$/,
        ).length,
        1,
      );
    } finally {
      await proxy.close();
    }
  });
});
