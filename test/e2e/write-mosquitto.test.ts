/**
 * `write` against a real Mosquitto 2.0 with its default limits, started by the test on a free port. A default
 * Mosquitto closes a 3.1.1 connection that has more than 20 QoS 2 messages in flight, so this is where the window's
 * defaults are proven.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWrite } from '../support/connector.js';
import { assertDelivered } from '../support/expect.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const A = { name: 'alpha', namespace: 'ns' };
const B = { name: 'beta' };
const CATALOG = catalogOf([A, B]);
const QOS_NAMES = ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'] as const;

describe('write against Mosquitto with default limits', { skip }, () => {
  const mosquitto = withMosquitto();

  for (const qos of [0, 1, 2] as const) {
    it(`delivers 3,000 records with STREAM states at QoS ${qos}`, async () => {
      const prefix = `m${qos}`;
      const lines: string[] = [];
      const expected: { topic: string; stream: string; dataJson: string }[] = [];
      for (let i = 0; i < 3000; i++) {
        const stream = i % 2 ? A : B;
        const dataJson = `{"i":${i},"id":${18446744073709551615n - BigInt(i)}}`;
        lines.push(recordLine(stream, dataJson));
        expected.push({ topic: stream === A ? `${prefix}/ns/alpha` : `${prefix}/beta`, stream: stream.name, dataJson });
        if (i % 500 === 499) lines.push(streamStateLine(stream, i));
      }
      const subscriber = await subscribe(mosquitto.url, `${prefix}/#`);
      try {
        const client = `clean-close-${qos}`;
        const result = await runWrite(
          {
            broker_host: '127.0.0.1',
            broker_port: mosquitto.port,
            topic_pattern: `${prefix}/{namespace}/{stream}`,
            message_qos: QOS_NAMES[qos],
            client,
          },
          CATALOG,
          `${lines.join('\n')}\n`,
          { timeoutMs: 60_000 },
        );
        assert.equal(result.code, 0, result.stdout + mosquitto.log());
        // A clean DISCONNECT, not a dropped socket ("closed its connection").
        assert.match(mosquitto.log(), new RegExp(`Client ${client} disconnected\\.`));
        assertDelivered(await subscriber.waitFor(expected.length, 30_000), expected);
        const states = result.states();
        assert.equal(states.length, 6);
        assert.deepEqual(
          states.map((s) => (s.destinationStats as { recordCount: number }).recordCount),
          [250, 250, 250, 250, 250, 250],
        );
        if (qos === 2) assert.match(result.stdout, /up to 20 message\(s\) in flight/);
      } finally {
        await subscriber.close();
      }
    });
  }

  it('fails, without hanging and without a false state, when the broker drops a connection over its in-flight limit', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => recordLine(B, { i }));
    lines.push(streamStateLine(B, 'end'));
    const config = {
      broker_host: '127.0.0.1',
      broker_port: mosquitto.port,
      topic_pattern: 'over/{stream}',
      message_qos: 'EXACTLY_ONCE',
      max_inflight: 500,
    };
    // Reconnecting sends the same 500 messages again and is dropped again: the loop is recognised and ended.
    const looping = await runWrite(config, CATALOG, `${lines.join('\n')}\n`, { timeoutMs: 30_000 });
    assert.equal(looping.code, 1, looping.stdout);
    assert.equal(looping.traceError().failure_type, 'config_error');
    assert.match(
      String(looping.traceError().message),
      /closed the connection 3 times in a row .*lower "Maximum messages in flight" \(max_inflight\)/,
    );
    assert.equal(looping.states().length, 0);
    const once = await runWrite({ ...config, automatic_reconnect: false }, CATALOG, `${lines.join('\n')}\n`, {
      timeoutMs: 30_000,
    });
    assert.equal(once.code, 1, once.stdout);
    assert.equal(once.traceError().failure_type, 'transient_error');
    assert.match(
      String(once.traceError().message),
      /connection to the broker was lost .*"Automatic reconnect" \(automatic_reconnect\) is off/,
    );
    assert.equal(once.states().length, 0);
  });
});
