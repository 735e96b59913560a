/** `check` against real sockets: success with a test publish, and every failure a FAILED status within the timeout. */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { runCheck, checkStatus as status } from '../support/connector.js';
import { freePort } from '../support/mosquitto.js';
import { subscribe } from '../support/subscriber.js';

const PASSWORD = 'correct-horse-battery-staple';

const broker = withAedes({
  authenticate: (_client, username, password, done) => {
    if (username === undefined) return done(null, true);
    if (username === 'airbyte' && password?.toString() === PASSWORD) return done(null, true);
    const error = Object.assign(new Error('bad credentials'), { returnCode: 4 as const });
    return done(error, null);
  },
});

describe('check', () => {
  it('reports parallel connections and rate limits, connecting as the first of the clients a sync would use', async () => {
    const connected: string[] = [];
    const onClient = (client: { id: string }): void => void connected.push(client.id);
    broker.aedes.on('client', onClient);
    try {
      const result = await runCheck({
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 't',
        client: 'airbyte-many',
        connections: 4,
        max_messages_per_second: 90,
      });
      const { status: outcome, message } = status(result);
      assert.equal(outcome, 'SUCCEEDED', message);
      assert.match(message, /as client "airbyte-many-1"\./);
      assert.match(
        message,
        /A sync publishes over 4 connections, as clients "airbyte-many-1" to "airbyte-many-4"; this check tested the first\./,
      );
      assert.match(message, /Publishing is limited to 90 message\(s\) per second\./);
      assert.deepEqual(connected, ['airbyte-many-1']);
    } finally {
      broker.aedes.off('client', onClient);
    }
  });

  it('succeeds and publishes a test envelope, acknowledged, on the test topic', async () => {
    const subscriber = await subscribe(broker.url, 'check/#');
    try {
      const result = await runCheck({
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 't',
        topic_test: 'check/test',
        username: 'airbyte',
        password: PASSWORD,
        message_qos: 'EXACTLY_ONCE',
      });
      const { status: outcome, message } = status(result);
      assert.equal(outcome, 'SUCCEEDED', message);
      assert.match(message, /Test message on "check\/test" at QoS 2 accepted\./);
      const [delivery] = await subscriber.waitFor(1);
      assert.equal(delivery?.topic, 'check/test');
      assert.equal(delivery?.retain, false);
      const envelope = JSON.parse(delivery?.payload ?? '') as Record<string, unknown>;
      assert.equal(envelope._airbyte_stream, 'airbyte_connection_check');
      assert.deepEqual(Object.keys(envelope), [
        '_airbyte_ab_id',
        '_airbyte_stream',
        '_airbyte_emitted_at',
        '_airbyte_data',
      ]);
      assert.doesNotMatch(result.stdout + result.stderr, new RegExp(PASSWORD));
    } finally {
      await subscriber.close();
    }
  });

  it('uses the legacy test_topic key too', async () => {
    const subscriber = await subscribe(broker.url, 'legacy/#');
    try {
      const { status: outcome } = status(
        await runCheck({
          broker_host: '127.0.0.1',
          broker_port: broker.port,
          topic_pattern: 't',
          test_topic: 'legacy/check',
        }),
      );
      assert.equal(outcome, 'SUCCEEDED');
      assert.equal((await subscriber.waitFor(1))[0]?.topic, 'legacy/check');
    } finally {
      await subscriber.close();
    }
  });

  it('fails on refused credentials, saying so and never printing the password', async () => {
    const result = await runCheck({
      broker_host: '127.0.0.1',
      broker_port: broker.port,
      topic_pattern: 't',
      username: 'airbyte',
      password: `${PASSWORD}-wrong`,
    });
    const { status: outcome, message } = status(result);
    assert.equal(outcome, 'FAILED');
    assert.match(message, /refused the credentials; check "Username" \(username\) and "Password"/);
    assert.doesNotMatch(result.stdout + result.stderr, /correct-horse/);
  });

  it('fails quickly when nothing listens on the port', async () => {
    const port = await freePort();
    const result = await runCheck({
      broker_host: '127.0.0.1',
      broker_port: port,
      topic_pattern: 't',
      connect_timeout: 5,
    });
    const { status: outcome, message } = status(result);
    assert.equal(outcome, 'FAILED');
    assert.match(message, new RegExp(`Nothing accepts connections at mqtt://127\\.0\\.0\\.1:${port}`));
  });

  it('fails within the connect timeout plus a second when the broker never answers CONNECT', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const result = await runCheck({
        broker_host: '127.0.0.1',
        broker_port: port,
        topic_pattern: 't',
        connect_timeout: 2,
      });
      const { status: outcome, message } = status(result);
      assert.equal(outcome, 'FAILED');
      assert.match(message, /did not accept the connection within 2 s/);
      assert.ok(result.elapsedMs < 2000 + 1000 + 1500, `took ${result.elapsedMs} ms (process start-up included)`);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('fails on an unknown host name', async () => {
    const { status: outcome, message } = status(
      await runCheck({ broker_host: 'no-such-host.invalid', topic_pattern: 't', connect_timeout: 5 }),
    );
    assert.equal(outcome, 'FAILED');
    assert.match(message, /"no-such-host\.invalid" could not be resolved/);
  });

  it('fails on an invalid configuration, listing every problem', async () => {
    const { status: outcome, message } = status(
      await runCheck({ broker_port: 0, topic_pattern: 'a/#', message_qos: 'ONCE' }),
    );
    assert.equal(outcome, 'FAILED');
    assert.match(message, /set either "Broker URL" \(broker_url\) or "MQTT broker host" \(broker_host\)/);
    assert.match(message, /broker_port\) must be at least 1/);
    assert.match(message, /message_qos\) must be one of/);
    assert.match(message, /topic_pattern\) is invalid/);
  });
});
