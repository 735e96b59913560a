/**
 * Sync modes with MQTT meaning, against Mosquitto: key topics, a retained keyspace per stream (append_dedup), CDC
 * deletes, overwrite and truncating refreshes that clear stale keys only when the stream completed, and records that
 * cannot be published under their key (rejected_records). The broker's retained set is read back by a fresh
 * subscriber every time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunResult, logMessages, runWrite } from '../support/connector.js';
import { recordLine, streamStateLine } from '../support/messages.js';
import { type Mosquitto, mosquittoSkipReason, startMosquitto } from '../support/mosquitto.js';
import { putRetained, retainedUnder } from '../support/retained.js';
import { subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const DEVICES = { name: 'devices', namespace: 'fleet' };

interface StreamOptions {
  readonly mode?: string;
  readonly primaryKey?: string[][];
  readonly generation?: number;
  readonly minimum?: number;
  readonly name?: string;
  /** The source can resume the stream (`is_resumable`). */
  readonly resumable?: boolean;
}

function catalog(options: StreamOptions = {}): Record<string, unknown> {
  return {
    streams: [
      {
        stream: {
          name: options.name ?? DEVICES.name,
          namespace: DEVICES.namespace,
          json_schema: { type: 'object' },
          supported_sync_modes: ['full_refresh', 'incremental'],
          ...(options.resumable === undefined ? {} : { is_resumable: options.resumable }),
        },
        sync_mode: 'full_refresh',
        destination_sync_mode: options.mode ?? 'append',
        primary_key: options.primaryKey ?? [['id']],
        ...(options.generation === undefined
          ? {}
          : { generation_id: options.generation, minimum_generation_id: options.minimum ?? 0, sync_id: 77 }),
      },
    ],
  };
}

const COMPLETE = `{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.7241888E12,"stream_status":{"stream_descriptor":{"name":"devices","namespace":"fleet"},"status":"COMPLETE"}}}`;

function lines(...parts: string[]): string {
  return `${parts.join('\n')}\n`;
}

function dataOf(payload: string): unknown {
  return (JSON.parse(payload) as { _airbyte_data: unknown })._airbyte_data;
}

/** The retained set under `filter` as topic -> data. */
async function retainedData(mosquitto: Mosquitto, filter: string): Promise<Record<string, unknown>> {
  const found = await retainedUnder(mosquitto.url, filter);
  return Object.fromEntries([...found].map(([topic, entry]) => [topic, dataOf(entry.payload)]));
}

function assertOk(result: RunResult): void {
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
}

describe('sync modes against Mosquitto', { skip }, () => {
  let mosquitto: Mosquitto;
  let n = 0;
  /** A topic root of each test's own, so that retained messages of one test never meet another's. */
  const root = (): string => `modes${++n}`;
  const config = (topicRoot: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: mosquitto.port,
    topic_pattern: `${topicRoot}/{stream}/{key}`,
    message_qos: 'AT_LEAST_ONCE',
    ...extra,
  });
  before(async () => {
    mosquitto = await startMosquitto();
  });
  after(() => mosquitto?.stop());

  it('puts each record on its key topic: composite keys with awkward values, percent-encoded and decodable', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      // The id column as the source wrote it: numbers keep their exact text, 1e3 included.
      const keys: [string, string][] = [
        ['a/b', '1'],
        ['+#%$', '12345678901234567890'],
        ['', 'true'],
        ['é\u0000\n\u007f', '-0.5'],
        ['日本', '1e3'],
      ];
      const input = keys.map(([site, id], i) =>
        recordLine(DEVICES, `{"site":${JSON.stringify(site)},"id":${id},"n":${i}}`),
      );
      const result = await runWrite(
        config(topicRoot),
        catalog({ primaryKey: [['site'], ['id']] }),
        lines(...input, streamStateLine(DEVICES, 5)),
      );
      assertOk(result);
      const deliveries = await subscriber.waitFor(keys.length);
      const topics = deliveries.map((d) => d.topic);
      assert.deepEqual(topics, [
        `${topicRoot}/devices/a%2Fb/1`,
        `${topicRoot}/devices/%2B%23%25%24/12345678901234567890`,
        `${topicRoot}/devices//true`,
        `${topicRoot}/devices/é%00%0A%7F/-0.5`,
        `${topicRoot}/devices/日本/1e3`,
      ]);
      for (const [i, topic] of topics.entries()) {
        const [site] = topic.split('/').slice(2).map(decodeURIComponent);
        assert.equal(site, keys[i]?.[0], topic);
        assert.equal(deliveries[i]?.retain, false, 'append does not retain');
      }
      assert.equal(result.states().length, 1);
    } finally {
      await subscriber.close();
    }
  });

  it('fails before publishing when {key} is used for a stream without a primary key, naming the stream', async () => {
    const result = await runWrite(config(root()), catalog({ primaryKey: [] }), lines(recordLine(DEVICES, { id: 1 })));
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /stream "fleet\.devices" has no primary key, which "Topic pattern" \(topic_pattern\) needs for \{key\}/,
    );
  });

  it('fails on a record whose key field is missing, null, an object or an array, naming stream, line and field', async () => {
    for (const [data, problem] of [
      ['{"n":1}', 'is missing'],
      ['{"id":null}', 'is null'],
      ['{"id":{"a":1}}', 'is an object'],
      ['{"id":[1]}', 'is an array'],
    ] as const) {
      const result = await runWrite(
        config(root()),
        catalog(),
        lines(recordLine(DEVICES, { id: 'ok' }), streamStateLine(DEVICES, 1), recordLine(DEVICES, data)),
      );
      assert.equal(result.code, 1, data);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        new RegExp(
          `Input line 3: the record of stream "fleet\\.devices" has no topic of its own: its primary key field "id" ${problem}`,
        ),
        data,
      );
      assert.match(String(error.message), /"Rejected records" \(rejected_records\)/);
    }
  });

  it('append_dedup keeps the last value of each key retained, and a CDC delete removes the key', async () => {
    const topicRoot = root();
    const input = lines(
      recordLine(DEVICES, { id: 1, v: 'first' }),
      recordLine(DEVICES, { id: 2, v: 'only' }),
      recordLine(DEVICES, { id: 1, v: 'second' }),
      recordLine(DEVICES, { id: 3, v: 'doomed' }),
      streamStateLine(DEVICES, 4),
      recordLine(DEVICES, { id: 3, _ab_cdc_deleted_at: '2026-12-01T00:00:00Z' }),
      recordLine(DEVICES, { id: 2, v: 'kept', _ab_cdc_deleted_at: null }),
      streamStateLine(DEVICES, 6),
    );
    const result = await runWrite(
      config(topicRoot, { topic_pattern: `${topicRoot}/{namespace}/{stream}` }),
      catalog({ mode: 'append_dedup' }),
      input,
    );
    assertOk(result);
    assert.deepEqual(
      result.states().map((s) => (s.destinationStats as { recordCount: number }).recordCount),
      [4, 2],
    );
    assert.deepEqual(await retainedData(mosquitto, `${topicRoot}/#`), {
      [`${topicRoot}/fleet/devices/1`]: { id: 1, v: 'second' },
      [`${topicRoot}/fleet/devices/2`]: { id: 2, v: 'kept', _ab_cdc_deleted_at: null },
    });
    assert.match(
      logMessages(result, /Stream "fleet\.devices"/).join('\n'),
      /6 record\(s\).*retained.*1 of them deletes/,
    );
  });

  it('overwrite clears the keys this sync did not write once the stream completes, and only then', async () => {
    const topicRoot = root();
    const filter = `${topicRoot}/devices/+`;
    await putRetained(mosquitto.url, {
      [`${topicRoot}/devices/1`]: '{"_airbyte_data":{"id":1,"v":"old"}}',
      [`${topicRoot}/devices/9`]: '{"_airbyte_data":{"id":9}}',
    });
    const input = [
      recordLine(DEVICES, { id: 1, v: 'new' }),
      recordLine(DEVICES, { id: 2, v: 'new' }),
      streamStateLine(DEVICES, 2),
    ];

    // Without the platform's completion report (a source that failed, or a platform that never sends it): nothing cleared.
    const incomplete = await runWrite(config(topicRoot), catalog({ mode: 'overwrite' }), lines(...input));
    assertOk(incomplete);
    assert.match(
      logMessages(incomplete, /stale/).join('\n'),
      /kept 1 stale retained key\(s\), because the platform did not report the stream complete/,
    );
    assert.deepEqual(Object.keys(await retainedData(mosquitto, filter)).sort(), [
      `${topicRoot}/devices/1`,
      `${topicRoot}/devices/2`,
      `${topicRoot}/devices/9`,
    ]);

    // With it: the retained set is exactly this sync's keys.
    const complete = await runWrite(config(topicRoot), catalog({ mode: 'overwrite' }), lines(...input, COMPLETE));
    assertOk(complete);
    assert.deepEqual(await retainedData(mosquitto, filter), {
      [`${topicRoot}/devices/1`]: { id: 1, v: 'new' },
      [`${topicRoot}/devices/2`]: { id: 2, v: 'new' },
    });
  });

  it('overwrite_cleanup end_of_input clears at the end of a successful write without the completion report', async () => {
    const topicRoot = root();
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/old`]: '{}' });
    const result = await runWrite(
      config(topicRoot, { overwrite_cleanup: 'end_of_input' }),
      catalog({ mode: 'overwrite' }),
      lines(recordLine(DEVICES, { id: 'new' })),
    );
    assertOk(result);
    assert.deepEqual(Object.keys(await retainedData(mosquitto, `${topicRoot}/devices/+`)), [
      `${topicRoot}/devices/new`,
    ]);
  });

  it('a failed overwrite clears nothing, even with the completion report', async () => {
    const topicRoot = root();
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/old`]: '{}' });
    const result = await runWrite(
      config(topicRoot),
      catalog({ mode: 'overwrite' }),
      lines(recordLine(DEVICES, { id: 'new' }), 'not json', COMPLETE),
    );
    assert.equal(result.code, 1);
    assert.ok(
      (await retainedUnder(mosquitto.url, `${topicRoot}/devices/+`)).has(`${topicRoot}/devices/old`),
      'the old key is still there',
    );
    assert.doesNotMatch(result.stdout, /clearing/);
  });

  it('a truncating refresh keeps keys an earlier attempt of the same generation wrote, and a merge refresh clears nothing', async () => {
    const topicRoot = root();
    const filter = `${topicRoot}/devices/+`;
    const v5 = config(topicRoot, { protocol_version: '5' });
    // Generation 0 from long ago: keys a and b.
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/a`]: '{}', [`${topicRoot}/devices/b`]: '{}' }, 0);
    // Attempt 1 of generation 1 (truncate: minimum == generation) writes c, then its source fails: no completion report.
    const first = await runWrite(
      v5,
      catalog({ mode: 'append_dedup', generation: 1, minimum: 1 }),
      lines(recordLine(DEVICES, { id: 'c' }), streamStateLine(DEVICES, 1)),
    );
    assertOk(first);
    const afterFirst = await retainedUnder(mosquitto.url, filter);
    assert.equal(afterFirst.get(`${topicRoot}/devices/c`)?.generation, '1');
    assert.deepEqual(
      [...afterFirst.keys()].sort(),
      [`${topicRoot}/devices/a`, `${topicRoot}/devices/b`, `${topicRoot}/devices/c`],
      'no completion report: nothing cleared',
    );
    // Attempt 2 resumes after c, writes d and completes: a and b (generation 0) go, c (this generation) stays.
    const second = await runWrite(
      v5,
      catalog({ mode: 'append_dedup', generation: 1, minimum: 1 }),
      lines(recordLine(DEVICES, { id: 'd' }), COMPLETE),
    );
    assertOk(second);
    assert.deepEqual(Object.keys(await retainedData(mosquitto, filter)).sort(), [
      `${topicRoot}/devices/c`,
      `${topicRoot}/devices/d`,
    ]);
    // A merge refresh (new generation, minimum 0) writes e and clears nothing.
    const merge = await runWrite(
      v5,
      catalog({ mode: 'append_dedup', generation: 2, minimum: 0 }),
      lines(recordLine(DEVICES, { id: 'e' }), COMPLETE),
    );
    assertOk(merge);
    assert.deepEqual(Object.keys(await retainedData(mosquitto, filter)).sort(), [
      `${topicRoot}/devices/c`,
      `${topicRoot}/devices/d`,
      `${topicRoot}/devices/e`,
    ]);
  });

  it('clears only the streams the platform reported complete, when several are truncated', async () => {
    const topicRoot = root();
    const SENSORS = { name: 'sensors', namespace: 'fleet' };
    await putRetained(mosquitto.url, {
      [`${topicRoot}/devices/old`]: '{}',
      [`${topicRoot}/sensors/old`]: '{}',
    });
    const both = {
      streams: [catalog({ mode: 'overwrite' }), catalog({ mode: 'overwrite', name: 'sensors' })].flatMap(
        (c) => (c as { streams: unknown[] }).streams,
      ),
    };
    // The platform reports devices complete, not sensors (its source failed after emitting it).
    const result = await runWrite(
      config(topicRoot),
      both,
      lines(recordLine(DEVICES, { id: 'new' }), recordLine(SENSORS, { id: 'new' }), COMPLETE),
    );
    assertOk(result);
    assert.deepEqual(Object.keys(await retainedData(mosquitto, `${topicRoot}/#`)).sort(), [
      `${topicRoot}/devices/new`,
      `${topicRoot}/sensors/new`,
      `${topicRoot}/sensors/old`,
    ]);
    assert.match(
      logMessages(result, /kept/).join('\n'),
      /Stream "fleet\.sensors": kept 1 stale retained key\(s\), because the platform did not report the stream complete/,
    );
  });

  it('keeps the stale keys of an overwrite that rejected a record: its key may be among them', async () => {
    const topicRoot = root();
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/old`]: '{}' });
    const result = await runWrite(
      config(topicRoot, { rejected_records: 'skip' }),
      catalog({ mode: 'overwrite' }),
      lines(recordLine(DEVICES, { id: 'new' }), recordLine(DEVICES, { n: 'no key' }), COMPLETE),
    );
    assertOk(result);
    assert.deepEqual(Object.keys(await retainedData(mosquitto, `${topicRoot}/devices/+`)).sort(), [
      `${topicRoot}/devices/new`,
      `${topicRoot}/devices/old`,
    ]);
    assert.match(
      logMessages(result, /kept/).join('\n'),
      /kept 1 stale retained key\(s\), because 1 record\(s\) of the stream were rejected/,
    );
  });

  it('tells keys of the current generation from older ones exactly, and says so (MQTT 5)', async () => {
    const topicRoot = root();
    const v5 = config(topicRoot, { protocol_version: '5' });
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/older`]: '{}' }, 1);
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/same`]: '{}' }, 2);
    const result = await runWrite(
      v5,
      catalog({ mode: 'append_dedup', generation: 2, minimum: 2 }),
      lines(recordLine(DEVICES, { id: 'new' }), COMPLETE),
    );
    assertOk(result);
    // Generation 1 is below the minimum of 2 and goes; generation 2 is this one's, written by an earlier attempt.
    assert.deepEqual(Object.keys(await retainedData(mosquitto, `${topicRoot}/devices/+`)).sort(), [
      `${topicRoot}/devices/new`,
      `${topicRoot}/devices/same`,
    ]);
    const said = logMessages(result, /retained/).join('\n');
    assert.match(said, /2 retained message\(s\) under "[^"]+\/devices\/\+", 1 of them of a generation below 2:/);
    assert.match(said, /clearing 1 stale retained key\(s\)/);
    assert.doesNotMatch(said, /not there when the sync started/);
  });

  it('reads and clears more keys than a default Mosquitto queues for a subscriber (1,000)', async () => {
    // A broker as installed: 20 messages in flight and 1,000 queued per client, beyond which it drops messages.
    const stock = await startMosquitto({ config: 'max_queued_messages 1000' });
    try {
      const topicRoot = root();
      const old: Record<string, string> = {};
      for (let i = 0; i < 3000; i++) old[`${topicRoot}/devices/old-${i}`] = '{}';
      await putRetained(stock.url, old);
      const input = Array.from({ length: 1500 }, (_, i) => recordLine(DEVICES, { id: `new-${i}` }));
      const stockConfig = { ...config(topicRoot), broker_port: stock.port };
      const result = await runWrite(
        stockConfig,
        catalog({ mode: 'overwrite' }),
        lines(...input, streamStateLine(DEVICES, 1500), COMPLETE),
        {
          timeoutMs: 90_000,
        },
      );
      assertOk(result);
      assert.match(logMessages(result, /retained message\(s\) under/).join('\n'), /3000 retained message\(s\) under/);
      const left = await retainedUnder(stock.url, `${topicRoot}/devices/+`, 30_000);
      assert.equal(left.size, 1500);
      assert.ok([...left.keys()].every((topic) => topic.includes('/new-')));
    } finally {
      await stock.stop();
    }
  });

  it('a retried truncating refresh of a resumable stream on MQTT 3.1.1 keeps what it cannot tell apart, and says why', async () => {
    const topicRoot = root();
    const filter = `${topicRoot}/devices/+`;
    await putRetained(mosquitto.url, { [`${topicRoot}/devices/a`]: '{}' }, 0);
    // The platform keeps a resumable stream's generation across the attempts of a job (a non-resumable one gets a new one).
    const resumable = catalog({ mode: 'append_dedup', generation: 1, minimum: 1, resumable: true });
    const first = await runWrite(config(topicRoot), resumable, lines(recordLine(DEVICES, { id: 'c' })));
    assertOk(first);
    const second = await runWrite(config(topicRoot), resumable, lines(recordLine(DEVICES, { id: 'd' }), COMPLETE));
    assertOk(second);
    assert.match(
      logMessages(second, /kept/).join('\n'),
      /kept 2 retained key\(s\) of earlier generations or attempts: an earlier attempt of sync 77 already published keys of generation 1, and MQTT 3\.1\.1 messages cannot carry their generation/,
    );
    assert.deepEqual(
      Object.keys(await retainedData(mosquitto, filter)).sort(),
      ['a', 'c', 'd'].map((id) => `${topicRoot}/devices/${id}`),
    );
  });

  it('airbyte_v2 carries the generation in the payload, so MQTT 3.1.1 refreshes clear only older keys', async () => {
    const topicRoot = root();
    const filter = `${topicRoot}/devices/+`;
    const v2 = config(topicRoot, { message_format: 'airbyte_v2' });
    await putRetained(mosquitto.url, {
      [`${topicRoot}/devices/a`]: '{"_airbyte_raw_id":"x","_airbyte_generation_id":0}',
    });
    assertOk(
      await runWrite(
        v2,
        catalog({ mode: 'append_dedup', generation: 1, minimum: 1 }),
        lines(recordLine(DEVICES, { id: 'c' })),
      ),
    );
    assertOk(
      await runWrite(
        v2,
        catalog({ mode: 'append_dedup', generation: 1, minimum: 1 }),
        lines(recordLine(DEVICES, { id: 'd' }), COMPLETE),
      ),
    );
    assert.deepEqual(
      [...(await retainedUnder(mosquitto.url, filter)).keys()].sort(),
      ['c', 'd'].map((id) => `${topicRoot}/devices/${id}`),
    );
  });

  it('says that an append stream a refresh truncates retains nothing of its own (Overwrite as a platform with refreshes sends it)', async () => {
    const topicRoot = root();
    const result = await runWrite(
      config(topicRoot, { topic_pattern: `${topicRoot}/{stream}` }),
      catalog({ mode: 'append', generation: 3, minimum: 3 }),
      lines(recordLine(DEVICES, { id: 1 }), COMPLETE),
    );
    assertOk(result);
    assert.match(
      logMessages(result, /is truncated/).join(''),
      /its messages are not retained \(append without "Retain messages" \(message_retained\)\), and nothing is retained under/,
    );
    assert.equal(
      logMessages(result, /^Stream .*: found no retained keys/).length,
      0,
      'no warning: nothing of its own was to be found',
    );
  });

  it("refuses to truncate under a filter that is not the stream's own", async () => {
    const result = await runWrite(
      config(root(), { topic_pattern: '{key}' }),
      catalog({ mode: 'overwrite' }),
      lines(recordLine(DEVICES, { id: 1 })),
    );
    assert.equal(result.code, 1);
    assert.match(
      String(result.traceError().message),
      /clears retained keys under "\+": that filter is not the stream's own/,
    );
  });

  it('refuses sync modes it does not support, and generations no platform sends, before publishing', async () => {
    for (const mode of ['update', 'soft_delete', 'delete', 'nonsense']) {
      const result = await runWrite(config(root()), catalog({ mode }), lines(recordLine(DEVICES, { id: 1 })));
      assert.equal(result.code, 1, mode);
      assert.equal(result.traceError().failure_type, 'config_error');
      assert.match(
        String(result.traceError().message),
        new RegExp(
          `Stream "fleet\\.devices" asks for the sync mode "${mode}", which this destination does not support`,
        ),
      );
    }
    const odd = await runWrite(
      config(root()),
      catalog({ mode: 'append', generation: 3, minimum: 2 }),
      lines(recordLine(DEVICES, { id: 1 })),
    );
    assert.equal(odd.code, 1);
    assert.match(String(odd.traceError().message), /minimum_generation_id 2 and generation_id 3/);
  });

  it('skips or dead-letters records it cannot publish, counts them in the state and goes on', async () => {
    const topicRoot = root();
    const input = lines(
      recordLine(DEVICES, { id: 1 }),
      recordLine(DEVICES, { n: 'no key' }),
      recordLine(DEVICES, { id: 3, big: 'x'.repeat(3000) }),
      streamStateLine(DEVICES, 3),
    );
    const skipped = await runWrite(
      config(topicRoot, { rejected_records: 'skip', max_message_bytes: 1024 }),
      catalog(),
      input,
    );
    assertOk(skipped);
    assert.deepEqual(skipped.states()[0]?.destinationStats, { recordCount: 3, rejectedRecordCount: 2 });
    const warnings = logMessages(skipped, /^Skipped/);
    assert.equal(warnings.length, 2);
    assert.match(
      warnings[0] ?? '',
      /input line 2: the record of stream "fleet\.devices" has no topic of its own: its primary key field "id" is missing/,
    );
    assert.match(warnings[1] ?? '', /input line 3: .* makes a \d+-byte MQTT message, larger than the 1024 bytes/);

    const dead = await subscribe(mosquitto.url, `${topicRoot}/dead`);
    try {
      const reported = await runWrite(
        config(topicRoot, {
          rejected_records: 'dead_letter',
          dead_letter_topic: `${topicRoot}/dead`,
          max_message_bytes: 1024,
        }),
        catalog(),
        input,
      );
      assertOk(reported);
      assert.deepEqual(reported.states()[0]?.destinationStats, { recordCount: 3, rejectedRecordCount: 2 });
      const reports = (await dead.waitFor(2)).map((d) => JSON.parse(d.payload) as Record<string, unknown>);
      assert.equal(reports[0]?.line, 2);
      assert.equal(reports[0]?.stream, 'devices');
      assert.equal(reports[0]?.namespace, 'fleet');
      assert.deepEqual(reports[0]?.data, { n: 'no key' });
      assert.match(String(reports[0]?.reason), /primary key field "id" is missing/);
      assert.match(String(reports[0]?.record_id), /^[0-9a-f-]{36}$/);
      // The record too large for the broker is too large for its report as well: the report gives its size instead.
      assert.equal(reports[1]?.line, 3);
      assert.equal(reports[1]?.data, undefined);
      assert.ok(Number(reports[1]?.data_bytes) > 3000);
    } finally {
      await dead.close();
    }
  });

  it('says when it finds no retained keys, as a broker that withholds them (Mosquitto without read permission) looks the same', async () => {
    // Lines before any `user` line apply to anonymous clients: they may publish under locked/ but not read there.
    // Mosquitto grants the subscription anyway and delivers nothing.
    const acl = await startMosquitto({
      files: { acl: 'topic write locked/#\ntopic readwrite airbyte/#\n' },
      listeners: (ports, dir) => `listener ${ports[0]} 127.0.0.1\nallow_anonymous true\nacl_file ${dir}/acl`,
    });
    try {
      const result = await runWrite(
        { broker_host: '127.0.0.1', broker_port: acl.port, protocol_version: '5', topic_pattern: 'locked/{key}' },
        catalog({ mode: 'overwrite' }),
        lines(recordLine(DEVICES, { id: 1 }), COMPLETE),
      );
      assertOk(result);
      assert.match(
        logMessages(result, /no retained keys/).join('\n'),
        /found no retained keys under "locked\/\+".*read permission/,
      );
    } finally {
      await acl.stop();
    }
  });
});
