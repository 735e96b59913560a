/**
 * A channel over a fake MQTT.js client: its client ID and how it connects, what it logs when it opens and when its
 * connection is lost, its verbs (send, the sync's own messages, room, drain, close, abort) and the events it passes on.
 * The test plays the broker by emitting what MQTT.js would (`packetreceive`, `close`). Reconnecting needs a broker: that
 * part is tested end to end (test/e2e/faults-*.test.ts, status-topic-mosquitto.test.ts). Batches are in
 * channel-batches.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { MqttClient } from 'mqtt';
import { streamKey } from '../../../src/airbyte/catalog.js';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import { type ConnectorError, TransientError } from '../../../src/errors.js';
import type { Connection, LastWill } from '../../../src/mqtt/connect.js';
import { NO_VALUES, publishTarget } from '../../../src/mqtt/packets.js';
import {
  type Batched,
  Channel,
  type ChannelEvents,
  type RefusedMessage,
  channelClientId,
  channelConnectAs,
} from '../../../src/sync/channel.js';
import { Lane } from '../../../src/sync/lane.js';
import { routeStreams } from '../../../src/sync/routes.js';
import { nextTurn } from '../../support/fake-port.js';
import { FakeMqttClient as FakeClient } from '../../support/fake-mqtt-client.js';
import { configuredStream } from '../../support/messages.js';

interface Options {
  readonly connections?: number;
  readonly index?: number;
  /** Whether the sync takes refused records (rejected_records skip) and so gives the channel `refused`. */
  readonly refuses?: boolean;
  readonly sessionPresent?: boolean;
  readonly maximumPacketSize?: number;
}

interface Harness {
  readonly client: FakeClient;
  readonly channel: Channel;
  readonly lane: Lane;
  readonly acknowledged: number[];
  readonly refused: RefusedMessage[];
  readonly failures: ConnectorError[];
  /** Every log line, DEBUG included, as `LEVEL message`. */
  readonly logs: string[];
  /** Sends the record of input line `line` (token = line). */
  readonly send: (line: number) => void;
  readonly record: (line: number) => Batched;
}

const TARGET = publishTarget('users', { mqtt5: true, label: 'the record of stream "users"' });

function settingsFor(connections: number, extra: Record<string, unknown> = {}): Settings {
  return toSettings({
    broker_host: 'localhost',
    client_id: 'loader',
    topic_pattern: '{stream}',
    protocol_version: '5',
    message_format: 'data',
    connections,
    reconnect_timeout_seconds: 90,
    ...extra,
  });
}

let channels: Channel[] = [];

function harness(options: Options = {}): Harness {
  const settings = settingsFor(options.connections ?? 1, {
    rejected_records: options.refuses === false ? 'fail' : 'skip',
    batch_layout: 'jsonl',
  });
  const route = routeStreams([configuredStream('users')], '{stream}').get(streamKey(undefined, 'users'));
  assert.ok(route);
  const lane = new Lane(route, settings.messages);
  const client = new FakeClient();
  const connection: Connection = {
    client: client as unknown as MqttClient,
    credential: { issuedAt: 0, expiresAt: undefined },
    limits: options.maximumPacketSize === undefined ? {} : { maximumPacketSize: options.maximumPacketSize },
    sessionPresent: options.sessionPresent ?? false,
    tls: undefined,
  };
  const acknowledged: number[] = [];
  const refused: RefusedMessage[] = [];
  const failures: ConnectorError[] = [];
  const logs: string[] = [];
  const events: ChannelEvents = {
    acknowledged: (token) => acknowledged.push(token),
    failed: (error) => failures.push(error),
    ...(options.refuses === false ? {} : { refused: (refusal: RefusedMessage) => refused.push(refusal) }),
    log: (level, message) => logs.push(`${level} ${message}`),
  };
  const channel = new Channel(options.index ?? 0, settings, connection, events, undefined);
  channels.push(channel);
  const record = (line: number): Batched => {
    const prepared = lane.prepare({ dataJson: `{"id":${line}}`, emittedAtJson: '1700000000000' }, line);
    assert.equal(prepared.kind, 'publish');
    return { ...prepared, token: line, line };
  };
  const send = (line: number): void => {
    const { target, payload, bytes, values, token } = record(line);
    assert.equal(channel.send(target, payload, bytes, values, token, line), 0);
  };
  return { client, channel, lane, acknowledged, refused, failures, logs, send, record };
}

describe('channelClientId', () => {
  it('is the configured client ID for a single connection, and <client>-1 to <client>-N for several', () => {
    assert.equal(channelClientId('loader', 0, 1), 'loader');
    assert.deepEqual(
      [0, 1, 2].map((index) => channelClientId('loader', index, 3)),
      ['loader-1', 'loader-2', 'loader-3'],
    );
  });
});

describe('channelConnectAs', () => {
  it("connects with the channel's client ID, the messages' QoS and retain, and the Will when there is one", () => {
    const settings = settingsFor(2, { message_qos: 'EXACTLY_ONCE', message_retained: true });
    const will: LastWill = { topic: 'status', payload: '{"status":"interrupted"}' };
    assert.deepEqual(channelConnectAs(settings, 1, will), {
      clientId: 'loader-2',
      sends: { qos: 2, retain: true },
      will,
    });
    assert.deepEqual(channelConnectAs(settingsFor(1), 0, undefined), {
      clientId: 'loader',
      sends: { qos: 1, retain: false },
    });
  });
});

describe('Channel', () => {
  afterEach(() => {
    for (const channel of channels) channel.stop(new TransientError('test over'));
    for (const channel of channels) channel.abort();
    channels = [];
    mock.timers.reset();
  });

  it("logs the broker's limits when it connects, naming the connection among several", () => {
    const single = harness({ maximumPacketSize: 4096 });
    assert.equal(single.channel.clientId, 'loader');
    assert.deepEqual(single.logs, ['DEBUG Connected; broker limits: maximum packet size 4096 bytes.']);
    const several = harness({ connections: 3, index: 1 });
    assert.equal(several.channel.clientId, 'loader-2');
    assert.deepEqual(several.logs, [
      'DEBUG Connection 2 (client ID "loader-2") connected; broker limits: none announced.',
    ]);
  });

  it('says when the broker resumed the session it kept for the client ID', () => {
    const h = harness({ connections: 2, index: 0, sessionPresent: true });
    assert.equal(h.logs.length, 2);
    assert.equal(h.logs[1], 'INFO The broker resumed the session it kept for client ID "loader-1".');
  });

  it("sends a record not retained and passes on its acknowledgement with the record's token, 0 included", async () => {
    const h = harness();
    h.send(0);
    h.send(1);
    await nextTurn();
    const sent = h.client.publishes();
    assert.deepEqual(
      sent.map((p) => [p.topic, p.payload.toString(), p.retain, p.qos]),
      [
        ['users', '{"id":0}', false, 1],
        ['users', '{"id":1}', false, 1],
      ],
    );
    assert.equal(h.channel.unacknowledged, 2);
    for (const p of sent) h.client.puback(p.messageId ?? 0);
    assert.deepEqual(h.acknowledged, [0, 1]);
    await h.channel.drain();
  });

  it("sends the sync's own empty message, waits for it in drain, and never reports it as a record", async () => {
    const h = harness();
    h.channel.sendOwn(TARGET);
    await nextTurn();
    const [own] = h.client.publishes();
    assert.ok(own);
    assert.equal(own.payload.length, 0, 'a tombstone is empty');
    let drained = false;
    void h.channel.drain().then(() => (drained = true));
    await nextTurn();
    assert.equal(drained, false, 'drain waits for the own message too');
    h.client.puback(own.messageId ?? 0);
    await nextTurn();
    assert.equal(drained, true);
    assert.deepEqual(h.acknowledged, [], 'no record is acknowledged by it');
  });

  it('gives each batch a token of its own, so the third batch is not taken for record 0', async () => {
    const h = harness();
    const batches = [[10, 11], [20], [30, 31]].map((lines) => lines.map((line) => h.record(line)));
    for (const batch of batches) {
      const payload = batch.map((record) => record.payload as string).join('\n');
      h.channel.sendBatch(h.lane.batchTargetFor('users'), payload, Buffer.byteLength(payload), ['2', 'a', 'b'], batch);
    }
    await nextTurn();
    for (const p of h.client.publishes().reverse()) h.client.puback(p.messageId ?? 0);
    assert.deepEqual(h.acknowledged, [30, 31, 20, 10, 11]);
  });

  it('passes a record refused for a reason of its own to `refused`, or fails the sync when there is none', async () => {
    const rejecting = harness();
    rejecting.send(7);
    await nextTurn();
    rejecting.client.puback(rejecting.client.publishes()[0]?.messageId ?? 0, 0x99);
    await nextTurn();
    assert.deepEqual(
      rejecting.refused.map((r) => [r.token, r.line, r.code, r.payload]),
      [[7, 7, 0x99, '{"id":7}']],
    );
    assert.equal(rejecting.failures.length, 0);
    assert.deepEqual(rejecting.acknowledged, []);

    const failing = harness({ refuses: false });
    failing.send(7);
    await nextTurn();
    failing.client.puback(failing.client.publishes()[0]?.messageId ?? 0, 0x99);
    await nextTurn();
    assert.equal(failing.failures.length, 1);
    assert.equal(failing.refused.length, 0);
  });

  it('fails the sync on a refusal that is not about the record, even when records may be rejected', async () => {
    const h = harness();
    h.send(3);
    await nextTurn();
    h.client.puback(h.client.publishes()[0]?.messageId ?? 0, 0x80);
    await nextTurn();
    assert.equal(h.refused.length, 0);
    assert.equal(h.failures.length, 1);
  });

  it('tells the room for a payload, whether there is room, the window, and a size it cannot carry', () => {
    const h = harness({ maximumPacketSize: 300 });
    const room = h.channel.payloadRoom(TARGET, NO_VALUES);
    assert.ok(room > 0 && room < 300, `room ${room}`);
    assert.equal(h.channel.hasRoom, true);
    assert.ok(h.channel.window > 0);
    assert.match(h.channel.describeOversize(TARGET, 400, 420), /bytes/);
    const big = 'x'.repeat(400);
    assert.ok(h.channel.send(TARGET, big, big.length, NO_VALUES, 1, 1) > 0, 'too large: its size, nothing sent');
  });

  it('calls back once there is room, in a later turn', async () => {
    const h = harness();
    let resumed = 0;
    h.channel.whenRoom(() => resumed++);
    assert.equal(resumed, 0);
    await nextTurn();
    await nextTurn();
    assert.equal(resumed, 1);
  });

  it('holds new messages back until the release settles', async () => {
    const h = harness();
    let release: () => void = () => undefined;
    h.channel.holdUntil(() => new Promise<void>((resolve) => (release = resolve)));
    h.send(1);
    await nextTurn();
    assert.equal(h.client.publishes().length, 0, 'held');
    release();
    await nextTurn();
    await nextTurn();
    assert.equal(h.client.publishes().length, 1);
  });

  it('counts the messages nobody was subscribed to, by topic, and 0 for a topic without any', async () => {
    const h = harness();
    h.send(1);
    await nextTurn();
    h.client.puback(h.client.publishes()[0]?.messageId ?? 0, 0x10);
    assert.equal(h.channel.noSubscribers('users'), 1);
    assert.equal(h.channel.noSubscribers('orders'), 0);
    assert.deepEqual(h.acknowledged, [1], 'no subscribers is still an acknowledgement');
  });

  it('has no credential renewals on a fresh connection', () => {
    assert.deepEqual(harness().channel.renewals, { reauthenticated: 0, reconnected: 0 });
  });

  it('is connected until it is closed with a DISCONNECT', async () => {
    const h = harness();
    assert.equal(h.channel.connected, true);
    await h.channel.close();
    assert.equal(h.channel.connected, false);
    assert.equal(h.client.ends, 1, 'the client is ended');
  });

  it('is no longer connected once aborted', () => {
    const h = harness();
    h.channel.abort();
    assert.equal(h.channel.connected, false);
    assert.equal(h.client.ends, 1);
  });

  it('rejects drain once stopped', async () => {
    const h = harness();
    h.send(1);
    await nextTurn();
    h.channel.stop(new TransientError('gone'));
    await assert.rejects(h.channel.drain());
  });

  it('warns when its connection is lost, with what waits and for how long', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const single = harness();
    single.send(1);
    await nextTurn();
    mock.timers.tick(60_000);
    single.client.emit('close');
    assert.equal(single.channel.connected, false);
    assert.match(
      single.logs.at(-1) ?? '',
      /^WARN The connection to the broker was lost \(.+\) with 1 message\(s\) not yet acknowledged\. Input waits while the connector reconnects, for up to 90 s\.$/,
    );
    const several = harness({ connections: 2, index: 1 });
    mock.timers.tick(60_000);
    several.client.emit('close');
    assert.match(
      several.logs.at(-1) ?? '',
      /^WARN Connection 2 \(client ID "loader-2"\) to the broker was lost \(.+\) with 0 message\(s\) not yet acknowledged\. Its messages wait while the connector reconnects, for up to 90 s\.$/,
    );
  });
});
