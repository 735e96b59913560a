/**
 * Parallel connections and rate limits against Mosquitto: each key's records in order across connections, states held
 * until every connection has acknowledged what came before them, one connection lost and reconnected while the others
 * go on, another client taking over one connection's client ID, and a message rate held.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { runWrite, startWrite, logMessages, streamCursors } from '../support/connector.js';
import { recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { startProxy } from '../support/proxy.js';
import { type Delivery, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const ORDERS = { name: 'orders', namespace: 'shop' };
/** An MQTT 3.1.1 CONNACK: what the broker sends after it, held back, leaves every message unacknowledged. */
const CONNACK_BYTES = 4;

/** A catalog whose one stream has the primary key `order_id`. */
const CATALOG = {
  streams: [
    {
      stream: {
        name: ORDERS.name,
        namespace: ORDERS.namespace,
        json_schema: { type: 'object' },
        supported_sync_modes: ['incremental'],
      },
      sync_mode: 'incremental',
      destination_sync_mode: 'append',
      primary_key: [['order_id']],
    },
  ],
};

/** `count` records over `keys` order ids, each key's `seq` counting up; a STREAM state every `every` records. */
function orderLines(count: number, keys: number, every: number): string[] {
  const out: string[] = [];
  const seq = new Array<number>(keys).fill(0);
  for (let i = 0; i < count; i++) {
    const key = (i * 7) % keys;
    const next = seq[key] ?? 0;
    seq[key] = next + 1;
    out.push(recordLine(ORDERS, { order_id: `o-${key}`, seq: next, n: i, note: 'x'.repeat(40) }));
    if ((i + 1) % every === 0) out.push(streamStateLine(ORDERS, i + 1));
  }
  return out;
}

function dataOf(delivery: Delivery): { order_id: string; seq: number; n: number } {
  return (JSON.parse(delivery.payload) as { _airbyte_data: { order_id: string; seq: number; n: number } })
    ._airbyte_data;
}

describe('parallel connections and rate limits against Mosquitto', { skip }, () => {
  const mosquitto = withMosquitto();

  it("keeps each key's records in order over 8 connections, with a client ID each, and echoes every state", async () => {
    const subscriber = await subscribe(mosquitto.url, 'par/#', { protocolVersion: 5 });
    try {
      const input = orderLines(4000, 50, 100);
      const result = await runWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: mosquitto.port,
          topic_pattern: 'par/{namespace}/{stream}',
          protocol_version: '5',
          client: 'airbyte-par',
          connections: 8,
        },
        CATALOG,
        `${input.join('\n')}\n`,
        { timeoutMs: 60_000 },
      );
      assert.equal(result.code, 0, result.stdout);
      const deliveries = await subscriber.waitFor(4000, 20_000);
      assert.equal(deliveries.length, 4000);
      const last = new Map<string, number>();
      for (const delivery of deliveries) {
        const { order_id: key, seq } = dataOf(delivery);
        assert.equal(seq, (last.get(key) ?? -1) + 1, `order ${key}: seq ${seq} after ${last.get(key)}`);
        last.set(key, seq);
      }
      assert.deepEqual(
        streamCursors(result),
        Array.from({ length: 40 }, (_, i) => (i + 1) * 100),
      );
      for (let n = 1; n <= 8; n++)
        assert.match(
          mosquitto.log(),
          new RegExp(`New client connected from .* as airbyte-par-${n} `),
          `client airbyte-par-${n}`,
        );
      assert.doesNotMatch(mosquitto.log(), /as airbyte-par /, 'no connection under the bare client ID');
      assert.match(
        logMessages(result, /^Publishing/)[0] ?? '',
        /over 8 connections \(client IDs "airbyte-par-1" to "airbyte-par-8"\)/,
      );
    } finally {
      await subscriber.close();
    }
  });

  it('holds every state until the connection that is slow to acknowledge has caught up', async () => {
    const proxy = await startProxy(mosquitto.port);
    // The first connection the proxy accepts gets no acknowledgement back until released; the others work normally.
    proxy.onConnection((connection) => {
      if (connection.index === 0) connection.holdAfter(CONNACK_BYTES);
    });
    const input = orderLines(400, 40, 20);
    try {
      const run = startWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: proxy.port,
          topic_pattern: 'held/{stream}',
          client: 'airbyte-held',
          connections: 2,
        },
        CATALOG,
        { env: { LOG_PROGRESS_SECONDS: '1' }, onSpawn: (child) => child.stdin?.end(`${input.join('\n')}\n`) },
      );
      // Every record is in, and the other connection's have been acknowledged: half or so, but not all.
      const progress = await run.waitForLine(/Progress: 400 record\(s\) received, [1-9]\d* acknowledged/, 20_000);
      const acknowledged = Number(/received, (\d+) acknowledged/.exec(progress)?.[1]);
      assert.ok(acknowledged < 400, progress);
      proxy.release();
      const result = await run.result;
      assert.equal(result.code, 0, result.stdout);
      // Keys spread over both connections, so every state covers records of the held one: none may have gone out
      // before the release, and each comes after the progress line that showed the held acknowledgements missing.
      const stdout = result.stdout;
      const progressAt = stdout.indexOf(progress);
      const firstState = stdout.indexOf('"type":"STATE"');
      assert.ok(
        firstState > progressAt,
        'a state went out while one connection had not acknowledged the records before it',
      );
      assert.deepEqual(
        streamCursors(result),
        Array.from({ length: 20 }, (_, i) => (i + 1) * 20),
      );
    } finally {
      await proxy.close();
    }
  });

  it('reconnects one lost connection while the others go on, and loses nothing', async () => {
    const proxy = await startProxy(mosquitto.port);
    const subscriber = await subscribe(mosquitto.url, 'cut/#', { protocolVersion: 5 });
    const input = orderLines(3000, 60, 100);
    try {
      const run = startWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: proxy.port,
          topic_pattern: 'cut/{stream}',
          protocol_version: '5',
          client: 'airbyte-cut',
          connections: 4,
        },
        CATALOG,
        { timeoutMs: 60_000, onSpawn: (child) => child.stdin?.write(`${input.slice(0, 1500).join('\n')}\n`) },
      );
      await run.waitForLine(/"cursor":1200\b/);
      proxy.connections[1]?.cut();
      run.child.stdin?.end(`${input.slice(1500).join('\n')}\n`);
      const result = await run.result;
      assert.equal(result.code, 0, result.stdout);
      const lost = logMessages(result, /to the broker was lost/);
      const reconnected = logMessages(result, /reconnected after/);
      assert.equal(lost.length, 1, lost.join('\n'));
      assert.equal(reconnected.length, 1, reconnected.join('\n'));
      assert.match(lost[0] ?? '', /^Connection [1-4] \(client ID "airbyte-cut-[1-4]"\) to the broker was lost/);
      assert.equal(proxy.connections.length, 5, 'four connections, one of them made again');
      const deliveries = await subscriber.waitFor(3000, 20_000);
      const seen = new Set(deliveries.map((d) => dataOf(d).n));
      assert.equal(seen.size, 3000, 'every record arrived at least once');
      assert.deepEqual(
        streamCursors(result),
        Array.from({ length: 30 }, (_, i) => (i + 1) * 100),
      );
    } finally {
      await subscriber.close();
      await proxy.close();
    }
  });

  it("stops with a clear error naming the client ID when another client keeps taking over one connection's session", async () => {
    const input = orderLines(60, 6, 20);
    const run = startWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: mosquitto.port,
        topic_pattern: 'twins/{stream}',
        protocol_version: '5',
        client: 'airbyte-twins',
        connections: 3,
      },
      CATALOG,
      { onSpawn: (child) => child.stdin?.write(`${input.join('\n')}\n`) },
    );
    await run.waitForLine(/"cursor":60\b/);
    const twin = mqtt.connect(mosquitto.url, { clientId: 'airbyte-twins-2', protocolVersion: 5, reconnectPeriod: 100 });
    twin.on('error', () => undefined);
    try {
      const result = await run.result;
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(String(error.message), /client ID "airbyte-twins-2"/);
      assert.doesNotMatch(String(error.message), /airbyte-twins-[13]/);
      assert.deepEqual(streamCursors(result), [20, 40, 60]);
    } finally {
      await twin.endAsync(true);
    }
  });

  it('holds max_messages_per_second over all connections together', async () => {
    const received: number[] = [];
    const subscriber = await subscribe(mosquitto.url, 'rate/#', { protocolVersion: 5 });
    subscriber.client.on('message', () => received.push(performance.now()));
    const perSecond = 400;
    const input = orderLines(2000, 50, 100);
    try {
      const result = await runWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: mosquitto.port,
          topic_pattern: 'rate/{stream}',
          protocol_version: '5',
          connections: 4,
          max_messages_per_second: perSecond,
        },
        CATALOG,
        `${input.join('\n')}\n`,
        { timeoutMs: 60_000 },
      );
      assert.equal(result.code, 0, result.stdout);
      await subscriber.waitFor(2000, 20_000);
      // The busiest two seconds at the subscriber: the rate plus the bucket's tenth of a second, and a little for the
      // broker delivering a few of them together.
      let busiest = 0;
      for (let start = 0, end = 0; end < received.length; end++) {
        while ((received[end] as number) - (received[start] as number) >= 2000) start++;
        busiest = Math.max(busiest, end - start + 1);
      }
      assert.ok(busiest <= perSecond * 2 * 1.05 + perSecond * 0.1, `${busiest} messages within two seconds`);
      assert.ok(
        result.elapsedMs >= ((2000 - perSecond * 0.1) / perSecond) * 1000,
        `2,000 messages in ${result.elapsedMs} ms`,
      );
      assert.match(logMessages(result, /^Publishing/)[0] ?? '', /at most 400 message\(s\) per second/);
    } finally {
      await subscriber.close();
    }
  });
});
