/**
 * Records of any length, on Mosquitto: time linear in the length of a record, memory a small multiple of the longest
 * line, a line over the limit refused by number and size (never an out-of-memory crash), and progress that counts the
 * bytes of a long line while it arrives.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type RunningConnector, startWrite } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const STREAM = { name: 'blobs' };
const MB = 1_048_576;

/** A record line of `bytes` bytes exactly. */
function bigRecord(bytes: number): string {
  const empty = recordLine(STREAM, { blob: '' });
  return recordLine(STREAM, { blob: 'x'.repeat(bytes - empty.length) });
}

/** The peak resident memory of a running process, in bytes (Linux). */
function peakRss(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** The CPU time a running process has used so far, in clock ticks (Linux): what load on the machine does not inflate. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime, the 14th and 15th fields of the line, counted from the state field, the 3rd.
  return Number(fields[11]) + Number(fields[12]);
}

interface Measured {
  readonly cpu: number;
  readonly ms: number;
  readonly peakBytes: number;
}

describe('records of any length', { skip }, () => {
  const broker = withMosquitto();
  let subscriber: Subscriber;
  // Delivery verification would hold a second copy of the first record (the one it waits to see come back): this
  // measures reading and publishing the line.
  const config = (): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: broker.port,
    topic_pattern: 'size/{stream}',
    verify_delivery: false,
  });

  before(async () => {
    subscriber = await subscribe(broker.url, 'size/#');
  });
  after(() => subscriber?.close());

  /** Syncs one record of `bytes` and a state; the peak memory is read once the state is out, before the process ends. */
  async function syncRecord(bytes: number): Promise<Measured> {
    const line = bigRecord(bytes);
    const before = subscriber.messages.length;
    const started = Date.now();
    const running: RunningConnector = startWrite(config(), catalogOf([STREAM]), {
      onSpawn: () => undefined,
      timeoutMs: 120_000,
    });
    running.child.stdin?.write(`${line}\n${streamStateLine(STREAM, bytes)}\n`);
    await running.waitForLine(/"type":"STATE"/, 100_000);
    const peakBytes = peakRss(running.child.pid as number);
    const cpu = cpuTicks(running.child.pid as number);
    running.child.stdin?.end();
    const result = await running.result;
    const ms = Date.now() - started;
    assert.equal(result.code, 0, result.stdout.slice(0, 2000));
    const [delivery] = (await subscriber.waitFor(before + 1, 30_000)).slice(before);
    assert.ok(delivery && delivery.payload.length > bytes - 100, 'the record arrived whole');
    return { cpu, ms, peakBytes };
  }

  it(
    'takes time linear in the length of a record, and memory a small multiple of it',
    { timeout: 300_000 },
    async () => {
      const baseline = await syncRecord(1000);
      const best = async (bytes: number): Promise<Measured> => {
        const [a, b] = [await syncRecord(bytes), await syncRecord(bytes)];
        return { cpu: Math.min(a.cpu, b.cpu), ms: Math.min(a.ms, b.ms), peakBytes: Math.max(a.peakBytes, b.peakBytes) };
      };
      const ten = await best(10 * MB);
      const forty = await best(40 * MB);
      // With split2 a 40 MB record took 13 times as long as a 10 MB one (27 s against 2 s) and 100 MB took 2 min 39 s.
      // CPU time up to the state, process start-up included, so that other work on the machine does not decide.
      assert.ok(
        forty.cpu <= 4 * ten.cpu,
        `CPU ticks: 10 MB ${ten.cpu}, 40 MB ${forty.cpu}; wall time: 10 MB ${ten.ms} ms, 40 MB ${forty.ms} ms`,
      );
      // Measured about 5 times the line (the bytes, the line's text, the message built from it and its packet).
      const multiple = (forty.peakBytes - baseline.peakBytes) / (40 * MB);
      assert.ok(
        multiple <= 7,
        `40 MB record: peak RSS ${Math.round(forty.peakBytes / MB)} MB, ${multiple.toFixed(1)} times the line above a small sync`,
      );
    },
  );

  it('refuses a line over the limit by number and size, keeping what came before it', async () => {
    const before = subscriber.messages.length;
    const small = recordLine(STREAM, { n: 1 });
    const running = startWrite(config(), catalogOf([STREAM]), {
      onSpawn: () => undefined,
      env: { MAX_INPUT_LINE_BYTES: String(MB) },
    });
    running.child.stdin?.write(`${small}\n${streamStateLine(STREAM, 1)}\n`);
    // The state of what came before goes out once the broker has it; the failure that follows does not take it back.
    await running.waitForLine(/"type":"STATE"/);
    running.child.stdin?.end(`${bigRecord(3 * MB)}\n${streamStateLine(STREAM, 2)}\n`);
    const result = await running.result;
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.match(
      String(error.message),
      new RegExp(`^Input line 3: is ${3 * MB} bytes long; an input line may have at most ${MB} bytes`),
    );
    assert.equal(error.failure_type, 'system_error');
    assert.deepEqual(
      result.states().map((s) => (s.stream as { stream_state: { cursor: number } }).stream_state.cursor),
      [1],
    );
    await subscriber.waitFor(before + 1);
  });

  it('fails with that error rather than running out of memory when the heap is small', async () => {
    // A 96 MB heap: 30 MB records ran Node out of memory (exit 134) before the limit existed.
    const running = startWrite(config(), catalogOf([STREAM]), {
      onSpawn: () => undefined,
      env: { NODE_OPTIONS: '--max-old-space-size=64' },
    });
    running.child.stdin?.end(`${bigRecord(30 * MB)}\n`);
    const result = await running.result;
    assert.equal(result.code, 1, result.stderr.slice(0, 2000));
    assert.match(
      String(result.traceError().message),
      new RegExp(`^Input line 1: is ${30 * MB} bytes long; an input line may have at most \\d+ bytes`),
    );
  });

  it('reports the bytes of a long line in progress logs while it arrives', async () => {
    const running = startWrite(config(), catalogOf([STREAM]), {
      onSpawn: () => undefined,
      env: { LOG_PROGRESS_SECONDS: '1' },
    });
    const line = bigRecord(3 * MB);
    running.child.stdin?.write(line.slice(0, 2 * MB));
    await running.waitForLine(
      new RegExp(
        `Progress: 0 record\\(s\\) received.*; ${2 * MB} input byte\\(s\\) read, line 1 arriving \\(${2 * MB} bytes so far\\)`,
      ),
      20_000,
    );
    running.child.stdin?.end(`${line.slice(2 * MB)}\n`);
    const result = await running.result;
    assert.equal(result.code, 0, result.stdout.slice(0, 2000));
  });
});
