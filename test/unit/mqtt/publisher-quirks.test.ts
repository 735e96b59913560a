/**
 * The publisher against brokers that do not answer as MQTT says they should, or say nothing: a QoS 2 message answered
 * with PUBACK (RabbitMQ), PUBREC refusals, silence on a live connection, and the evidence it keeps for judging why a
 * broker closed the connection. Driven through the fake connection; the acknowledgement watch through mocked timers.
 */
import assert from 'node:assert/strict';
import { RECORD_REFUSALS } from '../../../src/mqtt/reason-codes.js';
import { afterEach, describe, it, mock } from 'node:test';
import { MQTT_MAX_PACKET_BYTES, type QoS } from '../../../src/config/settings.js';
import { ConfigError, type ConnectorError, TransientError } from '../../../src/errors.js';
import { PublishEncoder, type PublishTarget, publishTarget } from '../../../src/mqtt/packets.js';
import { Publisher, type PublisherOptions } from '../../../src/mqtt/publisher.js';
import { FakePort, nextTurn } from '../../support/fake-port.js';

interface Harness {
  readonly publisher: Publisher;
  readonly acknowledged: number[];
  readonly failures: ConnectorError[];
  /** Descriptions passed to the `silent` handler, in order. */
  readonly silences: string[];
  readonly send: (token: number, target?: PublishTarget, payload?: string) => number;
}

const USERS = publishTarget('t/users', {
  mqtt5: false,
  emittedAtProperty: false,
  label: 'the record of stream "users"',
});

function harness(
  qos: QoS,
  options: Partial<PublisherOptions> = {},
  encoder = new PublishEncoder(qos, false, false),
): Harness {
  const acknowledged: number[] = [];
  const failures: ConnectorError[] = [];
  const silences: string[] = [];
  const publisher = new Publisher(
    encoder,
    { qos, maxInflight: 1000, oneAtATime: false, maxMessageBytes: MQTT_MAX_PACKET_BYTES, ...options },
    {
      acknowledged: (token) => acknowledged.push(token),
      failed: (error) => failures.push(error),
      silent: (description) => silences.push(description),
    },
  );
  const send = (token: number, target = USERS, payload = `{"n":${token}}`): number =>
    publisher.send(target, payload, Buffer.byteLength(payload), ['1700000000000'], token, 100 + token);
  return { publisher, acknowledged, failures, silences, send };
}

describe('Publisher and QoS 2 answered at QoS 1', () => {
  it('fails at once with a configuration error when the broker answers a QoS 2 message with PUBACK', async () => {
    const { publisher, acknowledged, failures, send } = harness(2);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    await nextTurn();
    port.acknowledge('puback', 1);
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof ConfigError);
    assert.match(
      failures[0]?.message ?? '',
      /answered a QoS 2 \(exactly once\) message on topic "t\/users" with PUBACK.*does not support QoS 2.*Set "Message QoS" \(message_qos\) to AT_LEAST_ONCE/,
    );
    assert.deepEqual(acknowledged, [], 'a downgraded message is not counted as delivered exactly once');
    await assert.rejects(publisher.drain(), (err) => err === failures[0]);
  });

  it('ignores a PUBACK for an id it has nothing in flight for', async () => {
    const { publisher, failures, send } = harness(2);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    await nextTurn();
    port.acknowledge('puback', 7);
    assert.deepEqual(failures, []);
  });
});

describe('Publisher and QoS 2 refusals', () => {
  for (const code of [0x80, 0x87, 0x97, 0x99, 0xff]) {
    it(`fails the message refused in its PUBREC (0x${code.toString(16)}) and never counts it as delivered`, async () => {
      const { publisher, acknowledged, failures, send } = harness(2, {}, new PublishEncoder(2, false, true));
      const port = new FakePort({ protocolVersion: 5 });
      publisher.attach(port);
      send(0);
      send(1);
      await nextTurn();
      port.acknowledge('pubrec', 1, code);
      await nextTurn();
      // A broker that went on anyway: nothing after the refusal may count.
      port.acknowledge('pubcomp', 1);
      port.acknowledge('pubrec', 2);
      port.acknowledge('pubcomp', 2);
      await nextTurn();
      assert.equal(failures.length, 1);
      assert.match(
        failures[0]?.message ?? '',
        new RegExp(`refused a message on topic "t/users": .*\\(reason code 0x${code.toString(16)}\\)`),
      );
      assert.deepEqual(acknowledged, []);
      assert.deepEqual(
        port.packets.map((p) => p.cmd),
        ['publish', 'publish'],
        'no PUBREL: the refused message is not released',
      );
      await assert.rejects(publisher.drain());
    });
  }

  it('counts a PUBREC below 0x80 ("no matching subscribers") as received, and the message once its PUBCOMP comes', async () => {
    const { publisher, acknowledged, failures, send } = harness(2, {}, new PublishEncoder(2, false, true));
    const port = new FakePort({ protocolVersion: 5 });
    publisher.attach(port);
    send(0);
    await nextTurn();
    port.acknowledge('pubrec', 1, 0x10);
    await nextTurn();
    port.acknowledge('pubcomp', 1);
    assert.deepEqual(failures, []);
    assert.deepEqual(acknowledged, [0]);
  });
});

describe('Publisher acknowledgement watch', () => {
  afterEach(() => mock.timers.reset());

  it('reports messages left unanswered for the timeout once per connection, and fails when one is silent again after being sent again', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const { publisher, acknowledged, failures, silences, send } = harness(1, { ackTimeoutMs: 1000 });
    const first = new FakePort();
    publisher.attach(first);
    send(0);
    send(1);
    await nextTurn();
    mock.timers.tick(750);
    first.acknowledge('puback', 1);
    mock.timers.tick(250);
    assert.deepEqual(silences, [], 'not before the timeout');
    mock.timers.tick(250);
    assert.equal(silences.length, 1);
    assert.match(
      silences[0] ?? '',
      /^1 message\(s\) at QoS 1 without PUBACK for 1 s \("Acknowledgement timeout \(seconds\)" \(ack_timeout_seconds\)\), the oldest on topic "t\/users"$/,
    );
    mock.timers.tick(5000);
    assert.equal(silences.length, 1, 'once per connection');
    publisher.detach();
    const second = new FakePort();
    publisher.attach(second);
    await nextTurn();
    assert.deepEqual(
      second.publishes().map((p) => [p.messageId, p.dup]),
      [[2, true]],
    );
    mock.timers.tick(1000);
    assert.equal(failures.length, 0);
    mock.timers.tick(250);
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof TransientError);
    assert.match(
      failures[0]?.message ?? '',
      /left 1 message\(s\) at QoS 1 without PUBACK for 1 s .*again after the connector reconnected.*does not answer at QoS 1/,
    );
    assert.deepEqual(acknowledged, [0]);
  });

  it('forgets the silence of a message once it is acknowledged on the new connection', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const { publisher, acknowledged, failures, silences, send } = harness(2, { ackTimeoutMs: 2000 });
    const first = new FakePort();
    publisher.attach(first);
    send(0);
    await nextTurn();
    first.acknowledge('pubrec', 1);
    await nextTurn();
    mock.timers.tick(2500);
    assert.match(
      silences[0] ?? '',
      /1 message\(s\) at QoS 2 without PUBREC and PUBCOMP for 2 s/,
      'a PUBREL awaiting PUBCOMP is watched too',
    );
    publisher.detach();
    const second = new FakePort();
    publisher.attach(second);
    await nextTurn();
    second.acknowledge('pubrec', 1);
    await nextTurn();
    second.acknowledge('pubcomp', 1);
    assert.deepEqual(acknowledged, [0]);
    send(1);
    await nextTurn();
    mock.timers.tick(10_000);
    assert.deepEqual(failures, [], 'a new silence after progress is a new first time');
    assert.equal(silences.length, 2);
  });

  it('does not count time spent waiting for room on a new connection, nor watch QoS 0', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const { publisher, silences, send } = harness(1, { ackTimeoutMs: 1000, maxInflight: 1 });
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    send(1);
    await nextTurn();
    mock.timers.tick(1250);
    assert.match(
      silences[0] ?? '',
      /^1 message\(s\)/,
      'the message queued behind the window is not silent: it was never sent',
    );
    const quiet = harness(0, { ackTimeoutMs: 1000 });
    const held = new FakePort({ holdWrites: true });
    quiet.publisher.attach(held);
    quiet.send(0);
    await nextTurn();
    mock.timers.tick(10_000);
    assert.deepEqual(quiet.silences, []);
  });
});

describe('Publisher send evidence', () => {
  it('names the first message the broker left unacknowledged on this connection, and what it had accepted before', async () => {
    const orders = publishTarget('t/orders.eu', { mqtt5: false, emittedAtProperty: false });
    const { publisher, send } = harness(1, {}, new PublishEncoder(1, true, false));
    const first = new FakePort();
    publisher.attach(first);
    assert.deepEqual(publisher.sendEvidence(), {
      qos: 1,
      retain: true,
      unacknowledged: 0,
      suspect: undefined,
      acknowledgedAny: false,
      largestAcknowledged: 0,
    });
    send(0, USERS, 'x'.repeat(300));
    send(1, orders, 'x'.repeat(50));
    send(2, USERS, 'x'.repeat(10));
    await nextTurn();
    first.acknowledge('puback', 1);
    assert.deepEqual(publisher.sendEvidence(), {
      qos: 1,
      retain: true,
      unacknowledged: 2,
      suspect: { topic: 't/orders.eu', payloadBytes: 50, topicAcknowledged: false },
      acknowledgedAny: true,
      largestAcknowledged: 300,
    });
    publisher.detach();
    const second = new FakePort();
    publisher.attach(second);
    await nextTurn();
    assert.equal(publisher.sendEvidence().unacknowledged, 2, 'both sent again on the new connection');
    second.acknowledge('puback', 2);
    assert.deepEqual(publisher.sendEvidence().suspect, { topic: 't/users', payloadBytes: 10, topicAcknowledged: true });
  });

  it('at QoS 0 names the last message written on the connection', async () => {
    const { publisher, send } = harness(0);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    send(1, USERS, 'x'.repeat(42));
    await nextTurn();
    assert.deepEqual(publisher.sendEvidence().suspect, {
      topic: 't/users',
      payloadBytes: 42,
      topicAcknowledged: false,
    });
  });
});

describe('Publisher size limit', () => {
  const target = (userProperties: boolean): PublishTarget =>
    publishTarget('t/users', {
      mqtt5: true,
      contentType: 'application/json',
      userProperties: userProperties ? { airbyte_stream: 'users', airbyte_namespace: 'crm' } : undefined,
      emittedAtProperty: userProperties,
      label: 'the record of stream "users"',
    });

  for (const [payloadBytes, fits] of [
    [150, true],
    [240, false],
  ] as const) {
    it(`${fits ? 'names' : 'does not name'} turning off the user properties when that ${fits ? 'makes' : 'would not make'} the message fit`, async () => {
      const encoder = new PublishEncoder(1, false, true);
      const { publisher, failures, send } = harness(1, {}, encoder);
      // Queued before any connection, so that the connection finds it too large (`send` refuses what it can tell).
      send(0, target(true), 'x'.repeat(payloadBytes));
      publisher.attach(new FakePort({ protocolVersion: 5, maximumPacketSize: 256, topicAliasMaximum: 5 }));
      await nextTurn();
      assert.equal(failures.length, 1);
      const message = failures[0]?.message ?? '';
      assert.match(message, /larger than the 256 bytes the broker accepts/);
      // What the same record would make with the user properties off: its first message announces the topic's alias.
      const lean = encoder.size(target(false), payloadBytes, ['1700000000000'], 1, true);
      if (fits)
        assert.match(
          message,
          new RegExp(
            `Turning off "MQTT 5 user properties" \\(mqtt5_user_properties\\) makes it ${lean} bytes, which fits`,
          ),
        );
      else assert.doesNotMatch(message, /mqtt5_user_properties/);
    });
  }
});

describe('Publisher holds', () => {
  it('has no room while held, starts the hold from the last message acknowledged, and drains only once released', async () => {
    const { publisher, acknowledged, send } = harness(1);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    let lastAcknowledged = false;
    let release = (): void => undefined;
    publisher.holdUntil(async (last) => {
      await last;
      lastAcknowledged = true;
      await new Promise<void>((resolve) => (release = resolve));
    });
    assert.equal(publisher.hasRoom, false);
    await nextTurn();
    assert.equal(lastAcknowledged, false);
    port.acknowledge('puback', 1);
    await nextTurn();
    assert.equal(lastAcknowledged, true, 'the hold learns when the message sent last is acknowledged');
    assert.deepEqual(acknowledged, [0]);
    let drained = false;
    const draining = publisher.drain().then(() => (drained = true));
    await nextTurn();
    assert.equal(drained, false, 'a hold keeps the drain waiting');
    assert.equal(publisher.hasRoom, false);
    release();
    await draining;
    assert.equal(publisher.hasRoom, true);
  });

  it('fails when the hold is rejected', async () => {
    const { publisher, failures } = harness(1);
    publisher.attach(new FakePort());
    const refusal = new ConfigError('not delivered');
    publisher.holdUntil(() => Promise.reject(refusal));
    await nextTurn();
    assert.deepEqual(failures, [refusal]);
    assert.equal(publisher.hasRoom, false);
  });
});

describe('Publisher and refusals the caller handles (rejected_records skip or dead_letter)', () => {
  for (const [qos, ack] of [
    [1, 'puback'],
    [2, 'pubrec'],
  ] as const) {
    it(`at QoS ${qos}, hands a ${ack} refusal of one record to the caller, frees its place and goes on`, async () => {
      const refusals: { token: number; line: number; reason: string; payload: unknown }[] = [];
      const acknowledged: number[] = [];
      const failures: ConnectorError[] = [];
      const publisher = new Publisher(
        new PublishEncoder(qos, false, true),
        { qos, maxInflight: 2, oneAtATime: false, maxMessageBytes: MQTT_MAX_PACKET_BYTES },
        {
          acknowledged: (token) => acknowledged.push(token),
          failed: (error) => failures.push(error),
          refused: ({ token, line, reason, payload }) => refusals.push({ token, line, reason, payload }),
          takes: (_token, code) => RECORD_REFUSALS.has(code),
        },
      );
      const port = new FakePort({ protocolVersion: 5 });
      publisher.attach(port);
      for (const token of [0, 1, 2]) publisher.send(USERS, `{"n":${token}}`, 7, ['1700000000000'], token, 100 + token);
      await nextTurn();
      port.acknowledge(ack, 1, 0x87);
      await nextTurn();
      // The refused message's place in the window goes to the third message.
      assert.equal(port.packets.filter((p) => p.cmd === 'publish').length, 3);
      assert.deepEqual(refusals, [
        { token: 0, line: 100, reason: 'Not authorized (reason code 0x87)', payload: '{"n":0}' },
      ]);
      port.acknowledge(ack, 2);
      port.acknowledge(ack, 3);
      if (qos === 2) {
        await nextTurn();
        port.acknowledge('pubcomp', 2);
        port.acknowledge('pubcomp', 3);
      }
      await publisher.drain();
      assert.deepEqual(acknowledged, [1, 2], 'the refused message is never counted as delivered');
      assert.deepEqual(failures, []);
    });
  }

  it('still fails on a refusal that is not about the one record (0x80 Unspecified error)', async () => {
    const failures: ConnectorError[] = [];
    const refused: number[] = [];
    const publisher = new Publisher(
      new PublishEncoder(1, false, true),
      { qos: 1, maxInflight: 10, oneAtATime: false, maxMessageBytes: MQTT_MAX_PACKET_BYTES },
      {
        acknowledged: () => undefined,
        failed: (error) => failures.push(error),
        refused: ({ token }) => refused.push(token),
        takes: (_token, code) => RECORD_REFUSALS.has(code),
      },
    );
    const port = new FakePort({ protocolVersion: 5 });
    publisher.attach(port);
    publisher.send(USERS, '{}', 2, ['1700000000000'], 0, 1);
    await nextTurn();
    port.acknowledge('puback', 1, 0x80);
    assert.equal(failures.length, 1);
    assert.deepEqual(refused, []);
  });
});
