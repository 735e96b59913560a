/**
 * Several records per message against a broker a round trip away, where messages, not bytes, are what is limited and
 * billed: a Mosquitto with default limits (Receive Maximum 20 for MQTT 5 clients) behind the proxy that adds 10 ms
 * each way (delay-proxy.ts), records of about 1 KB at QoS 1 over one connection, unbatched and in `json_array`
 * batches of 50 (and JSONL, and gzip-compressed arrays).
 *
 * Per row: records per second, and the messages and AWS-style billed units per 1,000 records. AWS IoT Core meters
 * each message in 5 KB units; here a message's size is its topic, payload and user properties, as a subscriber
 * connected straight to the broker receives it (the subscriber is not behind the proxy).
 *
 * Two rates are given. The wall time from spawn to exit includes start-up and connecting, about half a second, which
 * a batched run of a few thousand records spends more time on than on publishing; the publishing rate, from the first
 * message at the subscriber to the last, is what a long sync runs at, and the target compares that.
 *
 *   node dist/scripts/bench/batching.js
 *
 * Environment: BENCH_BATCH_RECORDS (10000), BENCH_BATCH_ROUNDS (3).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import mqtt from 'mqtt';
import { findExecutable, startMosquitto } from '../../test/support/mosquitto.js';
import { startDelayProxy } from './delay-proxy.js';
import { generateInputs } from './inputs.js';
import { SHIPPED_MAIN } from './startup.js';

/** AWS IoT Core's metering unit. */
const UNIT_BYTES = 5 * 1024;

export interface BatchingBenchOptions {
  readonly records?: number;
  readonly rounds?: number;
  readonly oneWayMs?: number;
  readonly print?: (line: string) => void;
  readonly progress?: (line: string) => void;
}

interface Counted {
  readonly wallSeconds: number;
  readonly publishSeconds: number;
  readonly messages: number;
  readonly units: number;
}

interface Row {
  readonly name: string;
  readonly extra: Record<string, unknown>;
  readonly runs: Counted[];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** The bytes AWS would meter for a message as a subscriber sees it: topic, payload, user properties. */
function meteredBytes(topic: string, payload: Buffer, properties: mqtt.IPublishPacket['properties']): number {
  let bytes = Buffer.byteLength(topic) + payload.length;
  for (const [name, value] of Object.entries(properties?.userProperties ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) bytes += Buffer.byteLength(name) + Buffer.byteLength(v);
  }
  return bytes;
}

export async function batchingBench(options: BatchingBenchOptions = {}): Promise<void> {
  const records = options.records ?? 10_000;
  const rounds = options.rounds ?? 3;
  const oneWayMs = options.oneWayMs ?? 10;
  const print = options.print ?? ((line: string) => console.log(line));
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!findExecutable('mosquitto'))
    throw new Error('the batching benchmark needs mosquitto (apt-get install mosquitto)');
  const dir = mkdtempSync(join(tmpdir(), 'destination-mqtt-batching-'));
  // A broker as installed: the test helper's unlimited subscriber queue is put back to the default.
  const broker = await startMosquitto({ config: 'max_queued_messages 1000' });
  const proxy = await startDelayProxy(broker.port, oneWayMs);
  // The subscriber must keep up with the broker, so it takes QoS 0 and is not behind the proxy.
  const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 5 });
  try {
    const inputs = await generateInputs(dir, records, { references: false, primaryKey: false, recordBytes: 1000 });
    await subscriber.subscribeAsync('batch/#', { qos: 0 });
    const rows: Row[] = [
      { name: 'unbatched', extra: {}, runs: [] },
      { name: 'json_array, 50 records', extra: { batch_layout: 'json_array', batch_max_records: 50 }, runs: [] },
      { name: 'jsonl, 50 records', extra: { batch_layout: 'jsonl', batch_max_records: 50 }, runs: [] },
      {
        name: 'json_array, 50 records, gzip',
        extra: { batch_layout: 'json_array', batch_max_records: 50, payload_compression: 'gzip' },
        runs: [],
      },
    ];
    const runRow = async (row: Row, index: number): Promise<Counted> => {
      const config = join(dir, `config-${index}.json`);
      const settings = {
        broker_host: '127.0.0.1',
        broker_port: proxy.port,
        protocol_version: '5',
        topic_pattern: `batch/${index}/{stream}`,
        message_qos: 'AT_LEAST_ONCE',
        ...row.extra,
      };
      writeFileSync(config, JSON.stringify(settings));
      let messages = 0;
      let units = 0;
      let first = 0;
      let last = 0;
      const count = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
        if (!topic.startsWith(`batch/${index}/`)) return;
        last = performance.now();
        if (messages === 0) first = last;
        messages++;
        units += Math.max(1, Math.ceil(meteredBytes(topic, payload, packet.properties) / UNIT_BYTES));
      };
      subscriber.on('message', count);
      const started = performance.now();
      const stdin = openSync(inputs.messages, 'r');
      const child = spawn(process.execPath, [SHIPPED_MAIN, 'write', '--config', config, '--catalog', inputs.catalog], {
        stdio: [stdin, 'ignore', 'inherit'],
      });
      closeSync(stdin);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      const wallSeconds = (performance.now() - started) / 1000;
      // Every message is acknowledged before the connector exits; a ping round trip lets the last ones reach us.
      await subscriber.publishAsync(`batch/${index}/end`, '', { qos: 1 });
      subscriber.off('message', count);
      if (code !== 0) throw new Error(`the connector exited with ${code} on row "${row.name}"`);
      return { wallSeconds, publishSeconds: (last - first) / 1000, messages, units };
    };
    for (let round = 0; round < rounds; round++) {
      for (const [i, row] of rows.entries()) {
        const counted = await runRow(row, i);
        row.runs.push(counted);
        progress(
          `batching round ${round + 1}/${rounds} ${row.name}: ` +
            `${counted.wallSeconds.toFixed(2)} s, ${counted.messages} messages`,
        );
      }
    }
    const perThousand = (value: number): string => ((value * 1000) / records).toFixed(0);
    const rate = (seconds: number): number => records / seconds;
    const base = rows[0] as Row;
    const baseRate = rate(median(base.runs.map((r) => r.publishSeconds)));
    print(
      `\nBatches: ${records.toLocaleString('en-US')} records of about ${Math.round(inputs.bytes / records)} bytes ` +
        'of input each, QoS 1, MQTT 5, one connection, ' +
        `through a proxy adding ${oneWayMs} ms each way to a Mosquitto with default limits (Receive Maximum 20). ` +
        `Median of ${rounds} round(s).\n`,
    );
    print(
      '| command | wall s | records/s (wall) | records/s (publishing) | x unbatched ' +
        '| messages per 1,000 records | 5 KB units per 1,000 records |',
    );
    print('| --- | --- | --- | --- | --- | --- | --- |');
    for (const row of rows) {
      const wall = median(row.runs.map((r) => r.wallSeconds));
      const publishing = rate(median(row.runs.map((r) => r.publishSeconds)));
      const messages = median(row.runs.map((r) => r.messages));
      const units = median(row.runs.map((r) => r.units));
      print(
        `| ${row.name} | ${wall.toFixed(2)} | ${Math.round(rate(wall)).toLocaleString('en-US')} ` +
          `| ${Math.round(publishing).toLocaleString('en-US')} | ` +
          `${(publishing / baseRate).toFixed(1)} | ${perThousand(messages)} | ${perThousand(units)} |`,
      );
    }
    const batched = rows[1] as Row;
    const ratio = rate(median(batched.runs.map((r) => r.publishSeconds))) / baseRate;
    const units = (median(batched.runs.map((r) => r.units)) * 1000) / records;
    print('\n| target | measured | met |');
    print('| --- | --- | --- |');
    print(
      '| json_array batches of 50 >= 20x unbatched (publishing rate) ' +
        `| ${ratio.toFixed(1)}x | ${ratio >= 20 ? 'yes' : 'NO'} |`,
    );
    print(`| <= 250 billed 5 KB units per 1,000 records | ${units.toFixed(0)} | ${units <= 250 ? 'yes' : 'NO'} |`);
  } finally {
    await subscriber.endAsync();
    await proxy.close();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await batchingBench({
    records: Number(process.env.BENCH_BATCH_RECORDS ?? 10_000),
    rounds: Number(process.env.BENCH_BATCH_ROUNDS ?? 3),
  });
}
