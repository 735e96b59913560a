/**
 * RabbitMQ 3.10 with its MQTT plugin, one node started for the whole file (it takes about ten seconds): MQTT 3.1 and
 * 3.1.1, QoS 0 and 1, retained messages kept for subscriptions to the exact topic only. It answers a QoS 2 PUBLISH with
 * a PUBACK (a downgrade to QoS 1) and an MQTT 5 CONNECT by closing the connection: once a hang and a TLS diagnosis,
 * each is a regression test here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { type RabbitMq, rabbitmqSkipReason, startRabbitMq } from '../support/rabbitmq.js';
import { syncThreeRecords } from '../support/scenario.js';
import { subscribe } from '../support/subscriber.js';

const skip = rabbitmqSkipReason();
if (skip) process.stderr.write(`${skip}\n`);

describe('RabbitMQ', { skip }, () => {
  let rabbit: RabbitMq;
  const base = (): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: rabbit.port,
    connect_timeout: 10,
  });
  before(async () => {
    rabbit = await startRabbitMq();
  });
  after(() => rabbit?.stop());

  describe('what it supports', () => {
    for (const [qos, version] of [
      ['AT_MOST_ONCE', '3.1.1'],
      ['AT_LEAST_ONCE', '3.1.1'],
      ['AT_LEAST_ONCE', '3.1'],
    ] as const) {
      it(`syncs at ${qos} with MQTT ${version}, delivery verified`, async () => {
        const prefix = `r${qos.length}${version.replace(/\./g, '')}`;
        const subscriber = await subscribe(rabbit.url, `${prefix}/#`);
        try {
          const { result } = await syncThreeRecords(
            { ...base(), message_qos: qos, protocol_version: version },
            subscriber,
            prefix,
          );
          assert.doesNotMatch(result.stdout, /cannot be verified/);
        } finally {
          await subscriber.close();
        }
      });
    }

    it('keeps retained messages for subscriptions to the exact topic only', async () => {
      const stream = { name: 'gauges' };
      const input = [1, 2, 3].map((i) => recordLine(stream, { i })).join('\n');
      const result = await runWrite(
        { ...base(), topic_pattern: 'kept/{stream}', message_retained: true },
        catalogOf([stream]),
        input,
      );
      assert.equal(result.code, 0, result.stdout);
      const exact = await subscribe(rabbit.url, 'kept/gauges');
      const wildcard = await subscribe(rabbit.url, 'kept/#');
      try {
        const [retained] = await exact.waitFor(1);
        assert.match(retained?.payload ?? '', /"_airbyte_data":\{"i":3\}/);
        // A message published after the subscription comes after anything the subscription itself brought.
        await wildcard.client.publishAsync('kept/marker', 'marker', { qos: 1 });
        const seen = await wildcard.waitFor(1);
        assert.deepEqual(
          seen.map((m) => m.topic),
          ['kept/marker'],
          'RabbitMQ sends retained messages only to subscriptions to the exact topic',
        );
      } finally {
        await exact.close();
        await wildcard.close();
      }
    });

    it('passes check with a test message that comes back to a subscription', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't/{stream}', topic_test: 'check/rabbit' }),
      );
      assert.equal(outcome, 'SUCCEEDED', message);
      assert.match(
        message,
        /Test message on "check\/rabbit" at QoS 1 accepted\. It came back to a subscription on the topic/,
      );
    });
  });

  describe('what it refuses, diagnosed', () => {
    it('QoS 2 answered with PUBACK: write fails at once with a config_error, never hangs, emits no state', async () => {
      const stream = { name: 'orders' };
      const input = [
        recordLine(stream, { i: 1 }),
        streamStateLine(stream, 1),
        recordLine(stream, { i: 2 }),
        streamStateLine(stream, 2),
      ].join('\n');
      const result = await runWrite(
        { ...base(), topic_pattern: 'q2/{stream}', message_qos: 'EXACTLY_ONCE' },
        catalogOf([stream]),
        input,
        {
          timeoutMs: 20_000,
        },
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /answered a QoS 2 \(exactly once\) message on topic "q2\/orders" with PUBACK, the QoS 1 acknowledgement: it does not support QoS 2 .*Set "Message QoS" \(message_qos\) to AT_LEAST_ONCE/,
      );
      assert.equal(result.states().length, 0);
    });

    it('QoS 2 answered with PUBACK: check fails with the same finding', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't', topic_test: 'check/q2', message_qos: 'EXACTLY_ONCE' }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(message, /answered a QoS 2 \(exactly once\) message on topic "check\/q2" with PUBACK/);
    });

    it('MQTT 5: check names protocol_version and confirms it with 3.1.1, never TLS', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't', protocol_version: '5' }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(
        message,
        /without answering the MQTT 5 CONNECT, and accepted an MQTT 3\.1\.1 connection the connector made to confirm it: it does not speak MQTT 5/,
      );
      assert.doesNotMatch(message, /TLS/);
    });

    it('MQTT 5: write fails with a config_error naming protocol_version', async () => {
      const stream = { name: 'orders' };
      const result = await runWrite(
        { ...base(), topic_pattern: 'v5/{stream}', protocol_version: '5' },
        catalogOf([stream]),
        recordLine(stream, { i: 1 }),
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /does not speak MQTT 5\. Set "MQTT protocol version" \(protocol_version\) to 3\.1\.1/,
      );
    });
  });
});
