/**
 * Topics from record fields against Mosquitto: `{field:PATH}` levels filled from each record, awkward values encoded
 * and decodable, records without the field rejected and counted, each topic's order kept over several connections,
 * verification over the `+` filter, and dead letter reports on topics of their own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logMessages, runWrite } from '../support/connector.js';
import { recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const MACHINES = { name: 'machines', namespace: 'plant' };

function catalog(primaryKey: string[][] = []): Record<string, unknown> {
  return {
    streams: [
      {
        stream: { ...MACHINES, json_schema: { type: 'object' }, supported_sync_modes: ['full_refresh', 'incremental'] },
        sync_mode: 'incremental',
        destination_sync_mode: 'append',
        primary_key: primaryKey,
      },
    ],
  };
}

const lines = (...parts: string[]): string => `${parts.join('\n')}\n`;

describe('topics from record fields against Mosquitto', { skip }, () => {
  const mosquitto = withMosquitto();
  let n = 0;
  const root = (): string => `fields${++n}`;
  const config = (extra: Record<string, unknown>): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: mosquitto.port,
    message_qos: 'AT_LEAST_ONCE',
    ...extra,
  });

  it('puts each record on the topic its fields give, awkward values encoded and decodable', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const sites = ['berlin', 'a/b', '+#$', '', 'Zürich 東京', '100%'];
      const input = sites.map((site, i) => recordLine(MACHINES, { site, line: { no: i }, v: i }));
      const result = await runWrite(
        config({ topic_pattern: `${topicRoot}/{field:site}/{field:line.no}/{stream}`, verify_delivery: true }),
        catalog(),
        lines(...input, streamStateLine(MACHINES, 'done')),
      );
      assert.equal(result.code, 0, result.stdout);
      assert.equal(result.states().length, 1);
      const topics = (await subscriber.waitFor(sites.length)).map((delivery) => delivery.topic);
      assert.deepEqual(topics, [
        `${topicRoot}/berlin/0/machines`,
        `${topicRoot}/a%2Fb/1/machines`,
        `${topicRoot}/%2B%23%24/2/machines`,
        `${topicRoot}//3/machines`,
        `${topicRoot}/Zürich 東京/4/machines`,
        `${topicRoot}/100%25/5/machines`,
      ]);
      assert.deepEqual(
        topics.map((topic) => decodeURIComponent(topic.split('/')[1] ?? '')),
        sites,
      );
    } finally {
      await subscriber.close();
    }
  });

  it('skips a record without the field, counts it as rejected in the state, and goes on', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const result = await runWrite(
        config({ topic_pattern: `${topicRoot}/{field:site}`, rejected_records: 'skip' }),
        catalog(),
        lines(
          recordLine(MACHINES, { site: 'a', n: 1 }),
          recordLine(MACHINES, { n: 2 }),
          recordLine(MACHINES, { site: null, n: 3 }),
          recordLine(MACHINES, { site: 'b', n: 4 }),
          streamStateLine(MACHINES, 4),
        ),
      );
      assert.equal(result.code, 0, result.stdout);
      assert.deepEqual(result.states()[0]?.destinationStats, { recordCount: 4, rejectedRecordCount: 2 });
      const skipped = logMessages(result, /^Skipped/);
      assert.match(
        skipped[0] ?? '',
        /input line 2: .*"plant\.machines" has no topic of its own: its field \{field:site\} is missing/,
      );
      assert.match(skipped[1] ?? '', /input line 3: .* its field \{field:site\} is null/);
      const delivered = await subscriber.waitFor(2);
      assert.deepEqual(
        delivered.map((delivery) => delivery.topic),
        [`${topicRoot}/a`, `${topicRoot}/b`],
      );
    } finally {
      await subscriber.close();
    }
  });

  it('keeps each topic in order over several connections', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const sites = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'];
      const input = Array.from({ length: 800 }, (_, i) => recordLine(MACHINES, { site: sites[i % 8], seq: i }));
      const result = await runWrite(
        config({ topic_pattern: `${topicRoot}/{field:site}`, connections: 4, client: `fields-${topicRoot}` }),
        catalog([['seq']]),
        lines(...input, streamStateLine(MACHINES, 800)),
      );
      assert.equal(result.code, 0, result.stdout);
      const delivered = await subscriber.waitFor(800);
      for (const site of sites) {
        const seqs = delivered
          .filter((delivery) => delivery.topic === `${topicRoot}/${site}`)
          .map((delivery) => (JSON.parse(delivery.payload) as { _airbyte_data: { seq: number } })._airbyte_data.seq);
        assert.equal(seqs.length, 100, site);
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
          `${site} in order`,
        );
      }
    } finally {
      await subscriber.close();
    }
  });

  it('reports rejected records on a dead letter topic of the stream and the record', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const result = await runWrite(
        config({
          topic_pattern: `${topicRoot}/data/{field:site}/{field:line}`,
          rejected_records: 'dead_letter',
          dead_letter_topic: `${topicRoot}/dead/{stream}/{field:site}`,
        }),
        catalog(),
        lines(recordLine(MACHINES, { site: 'berlin', n: 1 }), recordLine(MACHINES, { n: 2 })),
      );
      assert.equal(result.code, 0, result.stdout);
      const reports = await subscriber.waitFor(2);
      assert.deepEqual(
        reports.map((delivery) => delivery.topic),
        [`${topicRoot}/dead/machines/berlin`, `${topicRoot}/dead/machines/`],
      );
      assert.match(reports[0]?.payload ?? '', /its field \{field:line\} is missing/);
    } finally {
      await subscriber.close();
    }
  });

  it('refuses a placeholder it does not know before publishing, naming it', async () => {
    const result = await runWrite(config({ topic_pattern: `${root()}/{strem}` }), catalog(), lines());
    assert.equal(result.code, 1);
    assert.equal(result.traceError().failure_type, 'config_error');
    assert.match(
      String(result.traceError().message),
      /it contains \{strem\}, which is not a placeholder the connector knows \(it knows \{namespace\}, \{stream\}, \{key\} and \{field:PATH\}\)/,
    );
  });
});
