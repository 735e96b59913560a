/**
 * Faults that need a real broker process: Mosquitto killed and restarted mid-sync, another client taking the session
 * over (MQTT 5 DISCONNECT 0x8E, and the silent MQTT 3.1.1 way), persistent sessions across reconnects, and 10 MB
 * records through a broker with its default limits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { runWrite, startWrite, logMessages, streamCursors } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { startProxy } from '../support/proxy.js';
import { type Delivery, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const EVENTS = { name: 'events' };
const CATALOG = catalogOf([EVENTS]);

function lines(from: number, to: number, every: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) {
    out.push(recordLine(EVENTS, { k: i, filler: 'y'.repeat(80) }));
    if ((i + 1) % every === 0) out.push(streamStateLine(EVENTS, i + 1));
  }
  return out;
}

function keysOf(messages: readonly Delivery[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const { payload } of messages) {
    const { k } = (JSON.parse(payload) as { _airbyte_data: { k: number } })._airbyte_data;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

describe('Mosquitto faults', { skip }, () => {
  const mosquitto = withMosquitto();

  it('survives the broker process being killed and restarted, republishing what it had not acknowledged', async () => {
    // The connector reaches Mosquitto through a proxy, which keeps it out until the restarted broker has its subscriber
    // back (nothing published before that could be observed), and withholds acknowledgements before the kill.
    const proxy = await startProxy(mosquitto.port);
    const before = await subscribe(mosquitto.url, 'killed/#');
    let afterRestart: Awaited<ReturnType<typeof subscribe>> | undefined;
    const first = lines(0, 1000, 100);
    const second = lines(1000, 2000, 100);
    try {
      const run = startWrite(
        { broker_host: '127.0.0.1', broker_port: proxy.port, topic_pattern: 'killed/{stream}', max_inflight: 200 },
        CATALOG,
        {
          timeoutMs: 60_000,
          onSpawn: (child) => child.stdin?.write(`${first.join('\n')}\n`),
        },
      );
      await run.waitForLine(/"cursor":1000\b/);
      await before.waitFor(1000);
      const connection = proxy.connections[0];
      assert.ok(connection);
      connection.holdAfter(connection.downstreamBytes);
      const sent = proxy.upstreamBytes;
      run.child.stdin?.write(`${second.join('\n')}\n`);
      await proxy.whenUpstream(sent + 200 * (second[0]?.length ?? 0));
      proxy.mode = 'refuse';
      await mosquitto.kill();
      await run.waitForLine(/The connection to the broker was lost/);
      await run.waitForLine(/Reconnection attempt 1 failed/);
      before.client.end(true);
      await mosquitto.restart();
      afterRestart = await subscribe(mosquitto.url, 'killed/#');
      proxy.mode = 'forward';
      run.child.stdin?.end();
      const result = await run.result;
      assert.equal(result.code, 0, result.stdout);
      const keys = keysOf([...before.messages, ...afterRestart.messages]);
      for (let k = 0; k < 2000; k++) assert.ok(keys.has(k), `record ${k} was lost`);
      assert.deepEqual(
        streamCursors(result),
        Array.from({ length: 20 }, (_, i) => (i + 1) * 100),
      );
      assert.ok(
        keysOf(afterRestart.messages).size >= 200,
        'the messages in flight at the kill were sent again to the new broker',
      );
      assert.ok(
        logMessages(result, /^Reconnection attempt \d+ failed/).length >= 1,
        'reconnection was attempted while the broker was down',
      );
      const stdout = result.stdout;
      assert.ok(
        stdout.indexOf('Reconnected after') < stdout.indexOf('"cursor":1100'),
        'no state of the second half before the reconnection',
      );
    } finally {
      before.client.end(true);
      await afterRestart?.close();
      await proxy.close();
    }
  });

  it('stops with a clear error when the broker says another client took the session over (MQTT 5, reason code 0x8E)', async () => {
    // Mosquitto sends DISCONNECT 0x8E from 2.0.15 on (as EMQX and HiveMQ do); the Debian 2.0.11 here only closes the
    // connection, so the proxy delivers the packet a newer broker would send, on a real MQTT 5 connection.
    const proxy = await startProxy(mosquitto.port);
    try {
      const run = startWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: proxy.port,
          topic_pattern: 'twin5/{stream}',
          protocol_version: '5',
          client: 'airbyte-twin-5',
        },
        CATALOG,
        {
          onSpawn: (child) => child.stdin?.write(`${lines(0, 10, 10).join('\n')}\n`),
        },
      );
      await run.waitForLine(/"cursor":10\b/);
      proxy.connections[0]?.closeWith(Buffer.from([0xe0, 0x02, 0x8e, 0x00]));
      const result = await run.result;
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /^Another client connected with client ID "airbyte-twin-5" and the broker handed it this connection's session \(Session taken over \(reason code 0x8e\)\)/,
      );
      assert.deepEqual(streamCursors(result), [10]);
      assert.equal(proxy.connections.length, 1, 'no reconnection: it would push the other client off');
    } finally {
      await proxy.close();
    }
  });

  for (const protocol of ['3.1.1', '5'] as const) {
    it(`stops with a clear error when another client with its client ID keeps pushing it off (MQTT ${protocol}, no DISCONNECT)`, async () => {
      const clientId = `airbyte-twin-${protocol}`;
      const run = startWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: mosquitto.port,
          topic_pattern: 'twin/{stream}',
          protocol_version: protocol,
          client: clientId,
        },
        CATALOG,
        {
          onSpawn: (child) => child.stdin?.write(`${lines(0, 10, 10).join('\n')}\n`),
        },
      );
      await run.waitForLine(/"cursor":10\b/);
      // A device reconnecting quickly with the same ID, as MQTT.js and most client libraries do by default.
      const twin = mqtt.connect(mosquitto.url, {
        clientId,
        protocolVersion: protocol === '5' ? 5 : 4,
        reconnectPeriod: 100,
      });
      twin.on('error', () => undefined);
      try {
        const result = await run.result;
        assert.equal(result.code, 1);
        const error = result.traceError();
        assert.equal(error.failure_type, 'config_error');
        assert.match(
          String(error.message),
          new RegExp(
            `closed the connection 3 times in a row within 2 s of accepting it.*another client is connected with client ID "${clientId}"`,
          ),
        );
        assert.deepEqual(streamCursors(result), [10]);
      } finally {
        await twin.endAsync(true);
      }
    });
  }

  for (const protocol of ['3.1.1', '5'] as const) {
    it(`resumes its session across a cut with clean_session off (MQTT ${protocol}), so QoS 2 messages arrive once`, async () => {
      const clientId = `airbyte-persistent-${protocol}`;
      const topic = `persist${protocol.replace(/\./g, '')}`;
      const proxy = await startProxy(mosquitto.port);
      const subscriber = await subscribe(mosquitto.url, `${topic}/#`);
      const input = lines(0, 2000, 100);
      // The first connection stops passing the broker's answers part way (some PUBREC, some PUBCOMP) and is cut.
      proxy.onConnection((connection) => {
        if (connection.index !== 0) return;
        connection.holdAfter(4 + 8 * 150);
        // Cut after the window has stalled, and late enough not to look like a takeover (2 s).
        setTimeout(() => connection.cut(), 2600);
      });
      const config = {
        broker_host: '127.0.0.1',
        broker_port: proxy.port,
        topic_pattern: `${topic}/{stream}`,
        protocol_version: protocol,
        client: clientId,
        clean_session: false,
        message_qos: 'EXACTLY_ONCE',
      };
      try {
        const result = await runWrite(config, CATALOG, `${input.join('\n')}\n`, { timeoutMs: 40_000 });
        assert.equal(result.code, 0, result.stdout);
        assert.match(
          logMessages(result, /^Reconnected after/)[0] ?? '',
          /the broker resumed the session; sending the [1-9]\d* unacknowledged/,
        );
        await subscriber.waitFor(2000);
        const keys = keysOf(subscriber.messages);
        for (let k = 0; k < 2000; k++)
          assert.equal(keys.get(k), 1, `record ${k} delivered ${keys.get(k) ?? 0} time(s)`);
        assert.equal(streamCursors(result).length, 20);
        // The session outlives the sync too: the next sync with this client ID resumes it.
        const next = await runWrite(
          { ...config, broker_port: mosquitto.port },
          CATALOG,
          `${lines(2000, 2010, 10).join('\n')}\n`,
        );
        assert.equal(next.code, 0, next.stdout);
        assert.equal(
          logMessages(next, new RegExp(`^The broker resumed the session it kept for client ID "${clientId}"`)).length,
          1,
        );
      } finally {
        await subscriber.close();
        await proxy.close();
      }
    });
  }

  it('publishes records of 10 MB through a broker with default limits', async () => {
    const subscriber = await subscribe(mosquitto.url, 'huge/#');
    try {
      const text = (i: number): string => `${i}:${'z'.repeat(10 * 1024 * 1024)}`;
      const input = [0, 1].map((i) => recordLine(EVENTS, { k: i, text: text(i) }));
      input.push(streamStateLine(EVENTS, 2));
      const result = await runWrite(
        { broker_host: '127.0.0.1', broker_port: mosquitto.port, topic_pattern: 'huge/{stream}' },
        CATALOG,
        input.join('\n'),
        {
          timeoutMs: 60_000,
        },
      );
      assert.equal(result.code, 0, result.stdout.slice(0, 2000));
      const messages = await subscriber.waitFor(2, 30_000);
      for (const [i, message] of messages.entries()) {
        const data = (JSON.parse(message.payload) as { _airbyte_data: { k: number; text: string } })._airbyte_data;
        assert.equal(data.k, i);
        assert.ok(data.text === text(i), `record ${i} arrived intact`);
      }
      assert.deepEqual(streamCursors(result), [2]);
    } finally {
      await subscriber.close();
    }
  });
});
