/**
 * Start-up time of the connector's short commands. The platform runs `spec` and `check` often, and starts a process
 * for every sync, so their wall time is compared with a bare `node -e 0` on the same machine: the target is at most
 * 1.5 times as long.
 *
 * The connector is run as shipped: package.json's `bin` (the bundle with its code cache, src/launcher.ts), which the
 * Docker entrypoint starts too.
 *
 * `check (refused)` is pointed at a local port where nothing listens, so the connection is refused at once and the
 * time measured is loading, reading and validating the configuration, and the first connection attempt.
 * `check (broker)` is the success path against an aedes broker in this process: connect, publish the test message at
 * QoS 1, wait for its acknowledgement, disconnect. The commands alternate run by run, so that a burst of load on the
 * machine hits all of them alike; medians are compared.
 *
 * Run directly (`node dist/scripts/bench/startup.js`) it prints a table; BENCH_STARTUP_RUNS sets the runs per command
 * (15). `measureStartup` returns the same rows for other scripts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startAedes } from '../../test/support/aedes.js';
import { parseProtocolLines } from '../../test/support/airbyte-protocol.js';
import { freePort } from '../../test/support/mosquitto.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
/** What users run: package.json's `bin`. */
export const SHIPPED_MAIN = join(ROOT, PACKAGE.bin['destination-mqtt'] as string);
/** The most `spec` and `check` may take, as a multiple of `node -e 0`. */
export const STARTUP_TARGET_RATIO = 1.5;

export interface StartupRow {
  /** What was run, as a reader would type it. */
  readonly name: string;
  readonly runs: number;
  readonly medianSeconds: number;
  /** medianSeconds divided by the median of `node -e 0`. */
  readonly ratio: number;
}

export interface StartupOptions {
  /** Timed runs of each command (15); one more, untimed, warms the file cache first. */
  readonly runs?: number;
  /** The node executable (this process's own). */
  readonly node?: string;
  /** The connector's entry point (SHIPPED_MAIN). */
  readonly main?: string;
}

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  /** Throws when a run did not end the way a fast start-up measurement assumes (a crash would look fast). */
  readonly verify: (code: number | null, stdout: string) => void;
}

interface Outcome {
  readonly seconds: number;
  readonly code: number | null;
  readonly stdout: string;
}

function time(node: string, args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(node, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, code, stdout }));
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Checked once a run is timed, so the check costs the measurement nothing: its lines must be Airbyte messages too. */
function expectMessage(name: string, pattern: RegExp): Case['verify'] {
  return (code, stdout) => {
    if (code !== 0 || !pattern.test(stdout))
      throw new Error(`${name} did not end as expected (exit code ${String(code)}):\n${stdout}`);
    parseProtocolLines(stdout);
  };
}

/** Median wall time of `node -e 0`, `spec` and both `check`s, and each one's ratio to `node -e 0`. */
export async function measureStartup(options: StartupOptions = {}): Promise<StartupRow[]> {
  const runs = options.runs ?? 15;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive whole number, not ${runs}`);
  const node = options.node ?? process.execPath;
  const main = options.main ?? SHIPPED_MAIN;
  const dir = mkdtempSync(join(tmpdir(), 'startup-bench-'));
  const broker = await startAedes();
  try {
    const configFile = (name: string, settings: Record<string, unknown>): string => {
      const path = join(dir, name);
      writeFileSync(
        path,
        JSON.stringify({ broker_host: '127.0.0.1', topic_pattern: 'bench/{stream}', connect_timeout: 5, ...settings }),
      );
      return path;
    };
    // freePort closes its listener again, so connecting there is refused at once.
    const refused = configFile('refused.json', { broker_port: await freePort() });
    const live = configFile('broker.json', { broker_port: broker.port, topic_test: 'bench/check' });
    const cases: Case[] = [
      { name: 'node -e 0', args: ['-e', '0'], verify: expectMessage('node -e 0', /^$/) },
      { name: 'spec', args: [main, 'spec'], verify: expectMessage('spec', /"type":"SPEC"/) },
      {
        name: 'check (refused)',
        args: [main, 'check', '--config', refused],
        verify: expectMessage('check', /"status":"FAILED","message":"Nothing accepts connections/),
      },
      {
        name: 'check (broker)',
        args: [main, 'check', '--config', live],
        verify: expectMessage('check', /"status":"SUCCEEDED","message":"Connected to .* at QoS 1 accepted\./),
      },
    ];
    const seconds = cases.map((): number[] => []);
    for (let round = 0; round <= runs; round++) {
      for (const [index, entry] of cases.entries()) {
        const outcome = await time(node, entry.args);
        entry.verify(outcome.code, outcome.stdout);
        if (round > 0) seconds[index]?.push(outcome.seconds);
      }
    }
    const medians = seconds.map(median);
    const baseline = medians[0] as number;
    return cases.map((entry, index) => ({
      name: entry.name,
      runs,
      medianSeconds: medians[index] as number,
      ratio: (medians[index] as number) / baseline,
    }));
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The rows as a Markdown table, with the target for the connector's commands. */
export function startupTable(rows: readonly StartupRow[]): string {
  const lines = ['| command | runs | median s | ratio to node -e 0 | target |', '| --- | --- | --- | --- | --- |'];
  for (const [index, row] of rows.entries()) {
    const target = index === 0 ? '' : `<= ${STARTUP_TARGET_RATIO.toFixed(2)}`;
    lines.push(`| ${row.name} | ${row.runs} | ${row.medianSeconds.toFixed(3)} | ${row.ratio.toFixed(2)} | ${target} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 15);
  console.log(startupTable(await measureStartup({ runs })));
}
