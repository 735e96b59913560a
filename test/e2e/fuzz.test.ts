/**
 * Thousands of syncs fed random and mutated input, against a real broker. Every run must end either in success or in
 * exactly one error the connector meant to raise (never an unexpected exception, a crash or a hang), and no run may
 * emit a state unless every record before it in the input is on the broker. Record sizes vary from an empty row to
 * tens of KB and now and then past a 64 KiB write batch, because batching and framing fail only at some sizes.
 *
 * Most runs call the `write` command in this process, which is what makes thousands of them affordable; a smaller
 * share runs the built connector as a process, to check the exit code and that exactly one TRACE is printed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { write } from '../../src/commands/write.js';
import { ConnectorError } from '../../src/errors.js';
import { Output } from '../../src/airbyte/output.js';
import { type EmbeddedBroker, withAedes } from '../support/aedes.js';
import { parseLines, runWrite } from '../support/connector.js';
import { catalogOf, globalStateLine, legacyStateLine, recordLine, streamStateLine } from '../support/messages.js';
import { mulberry32 as generator } from '../support/random.js';
import { dataOfBytes } from '../support/shapes.js';

const EVENTS = { name: 'events' };
const USERS = { name: 'users', namespace: 'crm' };
const CATALOG = catalogOf([EVENTS, USERS]);
const QOS = ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'] as const;
const IN_PROCESS_RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const PROCESS_RUNS = 25;

interface Case {
  readonly lines: Buffer[];
  /** Per line: the record marker it carries, unmutated; undefined for other lines and mutated ones. */
  readonly markers: (string | undefined)[];
  readonly qos: (typeof QOS)[number];
}

/**
 * Record data around a realistic row of a size spread evenly over orders of magnitude, 2 B to 40 KB, and for about one
 * such record in thirty between one and three 64 KiB write batches: sizes decide when a batch is flushed and what is
 * left of its buffer.
 */
function sizedData(marker: string, random: () => number): string {
  const bytes =
    random() < 0.03 ? 65_537 + Math.floor(random() * 135_000) : Math.round(Math.exp(random() * Math.log(40_000)));
  return `{"m":"${marker}","row":${dataOfBytes(random, Math.max(2, bytes))}}`;
}

const NASTY = [
  '"',
  '\\',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '\u0000',
  '\u001f',
  '\u2028',
  '\ud800',
  'é',
  '😀',
  ' ',
  '\t',
  '0',
  '-',
  'e',
  'n',
  't',
];

function makeCase(run: number, random: () => number): Case {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const texts: string[] = [];
  const markers: (string | undefined)[] = [];
  const count = 3 + Math.floor(random() * 12);
  for (let i = 0; i < count; i++) {
    const kind = random();
    const marker = `r${run}-${i}`;
    if (kind < 0.55) {
      const stream = random() < 0.5 ? EVENTS : USERS;
      const data =
        random() < 0.3
          ? sizedData(marker, random)
          : pick([
              `{"m":"${marker}"}`,
              `{"m":"${marker}","n":12345678901234567890123,"f":-1.5e-300,"s":"\\u00e9\\n","a":[1,{"b":null}]}`,
              `{"m":"${marker}","deep":${'['.repeat(50)}${']'.repeat(50)}}`,
            ]);
      texts.push(recordLine(stream, data, 1_700_000_000_000 + i));
      markers.push(marker);
    } else if (kind < 0.8) {
      const cursor = `s${run}-${i}`;
      texts.push(
        pick([streamStateLine(pick([EVENTS, USERS]), cursor), globalStateLine(cursor), legacyStateLine(cursor)]),
      );
      markers.push(undefined);
    } else if (kind < 0.9) {
      texts.push(
        pick([
          '',
          '   ',
          '{"type":"LOG","log":{"level":"INFO","message":"hi"}}',
          '{"type":"TRACE","trace":{"type":"ESTIMATE"}}',
          '{"type":"SPEC","spec":{}}',
        ]),
      );
      markers.push(undefined);
    } else {
      texts.push(
        recordLine(
          { name: pick(['events', 'users', 'other']), namespace: pick([undefined, 'crm', 'x']) },
          `{"m":"${marker}"}`,
        ),
      );
      markers.push(undefined); // may be valid or belong to a stream outside the catalog
    }
  }
  const lines: Buffer[] = texts.map((text) => Buffer.from(text));
  const mutations = Math.floor(random() * 4);
  for (let n = 0; n < mutations && lines.length > 0; n++) {
    const at = Math.floor(random() * lines.length);
    const text = texts[at] ?? '';
    const position = Math.floor(random() * (text.length + 1));
    const choice = random();
    let mutated: Buffer;
    if (choice < 0.2) mutated = Buffer.from(text.slice(0, position) + pick(NASTY) + text.slice(position));
    else if (choice < 0.35) mutated = Buffer.from(text.slice(0, position) + text.slice(position + 1));
    else if (choice < 0.45) mutated = Buffer.from(text.slice(0, position));
    else if (choice < 0.55)
      mutated = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
    else if (choice < 0.65) {
      const bytes = Buffer.from(text);
      if (bytes.length > 0) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      mutated = bytes;
    } else if (choice < 0.72)
      mutated = Buffer.from(
        text.replace(/"type":"[A-Z]+"/, `"type":"${pick(['RECORD', 'STATE', 'record', 'X', ''])}"`),
      );
    else if (choice < 0.79)
      mutated = Buffer.from(
        text.replace(/"data":\{/, pick(['"data":[', '"data":"{', '"data":null,"x":{', '"data":{"m":1,'])),
      );
    else if (choice < 0.86)
      mutated = Buffer.from(
        text.replace(
          /"emitted_at":\d+/,
          pick(['"emitted_at":"1"', '"emitted_at":1e400', '"emitted_at":-0', '"emitted_at":null']),
        ),
      );
    else if (choice < 0.93)
      mutated = Buffer.from(
        text.replace(/"stream":"[a-z]+"/, pick(['"stream":1', '"stream":""', '"stream":"nope"', '"stream":null'])),
      );
    else mutated = Buffer.from(`${text}${pick(['}', ' ', ',{}', '\r'])}`);
    lines[at] = mutated;
    markers[at] = undefined;
  }
  return { lines, markers, qos: pick(QOS) };
}

function inputOf(lines: readonly Buffer[], random: () => number): Buffer[] {
  const joined = Buffer.concat(
    lines.flatMap((line, i) => (i === lines.length - 1 && random() < 0.3 ? [line] : [line, Buffer.from('\n')])),
  );
  // Random chunk boundaries: lines and multi-byte characters split across reads. Large inputs get larger chunks (about
  // a hundred per input), or their thousands of reads would cost more than everything else in the test.
  const chunks: Buffer[] = [];
  const largest = Math.max(200, Math.floor(joined.length / 50));
  for (let at = 0; at < joined.length;) {
    const size = 1 + Math.floor(random() * largest);
    chunks.push(joined.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function stateOf(line: Buffer | undefined): string | undefined {
  try {
    const value = JSON.parse(line?.toString() ?? '') as { type?: unknown; state?: unknown };
    return value.type === 'STATE' && typeof value.state === 'object' && value.state !== null
      ? JSON.stringify(value.state)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Each emitted state must come from an input state, in order, and every record before that input line be on the broker. */
function checkStates(
  stdout: string,
  testCase: Case,
  onBroker: ReadonlySet<string>,
  succeeded: boolean,
  label: string,
): void {
  const inputStates = testCase.lines.map(stateOf);
  let from = 0;
  const emitted = new Set<number>();
  for (const message of parseLines(stdout)) {
    if (message.type !== 'STATE') continue;
    const { destinationStats: _stats, ...state } = message.state as Record<string, unknown>;
    const text = JSON.stringify(state);
    const origin = inputStates.findIndex((input, i) => i >= from && input === text);
    assert.ok(origin >= 0, `${label}: an emitted state that no later input line carried: ${text}`);
    for (let i = 0; i < origin; i++) {
      const marker = testCase.markers[i];
      if (marker)
        assert.ok(
          onBroker.has(marker),
          `${label}: state on line ${origin + 1} emitted before record ${marker} was on the broker`,
        );
    }
    emitted.add(origin);
    from = origin + 1;
  }
  if (!succeeded) return;
  for (const marker of testCase.markers)
    if (marker) assert.ok(onBroker.has(marker), `${label}: the sync succeeded without publishing ${marker}`);
  inputStates.forEach((state, i) => {
    if (state !== undefined)
      assert.ok(emitted.has(i), `${label}: the sync succeeded without emitting the state on line ${i + 1}`);
  });
}

function brokerIdle(broker: EmbeddedBroker, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (broker.aedes.connectedClients > 0) return;
      clearTimeout(timer);
      broker.aedes.off('clientDisconnect', check);
      resolve();
    };
    const timer = setTimeout(() => {
      broker.aedes.off('clientDisconnect', check);
      reject(new Error(`${label}: the connector's connection was still open on the broker after 10 s`));
    }, 10_000);
    broker.aedes.on('clientDisconnect', check);
    check();
  });
}

describe('fuzzed input', () => {
  const broker = withAedes();
  const onBroker = new Set<string>();
  let configPath: string;
  const configs = new Map<string, string>();
  let catalogPath: string;

  before(() => {
    broker.aedes.on('publish', (packet, client) => {
      if (!client) return;
      const marker = /"m":"(r\d+-\d+)"/.exec(packet.payload.toString())?.[1];
      if (marker) onBroker.add(marker);
    });
    const dir = mkdtempSync(join(tmpdir(), 'fuzz-'));
    catalogPath = join(dir, 'catalog.json');
    writeFileSync(catalogPath, JSON.stringify(CATALOG));
    for (const qos of QOS) {
      const path = join(dir, `${qos}.json`);
      writeFileSync(
        path,
        // Input is what is fuzzed: delivery verification would add a connection and a round trip to each of the runs.
        JSON.stringify({
          broker_host: '127.0.0.1',
          broker_port: broker.port,
          topic_pattern: 'fuzz/{namespace}/{stream}',
          message_qos: qos,
          max_inflight: 4,
          verify_delivery: false,
        }),
      );
      configs.set(qos, path);
    }
    configPath = configs.get('AT_LEAST_ONCE') as string;
  });

  it(`ends ${IN_PROCESS_RUNS} in-process syncs in success or one intended error, never with a false state`, async (t) => {
    const outcomes = { success: 0, failed: 0 };
    for (let run = 0; run < IN_PROCESS_RUNS; run++) {
      const random = generator(run);
      const testCase = makeCase(run, random);
      let stdout = '';
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          stdout += chunk.toString();
          callback();
        },
      });
      const label = `run ${run} at ${testCase.qos}`;
      let succeeded = true;
      const input = Readable.from(inputOf(testCase.lines, random));
      const finished = write(
        configs.get(testCase.qos) ?? configPath,
        catalogPath,
        new Output(sink, 'WARN'),
        input,
      ).catch((err: unknown) => {
        succeeded = false;
        assert.ok(err instanceof ConnectorError, `${label}: not a connector error: ${String(err)}`);
        assert.doesNotMatch(
          err.message,
          /failed unexpectedly/,
          `${label}: ${err.message} ${err.internalMessage ?? ''}`,
        );
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        finished,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${label} hung`)), 10_000))),
      ]);
      clearTimeout(timer);
      // At QoS 0 a state means "handed to the operating system": wait until the broker has read the whole connection.
      await brokerIdle(broker, label);
      checkStates(stdout, testCase, onBroker, succeeded, label);
      outcomes[succeeded ? 'success' : 'failed']++;
    }
    t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
    // The generator must exercise both outcomes, or the test proves little.
    assert.ok(
      outcomes.success > IN_PROCESS_RUNS / 10 && outcomes.failed > IN_PROCESS_RUNS / 10,
      JSON.stringify(outcomes),
    );
  });

  it(`ends ${PROCESS_RUNS} connector processes with exit 0, or exactly one TRACE and a non-zero exit`, async () => {
    for (let run = 100_000; run < 100_000 + PROCESS_RUNS; run++) {
      const random = generator(run);
      const testCase = makeCase(run, random);
      const config = {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 'fuzz/{namespace}/{stream}',
        message_qos: testCase.qos,
        verify_delivery: false,
      };
      const result = await runWrite(config, CATALOG, Buffer.concat(inputOf(testCase.lines, random)));
      const label = `process run ${run}`;
      await brokerIdle(broker, label);
      const traces = result.ofType('TRACE');
      if (result.code === 0) assert.equal(traces.length, 0, label);
      else {
        assert.equal(result.code, 1, `${label}: ${result.stderr}`);
        assert.equal(traces.length, 1, `${label}: ${result.stdout}`);
        assert.doesNotMatch(String(result.traceError().message), /failed unexpectedly/, label);
      }
      assert.equal(result.stderr, '', `${label}: nothing on stderr`);
      checkStates(result.stdout, testCase, onBroker, result.code === 0, label);
    }
  });
});
