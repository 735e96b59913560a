/**
 * Payload formats and record ids end to end, against Mosquitto over MQTT 5: what a subscriber receives in each
 * `message_format`, with the data byte for byte, the ids each format carries (and the user property), deterministic ids
 * that a re-read record gets again, and a floating-point `emitted_at` published as whole milliseconds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWrite } from '../support/connector.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type Delivery, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
/** Data that a parse and re-serialise would change. */
const DATA =
  '{"id":7,"big":12345678901234567890,"dec":0.1000000000000000000000001,"s":"\\u2028é\\"x","updated_at":"2026-11-30"}';
const META = '{"changes":[{"field":"s","change":"TRUNCATED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}';

function record(data: string, emittedAt = '1700000000002', meta = ''): string {
  return `{"type":"RECORD","record":{"stream":"orders","namespace":"shop","emitted_at":${emittedAt},"data":${data}${meta ? `,"meta":${meta}` : ''}}}`;
}

const CATALOG = {
  streams: [
    {
      stream: {
        name: 'orders',
        namespace: 'shop',
        json_schema: { type: 'object' },
        supported_sync_modes: ['incremental'],
      },
      sync_mode: 'incremental',
      destination_sync_mode: 'append',
      primary_key: [['id']],
      cursor_field: ['updated_at'],
      generation_id: 4,
      minimum_generation_id: 0,
      sync_id: 1234,
    },
  ],
};

function userProperty(delivery: Delivery, name: string): string | undefined {
  const value = delivery.properties?.userProperties?.[name];
  return Array.isArray(value) ? value[0] : value;
}

describe('payload formats and record ids against Mosquitto', { skip }, () => {
  const mosquitto = withMosquitto();
  let n = 0;

  /** Runs one sync of `lines` and returns what a subscriber received. */
  async function publish(extra: Record<string, unknown>, lines: string[]): Promise<Delivery[]> {
    const topic = `fmt${++n}`;
    const subscriber = await subscribe(mosquitto.url, `${topic}/#`, { protocolVersion: 5 });
    try {
      const result = await runWrite(
        {
          broker_host: '127.0.0.1',
          broker_port: mosquitto.port,
          protocol_version: '5',
          topic_pattern: `${topic}/{stream}`,
          ...extra,
        },
        CATALOG,
        `${lines.join('\n')}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      return await subscriber.waitFor(lines.length);
    } finally {
      await subscriber.close();
    }
  }

  it('airbyte_envelope: the envelope as before, data byte for byte, the id also as a user property', async () => {
    const [delivery] = await publish({}, [record(DATA)]);
    const id = userProperty(delivery as Delivery, 'airbyte_record_id');
    assert.match(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/);
    assert.equal(
      delivery?.payload,
      `{"_airbyte_ab_id":"${id}","_airbyte_stream":"orders","_airbyte_emitted_at":1700000000002,"_airbyte_data":${DATA}}`,
    );
    assert.equal(delivery?.properties?.contentType, 'application/json');
  });

  it('data: exactly the record data the source wrote', async () => {
    const [delivery] = await publish({ message_format: 'data' }, [record(DATA)]);
    assert.equal(delivery?.payload, DATA);
  });

  it("airbyte_v2: Airbyte's raw-record columns with meta.changes, sync_id and the generation", async () => {
    const [delivery] = await publish({ message_format: 'airbyte_v2' }, [record(DATA, '1700000000002', META)]);
    const payload = delivery?.payload ?? '';
    const parsed = JSON.parse(payload) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), [
      '_airbyte_raw_id',
      '_airbyte_extracted_at',
      '_airbyte_meta',
      '_airbyte_generation_id',
      '_airbyte_data',
    ]);
    assert.equal(parsed._airbyte_raw_id, userProperty(delivery as Delivery, 'airbyte_record_id'));
    assert.equal(parsed._airbyte_extracted_at, 1700000000002);
    assert.deepEqual(parsed._airbyte_meta, {
      sync_id: 1234,
      changes: (JSON.parse(META) as { changes: unknown }).changes,
    });
    assert.equal(parsed._airbyte_generation_id, 4);
    assert.ok(payload.endsWith(`"_airbyte_data":${DATA}}`), payload);
  });

  it('cloudevents: a CloudEvents 1.0 structured event with the key as subject', async () => {
    const [delivery] = await publish({ message_format: 'cloudevents' }, [record(DATA)]);
    const event = JSON.parse(delivery?.payload ?? '') as Record<string, unknown>;
    assert.equal(event.specversion, '1.0');
    assert.equal(event.id, userProperty(delivery as Delivery, 'airbyte_record_id'));
    assert.equal(event.source, 'airbyte:shop/orders');
    assert.equal(event.type, 'io.airbyte.record');
    assert.equal(event.subject, '7');
    assert.equal(event.time, '2023-11-14T22:13:20.002Z');
    assert.equal(event.datacontenttype, 'application/json');
    assert.ok(delivery?.payload.includes(`"data":${DATA}`));
    assert.equal(delivery?.properties?.contentType, 'application/cloudevents+json');
  });

  it('deterministic ids: the same record read again gets the same id, another version of the row another one', async () => {
    const changed = DATA.replace('2026-11-30', '2026-12-01');
    const config = { record_id: 'deterministic', message_format: 'airbyte_v2' };
    const first = await publish(config, [record(DATA), record(changed)]);
    const again = await publish(config, [record(DATA, '1800000000000')]);
    const ids = [...first, ...again].map((d) => (JSON.parse(d.payload) as { _airbyte_raw_id: string })._airbyte_raw_id);
    assert.match(ids[0] as string, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-/);
    assert.equal(ids[2], ids[0], 'a re-read record (even with a later emitted_at) keeps its id');
    assert.notEqual(ids[1], ids[0], 'a new version of the row (new cursor value) gets a new id');
    const random = await publish({}, [record(DATA), record(DATA)]);
    assert.notEqual(
      userProperty(random[0] as Delivery, 'airbyte_record_id'),
      userProperty(random[1] as Delivery, 'airbyte_record_id'),
    );
  });

  it('publishes a floating-point emitted_at as whole milliseconds, in the payload and the user property', async () => {
    const [delivery] = await publish({}, [record('{"id":1}', '1.7241888E12')]);
    assert.match(delivery?.payload ?? '', /"_airbyte_emitted_at":1724188800000,/);
    assert.equal(userProperty(delivery as Delivery, 'airbyte_emitted_at'), '1724188800000');
  });
});
