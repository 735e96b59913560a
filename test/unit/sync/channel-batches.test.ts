/**
 * A channel's batches over a fake MQTT.js client: its stream parses every PUBLISH the channel writes, and the test plays
 * the broker by emitting the acknowledgements MQTT.js would pass on (`packetreceive`). No broker, no sockets.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { streamKey } from '../../../src/airbyte/catalog.js';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import { ConfigError, type ConnectorError, TransientError } from '../../../src/errors.js';
import type { Connection } from '../../../src/mqtt/connect.js';
import { type PublishTarget, publishTarget } from '../../../src/mqtt/packets.js';
import { type Batched, Channel, type ChannelEvents, type RefusedMessage } from '../../../src/sync/channel.js';
import { Lane } from '../../../src/sync/lane.js';
import { routeStreams } from '../../../src/sync/routes.js';
import { nextTurn } from '../../support/fake-port.js';
import { FakeMqttClient as FakeClient } from '../../support/fake-mqtt-client.js';
import { configuredStream } from '../../support/messages.js';

interface Harness {
  readonly client: FakeClient;
  readonly channel: Channel;
  readonly lane: Lane;
  readonly acknowledged: number[];
  readonly refused: RefusedMessage[];
  readonly failures: ConnectorError[];
  readonly logs: string[];
  /** The records of input lines `lines` (token = line), as a batch holds them. */
  readonly records: (lines: readonly number[]) => Batched[];
  /** Sends `records` as one jsonl batch. */
  readonly sendBatch: (records: readonly Batched[]) => void;
}

let channels: Channel[] = [];

function harness(options: { refuses?: boolean; maximumPacketSize?: number } = {}): Harness {
  const settings: Settings = toSettings({
    broker_host: 'localhost',
    topic_pattern: '{stream}',
    protocol_version: '5',
    message_format: 'data',
    batch_layout: 'jsonl',
    // With `fail`, a refused record fails the sync in the publisher; the channel is given no `refused` then.
    rejected_records: options.refuses === false ? 'fail' : 'skip',
  });
  const stream = configuredStream('users');
  const route = routeStreams([stream], '{stream}').get(streamKey(undefined, 'users'));
  assert.ok(route);
  const lane = new Lane(route, settings.messages);
  const client = new FakeClient();
  const connection: Connection = {
    client: client as unknown as MqttClient,
    credential: { issuedAt: 0, expiresAt: undefined },
    limits: options.maximumPacketSize === undefined ? {} : { maximumPacketSize: options.maximumPacketSize },
    sessionPresent: false,
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
    log: (level, message) => {
      if (level !== 'DEBUG') logs.push(`${level} ${message}`);
    },
  };
  const channel = new Channel(0, settings, connection, events, undefined);
  channels.push(channel);
  const records = (lines: readonly number[]): Batched[] =>
    lines.map((line) => {
      const prepared = lane.prepare({ dataJson: `{"id":${line}}`, emittedAtJson: '1700000000000' }, line);
      assert.equal(prepared.kind, 'publish');
      return { ...prepared, token: line, line };
    });
  const sendBatch = (batch: readonly Batched[]): void => {
    const payload = batch.map((record) => record.payload as string).join('\n');
    const first = batch[0]?.values[1] ?? '';
    const last = batch.at(-1)?.values[1] ?? '';
    channel.sendBatch(
      lane.batchTargetFor('users'),
      payload,
      Buffer.byteLength(payload),
      [String(batch.length), first, last],
      batch,
    );
  };
  return { client, channel, lane, acknowledged, refused, failures, logs, records, sendBatch };
}

function payloads(client: FakeClient): string[] {
  return client.publishes().map((p) => p.payload.toString());
}

/** A record target whose own properties make its message larger than a small connection carries. */
function padded(): PublishTarget {
  return publishTarget('users', {
    mqtt5: true,
    customUserProperties: [['padding', 'p'.repeat(400)]],
    label: 'the record of stream "users"',
  });
}

describe('Channel batches', () => {
  afterEach(() => {
    for (const channel of channels) channel.stop(new TransientError('test over'));
    channels = [];
  });

  it("acknowledges every record of a batch with the batch's PUBACK", async () => {
    const h = harness();
    h.sendBatch(h.records([10, 11, 12]));
    await nextTurn();
    const [batch] = h.client.publishes();
    assert.ok(batch);
    assert.equal(h.client.publishes().length, 1, 'one message for three records');
    assert.equal(batch.payload.toString(), '{"id":10}\n{"id":11}\n{"id":12}');
    assert.equal(batch.properties?.userProperties?.airbyte_batch_count, '3');
    assert.equal(h.acknowledged.length, 0);
    assert.equal(h.channel.unacknowledged, 1);
    h.client.puback(batch.messageId ?? 0);
    assert.deepEqual(h.acknowledged, [10, 11, 12]);
    assert.equal(h.channel.unacknowledged, 0);
    h.client.puback(batch.messageId ?? 0);
    assert.deepEqual(h.acknowledged, [10, 11, 12], 'a duplicate PUBACK acknowledges nothing more');
    await h.channel.drain();
    assert.equal(h.failures.length, 0);
  });

  it('sends the records of a refused batch one by one, in order, and warns', async () => {
    for (const refuses of [true, false]) {
      const h = harness({ refuses });
      h.sendBatch(h.records([1, 2, 3]));
      await nextTurn();
      const batchId = h.client.publishes()[0]?.messageId ?? 0;
      h.client.puback(batchId, 0x99);
      await nextTurn();
      assert.equal(h.failures.length, 0, `refuses ${refuses}: a refused batch is not a failure`);
      assert.equal(h.refused.length, 0, 'nor a rejected record');
      assert.equal(h.logs.length, 1);
      assert.match(
        h.logs[0] ?? '',
        /^WARN The broker refused a batch of 3 record\(s\) on topic "users" \(.+\); sending them one by one, after the 0 message\(s\) already in flight, so that the broker judges each record\.$/,
      );
      const alone = h.client.publishes().slice(1);
      assert.deepEqual(
        alone.map((p) => p.payload.toString()),
        ['{"id":1}', '{"id":2}', '{"id":3}'],
      );
      assert.deepEqual(
        alone.map((p) => p.properties?.userProperties?.airbyte_batch_count),
        [undefined, undefined, undefined],
        'each goes as a record of its own',
      );
      for (const p of alone) h.client.puback(p.messageId ?? 0);
      assert.deepEqual(h.acknowledged, [1, 2, 3]);
    }
  });

  it('refuses a record that no longer fits a message alone (0x95), going on with the others', async () => {
    const h = harness({ maximumPacketSize: 300 });
    const [first, second, third] = h.records([1, 2, 3]);
    assert.ok(first && second && third);
    h.sendBatch([first, { ...second, target: padded() }, third]);
    await nextTurn();
    h.client.puback(h.client.publishes()[0]?.messageId ?? 0, 0x99);
    await nextTurn();
    assert.deepEqual(payloads(h.client).slice(1), ['{"id":1}', '{"id":3}']);
    assert.equal(h.refused.length, 1);
    const [refusal] = h.refused;
    assert.equal(refusal?.token, 2);
    assert.equal(refusal?.line, 2);
    assert.equal(refusal?.code, 0x95);
    assert.equal(refusal?.payload, '{"id":2}');
    assert.match(refusal?.reason ?? '', /bytes/);
    assert.doesNotMatch(refusal?.reason ?? '', /\.$/, 'a reason ends where the caller puts it in a sentence');
    assert.equal(h.failures.length, 0);
  });

  it('fails the sync with the input line when such a record cannot be rejected (rejected_records fail)', async () => {
    const h = harness({ refuses: false, maximumPacketSize: 300 });
    const [first, second] = h.records([1, 2]);
    assert.ok(first && second);
    h.sendBatch([first, { ...second, target: padded() }]);
    await nextTurn();
    h.client.puback(h.client.publishes()[0]?.messageId ?? 0, 0x99);
    await nextTurn();
    assert.equal(h.failures.length, 1);
    const [failure] = h.failures;
    assert.ok(failure instanceof ConfigError);
    assert.match(failure.message, /^Input line 2: .+\.$/);
    assert.match(failure.message, /large fields\.$/, 'the reason ends the sentence once, with its own words');
    assert.equal(h.refused.length, 0);
  });

  it('sends the records alone at once when the batch itself is too large for the connection', async () => {
    const h = harness({ maximumPacketSize: 300 });
    const records = h.records([1, 2, 3]);
    const huge = 'x'.repeat(400);
    h.channel.sendBatch(h.lane.batchTargetFor('users'), huge, huge.length, ['3', 'a', 'b'], records);
    await nextTurn();
    assert.deepEqual(payloads(h.client), ['{"id":1}', '{"id":2}', '{"id":3}']);
    for (const p of h.client.publishes()) h.client.puback(p.messageId ?? 0);
    assert.deepEqual(h.acknowledged, [1, 2, 3]);
    assert.equal(h.logs.length, 0);
  });
});
