/**
 * MQTT 5 re-authentication on its own: the AUTH 0x19 packet, compared with mqtt-packet's encoding of the same, and the
 * exchange over a fake client whose stream is the fake connection of the publisher's tests (it parses every packet
 * written to it). The test plays the broker by calling the client's `handleAuth` as MQTT.js does when an AUTH comes
 * in; the deadline runs on node:test's mocked timers.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { MqttClient } from 'mqtt';
import mqttPacket, { type IAuthPacket, type Packet } from 'mqtt-packet';
import { ReauthenticationRefused, reauthenticate, reauthenticatePacket } from '../../../src/mqtt/reauthentication.js';
import { FakePort, nextTurn } from '../../support/fake-port.js';

const METHOD = 'OAUTH2-JWT';
const TOKEN = Buffer.from('eyJhbGciOiJSUzI1NiJ9.new-token.signature', 'utf8');
const TIMEOUT_MS = 2500;

interface FakeClient {
  readonly client: MqttClient;
  /** What was written on the connection, parsed. */
  readonly port: FakePort;
  /** AUTH packets that reached the client's own handler (MQTT.js's, which accepts them). */
  readonly ownHandler: IAuthPacket[];
  /** Plays the broker's AUTH: hands it to the client's handler as MQTT.js does; resolves with what it called back. */
  readonly answer: (reasonCode: number) => Promise<Error | undefined>;
}

function fakeClient(): FakeClient {
  const port = new FakePort({ protocolVersion: 5 });
  const ownHandler: IAuthPacket[] = [];
  const fake = {
    stream: port,
    handleAuth(packet: IAuthPacket, callback: (error?: Error, packet?: Packet) => void): void {
      ownHandler.push(packet);
      callback();
    },
  };
  const client = fake as unknown as MqttClient;
  const answer = (reasonCode: number): Promise<Error | undefined> =>
    new Promise((resolve) => client.handleAuth({ cmd: 'auth', reasonCode }, (error) => resolve(error)));
  return { client, port, ownHandler, answer };
}

/** Whether `promise` has settled, and how. */
function watch(promise: Promise<void>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const seen: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  promise.then(
    () => (seen.state = 'resolved'),
    (error: unknown) => {
      seen.state = 'rejected';
      seen.error = error;
    },
  );
  return seen;
}

describe('reauthenticatePacket', () => {
  it('is an AUTH with reason code 0x19, the method and the data, byte for byte as mqtt-packet encodes it', () => {
    // Lengths around the points where the remaining length and the properties length take a second and a third byte.
    const sizes = [1, 20, ...Array.from({ length: 24 }, (_, n) => 100 + n), 16_360, 16_366, 16_367, 16_368, 65_535];
    for (const size of sizes) {
      const data = Buffer.alloc(size, 0x61 + (size % 26));
      const expected = mqttPacket.generate(
        { cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD, authenticationData: data } },
        { protocolVersion: 5 },
      );
      assert.deepEqual(reauthenticatePacket(METHOD, data), expected, `${size} bytes of data`);
    }
  });

  it('encodes the method as UTF-8 and keeps empty data', () => {
    const packet = reauthenticatePacket('CUSTOM-JWT-é', Buffer.alloc(0));
    assert.deepEqual(
      packet,
      Buffer.from([0xf0, 0x15, 0x19, 0x13, 0x15, 0x00, 0x0d, ...Buffer.from('CUSTOM-JWT-é'), 0x16, 0x00, 0x00]),
    );
  });
});

describe('reauthenticate', () => {
  afterEach(() => mock.timers.reset());

  it('writes AUTH 0x19 with the new token and resolves when the broker answers AUTH Success', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { client, port, ownHandler, answer } = fakeClient();
    const exchange = watch(reauthenticate(client, METHOD, TOKEN, TIMEOUT_MS));
    assert.equal(port.packets.length, 1);
    const sent = port.packets[0] as IAuthPacket;
    assert.equal(sent.cmd, 'auth');
    assert.equal(sent.reasonCode, 0x19);
    assert.equal(sent.properties?.authenticationMethod, METHOD);
    assert.deepEqual(sent.properties?.authenticationData, TOKEN);
    await nextTurn();
    assert.equal(exchange.state, 'pending', 'not before the broker answers');
    assert.equal(await answer(0), undefined, 'MQTT.js is told the exchange went well');
    await nextTurn();
    assert.equal(exchange.state, 'resolved');
    assert.deepEqual(ownHandler, [], 'the answer was taken by the exchange');
    await answer(0);
    assert.equal(ownHandler.length, 1, "afterwards AUTH goes to the client's own handler again");
  });

  for (const code of [0x18, 0x87]) {
    it(`rejects, and tells MQTT.js, when the broker answers AUTH with reason code 0x${code.toString(16)}`, async () => {
      mock.timers.enable({ apis: ['setTimeout'] });
      const { client, ownHandler, answer } = fakeClient();
      const exchange = watch(reauthenticate(client, METHOD, TOKEN, TIMEOUT_MS));
      const told = await answer(code);
      await nextTurn();
      assert.equal(exchange.state, 'rejected');
      assert.ok(exchange.error instanceof ReauthenticationRefused);
      assert.equal(exchange.error.message, `the broker answered AUTH with reason code 0x${code.toString(16)}`);
      assert.equal(told, exchange.error, 'the same error goes to MQTT.js, which closes the connection on it');
      await answer(0);
      assert.equal(ownHandler.length, 1, "the client's own handler is back");
    });
  }

  it('rejects when the broker does not answer within the timeout, and leaves a late answer to the client', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { client, ownHandler, answer } = fakeClient();
    const exchange = watch(reauthenticate(client, METHOD, TOKEN, TIMEOUT_MS));
    mock.timers.tick(TIMEOUT_MS - 1);
    await nextTurn();
    assert.equal(exchange.state, 'pending');
    mock.timers.tick(1);
    await nextTurn();
    assert.equal(exchange.state, 'rejected');
    assert.ok(exchange.error instanceof ReauthenticationRefused);
    assert.equal(exchange.error.message, 'no answer within 2.5 s');
    assert.equal(await answer(0), undefined);
    assert.equal(ownHandler.length, 1, 'the late answer reaches the handler the client had before');
  });

  it('stops its deadline once answered, so that it cannot end a later exchange', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { client, answer } = fakeClient();
    const first = watch(reauthenticate(client, METHOD, TOKEN, TIMEOUT_MS));
    mock.timers.tick(TIMEOUT_MS / 2);
    await answer(0);
    const second = watch(reauthenticate(client, METHOD, TOKEN, TIMEOUT_MS));
    // The first exchange's deadline would pass here.
    mock.timers.tick(TIMEOUT_MS / 2 + 1);
    await nextTurn();
    assert.equal(first.state, 'resolved');
    assert.equal(second.state, 'pending');
    await answer(0);
    await nextTurn();
    assert.equal(second.state, 'resolved', 'the second exchange still takes its answer');
  });
});
