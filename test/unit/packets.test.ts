import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { PublishEncoder, assignAliases, publishTarget, writePubrel } from '../../src/packets.js';

/** mqtt-packet's parser (the one MQTT.js and aedes use) decodes what the encoder wrote. */
function parse(buffer: Buffer, protocolVersion: 4 | 5): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (err: Error) => errors.push(err));
  parser.parse(buffer);
  assert.deepEqual(errors, []);
  return packets;
}

function encode(encoder: PublishEncoder, target: ReturnType<typeof publishTarget>, id: number, payload: string, emittedAt = '1700000000000', dup = false): Buffer {
  const bytes = Buffer.byteLength(payload);
  const size = encoder.size(target, bytes, emittedAt);
  const buffer = Buffer.alloc(size + 10);
  const end = encoder.write(buffer, 0, target, id, payload, bytes, emittedAt, dup);
  assert.equal(end, size, 'size() is exact');
  return buffer.subarray(0, end);
}

describe('PublishEncoder', () => {
  it('encodes MQTT 3.1.1 PUBLISH packets at every QoS, with retain, across length-field boundaries', () => {
    for (const qos of [0, 1, 2] as const) {
      for (const retain of [false, true]) {
        for (const length of [0, 1, 120, 16_380, 16_400, 2_097_200]) {
          const payload = 'é'.repeat(length / 2) + 'x'.repeat(length % 2);
          const target = publishTarget('airbyte/東京/users', { mqtt5: false, emittedAtProperty: false, alias: 0 });
          const [packet] = parse(encode(new PublishEncoder(qos, retain, false), target, 513, payload), 4) as IPublishPacket[];
          assert.equal(packet?.cmd, 'publish');
          assert.equal(packet?.topic, 'airbyte/東京/users');
          assert.equal(packet?.qos, qos);
          assert.equal(packet?.retain, retain);
          assert.equal(packet?.dup, false);
          if (qos > 0) assert.equal(packet?.messageId, 513);
          assert.equal(packet?.payload.toString(), payload);
        }
      }
    }
  });

  it('encodes MQTT 5 properties and announces a topic alias once, then sends an empty topic', () => {
    const target = publishTarget('airbyte/crm/users', {
      mqtt5: true,
      contentType: 'application/json',
      messageExpirySeconds: 3600,
      userProperties: { airbyte_stream: 'users', airbyte_namespace: 'crm' },
      emittedAtProperty: true,
      alias: 3,
    });
    const encoder = new PublishEncoder(1, false, true);
    const first = encode(encoder, target, 1, '{"a":1}');
    const second = encode(encoder, target, 2, '{"a":2}', '1700000000001');
    assert.ok(second.length < first.length, 'the second message leaves out the topic');
    const [one, two] = parse(Buffer.concat([first, second]), 5) as IPublishPacket[];
    assert.equal(one?.topic, 'airbyte/crm/users');
    assert.equal(two?.topic, '');
    for (const [packet, emittedAt] of [[one, '1700000000000'], [two, '1700000000001']] as const) {
      assert.equal(packet?.properties?.topicAlias, 3);
      assert.equal(packet?.properties?.contentType, 'application/json');
      assert.equal(packet?.properties?.payloadFormatIndicator, true);
      assert.equal(packet?.properties?.messageExpiryInterval, 3600);
      assert.deepEqual({ ...packet?.properties?.userProperties }, { airbyte_stream: 'users', airbyte_namespace: 'crm', airbyte_emitted_at: emittedAt });
    }
  });

  it('encodes MQTT 5 messages without user properties or alias', () => {
    const target = publishTarget('t', { mqtt5: true, contentType: 'application/json', emittedAtProperty: false, alias: 0 });
    const [packet] = parse(encode(new PublishEncoder(2, true, true), target, 65535, 'x'), 5) as IPublishPacket[];
    assert.equal(packet?.topic, 't');
    assert.equal(packet?.messageId, 65535);
    assert.equal(packet?.properties?.userProperties, undefined);
    assert.equal(packet?.properties?.topicAlias, undefined);
  });

  it('marks a message sent again with DUP', () => {
    const target = publishTarget('t', { mqtt5: false, emittedAtProperty: false, alias: 0 });
    const [again] = parse(encode(new PublishEncoder(1, true, false), target, 7, 'x', '1', true), 4) as IPublishPacket[];
    assert.equal(again?.dup, true);
    assert.equal(again?.retain, true);
    assert.equal(again?.messageId, 7);
  });

  it('assigns aliases per connection: announced again after a reconnect, as many as the broker allows', () => {
    const targets = ['a', 'b', 'c'].map((topic) => publishTarget(topic, { mqtt5: true, emittedAtProperty: false, alias: 0 }));
    assignAliases(targets, 2);
    assert.deepEqual(targets.map((t) => t.alias), [1, 2, 0]);
    const encoder = new PublishEncoder(1, false, true);
    encode(encoder, targets[0] as ReturnType<typeof publishTarget>, 1, 'x');
    assert.equal(targets[0]?.aliasAnnounced, true);
    assignAliases(targets, 1);
    assert.deepEqual(targets.map((t) => [t.alias, t.aliasAnnounced]), [[1, false], [0, false], [0, false]]);
    const [packet] = parse(encode(encoder, targets[0] as ReturnType<typeof publishTarget>, 2, 'y'), 5) as IPublishPacket[];
    assert.equal(packet?.topic, 'a', 'the topic is sent again on the new connection');
  });

  it('writes PUBREL packets', () => {
    const buffer = Buffer.alloc(4);
    writePubrel(buffer, 0, 258);
    const [packet] = parse(buffer, 4);
    assert.equal(packet?.cmd, 'pubrel');
    assert.equal((packet as { messageId: number }).messageId, 258);
  });
});
