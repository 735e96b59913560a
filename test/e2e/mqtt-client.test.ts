/**
 * The behaviour of MQTT.js that the connector relies on, pinned by a test so that an upgrade that changes it fails
 * here and not in a user's sync. The publisher writes its own PUBLISH and PUBREL packets on MQTT.js's stream and
 * reads the acknowledgements through `packetreceive`; that only works while MQTT.js passes acknowledgements of packet
 * ids it did not allocate on to `packetreceive` and otherwise leaves them alone: no error, no PUBREL of its own, no
 * closed connection.
 */
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient, type Packet } from 'mqtt';
import { PublishEncoder, publishTarget, writePubrel } from '../../src/mqtt/packets.js';
import { withAedes } from '../support/aedes.js';

const PINGREQ = Buffer.from([0xc0, 0x00]);

/** Resolves with the first packet received that matches, rejecting after `timeoutMs`. */
function nextPacket(client: MqttClient, matches: (packet: Packet) => boolean, timeoutMs = 5000): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const onPacket = (packet: Packet): void => {
      if (!matches(packet)) return;
      clearTimeout(timer);
      client.off('packetreceive', onPacket);
      resolve(packet);
    };
    const timer = setTimeout(() => {
      client.off('packetreceive', onPacket);
      reject(new Error(`no matching packet within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('packetreceive', onPacket);
  });
}

function publishBytes(qos: 1 | 2, packetId: number): Buffer {
  const encoder = new PublishEncoder(qos, false, false);
  const target = publishTarget('mqttjs/contract', { mqtt5: false, emittedAtProperty: false });
  const payload = '{"pinned":true}';
  const buffer = Buffer.alloc(encoder.size(target, payload.length, ['0']));
  encoder.write(buffer, 0, target, packetId, payload, payload.length, ['0']);
  return buffer;
}

describe('MQTT.js, as the connector uses it', () => {
  const broker = withAedes();
  let client: MqttClient;
  const errors: Error[] = [];
  const seen: Packet[] = [];

  before(async () => {
    client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    client.on('error', (err) => errors.push(err));
    client.on('packetreceive', (packet) => seen.push(packet));
  });
  after(() => client.endAsync());

  it('passes on a PUBACK for a packet id it did not allocate, and ignores it otherwise', async () => {
    const puback = nextPacket(client, (p) => p.cmd === 'puback' && p.messageId === 4242);
    (client.stream as Duplex).write(publishBytes(1, 4242));
    await puback;
    assert.deepEqual(errors, []);
    assert.equal(client.connected, true);
  });

  it('passes on PUBREC and PUBCOMP for a packet id it did not allocate, without sending a PUBREL of its own', async () => {
    const stream = client.stream as Duplex;
    const pubrec = nextPacket(client, (p) => p.cmd === 'pubrec' && p.messageId === 777);
    stream.write(publishBytes(2, 777));
    await pubrec;
    // PINGRESP answers a PINGREQ written after the PUBREC arrived: a PUBREL MQTT.js sent on its own would have
    // reached the broker first, and its PUBCOMP would come back before the PINGRESP.
    const before = seen.length;
    const pong = nextPacket(client, (p) => p.cmd === 'pingresp');
    stream.write(PINGREQ);
    await pong;
    assert.deepEqual(
      seen.slice(before).map((p) => p.cmd),
      ['pingresp'],
      'MQTT.js answered the PUBREC itself',
    );
    const pubcomp = nextPacket(client, (p) => p.cmd === 'pubcomp' && p.messageId === 777);
    const pubrel = Buffer.alloc(4);
    writePubrel(pubrel, 0, 777);
    stream.write(pubrel);
    await pubcomp;
    assert.deepEqual(errors, []);
    assert.equal(client.connected, true);
    assert.equal(broker.received.filter((p) => p.topic === 'mqttjs/contract').length, 2);
  });
});
