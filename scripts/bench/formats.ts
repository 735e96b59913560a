/**
 * Micro-benchmark of the per-record payload work: each message format, each kind of record id, the key extraction and
 * emitted_at conversion they rely on, and the whole chain as the write path runs it. Records are the ~250-byte records
 * of the main benchmark (inputs.ts), 1,000 distinct ones cycled. Payloads are measured with `Buffer.byteLength`, as the
 * write path does, so the cost of flattening the concatenated string is counted. Not part of `npm test`:
 *
 *     npm run build && node dist/scripts/bench/formats.js
 *
 * Each row is the median of BENCH_FORMAT_ROUNDS (5) timed runs of BENCH_FORMAT_SECONDS (0.4) after a warm-up run, so
 * that a burst of load from other processes on the machine moves one run, not the figure.
 */
import { wholeMilliseconds } from '../../src/payload/emitted-at.js';
import { keySubject } from '../../src/payload/cloudevents.js';
import { prepareFormat } from '../../src/payload/formats.js';
import type { MessageFormat, PayloadParts } from '../../src/payload/payload-format.js';
import { keyValues } from '../../src/payload/key-values.js';
import { type IdStream, recordIds } from '../../src/payload/record-id.js';

const ROUNDS = Number(process.env.BENCH_FORMAT_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_FORMAT_SECONDS ?? 0.4);
const FORMATS: readonly MessageFormat[] = ['airbyte_envelope', 'data', 'airbyte_v2', 'cloudevents'];

interface Sample {
  readonly dataJson: string;
  readonly emittedAtJson: string;
}

const SAMPLES: readonly Sample[] = Array.from({ length: 1000 }, (_, i) => ({
  dataJson:
    `{"id":${i},"account":"acct-${(i * 7919) % 100000}","email":"user${i}@example.com",` +
    `"amount":${(i % 1000) + 0.25},"currency":"EUR","status":"active",` +
    `"updated_at":"2026-11-01T12:${String(i % 60).padStart(2, '0')}:00Z","tags":["a","b"],"score":${i % 97}}`,
  emittedAtJson: String(1_700_000_000_000 + i),
}));
const FLOAT_SAMPLES = SAMPLES.map((sample, i) => ({ ...sample, emittedAtJson: `${1_700_000_000_000 + i}.5` }));

const KEYED: IdStream = { name: 'users', namespace: 'bench', primaryKey: [['id']], cursorField: ['updated_at'] };
const UNKEYED: IdStream = { name: 'users', namespace: 'bench', primaryKey: [] };
const ID = '0c2f4c1e-8a0b-4c1e-9d2f-6b1e2a3c4d5e';

/** Operations per second of `work` (called with a record index), median over the rounds. */
function rate(work: (i: number) => number): number {
  let sink = 0;
  const run = (): number => {
    const deadline = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9));
    const started = process.hrtime.bigint();
    let count = 0;
    // Check the clock every 1,000 operations, not on each.
    while (process.hrtime.bigint() < deadline) for (let j = 0; j < 1000; j++, count++) sink += work(count % 1000);
    return count / (Number(process.hrtime.bigint() - started) / 1e9);
  };
  run();
  const rates = Array.from({ length: ROUNDS }, run).sort((a, b) => a - b);
  // The sink keeps the work from being optimised away.
  if (sink === -1) console.log(sink);
  return rates[Math.floor(rates.length / 2)] as number;
}

function sample(i: number): Sample {
  return SAMPLES[i] as Sample;
}

const rows: [string, number][] = [];
function row(name: string, work: (i: number) => number): void {
  rows.push([name, rate(work)]);
  console.error(`measured: ${name}`);
}

for (const format of FORMATS) {
  const prepared = prepareFormat(format, { name: 'users', namespace: 'bench', syncId: 42, generationId: 3 });
  row(`render ${format} (fixed id)`, (i) =>
    Buffer.byteLength(
      prepared.render({ id: ID, dataJson: sample(i).dataJson, emittedAtMs: sample(i).emittedAtJson, subject: '7' }),
    ),
  );
}
const v2 = prepareFormat('airbyte_v2', { name: 'users', namespace: 'bench', syncId: 42, generationId: 3 });
const META = '{"changes":[{"field":"email","change":"NULLED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}';
row('render airbyte_v2 with meta.changes', (i) =>
  Buffer.byteLength(
    v2.render({ id: ID, dataJson: sample(i).dataJson, emittedAtMs: sample(i).emittedAtJson, metaJson: META }),
  ),
);

const random = recordIds('random', KEYED);
const byKey = recordIds('deterministic', KEYED);
const byData = recordIds('deterministic', UNKEYED);
row('id random (UUID v4)', (i) => random.idOf(sample(i).dataJson).length);
row('id deterministic by primary key + cursor', (i) => byKey.idOf(sample(i).dataJson).length);
row('id deterministic by data bytes', (i) => byData.idOf(sample(i).dataJson).length);

row('keyValues: 1 path', (i) => keyValues(sample(i).dataJson, [['id']]).length);
row('keyValues: 2 paths (key + cursor)', (i) => keyValues(sample(i).dataJson, byKey.keyPaths).length);
row('keySubject of 1 value', (i) => keySubject(keyValues(sample(i).dataJson, [['id']]))?.length ?? 0);
row('wholeMilliseconds: integer', (i) => wholeMilliseconds(sample(i).emittedAtJson)?.length ?? 0);
row(
  'wholeMilliseconds: with a fraction',
  (i) => wholeMilliseconds((FLOAT_SAMPLES[i] as Sample).emittedAtJson)?.length ?? 0,
);

/** What the write path does per record: emitted_at, key values once (for the id and the subject), id, payload. */
for (const format of FORMATS) {
  for (const [label, ids] of [
    ['random', random],
    ['deterministic', byKey],
  ] as const) {
    const prepared = prepareFormat(format, { name: 'users', namespace: 'bench', syncId: 42, generationId: 3 });
    row(`chain ${format}, ${label} id`, (i) => {
      const { dataJson, emittedAtJson } = sample(i);
      const values = ids.keyPaths.length > 0 ? keyValues(dataJson, ids.keyPaths) : undefined;
      const parts: PayloadParts = {
        id: ids.idOf(dataJson, values),
        dataJson,
        emittedAtMs: wholeMilliseconds(emittedAtJson) ?? '0',
        subject: format === 'cloudevents' && values ? keySubject(values.slice(0, 1)) : undefined,
      };
      return Buffer.byteLength(prepared.render(parts));
    });
  }
}

const width = Math.max(...rows.map(([name]) => name.length));
console.log(`Per-record payload work, ${process.version}, median of ${ROUNDS} runs of ${SECONDS} s:\n`);
console.log(`| ${'operation'.padEnd(width)} | records/s |`);
console.log(`| ${'-'.repeat(width)} | --- |`);
for (const [name, perSecond] of rows)
  console.log(`| ${name.padEnd(width)} | ${Math.round(perSecond).toLocaleString('en-US').padStart(9)} |`);
