/**
 * Several records per message, compression and custom user properties against Mosquitto (MQTT 5): batches split
 * back into exactly the payloads an unbatched sync publishes, in order per topic, every state echoed; a batch the
 * broker refuses goes again record by record so that only the refused record is rejected; compressed payloads
 * decompress to the format's bytes and say how they are encoded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, inflateSync } from 'node:zlib';
import { checkStatus, logMessages, runCheck, runWrite } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type RefusingProxy, startRefusingProxy } from '../support/refusing-broker.js';
import { type Delivery, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const READINGS = { name: 'readings', namespace: 'plant' };
const lines = (...parts: string[]): string => `${parts.join('\n')}\n`;

/** `count` records with a state after every `stateEvery`, the states' cursors being the record count so far. */
function input(count: number, stateEvery: number, data: (i: number) => Record<string, unknown>): string {
  const out: string[] = [];
  for (let i = 1; i <= count; i++) {
    out.push(recordLine(READINGS, data(i), 1_700_000_000_000 + i));
    if (i % stateEvery === 0) out.push(streamStateLine(READINGS, i));
  }
  return lines(...out);
}

const cursors = (states: Record<string, unknown>[]): unknown[] =>
  states.map((state) => (state.stream as { stream_state: { cursor: unknown } }).stream_state.cursor);

const userProperty = (delivery: Delivery, name: string): unknown => delivery.properties?.userProperties?.[name];

describe('batches, compression and custom user properties against Mosquitto', { skip }, () => {
  // max_topic_alias is a listener's setting: without aliases, a PUBLISH the refusing proxy drops leaves none unknown.
  const mosquitto = withMosquitto({
    listeners: ([port]) => `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_topic_alias 0`,
  });
  let n = 0;
  const root = (): string => `batches${++n}`;
  const config = (extra: Record<string, unknown>): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: mosquitto.port,
    protocol_version: '5',
    record_id: 'deterministic',
    ...extra,
  });
  const subscribeTo = (filter: string) => subscribe(mosquitto.url, filter, { protocolVersion: 5 });

  /** What an unbatched sync of `text` publishes to `topic`, payloads in order. */
  async function unbatched(topic: string, text: string, extra: Record<string, unknown> = {}): Promise<Delivery[]> {
    const subscriber = await subscribeTo(topic.replaceAll(/\{field:[^}]*\}/g, '+'));
    try {
      const result = await runWrite(config({ topic_pattern: topic, ...extra }), catalogOf([READINGS]), text);
      assert.equal(result.code, 0, result.stdout);
      const count = text.split('\n').filter((line) => line.includes('"RECORD"')).length;
      return await subscriber.waitFor(count);
    } finally {
      await subscriber.close();
    }
  }

  it('sends 2,000 records as JSON arrays of 50 in at most 60 messages, splitting back into the unbatched payloads', async () => {
    const topic = `${root()}/a`;
    const text = input(2000, 100, (i) => ({ id: i, reading: i * 1.5, label: `r${i}` }));
    const single = await unbatched(`${topic}/single`, text);
    const subscriber = await subscribeTo(`${topic}/batched`);
    try {
      const result = await runWrite(
        config({ topic_pattern: `${topic}/batched`, batch_layout: 'json_array', batch_max_records: 50 }),
        catalogOf([READINGS]),
        text,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.deepEqual(
        cursors(result.states()),
        Array.from({ length: 20 }, (_, i) => (i + 1) * 100),
      );
      // Every record's state echoed means every record acknowledged: the batches are all in. Mosquitto delivers a
      // client's messages in order, so the subscriber has them once the last has arrived.
      const batches = await subscriber.waitFor(40);
      assert.ok(batches.length <= 60, `${batches.length} messages`);
      const elements = batches.flatMap((batch) => JSON.parse(batch.payload) as unknown[]);
      assert.deepEqual(
        elements,
        single.map((delivery) => JSON.parse(delivery.payload) as unknown),
      );
      const first = batches[0] as Delivery;
      const ids = (JSON.parse(first.payload) as { _airbyte_ab_id: string }[]).map((e) => e._airbyte_ab_id);
      assert.equal(first.properties?.contentType, 'application/json');
      assert.equal(userProperty(first, 'airbyte_batch_count'), String(ids.length));
      assert.equal(userProperty(first, 'airbyte_first_record_id'), ids[0]);
      assert.equal(userProperty(first, 'airbyte_last_record_id'), ids.at(-1));
    } finally {
      await subscriber.close();
    }
  });

  it('sends JSONL batches per topic over two connections, each line exactly a payload, each topic in order', async () => {
    const topicRoot = root();
    const text = input(600, 50, (i) => ({ id: i, site: `s${i % 3}`, text: `line ${i} "quoted"\\n` }));
    const single = await unbatched(`${topicRoot}/single/{field:site}`, text);
    const subscriber = await subscribeTo(`${topicRoot}/batched/#`);
    try {
      const result = await runWrite(
        config({
          topic_pattern: `${topicRoot}/batched/{field:site}`,
          batch_layout: 'jsonl',
          batch_max_records: 25,
          connections: 2,
          client: `jsonl-${topicRoot}`,
        }),
        catalogOf([READINGS]),
        text,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.equal(result.states().length, 12);
      await subscriber.waitFor(24);
      for (const site of ['s0', 's1', 's2']) {
        const sent = single.filter((d) => d.topic.endsWith(`/${site}`)).map((d) => d.payload);
        const batched = subscriber.messages.filter((d) => d.topic === `${topicRoot}/batched/${site}`);
        assert.equal(batched[0]?.properties?.contentType, 'application/jsonl');
        assert.deepEqual(
          batched.flatMap((d) => d.payload.split('\n')),
          sent,
          site,
        );
      }
    } finally {
      await subscriber.close();
    }
  });

  it('compresses each payload with gzip or deflate, saying so, to exactly the uncompressed bytes', async () => {
    const topicRoot = root();
    const text = input(20, 10, (i) => ({ id: i, text: 'compressible '.repeat(20) }));
    const plain = await unbatched(`${topicRoot}/plain`, text);
    for (const [compression, decompress] of [
      ['gzip', gunzipSync],
      ['deflate', inflateSync],
    ] as const) {
      const zipped = await unbatched(`${topicRoot}/${compression}`, text, { payload_compression: compression });
      assert.deepEqual(
        zipped.map((d) => decompress(d.raw).toString('utf8')),
        plain.map((d) => d.payload),
      );
      assert.ok((zipped[0] as Delivery).raw.length < (plain[0] as Delivery).raw.length / 2);
      assert.equal(userProperty(zipped[0] as Delivery, 'content-encoding'), compression);
      assert.equal(zipped[0]?.properties?.contentType, 'application/json');
      assert.equal(zipped[0]?.properties?.payloadFormatIndicator, undefined, 'compressed bytes are not UTF-8 text');
    }
    const subscriber = await subscribeTo(`${topicRoot}/gzip-batch`);
    try {
      const result = await runWrite(
        config({ topic_pattern: `${topicRoot}/gzip-batch`, payload_compression: 'gzip', batch_layout: 'json_array' }),
        catalogOf([READINGS]),
        text,
      );
      assert.equal(result.code, 0, result.stdout);
      const [batch] = await subscriber.waitFor(1);
      assert.deepEqual(
        JSON.parse(gunzipSync((batch as Delivery).raw).toString('utf8')),
        plain.map((d) => JSON.parse(d.payload) as unknown),
      );
      assert.equal(userProperty(batch as Delivery, 'content-encoding'), 'gzip');
      assert.equal(batch?.properties?.contentType, 'application/json');
    } finally {
      await subscriber.close();
    }
  });

  it('adds the custom user properties to every record and every batch', async () => {
    const topicRoot = root();
    const custom = [
      { name: 'tenant', value: 'acme' },
      { name: 'source', value: 'postgres-prod' },
    ];
    const text = input(4, 2, (i) => ({ id: i }));
    const records = await unbatched(`${topicRoot}/single`, text, { mqtt5_custom_user_properties: custom });
    for (const delivery of records) {
      assert.equal(userProperty(delivery, 'tenant'), 'acme');
      assert.equal(userProperty(delivery, 'source'), 'postgres-prod');
      assert.equal(userProperty(delivery, 'airbyte_stream'), 'readings');
    }
    const subscriber = await subscribeTo(`${topicRoot}/batch`);
    try {
      const result = await runWrite(
        config({
          topic_pattern: `${topicRoot}/batch`,
          batch_layout: 'json_array',
          mqtt5_custom_user_properties: custom,
        }),
        catalogOf([READINGS]),
        text,
      );
      assert.equal(result.code, 0, result.stdout);
      const [batch] = await subscriber.waitFor(1);
      assert.equal(userProperty(batch as Delivery, 'tenant'), 'acme');
      assert.equal(userProperty(batch as Delivery, 'airbyte_batch_count'), '4');
    } finally {
      await subscriber.close();
    }
  });

  it("names batches, compression, custom properties and the status topic in check's report, and sends its test message as a sync would", async () => {
    const topicRoot = root();
    const subscriber = await subscribeTo(`${topicRoot}/test`);
    try {
      const status = checkStatus(
        await runCheck(
          config({
            topic_pattern: `${topicRoot}/{stream}`,
            topic_test: `${topicRoot}/test`,
            batch_layout: 'json_array',
            payload_compression: 'gzip',
            mqtt5_custom_user_properties: [{ name: 'tenant', value: 'acme' }],
            status_topic: `${topicRoot}/status`,
          }),
        ),
      );
      assert.equal(status.status, 'SUCCEEDED', status.message);
      assert.match(status.message, /Records go in json_array batches of up to 100 records and 65536 bytes/);
      assert.match(status.message, /Payloads are gzip-compressed/);
      assert.match(status.message, /user properties tenant/);
      assert.match(status.message, new RegExp(`status goes to "${topicRoot}/status", retained \\(not published`));
      const [test] = await subscriber.waitFor(1);
      assert.match(gunzipSync((test as Delivery).raw).toString('utf8'), /Airbyte connection check/);
      assert.equal(userProperty(test as Delivery, 'content-encoding'), 'gzip');
      assert.equal(userProperty(test as Delivery, 'tenant'), 'acme');
    } finally {
      await subscriber.close();
    }
  });

  describe('behind a broker that refuses records marked "poison"', () => {
    let proxy: RefusingProxy;
    before(async () => {
      proxy = await startRefusingProxy(mosquitto.port, 'poison');
    });
    after(() => proxy.close());

    it('sends a refused batch again record by record, and rejects only the refused record', async () => {
      const topic = `${root()}/refused`;
      const subscriber = await subscribeTo(topic);
      try {
        const text = input(100, 25, (i) => ({ id: i, tag: i === 37 ? 'poison' : 'fine' }));
        const result = await runWrite(
          config({
            broker_port: proxy.port,
            topic_pattern: topic,
            batch_layout: 'json_array',
            batch_max_records: 50,
            rejected_records: 'skip',
          }),
          catalogOf([READINGS]),
          text,
        );
        assert.equal(result.code, 0, result.stdout);
        assert.deepEqual(cursors(result.states()), [25, 50, 75, 100]);
        const stats = result.states().map((state) => state.destinationStats);
        assert.deepEqual(stats[1], { recordCount: 25, rejectedRecordCount: 1 });
        assert.match(
          logMessages(result, /refused a batch/)[0] ?? '',
          /refused a batch of 50 record\(s\).*Payload format invalid.*sending them one by one/,
        );
        assert.match(logMessages(result, /^Skipped/)[0] ?? '', /input line 38: /);
        // Records 1-36 and 38-50 one by one, in order; the second batch (51-100) may have gone before the refusal came
        // back, and then arrives before them: around a refusal a topic's order is not kept.
        const delivered = await subscriber.waitFor(50);
        const idsOf = (d: Delivery): number[] => {
          const parsed = JSON.parse(d.payload) as unknown;
          return (Array.isArray(parsed) ? parsed : [parsed]).map(
            (element) => (element as { _airbyte_data: { id: number } })._airbyte_data.id,
          );
        };
        const alone = delivered.filter((d) => !d.payload.startsWith('['));
        assert.deepEqual(
          alone.flatMap(idsOf),
          Array.from({ length: 50 }, (_, i) => i + 1).filter((id) => id !== 37),
        );
        assert.deepEqual(
          delivered.flatMap(idsOf).sort((a, b) => a - b),
          Array.from({ length: 100 }, (_, i) => i + 1).filter((id) => id !== 37),
        );
        assert.equal(proxy.refused >= 2, true, 'the batch and then the record alone');
      } finally {
        await subscriber.close();
      }
    });
  });
});
