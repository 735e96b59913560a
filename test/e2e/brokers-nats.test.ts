/**
 * NATS 2.9 with its MQTT listener, started by the test: MQTT 3.1.1 only, QoS 0 and 1, retained messages. What it does
 * not support it answers by closing the connection (QoS 2, topics with "." or a space, MQTT 3.1) or with a CONNACK
 * refusal (MQTT 5); each is a regression test of a diagnosis that once blamed a client ID clash or TLS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { type Nats, natsSkipReason, startNats } from '../support/nats.js';
import { syncThreeRecords } from '../support/scenario.js';
import { subscribe } from '../support/subscriber.js';

const skip = natsSkipReason();
if (skip) process.stderr.write(`${skip}\n`);

describe('NATS', { skip }, () => {
  let nats: Nats;
  const base = (): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: nats.port,
    connect_timeout: 5,
  });
  before(async () => {
    nats = await startNats();
  });
  after(() => nats?.stop());

  describe('what it supports', () => {
    for (const qos of ['AT_MOST_ONCE', 'AT_LEAST_ONCE'] as const) {
      it(`syncs at ${qos} with MQTT 3.1.1, delivery verified`, async () => {
        const prefix = `n${qos.length}`;
        const subscriber = await subscribe(nats.url, `${prefix}/#`);
        try {
          const { result } = await syncThreeRecords({ ...base(), message_qos: qos }, subscriber, prefix);
          assert.doesNotMatch(result.stdout, /cannot be verified/);
        } finally {
          await subscriber.close();
        }
      });
    }

    it('keeps the last retained message of a topic for later subscribers', async () => {
      const stream = { name: 'gauges' };
      const input = [1, 2, 3].map((i) => recordLine(stream, { i })).join('\n');
      const result = await runWrite(
        { ...base(), topic_pattern: 'kept/{stream}', message_retained: true },
        catalogOf([stream]),
        input,
      );
      assert.equal(result.code, 0, result.stdout);
      const later = await subscribe(nats.url, 'kept/gauges');
      try {
        const [retained] = await later.waitFor(1);
        assert.equal(retained?.retain, true);
        assert.match(retained?.payload ?? '', /"_airbyte_data":\{"i":3\}/);
      } finally {
        await later.close();
      }
    });

    it('passes check with a test message that comes back to a subscription', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't/{stream}', topic_test: 'check/nats' }),
      );
      assert.equal(outcome, 'SUCCEEDED', message);
      assert.match(
        message,
        /Test message on "check\/nats" at QoS 1 accepted\. It came back to a subscription on the topic/,
      );
    });
  });

  describe('what it refuses, diagnosed', () => {
    it('QoS 2: write stops after three closes, naming QoS 2 first, without a state or a client ID clash', async () => {
      const stream = { name: 'orders' };
      const input = [recordLine(stream, { i: 1 }), streamStateLine(stream, 1)].join('\n');
      const result = await runWrite(
        { ...base(), topic_pattern: 'q2/{stream}', message_qos: 'EXACTLY_ONCE' },
        catalogOf([stream]),
        input,
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /closed the connection 3 times in a row .* the first a message at QoS 2, not retained, on topic "q2\/orders"/,
      );
      assert.match(
        String(error.message),
        /Likely causes, most likely first: \(1\) the broker does not accept QoS 2 .*set "Message QoS" \(message_qos\) to AT_LEAST_ONCE/,
      );
      assert.doesNotMatch(String(error.message), /client ID/);
      assert.equal(result.states().length, 0);
    });

    it('QoS 2: check fails at once, naming QoS 2 first', async () => {
      const { status: outcome, message } = status(
        await runCheck({
          ...base(),
          topic_pattern: 't',
          topic_test: 'check/q2',
          message_qos: 'EXACTLY_ONCE',
          connect_timeout: 20,
        }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(
        message,
        /closed the connection right after receiving the test message \(a message at QoS 2, not retained, on topic "check\/q2"/,
      );
      assert.match(message, /\(1\) the broker does not accept QoS 2/);
      assert.doesNotMatch(message, /within 20 s/);
    });

    it('a "." in a namespace: write stops naming the topic characters first', async () => {
      const stream = { name: 'orders', namespace: 'eu.west' };
      const input = [recordLine(stream, { i: 1 }), streamStateLine(stream, 1)].join('\n');
      const result = await runWrite(
        { ...base(), topic_pattern: 'dots/{namespace}/{stream}' },
        catalogOf([stream]),
        input,
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(String(error.message), /on topic "dots\/eu\.west\/orders"/);
      assert.match(
        String(error.message),
        /Likely causes, most likely first: \(1\) the broker refuses characters in the topic \(NATS refuses "\." and spaces/,
      );
      assert.equal(result.states().length, 0);
    });

    it('topic_value_escaping strict: the same stream syncs, with . and spaces in values escaped, keys decodable', async () => {
      const stream = { name: 'order lines', namespace: 'eu.west' };
      const catalog = {
        streams: [
          {
            stream: { ...stream, json_schema: { type: 'object' }, supported_sync_modes: ['incremental'] },
            sync_mode: 'incremental',
            destination_sync_mode: 'append',
            primary_key: [['sku']],
          },
        ],
      };
      const subscriber = await subscribe(nats.url, 'strict/#');
      try {
        const input = [recordLine(stream, { sku: 'a.b c' }), streamStateLine(stream, 1)].join('\n');
        const result = await runWrite(
          {
            ...base(),
            topic_pattern: 'strict/{namespace}/{stream}/{key}',
            topic_value_escaping: 'strict',
            message_qos: 'AT_LEAST_ONCE',
          },
          catalog,
          `${input}\n`,
        );
        assert.equal(result.code, 0, result.stdout);
        assert.equal(result.states().length, 1);
        const [delivery] = await subscriber.waitFor(1);
        assert.equal(delivery?.topic, 'strict/eu_west/order_lines/a%2Eb%20c');
        assert.equal(decodeURIComponent(delivery?.topic.split('/')[3] ?? ''), 'a.b c');
      } finally {
        await subscriber.close();
      }
    });

    it('a space in the test topic: check fails naming the topic characters first', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't', topic_test: 'check/with space' }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(message, /\(1\) the broker refuses characters in the topic/);
    });

    it('MQTT 3.1: check names protocol_version and confirms it with 3.1.1', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't', protocol_version: '3.1' }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(
        message,
        /closed the connection without answering the MQTT 3\.1 CONNECT, and accepted an MQTT 3\.1\.1 connection the connector made to confirm it: it does not speak MQTT 3\.1\. Set "MQTT protocol version" \(protocol_version\) to 3\.1\.1\./,
      );
      assert.doesNotMatch(message, /TLS/);
    });

    it('MQTT 3.1: write fails with a config_error naming protocol_version', async () => {
      const stream = { name: 'orders' };
      const result = await runWrite(
        { ...base(), topic_pattern: 'v31/{stream}', protocol_version: '3.1' },
        catalogOf([stream]),
        recordLine(stream, { i: 1 }),
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /does not speak MQTT 3\.1\. Set "MQTT protocol version" \(protocol_version\) to 3\.1\.1/,
      );
    });

    it('MQTT 5: refused in the CONNACK, naming protocol_version', async () => {
      const { status: outcome, message } = status(
        await runCheck({ ...base(), topic_pattern: 't', protocol_version: '5' }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(message, /does not accept MQTT 5; set "MQTT protocol version" \(protocol_version\)/);
    });
  });
});
