import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MQTT_MAX_PACKET_BYTES, type QoS } from '../../../src/config/settings.js';
import { MAX_PACKET_IDS } from '../../../src/mqtt/inflight-store.js';
import { PublishEncoder, publishTarget } from '../../../src/mqtt/packets.js';
import { type SendOptions, SendState, windowSize } from '../../../src/mqtt/send-state.js';
import { FakePort, type FakePortOptions, nextTurn } from '../../support/fake-port.js';

const OPTIONS: SendOptions = { maxInflight: 1000, oneAtATime: false, maxMessageBytes: MQTT_MAX_PACKET_BYTES };
const VALUES = ['1700000000000'];
const USERS = publishTarget('t/users', {
  mqtt5: true,
  emittedAtProperty: false,
  label: 'the record of stream "users"',
});
const ORDERS = publishTarget('t/orders', { mqtt5: true, emittedAtProperty: false });

interface Sending {
  readonly state: SendState;
  readonly port: FakePort;
  /** The ids of each write `delivered` was told of (QoS 0). */
  readonly delivered: (readonly number[])[];
}

function sending(port: FakePortOptions = {}, options: Partial<SendOptions> = {}, qos: QoS = 1): Sending {
  const fake = new FakePort({ protocolVersion: 5, ...port });
  const delivered: (readonly number[])[] = [];
  const state = new SendState(
    fake,
    new PublishEncoder(qos, false, true),
    { ...OPTIONS, ...options },
    {
      acknowledged: () => undefined,
      drained: () => undefined,
      delivered: qos === 0 ? (ids) => delivered.push(ids) : undefined,
    },
  );
  return { state, port: fake, delivered };
}

/** Publishes a message of `payload` to `target` with packet id `id` into the batch; returns what `publish` did. */
function publish(state: SendState, target = USERS, id = 1, payload = '{}'): number {
  return state.publish(target, id, payload, Buffer.byteLength(payload), VALUES, false);
}

describe('SendState', () => {
  it('allows the configured number of messages in flight, fewer if the broker says so, one at a time if asked', () => {
    assert.equal(sending().state.window, 1000);
    assert.equal(sending({ receiveMaximum: 20 }).state.window, 20, "the broker's Receive Maximum");
    assert.equal(
      sending({ receiveMaximum: 5000 }).state.window,
      1000,
      'a larger Receive Maximum is no reason for more',
    );
    assert.equal(sending({}, { oneAtATime: true }).state.window, 1, 'publisher_sync');
    assert.equal(sending({}, { maxInflight: 100_000 }).state.window, MAX_PACKET_IDS, 'no more than there are ids');
    assert.equal(windowSize({ maxInflight: 0, oneAtATime: false, brokerReceiveMaximum: undefined }), 1);
  });

  it('counts the messages on the wire against the window, a PUBREL sent again among them', () => {
    const { state } = sending({ receiveMaximum: 2 });
    assert.equal(state.windowFull, false);
    publish(state, USERS, 1);
    state.releaseAgain(2);
    assert.equal(state.windowFull, true);
    state.release(1); // in answer to PUBREC: the message is on the wire already
    state.settled();
    assert.equal(state.windowFull, false);
  });

  it("takes the smaller of max_message_bytes and the broker's Maximum Packet Size, and says which it is", () => {
    assert.deepEqual(sending({ maximumPacketSize: 256 }, { maxMessageBytes: 10_000 }).state.sizeLimit, {
      bytes: 256,
      source: 'the broker accepts (its Maximum Packet Size)',
    });
    assert.deepEqual(sending({ maximumPacketSize: 256 }, { maxMessageBytes: 256 }).state.sizeLimit.bytes, 256);
    const configured = sending({ maximumPacketSize: 256 }, { maxMessageBytes: 200 }).state.sizeLimit;
    assert.equal(configured.bytes, 200);
    assert.match(configured.source, /^allowed by "Maximum message size \(bytes\)" \(max_message_bytes\)/);
    assert.equal(sending().state.sizeLimit.bytes, MQTT_MAX_PACKET_BYTES, 'MQTT itself when neither is set');
  });

  it('announces a topic alias with its topic, then sends the alias alone, as many as the broker allows', async () => {
    const { state, port } = sending({ topicAliasMaximum: 1 });
    assert.equal(state.usesTopicAliases, true);
    publish(state, USERS, 1);
    publish(state, USERS, 2);
    publish(state, ORDERS, 3);
    publish(state, ORDERS, 4);
    await nextTurn();
    assert.equal(port.chunks.length, 1, 'one write for the turn');
    assert.deepEqual(
      port.publishes().map((p) => [p.messageId, p.topic, p.properties?.topicAlias]),
      [
        [1, 't/users', 1],
        [2, '', 1],
        [3, 't/orders', undefined],
        [4, 't/orders', undefined],
      ],
    );
    const plain = sending();
    assert.equal(plain.state.usesTopicAliases, false);
    publish(plain.state, USERS, 1);
    publish(plain.state, USERS, 2);
    await nextTurn();
    assert.deepEqual(
      plain.port.publishes().map((p) => [p.topic, p.properties?.topicAlias]),
      [
        ['t/users', undefined],
        ['t/users', undefined],
      ],
    );
  });

  it('finds a message too large with its topic spelled out, and then writes nothing of it', async () => {
    const { state, port } = sending({ topicAliasMaximum: 5, receiveMaximum: 1 }, { maxMessageBytes: 115 });
    const announced = 'x'.repeat(90);
    assert.equal(publish(state, USERS, 1, announced), 0);
    state.settled();
    // 119 bytes with the topic, 112 without: it would fit now, but not as the first message of the next connection.
    assert.equal(state.oversize(USERS, 100, VALUES), 119);
    const pending = state.batch.pending;
    assert.equal(publish(state, USERS, 2, 'x'.repeat(100)), 119);
    assert.equal(state.batch.pending, pending, 'nothing added to the batch');
    assert.equal(state.windowFull, false, 'not counted on the wire');
    assert.equal(state.oversize(USERS, 90, VALUES), 0);
    await nextTurn();
    assert.deepEqual(
      port.publishes().map((p) => p.messageId),
      [1],
    );
    assert.deepEqual(state.oversizeOf(USERS, 100, 119), {
      label: 'the record of stream "users"',
      size: 119,
      limit: state.sizeLimit,
      withoutUserProperties: 119,
    });
  });

  it('at QoS 0, reports the messages of a write once the operating system took it, not after a failure', async () => {
    const { state, port, delivered } = sending({ holdWrites: true }, {}, 0);
    publish(state, USERS, 0);
    state.carries(7);
    publish(state, USERS, 0);
    state.carries(8);
    await nextTurn();
    assert.deepEqual(delivered, []);
    port.completeWrites();
    assert.deepEqual(delivered, [[7, 8]]);
    publish(state, USERS, 0);
    state.carries(9);
    await nextTurn();
    port.completeWrites(new Error('EPIPE'));
    assert.deepEqual(delivered, [[7, 8]]);
  });

  it('stops listening and drops what it had not written when closed', async () => {
    const { state, port } = sending();
    assert.equal(port.listening, true);
    publish(state, USERS, 1);
    state.close();
    assert.equal(port.listening, false);
    await nextTurn();
    assert.deepEqual(port.chunks, []);
  });
});
