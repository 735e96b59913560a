/**
 * `npm run bench`: the connector against a bare MQTT.js publisher and `mosquitto_pub -l`, on the same generated input,
 * against a Mosquitto with default limits that this script starts. The commands alternate over several rounds; the
 * medians are compared. Then a 1,000,000-record sync measures peak memory.
 *
 * A sweep of max_inflight at QoS 1 shows where the default comes from.
 *
 * Environment: BENCH_RECORDS (200000), BENCH_ROUNDS (3), BENCH_MEMORY_RECORDS (1000000; 0 skips the memory check),
 * BENCH_WINDOWS (comma-separated max_inflight values for the sweep; empty skips it), BENCH_STARTUP_RUNS (15).
 *
 * Then the keyspace an overwrite keeps: BENCH_KEYSPACE_KEYS (10000000; 0 skips it) keys added and half of them marked,
 * with the memory they take.
 *
 * Then the network section (network.ts): the connector over 1 to 16 connections and with a rate limit, against a
 * Mosquitto behind a proxy that adds a 20 ms round trip. BENCH_NETWORK_RECORDS (10000; 0 skips it) and
 * BENCH_NETWORK_ROUNDS (3) size it; at 10,000 records it takes about four minutes, most of them in the two rows that a
 * single window or the rate limit holds back.
 *
 * Then the batching section (batching.ts): records of about 1 KB through the same 20 ms round trip, unbatched and in
 * batches, with the messages and 5 KB units billed per 1,000 records. BENCH_BATCH_RECORDS (10000; 0 skips it) and
 * BENCH_BATCH_ROUNDS (3).
 *
 * Last, the start-up time of spec and check against a bare `node -e 0` (startup.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable, startMosquitto } from '../../test/support/mosquitto.js';
import { STREAMS, generateInputs } from './inputs.js';
import { Keyspace } from '../../src/sync/keyspace.js';
import { batchingBench } from './batching.js';
import { networkBench } from './network.js';
import { SHIPPED_MAIN, measureStartup, startupTable } from './startup.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
// What users run: package.json's `bin`, the bundle with its code cache.
const MAIN = SHIPPED_MAIN;
const BARE = join(ROOT, 'dist/scripts/bench/bare-publisher.js');
const RECORDS = Number(process.env.BENCH_RECORDS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MEMORY_RECORDS = Number(process.env.BENCH_MEMORY_RECORDS ?? 1_000_000);
const KEYSPACE_KEYS = Number(process.env.BENCH_KEYSPACE_KEYS ?? 10_000_000);
const NETWORK_RECORDS = Number(process.env.BENCH_NETWORK_RECORDS ?? 10_000);
const NETWORK_ROUNDS = Number(process.env.BENCH_NETWORK_ROUNDS ?? 3);
const BATCH_RECORDS = Number(process.env.BENCH_BATCH_RECORDS ?? 10_000);
const BATCH_ROUNDS = Number(process.env.BENCH_BATCH_ROUNDS ?? 3);
const WINDOWS = (process.env.BENCH_WINDOWS ?? '50,200,1000,5000').split(',').filter(Boolean).map(Number);
const QOS_NAMES = ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'];

interface Measurement {
  readonly seconds: number;
  readonly peakRssMb: number;
}

/** Runs a command with a file on stdin; wall time from spawn to exit, and peak RSS (VmHWM) sampled from /proc. */
function measure(command: string, args: readonly string[], stdinFile: string | undefined): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: [stdinFile ? openSync(stdinFile, 'r') : 'ignore', 'pipe', 'inherit'] });
    let peakKb = 0;
    const sample = (): void => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
        if (hwm) peakKb = Math.max(peakKb, Number(hwm));
      } catch {
        // the process has just exited
      }
    };
    const sampler = setInterval(sample, 20);
    // Only the tail, for an error message, and not checked against the Airbyte protocol: keeping and parsing a timed
    // run's whole output would load the machine being measured. The test suite checks every line.
    let tail = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-2000);
    });
    child.on('exit', (code) => {
      clearInterval(sampler);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${tail}`));
      else resolve({ seconds, peakRssMb: peakKb / 1024 });
    });
    sample();
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const mosquittoPub = findExecutable('mosquitto_pub');
if (!findExecutable('mosquitto') || !mosquittoPub)
  throw new Error('the benchmark needs mosquitto and mosquitto_pub (apt-get install mosquitto mosquitto-clients)');

const dir = mkdtempSync(join(tmpdir(), 'destination-mqtt-bench-'));
const broker = await startMosquitto();
try {
  const inputs = await generateInputs(dir, RECORDS, { references: true, primaryKey: false });
  const config = (qos: number, maxInflight?: number, pattern = 'bench/{namespace}/{stream}'): string => {
    const path = join(dir, `config-${qos}-${maxInflight ?? 'default'}-${pattern.length}.json`);
    const settings = {
      broker_host: '127.0.0.1',
      broker_port: broker.port,
      topic_pattern: pattern,
      message_qos: QOS_NAMES[qos],
      max_inflight: maxInflight,
    };
    writeFileSync(path, JSON.stringify(settings));
    return path;
  };
  // The same input with the streams' primary key in the topic: one topic per record instead of one per stream.
  const keyedCatalog = join(dir, 'catalog-keyed.json');
  const catalog = JSON.parse(readFileSync(inputs.catalog, 'utf8')) as { streams: Record<string, unknown>[] };
  writeFileSync(
    keyedCatalog,
    JSON.stringify({ streams: catalog.streams.map((stream) => ({ ...stream, primary_key: [['id']] })) }),
  );
  const commands: Record<string, () => Promise<Measurement>> = {
    'connector QoS 0': () =>
      measure(process.execPath, [MAIN, 'write', '--config', config(0), '--catalog', inputs.catalog], inputs.messages),
    'connector QoS 1': () =>
      measure(process.execPath, [MAIN, 'write', '--config', config(1), '--catalog', inputs.catalog], inputs.messages),
    'connector QoS 1, {key} topics': () =>
      measure(
        process.execPath,
        [
          MAIN,
          'write',
          '--config',
          config(1, undefined, 'bench/{namespace}/{stream}/{key}'),
          '--catalog',
          keyedCatalog,
        ],
        inputs.messages,
      ),
    'connector QoS 2': () =>
      measure(process.execPath, [MAIN, 'write', '--config', config(2), '--catalog', inputs.catalog], inputs.messages),
    'bare MQTT.js QoS 0': () => measure(process.execPath, [BARE, broker.url, '0', '1000', inputs.envelopes], undefined),
    'bare MQTT.js QoS 1': () => measure(process.execPath, [BARE, broker.url, '1', '1000', inputs.envelopes], undefined),
    'mosquitto_pub -l QoS 0': () =>
      measure(
        mosquittoPub,
        ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '0', '-t', 'bench/pub', '-l'],
        inputs.payloads,
      ),
  };
  const names = Object.keys(commands);
  const results = new Map<string, Measurement[]>(names.map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round so that no command always runs first (cold caches) or last.
    const order = names.map((_, i) => names[(i + round) % names.length] as string);
    for (const name of order) {
      const result = await (commands[name] as () => Promise<Measurement>)();
      results.get(name)?.push(result);
      process.stderr.write(`round ${round + 1}/${ROUNDS} ${name}: ${result.seconds.toFixed(2)} s\n`);
    }
  }
  const seconds = (name: string): number => median((results.get(name) ?? []).map((r) => r.seconds));
  const peak = (name: string): number => Math.max(...(results.get(name) ?? []).map((r) => r.peakRssMb));
  console.log(
    `\nMachine: ${cpus().length} x ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
      `Node ${process.version}; Mosquitto with default limits on loopback.`,
  );
  console.log(
    `Input: ${RECORDS} records (${(inputs.bytes / RECORDS).toFixed(0)} bytes each on average) ` +
      `in ${STREAMS.length} streams, a STREAM state every 1,000 records. Median of ${ROUNDS} rounds.\n`,
  );
  console.log('| command | median s | records/s | peak RSS MB |');
  console.log('| --- | --- | --- | --- |');
  for (const name of names) {
    console.log(
      `| ${name} | ${seconds(name).toFixed(2)} | ${Math.round(RECORDS / seconds(name)).toLocaleString('en-US')} ` +
        `| ${peak(name).toFixed(0)} |`,
    );
  }
  const ratio = (a: string, b: string): string => (seconds(a) / seconds(b)).toFixed(2);
  console.log('\n| comparison | ratio | target |');
  console.log('| --- | --- | --- |');
  console.log(`| connector QoS 1 / bare MQTT.js QoS 1 | ${ratio('connector QoS 1', 'bare MQTT.js QoS 1')} | <= 1.10 |`);
  console.log(
    `| connector QoS 0 / mosquitto_pub -l QoS 0 | ${ratio('connector QoS 0', 'mosquitto_pub -l QoS 0')} | <= 1.50 |`,
  );
  console.log(`| connector QoS 0 / bare MQTT.js QoS 0 | ${ratio('connector QoS 0', 'bare MQTT.js QoS 0')} | |`);
  console.log(`| connector QoS 2 / connector QoS 1 | ${ratio('connector QoS 2', 'connector QoS 1')} | <= 3.00 |`);
  console.log(
    '| connector QoS 1, {key} topics / connector QoS 1 ' +
      `| ${ratio('connector QoS 1, {key} topics', 'connector QoS 1')} | <= 1.30 |`,
  );

  if (WINDOWS.length > 0) {
    console.log('\n| max_inflight at QoS 1 | median s | records/s |');
    console.log('| --- | --- | --- |');
    for (const window of WINDOWS) {
      const runs: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        runs.push(
          (
            await measure(
              process.execPath,
              [MAIN, 'write', '--config', config(1, window), '--catalog', inputs.catalog],
              inputs.messages,
            )
          ).seconds,
        );
      }
      console.log(
        `| ${window} | ${median(runs).toFixed(2)} | ${Math.round(RECORDS / median(runs)).toLocaleString('en-US')} |`,
      );
    }
  }

  if (MEMORY_RECORDS > 0) {
    const big = await generateInputs(dir, MEMORY_RECORDS, { references: false, primaryKey: false });
    const result = await measure(
      process.execPath,
      [MAIN, 'write', '--config', config(1), '--catalog', big.catalog],
      big.messages,
    );
    console.log(
      `\nMemory: ${MEMORY_RECORDS.toLocaleString('en-US')} records (${(big.bytes / 2 ** 20).toFixed(0)} MB of input) ` +
        `at QoS 1 took ${result.seconds.toFixed(1)} s ` +
        `(${Math.round(MEMORY_RECORDS / result.seconds).toLocaleString('en-US')} records/s) ` +
        `with a peak RSS of ${result.peakRssMb.toFixed(0)} MB (target < 150 MB).`,
    );
  }
  if (KEYSPACE_KEYS > 0) {
    // An overwrite holds one entry per retained key it found; the topics are of the length a {key} topic has here.
    const keyspace = new Keyspace();
    const heapBefore = process.memoryUsage();
    const started = process.hrtime.bigint();
    for (let i = 0; i < KEYSPACE_KEYS; i++) keyspace.add(`bench/bench/users/${i}`);
    for (let i = 0; i < KEYSPACE_KEYS; i += 2) keyspace.mark(`bench/bench/users/${i}`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const heapAfter = process.memoryUsage();
    const grown = heapAfter.arrayBuffers - heapBefore.arrayBuffers + (heapAfter.heapUsed - heapBefore.heapUsed);
    console.log(
      `\nKeyspace: ${KEYSPACE_KEYS.toLocaleString('en-US')} retained keys held for an overwrite ` +
        `in ${(keyspace.bytes / 2 ** 20).toFixed(0)} MB ` +
        `(${(keyspace.bytes / KEYSPACE_KEYS).toFixed(1)} bytes per key; ` +
        `the process grew by ${(grown / 2 ** 20).toFixed(0)} MB), ` +
        `added and half of them marked in ${seconds.toFixed(1)} s; ` +
        `${keyspace.unmarked.toLocaleString('en-US')} left stale.`,
    );
  }
  if (NETWORK_RECORDS > 0) await networkBench({ records: NETWORK_RECORDS, rounds: NETWORK_ROUNDS });
  if (BATCH_RECORDS > 0) await batchingBench({ records: BATCH_RECORDS, rounds: BATCH_ROUNDS });
  console.log(`\nStart-up (median of ${process.env.BENCH_STARTUP_RUNS ?? 15} runs each, alternating):\n`);
  console.log(startupTable(await measureStartup({ runs: Number(process.env.BENCH_STARTUP_RUNS ?? 15) })));
} finally {
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}
