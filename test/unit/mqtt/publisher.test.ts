import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MQTT_MAX_PACKET_BYTES, type QoS } from '../../../src/config/settings.js';
import { ConfigError, type ConnectorError, TransientError } from '../../../src/errors.js';
import { PublishEncoder, type PublishTarget, publishTarget } from '../../../src/mqtt/packets.js';
import { MAX_PACKET_IDS } from '../../../src/mqtt/inflight-store.js';
import { Publisher, type PublisherOptions } from '../../../src/mqtt/publisher.js';
import { BATCH_BYTES } from '../../../src/mqtt/write-batch.js';
import { FakePort, nextTurn } from '../../support/fake-port.js';

interface Harness {
  readonly publisher: Publisher;
  readonly target: PublishTarget;
  /** Tokens acknowledged, in the order the publisher reported them. */
  readonly acknowledged: number[];
  readonly failures: ConnectorError[];
  /** Sends a message whose payload is `payload` (default: its token as text), with `token` as its token. */
  readonly send: (token: number, payload?: string) => number;
}

function harness(qos: QoS, options: Partial<PublisherOptions> = {}, mqtt5 = false): Harness {
  const acknowledged: number[] = [];
  const failures: ConnectorError[] = [];
  const publisher = new Publisher(
    new PublishEncoder(qos, false, mqtt5),
    { qos, maxInflight: 1000, oneAtATime: false, maxMessageBytes: MQTT_MAX_PACKET_BYTES, ...options },
    { acknowledged: (token) => acknowledged.push(token), failed: (error) => failures.push(error) },
  );
  const target = publishTarget('t/users', { mqtt5, emittedAtProperty: false, label: 'the record of stream "users"' });
  const send = (token: number, payload = `{"n":${token}}`): number =>
    publisher.send(target, payload, Buffer.byteLength(payload), ['1700000000000'], token, 100 + token);
  return { publisher, target, acknowledged, failures, send };
}

function ids(port: FakePort): number[] {
  return port.publishes().map((p) => p.messageId ?? -1);
}

describe('Publisher', () => {
  it('completes the QoS 1 handshake: one PUBLISH per message, acknowledged by PUBACK in any order', async () => {
    const { publisher, acknowledged, send } = harness(1);
    const port = new FakePort();
    publisher.attach(port);
    for (const token of [10, 11, 12]) send(token);
    await nextTurn();
    assert.equal(port.chunks.length, 1, 'the three messages of one turn go out in one write');
    assert.deepEqual(ids(port), [1, 2, 3]);
    assert.deepEqual(
      port.publishes().map((p) => [p.qos, p.dup, p.topic, p.payload.toString()]),
      [
        [1, false, 't/users', '{"n":10}'],
        [1, false, 't/users', '{"n":11}'],
        [1, false, 't/users', '{"n":12}'],
      ],
    );
    port.acknowledge('puback', 2);
    port.acknowledge('puback', 2); // a duplicate counts once
    port.acknowledge('pubrec', 1); // the wrong handshake for QoS 1 is not an acknowledgement
    assert.deepEqual(acknowledged, [11]);
    port.acknowledge('puback', 1);
    port.acknowledge('puback', 3);
    assert.deepEqual(acknowledged, [11, 10, 12]);
    assert.equal(publisher.unacknowledged, 0);
    await publisher.drain();
  });

  it('completes the QoS 2 handshake: PUBREC answered by PUBREL, acknowledged only by PUBCOMP', async () => {
    const { publisher, acknowledged, send } = harness(2);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    await nextTurn();
    port.acknowledge('pubcomp', 1); // before PUBREC: not for a message in that stage
    assert.deepEqual(acknowledged, []);
    port.acknowledge('pubrec', 1);
    await nextTurn();
    assert.deepEqual(
      port.packets.map((p) => p.cmd),
      ['publish', 'pubrel'],
    );
    assert.equal((port.packets[1] as { messageId: number }).messageId, 1);
    assert.deepEqual(acknowledged, []);
    port.acknowledge('pubcomp', 1);
    assert.deepEqual(acknowledged, [0]);
  });

  it('keeps within the window and wakes the reader in a later turn once there is room', async () => {
    const { publisher, acknowledged, send } = harness(1, { maxInflight: 4 });
    const port = new FakePort();
    publisher.attach(port);
    let token = 0;
    while (publisher.hasRoom) send(token++);
    assert.equal(token, 4);
    let woken = 0;
    publisher.whenRoom(() => woken++);
    await nextTurn();
    assert.equal(woken, 0, 'no room, no wake-up');
    port.acknowledge('puback', 1);
    assert.equal(woken, 0, 'woken in a later turn, after every acknowledgement already received is counted');
    await nextTurn();
    assert.equal(woken, 1);
    assert.deepEqual(acknowledged, [0]);
    assert.ok(publisher.hasRoom);
  });

  it("keeps within the broker's Receive Maximum when it is below the configured window", () => {
    const { publisher, send } = harness(1, { maxInflight: 1000 });
    const port = new FakePort({ receiveMaximum: 3 });
    publisher.attach(port);
    assert.equal(publisher.window, 3);
    let token = 0;
    while (publisher.hasRoom) send(token++);
    assert.equal(token, 3);
  });

  it('stops taking messages while the transport buffer is full, and goes on after drain', async () => {
    const { publisher, send } = harness(1);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    port.needsDrain = true;
    assert.equal(publisher.hasRoom, false);
    let woken = 0;
    publisher.whenRoom(() => woken++);
    await nextTurn();
    assert.equal(woken, 0);
    port.drained();
    await nextTurn();
    assert.equal(woken, 1);
  });

  it('bounds the payload bytes in flight, whatever the window', () => {
    const { publisher, send } = harness(1, { maxInflight: 1000, maxInflightBytes: 1000 });
    const port = new FakePort();
    publisher.attach(port);
    const payload = 'x'.repeat(300);
    let token = 0;
    while (publisher.hasRoom) send(token++, payload);
    assert.equal(token, 4, 'four 300-byte payloads reach the 1000-byte bound');
    port.acknowledge('puback', 1);
    assert.equal(publisher.hasRoom, true, 'an acknowledgement frees its bytes');
  });

  it('sends what was not acknowledged again after a reconnect, in its original order, with DUP', async () => {
    const { publisher, acknowledged, send } = harness(1);
    const first = new FakePort();
    publisher.attach(first);
    for (let token = 0; token < 5; token++) send(token);
    await nextTurn();
    first.acknowledge('puback', 2);
    publisher.detach();
    first.acknowledge('puback', 3); // late, from the lost connection: ignored
    assert.equal(first.listening, false);
    const second = new FakePort();
    publisher.attach(second);
    send(5);
    await nextTurn();
    assert.deepEqual(ids(second), [1, 3, 4, 5, 6]);
    assert.deepEqual(
      second.publishes().map((p) => p.dup),
      [true, true, true, true, false],
    );
    assert.deepEqual(
      second.publishes().map((p) => p.payload.toString()),
      ['{"n":0}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}'],
    );
    for (const id of [1, 3, 4, 5, 6]) second.acknowledge('puback', id);
    assert.deepEqual(acknowledged, [1, 0, 2, 3, 4, 5]);
  });

  it("resends within the new connection's Receive Maximum, the rest as acknowledgements come", async () => {
    const { publisher, send } = harness(1);
    const first = new FakePort();
    publisher.attach(first);
    for (let token = 0; token < 5; token++) send(token);
    await nextTurn();
    publisher.detach();
    const second = new FakePort({ receiveMaximum: 2 });
    publisher.attach(second);
    await nextTurn();
    assert.deepEqual(ids(second), [1, 2]);
    assert.equal(publisher.hasRoom, false, 'no new message before the old ones are out');
    second.acknowledge('puback', 1);
    await nextTurn();
    assert.deepEqual(ids(second), [1, 2, 3]);
  });

  it('at QoS 2 sends PUBREL again when the broker resumed the session, PUBLISH again when it did not', async () => {
    for (const sessionPresent of [true, false]) {
      const { publisher, acknowledged, send } = harness(2);
      const first = new FakePort();
      publisher.attach(first);
      send(0);
      send(1);
      await nextTurn();
      first.acknowledge('pubrec', 1);
      await nextTurn();
      publisher.detach();
      const second = new FakePort({ sessionPresent });
      publisher.attach(second);
      await nextTurn();
      const sent = second.packets.map(
        (p) => `${p.cmd}${p.cmd === 'publish' && p.dup ? '+dup' : ''} ${(p as { messageId?: number }).messageId}`,
      );
      if (sessionPresent) assert.deepEqual(sent, ['pubrel 1', 'publish+dup 2']);
      else
        assert.deepEqual(
          sent,
          ['publish+dup 1', 'publish+dup 2'],
          'a new session has forgotten the message it acknowledged with PUBREC',
        );
      if (!sessionPresent) second.acknowledge('pubrec', 1);
      second.acknowledge('pubcomp', 1);
      assert.deepEqual(acknowledged, [0], `session present: ${sessionPresent}`);
    }
  });

  it('fails once on a refusal and ignores everything after it', async () => {
    const { publisher, acknowledged, failures, send } = harness(1, {}, true);
    const port = new FakePort({ protocolVersion: 5 });
    publisher.attach(port);
    send(0);
    send(1);
    await nextTurn();
    port.acknowledge('puback', 1, 0x87);
    port.acknowledge('puback', 2, 0x87);
    port.acknowledge('puback', 2);
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof ConfigError);
    assert.match(
      failures[0]?.message ?? '',
      /refused a message on topic "t\/users": Not authorized \(reason code 0x87\)/,
    );
    assert.deepEqual(acknowledged, []);
    assert.equal(publisher.hasRoom, false);
    await assert.rejects(publisher.drain(), (err) => err === failures[0]);
  });

  it('fails with a transient error on a refusal that may not repeat (0x80, unspecified)', async () => {
    const { publisher, failures, send } = harness(2, {}, true);
    const port = new FakePort({ protocolVersion: 5 });
    publisher.attach(port);
    send(0);
    await nextTurn();
    port.acknowledge('pubrec', 1, 0x80);
    await nextTurn();
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof TransientError);
    assert.match(failures[0]?.message ?? '', /Unspecified error \(reason code 0x80\)/);
    assert.deepEqual(
      port.packets.map((p) => p.cmd),
      ['publish'],
      'no PUBREL for a refused PUBREC',
    );
  });

  it('counts "no matching subscribers" (0x10) as delivered, per topic', async () => {
    const { publisher, acknowledged, send } = harness(1, {}, true);
    const port = new FakePort({ protocolVersion: 5 });
    publisher.attach(port);
    send(0);
    send(1);
    await nextTurn();
    port.acknowledge('puback', 1, 0x10);
    port.acknowledge('puback', 2);
    assert.deepEqual(acknowledged, [0, 1]);
    assert.equal(publisher.noSubscribers.get('t/users'), 1);
  });

  it('announces topic aliases on each connection anew, as many as its broker allows', async () => {
    const { publisher, send } = harness(1, {}, true);
    const other = publishTarget('t/orders', { mqtt5: true, emittedAtProperty: false });
    const first = new FakePort({ protocolVersion: 5, topicAliasMaximum: 1 });
    publisher.attach(first);
    send(0);
    send(1);
    publisher.send(other, '{}', 2, ['1700000000000'], 2);
    await nextTurn();
    assert.deepEqual(
      first.publishes().map((p) => [p.topic, p.properties?.topicAlias]),
      [
        ['t/users', 1],
        ['', 1],
        ['t/orders', undefined],
      ],
    );
    publisher.detach();
    const second = new FakePort({ protocolVersion: 5, topicAliasMaximum: 2 });
    publisher.attach(second);
    await nextTurn();
    assert.deepEqual(
      second.publishes().map((p) => [p.topic, p.properties?.topicAlias]),
      [
        ['t/users', 1],
        ['', 1],
        ['t/orders', 2],
      ],
      'the new connection hears the topic with its alias first',
    );
  });

  it('fails, naming the input line and what the message is, when a message exceeds what the connection may carry', async () => {
    const { publisher, acknowledged, failures, send } = harness(1, { maxMessageBytes: 10_000 }, true);
    const port = new FakePort({ protocolVersion: 5, maximumPacketSize: 500, topicAliasMaximum: 5 });
    // Queued before any connection, so that only the connection finds it too large (`send` refuses what it can tell).
    send(0, 'x'.repeat(400));
    send(1, 'x'.repeat(490));
    publisher.attach(port);
    await nextTurn();
    assert.deepEqual(
      port.publishes().filter((p) => p.payload.length === 490),
      [],
      'nothing of the message too large is written',
    );
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof ConfigError);
    assert.match(
      failures[0]?.message ?? '',
      /^Input line 101: the record of stream "users" makes a 5\d\d-byte MQTT message, larger than the 500 bytes the broker accepts \(its Maximum Packet Size\)\./,
    );
    port.acknowledge('puback', 1);
    assert.deepEqual(acknowledged, [], 'the sync has stopped');
  });

  it('checks the size with the topic spelled out, so that a message fits again after a reconnect', async () => {
    // After the alias is announced, the packet without the topic would fit; the one a new connection starts with would not.
    // With a 100-byte payload the packet is 119 bytes with the topic and 112 without it.
    const { publisher, target, failures, send } = harness(1, { maxMessageBytes: 115 }, true);
    const port = new FakePort({ protocolVersion: 5, topicAliasMaximum: 5 });
    publisher.attach(port);
    send(0, 'x'.repeat(90));
    await nextTurn();
    assert.equal(failures.length, 0);
    const size = send(1, 'x'.repeat(100));
    await nextTurn();
    assert.equal(size, 119, 'send refuses it at its size with the topic');
    assert.match(
      publisher.describeOversize(undefined, target, 100, size),
      /makes a 119-byte MQTT message, larger than the 115 bytes allowed by "Maximum message size \(bytes\)" \(max_message_bytes\)/,
    );
    assert.equal(port.publishes().length, 1, 'nothing of it is written');
    assert.deepEqual(failures, [], "the record is the caller's to reject; publishing goes on");
  });

  it('refuses in send a message too large for the connection: returns its size, keeps and writes nothing', async () => {
    const { publisher, acknowledged, failures, send } = harness(1, { maxInflight: 1 }, true);
    const first = new FakePort({ protocolVersion: 5, maximumPacketSize: 500 });
    publisher.attach(first);
    assert.ok(send(0, 'x'.repeat(490)) > 500, 'written at once: refused');
    assert.equal(publisher.unacknowledged, 0, 'nothing kept');
    assert.equal(send(1), 0);
    assert.ok(send(2, 'x'.repeat(490)) > 500, 'queued behind the window: refused too');
    assert.equal(send(3), 0);
    await nextTurn();
    assert.deepEqual(ids(first), [1], 'no id was given to the refused message');
    first.acknowledge('puback', 1);
    await nextTurn();
    assert.deepEqual(ids(first), [1, 2]);
    first.acknowledge('puback', 2);
    publisher.detach();
    assert.ok(send(4, 'x'.repeat(490)) > 500, 'while reconnecting, sized against the last connection');
    assert.equal(send(5), 0);
    const second = new FakePort({ protocolVersion: 5, maximumPacketSize: 500 });
    publisher.attach(second);
    await nextTurn();
    assert.deepEqual(ids(second), [3]);
    second.acknowledge('puback', 3);
    assert.deepEqual(acknowledged, [1, 3, 5]);
    assert.deepEqual(failures, []);
  });

  it('wraps packet ids past 65,535 without reusing one still in flight', async () => {
    const { publisher, acknowledged, send } = harness(1, { maxInflight: 1000 });
    const port = new FakePort();
    publisher.attach(port);
    const total = MAX_PACKET_IDS + 2500;
    let token = 0;
    let next = 0; // index into the port's PUBLISH packets of the next one to acknowledge
    while (token < total) {
      while (publisher.hasRoom && token < total) send(token++);
      await nextTurn();
      const published = port.publishes();
      // Acknowledge the older half, keeping messages in flight across the wrap.
      const upTo = Math.max(next, published.length - 500);
      for (; next < upTo; next++) port.acknowledge('puback', published[next]?.messageId ?? 0);
    }
    const published = port.publishes();
    for (; next < published.length; next++) port.acknowledge('puback', published[next]?.messageId ?? 0);
    assert.equal(acknowledged.length, total);
    assert.deepEqual(
      acknowledged,
      Array.from({ length: total }, (_, i) => i),
    );
    const seen = published.map((p) => p.messageId);
    assert.equal(seen[MAX_PACKET_IDS - 1], MAX_PACKET_IDS);
    assert.equal(seen[MAX_PACKET_IDS], 1, 'id 1 follows 65,535');
    assert.ok(!seen.includes(0), 'packet id 0 is never used');
  });

  it('after a reconnect, sends the messages in flight across the id wrap again oldest first', async () => {
    const { publisher, acknowledged, send } = harness(1, { maxInflight: 1000 });
    const first = new FakePort();
    publisher.attach(first);
    let token = 0;
    let next = 0; // index into the port's PUBLISH packets of the next one to acknowledge
    while (token < MAX_PACKET_IDS - 2) {
      while (publisher.hasRoom && token < MAX_PACKET_IDS - 2) send(token++);
      await nextTurn();
      const published = first.publishes();
      for (; next < published.length; next++) first.acknowledge('puback', published[next]?.messageId ?? 0);
    }
    for (let n = 0; n < 5; n++) send(token++); // ids 65,534 and 65,535, then 1, 2 and 3
    await nextTurn();
    publisher.detach();
    const second = new FakePort();
    publisher.attach(second);
    await nextTurn();
    assert.deepEqual(ids(second), [65_534, 65_535, 1, 2, 3]);
    for (const id of ids(second)) second.acknowledge('puback', id);
    assert.deepEqual(acknowledged.slice(-5), [65_533, 65_534, 65_535, 65_536, 65_537]);
  });

  it('counts a QoS 0 message as delivered only once its write succeeded, and sends it again after a failed write', async () => {
    const { publisher, acknowledged, send } = harness(0);
    const first = new FakePort({ holdWrites: true });
    publisher.attach(first);
    send(0);
    send(1);
    await nextTurn();
    assert.deepEqual(acknowledged, [], 'nothing counted before the write completes');
    first.completeWrites(new Error('EPIPE'));
    assert.deepEqual(acknowledged, [], 'a failed write delivers nothing');
    publisher.detach();
    const second = new FakePort({ holdWrites: true });
    publisher.attach(second);
    await nextTurn();
    assert.deepEqual(
      second.publishes().map((p) => [p.payload.toString(), p.dup]),
      [
        ['{"n":0}', false],
        ['{"n":1}', false],
      ],
    );
    second.completeWrites();
    assert.deepEqual(acknowledged, [0, 1]);
  });

  it('counts a QoS 0 message with the write that carries its bytes, not the write before it', async () => {
    const { publisher, acknowledged, send } = harness(0);
    const port = new FakePort({ holdWrites: true });
    publisher.attach(port);
    send(0, 'a'.repeat(BATCH_BYTES - 100));
    send(1, 'b'.repeat(1000)); // does not fit behind the first: the first is flushed on its own
    assert.equal(port.chunks.length, 1);
    port.completeWrites();
    assert.deepEqual(acknowledged, [0], 'the second message is not in the completed write');
    await nextTurn();
    port.completeWrites();
    assert.deepEqual(acknowledged, [0, 1]);
  });

  it('puts the messages of a turn into as few writes as their size allows', async () => {
    const { publisher, send } = harness(1, { maxInflight: 5000 });
    const port = new FakePort();
    publisher.attach(port);
    const payload = 'x'.repeat(200);
    for (let token = 0; token < 2000; token++) send(token, payload);
    await nextTurn();
    const bytes = port.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    assert.equal(port.publishes().length, 2000);
    assert.ok(
      port.chunks.length <= Math.ceil(bytes / (BATCH_BYTES - 4096)) + 1,
      `${port.chunks.length} writes for ${bytes} bytes`,
    );
  });

  it('publishes messages larger than what is left of the batch, and larger than a batch, whole', async () => {
    const { publisher, acknowledged, send } = harness(1);
    const port = new FakePort();
    publisher.attach(port);
    const sizes = [100, 10_755, 5_926, 60_000, 3 * BATCH_BYTES, 0, BATCH_BYTES, 12_000, 1];
    sizes.forEach((size, token) => send(token, 'é'.repeat(size >> 1) + 'x'.repeat(size & 1)));
    await nextTurn();
    assert.deepEqual(
      port.publishes().map((p) => p.payload.length),
      sizes,
    );
    for (const p of port.publishes()) port.acknowledge('puback', p.messageId ?? 0);
    assert.equal(acknowledged.length, sizes.length);
  });

  it('resolves drain only once every message in flight is acknowledged', async () => {
    const { publisher, send } = harness(1);
    const port = new FakePort();
    publisher.attach(port);
    send(0);
    send(1);
    let drained = false;
    const done = publisher.drain().then(() => (drained = true));
    await nextTurn();
    port.acknowledge('puback', 1);
    await nextTurn();
    assert.equal(drained, false, 'one message still in flight');
    port.acknowledge('puback', 2);
    await done;
    assert.equal(drained, true);
  });

  it('takes messages while detached, says it has no room, and sends them after the backlog on the next connection', async () => {
    const { publisher, send } = harness(1, { maxInflight: 7 });
    assert.equal(publisher.window, 7, 'before any connection: the configured bound');
    const first = new FakePort();
    publisher.attach(first);
    send(0);
    send(1);
    await nextTurn();
    publisher.detach();
    assert.equal(publisher.hasRoom, false);
    send(2); // a reader still flowing when the connection dropped
    const second = new FakePort({ receiveMaximum: 1 });
    publisher.attach(second);
    send(3); // behind the backlog
    await nextTurn();
    assert.deepEqual(ids(second), [1], 'the window of one holds the rest back');
    for (let id = 1; id <= 4; id++) {
      second.acknowledge('puback', id);
      await nextTurn();
    }
    assert.deepEqual(
      second.publishes().map((p) => [p.payload.toString(), p.dup]),
      [
        ['{"n":0}', true],
        ['{"n":1}', true],
        ['{"n":2}', false],
        ['{"n":3}', false],
      ],
    );
  });

  it('does not count a QoS 0 write of a lost connection that completes after the reconnect', async () => {
    const { publisher, acknowledged, send } = harness(0);
    const first = new FakePort({ holdWrites: true });
    publisher.attach(first);
    send(0);
    await nextTurn();
    publisher.detach();
    const second = new FakePort({ holdWrites: true });
    publisher.attach(second);
    await nextTurn();
    first.completeWrites();
    assert.deepEqual(acknowledged, [], 'the old write says nothing about the message sent again');
    second.completeWrites();
    assert.deepEqual(acknowledged, [0]);
  });

  it('wakes the reader every time room comes back, and never after a stop', async () => {
    const { publisher, send } = harness(1, { maxInflight: 1 });
    const port = new FakePort();
    publisher.attach(port);
    let woken = 0;
    for (let round = 1; round <= 3; round++) {
      send(round);
      publisher.whenRoom(() => woken++);
      await nextTurn();
      port.acknowledge('puback', round);
      await nextTurn();
      assert.equal(woken, round);
    }
    send(9);
    publisher.whenRoom(() => woken++);
    await nextTurn();
    port.acknowledge('puback', 4);
    publisher.stop(new ConfigError('stopped'));
    await nextTurn();
    assert.equal(woken, 3, 'a stopped publisher wakes nobody');
  });

  it('with a large window, wakes the reader as soon as there is room, once for every acknowledgement of the turn', async () => {
    const { publisher, send } = harness(1, { maxInflight: 512 });
    const port = new FakePort();
    publisher.attach(port);
    let token = 0;
    while (publisher.hasRoom) send(token++);
    const inflightAtWake: number[] = [];
    publisher.whenRoom(() => inflightAtWake.push(publisher.unacknowledged));
    await nextTurn();
    const published = port.publishes();
    for (let i = 0; i < 3; i++) port.acknowledge('puback', published[i]?.messageId ?? 0);
    assert.deepEqual(inflightAtWake, [], 'woken in a later turn');
    await nextTurn();
    // Not at half the window: a broker with Nagle's algorithm on holds its PUBACKs back until our next packet.
    assert.deepEqual(inflightAtWake, [509], 'woken once, after all three acknowledgements are counted');
  });

  it('keeps the first failure when stopped twice', async () => {
    const { publisher, send } = harness(1);
    publisher.attach(new FakePort());
    send(0);
    const first = new ConfigError('first');
    publisher.stop(first);
    publisher.stop(new ConfigError('second'));
    await assert.rejects(publisher.drain(), (err) => err === first);
  });

  it('counts only the "no matching subscribers" acknowledgements, per topic', async () => {
    const { publisher, send } = harness(1, {}, true);
    const port = new FakePort({ protocolVersion: 5 });
    publisher.attach(port);
    for (let token = 0; token < 4; token++) send(token);
    await nextTurn();
    port.acknowledge('puback', 1, 0x10);
    for (const id of [2, 3, 4]) port.acknowledge('puback', id);
    assert.equal(publisher.noSubscribers.get('t/users'), 1);
  });
});
