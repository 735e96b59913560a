/**
 * Batches over fake channels (they record what they are asked to send, and say how much payload they may carry) and
 * real lanes built from routes, with node:test's mocked timers and clock for the linger time.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { gunzipSync, inflateSync } from 'node:zlib';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import { ConfigError } from '../../../src/errors.js';
import type { MessageValues, Payload, PublishTarget } from '../../../src/mqtt/packets.js';
import { Batches, checkBatching } from '../../../src/sync/batches.js';
import type { Batched, Channel } from '../../../src/sync/channel.js';
import { Lane, type Publish } from '../../../src/sync/lane.js';
import { type StreamRoute, routeStreams } from '../../../src/sync/routes.js';
import { configuredStream } from '../../support/messages.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface SentBatch {
  readonly target: PublishTarget;
  readonly payload: Payload;
  readonly bytes: number;
  readonly values: MessageValues;
  readonly records: readonly Batched[];
}

/** A channel that keeps what it is asked to send; `room` is the payload it says a batch message may carry. */
class FakeChannel {
  readonly batches: SentBatch[] = [];
  readonly asked: { readonly target: PublishTarget; readonly values: MessageValues }[] = [];

  constructor(
    readonly name: string,
    private readonly room = Number.POSITIVE_INFINITY,
  ) {}

  payloadRoom(target: PublishTarget, values: MessageValues): number {
    this.asked.push({ target, values });
    return this.room;
  }

  sendBatch(
    target: PublishTarget,
    payload: Payload,
    bytes: number,
    values: MessageValues,
    records: readonly Batched[],
  ): void {
    this.batches.push({ target, payload, bytes, values, records });
  }

  get channel(): Channel {
    return this as unknown as Channel;
  }

  /** The payloads sent, as text (uncompressed). */
  texts(): string[] {
    return this.batches.map((batch) => text(batch.payload));
  }
}

function text(payload: Payload): string {
  assert.equal(typeof payload, 'string', 'an uncompressed batch is text');
  return payload as string;
}

interface Harness {
  readonly settings: Settings;
  readonly batches: Batches;
  /** The lane of each stream, by name. */
  readonly lanes: ReadonlyMap<string, Lane>;
  /** What `sent` was told, in order: the lane's stream, the channel's name, the bytes, the payload. */
  readonly sent: { stream: string; channel: string; bytes: number; payload: Payload }[];
  /** Prepares a record of `stream` whose data is `dataJson` and adds it as input line `line` (token `line` too). */
  readonly add: (channel: FakeChannel, dataJson: string, line: number, stream?: string) => boolean;
  readonly prepare: (dataJson: string, line: number, stream?: string) => Publish;
}

function harness(
  config: Record<string, unknown>,
  streams: readonly ConfiguredStream[] = [configuredStream('users')],
): Harness {
  const settings = toSettings({
    broker_host: 'localhost',
    topic_pattern: '{stream}',
    message_format: 'data',
    ...config,
  });
  const routes = routeStreams(streams, settings.messages.topicPattern, { retain: settings.messages.retain });
  const lanes = new Map<string, Lane>();
  for (const stream of streams) {
    const route = routes.get(streamKey(stream.namespace, stream.name));
    assert.ok(route);
    lanes.set(stream.name, new Lane(route, settings.messages));
  }
  const sent: Harness['sent'] = [];
  const names = new Map<Channel, string>();
  const batches = new Batches(settings.messages.packing, (lane, channel, payload, bytes) => {
    sent.push({ stream: lane.route.name, channel: names.get(channel) ?? '?', bytes, payload });
  });
  const laneOf = (stream: string): Lane => {
    const lane = lanes.get(stream);
    assert.ok(lane, stream);
    return lane;
  };
  const prepare = (dataJson: string, line: number, stream = 'users'): Publish => {
    const prepared = laneOf(stream).prepare({ dataJson, emittedAtJson: '1700000000000' }, line);
    assert.equal(prepared.kind, 'publish');
    return prepared;
  };
  const add = (channel: FakeChannel, dataJson: string, line: number, stream = 'users'): boolean => {
    names.set(channel.channel, channel.name);
    return batches.add(laneOf(stream), prepare(dataJson, line, stream), line, line, channel.channel);
  };
  return { settings, batches, lanes, sent, add, prepare };
}

/** A record's data of exactly `bytes` bytes of JSON. */
function dataOf(n: number, bytes = 20): string {
  const head = `{"id":${n},"p":"`;
  const json = `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
  assert.equal(Buffer.byteLength(json), bytes);
  return json;
}

describe('Batches', () => {
  afterEach(() => mock.timers.reset());

  it('jsonl: one payload per line, in input order, with every record it stands for', () => {
    const h = harness({ batch_layout: 'jsonl' });
    const channel = new FakeChannel('c');
    const data = [dataOf(1), '{"id":2,"name":"Zoë"}', dataOf(3)];
    data.forEach((json, i) => assert.equal(h.add(channel, json, 10 + i), true));
    assert.equal(channel.batches.length, 0, 'nothing goes before the batch closes');
    h.batches.flushAll();
    assert.equal(channel.batches.length, 1);
    const [batch] = channel.batches;
    assert.ok(batch);
    assert.equal(text(batch.payload), data.join('\n'));
    assert.equal(batch.bytes, Buffer.byteLength(data.join('\n')), 'bytes are UTF-8 bytes, separators counted');
    assert.equal(batch.target.topic, 'users');
    assert.deepEqual(
      batch.records.map((record) => [record.token, record.line, record.payload]),
      data.map((json, i) => [10 + i, 10 + i, json]),
    );
    assert.deepEqual(h.sent, [{ stream: 'users', channel: 'c', bytes: batch.bytes, payload: batch.payload }]);
    h.batches.flushAll();
    assert.equal(channel.batches.length, 1, 'a batch is sent once');
  });

  it('json_array: a JSON array of the payloads, brackets and commas counted in its bytes', () => {
    const h = harness({ batch_layout: 'json_array' });
    const channel = new FakeChannel('c');
    const data = [dataOf(1), '{"id":2,"name":"Zoë"}', dataOf(3)];
    for (const [i, json] of data.entries()) h.add(channel, json, i + 1);
    h.batches.flushAll();
    const [payload] = channel.texts();
    assert.equal(payload, `[${data.join(',')}]`);
    assert.deepEqual(JSON.parse(payload ?? ''), [
      { id: 1, p: 'xxxxx' },
      { id: 2, name: 'Zoë' },
      { id: 3, p: 'xxxxx' },
    ]);
    assert.equal(channel.batches[0]?.bytes, Buffer.byteLength(payload ?? ''));
  });

  it('closes a batch at batch_max_records, and starts the next with the record that did not fit', () => {
    const h = harness({ batch_layout: 'jsonl', batch_max_records: 2 });
    const channel = new FakeChannel('c');
    for (let n = 1; n <= 5; n++) assert.equal(h.add(channel, dataOf(n), n), true);
    assert.deepEqual(
      channel.batches.map((batch) => batch.records.map((record) => record.token)),
      [
        [1, 2],
        [3, 4],
      ],
    );
    h.batches.flushAll();
    assert.deepEqual(
      channel.batches[2]?.records.map((record) => record.token),
      [5],
    );
  });

  it('sends a batch as soon as it holds batch_max_records records', () => {
    const h = harness({ batch_layout: 'jsonl', batch_max_records: 2 });
    const channel = new FakeChannel('c');
    h.add(channel, dataOf(1), 1);
    h.add(channel, dataOf(2), 2);
    assert.equal(channel.batches.length, 1);
  });

  it('closes a batch before it would pass batch_max_bytes, with the limit itself reachable', () => {
    // 64 bytes: three 20-byte records and two separators make 62 (jsonl), or 64 with the brackets (json_array).
    for (const layout of ['jsonl', 'json_array'] as const) {
      const h = harness({ batch_layout: layout, batch_max_bytes: 64 });
      const channel = new FakeChannel('c');
      for (let n = 1; n <= 7; n++) assert.equal(h.add(channel, dataOf(n), n), true);
      h.batches.flushAll();
      assert.deepEqual(
        channel.batches.map((batch) => batch.records.length),
        [3, 3, 1],
        layout,
      );
      for (const batch of channel.batches) {
        assert.equal(batch.bytes, Buffer.byteLength(text(batch.payload)), layout);
        assert.ok(batch.bytes <= 64, `${layout}: ${batch.bytes} bytes`);
      }
      assert.equal(channel.batches[0]?.bytes, layout === 'jsonl' ? 62 : 64);
    }
  });

  it('counts the separator when it decides whether the next record still fits', () => {
    // 20 bytes, then one that would make exactly 64 without its separator (and brackets): 65 with it.
    for (const [layout, second] of [
      ['jsonl', 44],
      ['json_array', 42],
    ] as const) {
      const h = harness({ batch_layout: layout, batch_max_bytes: 64 });
      const channel = new FakeChannel('c');
      h.add(channel, dataOf(1), 1);
      h.add(channel, dataOf(2, second), 2);
      h.batches.flushAll();
      assert.deepEqual(
        channel.batches.map((batch) => batch.records.length),
        [1, 1],
        layout,
      );
    }
  });

  it('keeps a batch within what the connection may carry when that is less than batch_max_bytes', () => {
    const h = harness({ batch_layout: 'jsonl', batch_max_bytes: 65_536 });
    const channel = new FakeChannel('c', 50);
    for (let n = 1; n <= 5; n++) h.add(channel, dataOf(n), n);
    h.batches.flushAll();
    assert.deepEqual(
      channel.batches.map((batch) => batch.records.length),
      [2, 2, 1],
      'two 20-byte records and a newline (41 bytes) fit in 50; three (62) do not',
    );
    assert.equal(channel.asked[0]?.target.topic, 'users', 'the room is asked for the batch topic');
  });

  it("sizes the connection's room for the batch's user properties at their largest", () => {
    const mqtt5 = harness({ batch_layout: 'jsonl', protocol_version: '5', batch_max_records: 250 });
    const channel = new FakeChannel('c');
    mqtt5.add(channel, dataOf(1), 1);
    const [asked] = channel.asked;
    assert.ok(asked);
    assert.equal(asked.values.length, 3);
    assert.equal(asked.values[0], '250', 'the count at its most digits');
    assert.match(asked.values[1] ?? '', UUID);
    assert.match(asked.values[2] ?? '', UUID);
    assert.equal(asked.target.messageProperties.length, 3, 'the batch target, with the batch properties');

    const without = harness({ batch_layout: 'jsonl', protocol_version: '5', mqtt5_user_properties: false });
    const other = new FakeChannel('o');
    without.add(other, dataOf(1), 1);
    assert.deepEqual(other.asked[0]?.values, []);
  });

  it('gives a batch the count and the first and last record ids as its values, with MQTT 5 user properties', () => {
    const h = harness({ batch_layout: 'json_array', protocol_version: '5' });
    const channel = new FakeChannel('c');
    const ids: string[] = [];
    for (let n = 1; n <= 3; n++) {
      const record = h.prepare(dataOf(n), n);
      ids.push(record.recordId);
      const lane = h.lanes.get('users');
      assert.ok(lane);
      h.batches.add(lane, record, n, n, channel.channel);
    }
    h.batches.flushAll();
    assert.deepEqual(channel.batches[0]?.values, ['3', ids[0], ids[2]]);

    const v311 = harness({ batch_layout: 'json_array' });
    const plain = new FakeChannel('p');
    v311.add(plain, dataOf(1), 1);
    v311.batches.flushAll();
    assert.deepEqual(plain.batches[0]?.values, [], 'below MQTT 5 a message carries no values');
  });

  it('refuses a record that would not fit an empty batch, after sending the open batch so that order holds', () => {
    const h = harness({ batch_layout: 'json_array', batch_max_bytes: 64 });
    const channel = new FakeChannel('c');
    assert.equal(h.add(channel, dataOf(1), 1), true);
    // 63 bytes fit jsonl's 64, not json_array's with its brackets.
    assert.equal(h.add(channel, dataOf(2, 63), 2), false);
    assert.deepEqual(
      channel.batches.map((batch) => batch.records.map((record) => record.token)),
      [[1]],
      'the batch before it went first',
    );
    assert.equal(h.add(channel, dataOf(3, 62), 3), true, 'a record that fits with the brackets is batched');
    h.batches.flushAll();
    assert.deepEqual(
      channel.batches.map((batch) => batch.records.map((record) => record.token)),
      [[1], [3]],
    );
    assert.equal(channel.batches[1]?.bytes, 64);

    const lines = harness({ batch_layout: 'jsonl', batch_max_bytes: 64 });
    const other = new FakeChannel('o');
    assert.equal(lines.add(other, dataOf(1, 64), 1), true, 'jsonl adds nothing around a lone record');
    assert.equal(lines.add(other, dataOf(2, 65), 2), false);
    assert.equal(
      harness({ batch_layout: 'jsonl' }).add(new FakeChannel('small', 30), dataOf(1, 31), 1),
      false,
      "the connection's room bounds an empty batch too",
    );
  });

  it('keeps a batch per channel and topic, and flushes them in the order they opened', () => {
    const h = harness({ batch_layout: 'jsonl' }, [configuredStream('users'), configuredStream('orders')]);
    const one = new FakeChannel('one');
    const two = new FakeChannel('two');
    h.add(one, dataOf(1), 1, 'users');
    h.add(two, dataOf(2), 2, 'users');
    h.add(one, dataOf(3), 3, 'orders');
    h.add(one, dataOf(4), 4, 'users');
    h.add(two, dataOf(5), 5, 'users');
    h.batches.flushAll();
    assert.deepEqual(
      one.batches.map((batch) => [batch.target.topic, batch.records.map((record) => record.token)]),
      [
        ['users', [1, 4]],
        ['orders', [3]],
      ],
    );
    assert.deepEqual(
      two.batches.map((batch) => [batch.target.topic, batch.records.map((record) => record.token)]),
      [['users', [2, 5]]],
    );
    assert.deepEqual(
      h.sent.map((sent) => `${sent.channel}:${sent.stream}`),
      ['one:users', 'two:users', 'one:orders'],
    );
  });

  it('sends a batch when batch_linger_ms has passed since its first record, each batch on its own clock', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const h = harness({ batch_layout: 'jsonl', batch_linger_ms: 50 }, [
      configuredStream('users'),
      configuredStream('orders'),
    ]);
    const channel = new FakeChannel('c');
    h.add(channel, dataOf(1), 1, 'users');
    mock.timers.tick(20);
    h.add(channel, dataOf(2), 2, 'orders');
    h.add(channel, dataOf(3), 3, 'users');
    mock.timers.tick(29);
    assert.equal(channel.batches.length, 0, 'not before the linger time');
    mock.timers.tick(1);
    assert.deepEqual(
      channel.batches.map((batch) => [batch.target.topic, batch.records.map((record) => record.token)]),
      [['users', [1, 3]]],
      'at 50 ms the first batch goes, the one opened at 20 ms waits',
    );
    mock.timers.tick(19);
    assert.equal(channel.batches.length, 1);
    mock.timers.tick(1);
    assert.deepEqual(
      channel.batches.map((batch) => batch.target.topic),
      ['users', 'orders'],
    );
    // A record after the timer went quiet starts it again.
    h.add(channel, dataOf(4), 4, 'users');
    mock.timers.tick(50);
    assert.deepEqual(
      channel.batches[2]?.records.map((record) => record.token),
      [4],
    );
  });

  it('does not send a batch again when its linger time comes after it was sent for another reason', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const h = harness({ batch_layout: 'jsonl', batch_linger_ms: 50, batch_max_records: 2 });
    const channel = new FakeChannel('c');
    h.add(channel, dataOf(1), 1);
    h.add(channel, dataOf(2), 2); // full: sent at once
    mock.timers.tick(10);
    h.add(channel, dataOf(3), 3); // opens the next at 10 ms
    assert.equal(channel.batches.length, 1);
    mock.timers.tick(40);
    assert.equal(channel.batches.length, 1, 'at 50 ms only a batch that was already sent was due');
    mock.timers.tick(10);
    assert.deepEqual(
      channel.batches.map((batch) => batch.records.map((record) => record.token)),
      [[1, 2], [3]],
    );
  });

  it('drops every open batch without sending it when stopped, and its timer with them', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const h = harness({ batch_layout: 'jsonl', batch_linger_ms: 50, batch_max_records: 2 });
    const channel = new FakeChannel('c');
    h.add(channel, dataOf(1), 1);
    h.batches.stop();
    mock.timers.tick(1000);
    h.batches.flushAll();
    assert.equal(channel.batches.length, 0);
    assert.equal(h.sent.length, 0);
    // Records that still arrive are not sent either, however they close.
    h.add(channel, dataOf(2), 2);
    h.add(channel, dataOf(3), 3);
    h.add(channel, dataOf(4), 4);
    mock.timers.tick(1000);
    h.batches.flushAll();
    assert.equal(channel.batches.length, 0);
  });

  it('compresses the whole batch, and reports the compressed size', () => {
    for (const [compression, inflate] of [
      ['gzip', gunzipSync],
      ['deflate', inflateSync],
    ] as const) {
      const h = harness({ batch_layout: 'jsonl', payload_compression: compression });
      const channel = new FakeChannel('c');
      const data = [dataOf(1), dataOf(2), dataOf(3)];
      for (const [i, json] of data.entries()) h.add(channel, json, i + 1);
      h.batches.flushAll();
      const [batch] = channel.batches;
      assert.ok(batch);
      assert.ok(Buffer.isBuffer(batch.payload), compression);
      assert.equal(inflate(batch.payload).toString('utf8'), data.join('\n'), compression);
      assert.equal(batch.bytes, batch.payload.length, `${compression}: the size that goes on the wire`);
      assert.equal(h.sent[0]?.bytes, batch.payload.length);
      assert.equal(
        typeof batch.records[0]?.payload,
        'string',
        'each record stays uncompressed, to go alone if need be',
      );
    }
  });
});

describe('checkBatching', () => {
  function routesOf(streams: readonly ConfiguredStream[], retain = false): ReadonlyMap<string, StreamRoute> {
    return routeStreams(streams, '{stream}', { retain });
  }

  function refusal(routes: ReadonlyMap<string, StreamRoute>, layout: 'json_array' | 'jsonl'): ConfigError {
    try {
      checkBatching(routes, layout);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err;
    }
    assert.fail('expected batching to be refused');
  }

  it('allows batches for streams synced in append mode', () => {
    const routes = routesOf([configuredStream('users'), configuredStream('orders', { namespace: 'shop' })]);
    checkBatching(routes, 'json_array');
    checkBatching(routes, 'jsonl');
  });

  it('refuses batches for a stream whose mode keeps a retained message per key, naming the stream and the mode', () => {
    const routes = routesOf([
      configuredStream('users'),
      configuredStream('orders', { namespace: 'shop', mode: 'append_dedup' }),
    ]);
    const error = refusal(routes, 'jsonl');
    assert.equal(error.failureType, 'config_error');
    assert.match(error.message, /"Batch layout" \(batch_layout\) is jsonl/);
    assert.match(error.message, /stream "shop\.orders" is synced as append_dedup/);
    assert.match(error.message, /batches cannot be used with it/);
    assert.match(error.message, /Set "Batch layout" \(batch_layout\) to none, or sync the stream in append mode/);
    assert.match(
      refusal(routesOf([configuredStream('users', { mode: 'overwrite' })]), 'json_array').message,
      /stream "users" is synced as overwrite/,
    );
  });

  it('refuses batches for a stream whose messages are all retained', () => {
    assert.match(refusal(routesOf([configuredStream('users')], true), 'jsonl').message, /stream "users"/);
  });

  it('checks nothing when records go one per message', () => {
    checkBatching(routesOf([configuredStream('users', { mode: 'append_dedup' })], true), 'none');
  });
});
