/**
 * Topics that would lose data silently: a stream named like a broker topic (`$SYS`), and streams that would share a
 * topic without their messages saying which is which. Against Mosquitto, which drops client messages under `$SYS`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logMessages, runCheck, runWrite } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();

describe('topics that would lose or merge data, against Mosquitto', { skip }, () => {
  const mosquitto = withMosquitto();

  it('publishes a stream named $SYS where a # subscriber receives it, not under the broker-reserved $SYS', async () => {
    const subscriber = await subscribe(mosquitto.url, '#');
    try {
      const sys = { name: '$SYS' };
      const result = await runWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: mosquitto.port,
          topic_pattern: '{stream}/data',
          message_qos: 'EXACTLY_ONCE',
        },
        catalogOf([sys]),
        `${recordLine(sys, { id: 1 })}\n${streamStateLine(sys, 1)}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      const [delivery] = await subscriber.waitFor(1);
      assert.equal(delivery?.topic, '_SYS/data');
      assert.equal(result.states().length, 1);
    } finally {
      await subscriber.close();
    }
  });

  it('keeps a $ the pattern itself starts with: the user chose it', async () => {
    const stream = { name: 'things' };
    const subscriber = await subscribe(mosquitto.url, '$aws/#');
    try {
      const result = await runWrite(
        { broker_host: '127.0.0.1', broker_port: mosquitto.port, topic_pattern: '$aws/{stream}' },
        catalogOf([stream]),
        `${recordLine(stream, { id: 1 })}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.equal((await subscriber.waitFor(1))[0]?.topic, '$aws/things');
    } finally {
      await subscriber.close();
    }
  });

  it('check notes that a pattern starting with $ gives topics brokers treat apart', async () => {
    const result = await runCheck({
      broker_host: '127.0.0.1',
      broker_port: mosquitto.port,
      topic_pattern: '$aws/things/{stream}',
    });
    const [status] = result.ofType('CONNECTION_STATUS');
    const connectionStatus = status?.connectionStatus as { status: string; message: string };
    assert.equal(connectionStatus.status, 'SUCCEEDED');
    assert.match(connectionStatus.message, /topics that start with \$ are the broker's own/);
    const plain = await runCheck({
      broker_host: '127.0.0.1',
      broker_port: mosquitto.port,
      topic_pattern: 'aws/things/{stream}',
    });
    assert.doesNotMatch(JSON.stringify(plain.ofType('CONNECTION_STATUS')), /start with \$/);
  });

  it('refuses streams whose messages would be indistinguishable on one topic, naming both and suggesting {namespace}', async () => {
    const eu = { name: 'users', namespace: 'eu' };
    const us = { name: 'users', namespace: 'us' };
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: mosquitto.port, topic_pattern: 'crm/{stream}' },
      catalogOf([eu, us]),
      `${recordLine(eu, { id: 1 })}\n`,
    );
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /streams "eu\.users" and "us\.users" would publish indistinguishable messages to the same topic "crm\/users".*Add \{namespace\}/,
    );
  });

  it('allows them with a warning when every message says its namespace (MQTT 5 user properties)', async () => {
    const eu = { name: 'users', namespace: 'eu' };
    const us = { name: 'users', namespace: 'us' };
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: mosquitto.port, topic_pattern: 'crm/{stream}', protocol_version: '5' },
      catalogOf([eu, us]),
      `${recordLine(eu, { id: 1 })}\n${recordLine(us, { id: 1 })}\n`,
    );
    assert.equal(result.code, 0, result.stdout);
    assert.equal(logMessages(result, /share the topic "crm\/users"/).length, 1);
  });

  it('tells "a/b" without a namespace and "a"."b" apart by their stream names in the envelope', async () => {
    const slash = { name: 'a/b' };
    const dotted = { name: 'b', namespace: 'a' };
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: mosquitto.port, topic_pattern: '{namespace}/{stream}' },
      catalogOf([slash, dotted]),
      `${recordLine(slash, { id: 1 })}\n`,
    );
    assert.equal(result.code, 0, result.stdout);
    assert.match(logMessages(result, /share the topic/).join(''), /Streams "a\/b" and "a\.b" share the topic "a\/b"/);
  });
});
