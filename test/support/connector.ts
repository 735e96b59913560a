/** Runs the built connector as a separate process, exactly as the platform does, and parses what it prints. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AirbyteLine, parseProtocolLines } from './airbyte-protocol.js';

export type { AirbyteLine };

/**
 * What users run: package.json's `bin`, the bundled connector with its code cache. The bundle gives MQTT.js Node's own
 * stream module where the unbundled build loads readable-stream, so the suite tests the code that ships.
 */
export const MAIN = fileURLToPath(new URL('../../bundle/main/main.cjs', import.meta.url));
export const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly messages: AirbyteLine[];
  readonly elapsedMs: number;
  ofType(type: string): AirbyteLine[];
  /** The state objects (`message.state`) emitted, in order. */
  states(): Record<string, unknown>[];
  /** The single TRACE error's `error` object; throws unless there is exactly one. */
  traceError(): Record<string, unknown>;
}

export interface RunOptions {
  readonly stdin?: string | Buffer;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Called with the child once it is spawned, for tests that feed stdin themselves. */
  readonly onSpawn?: (child: ChildProcess) => void;
}

export interface RunningConnector {
  readonly child: ChildProcess;
  /** Resolves with the first stdout line matching `pattern` (as printed so far or later); rejects after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly result: Promise<RunResult>;
}

/** Starts the connector; the caller feeds stdin (unless `stdin` is given) and may watch stdout as it comes. */
export function startConnector(args: readonly string[], options: RunOptions = {}): RunningConnector {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const watcher of watchers) watcher();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined); // the connector may stop reading early, by design
  if (options.onSpawn) options.onSpawn(child);
  else if (options.stdin !== undefined) child.stdin.end(options.stdin);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const result = new Promise<RunResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`connector ${args[0]} did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`),
      );
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      for (const watcher of watchers) watcher();
      let messages: AirbyteLine[];
      try {
        messages = parseLines(stdout);
      } catch (err) {
        reject(new Error(`connector ${args[0]} (exit code ${code}): ${(err as Error).message}`));
        return;
      }
      const ofType = (type: string): AirbyteLine[] => messages.filter((m) => m.type === type);
      resolve({
        code,
        stdout,
        stderr,
        messages,
        elapsedMs: Date.now() - started,
        ofType,
        states: () => ofType('STATE').map((m) => m.state as Record<string, unknown>),
        traceError: () => {
          const traces = ofType('TRACE');
          if (traces.length !== 1) throw new Error(`expected exactly one TRACE, got ${traces.length}:\n${stdout}`);
          return (traces[0]?.trace as { error: Record<string, unknown> }).error;
        },
      });
    });
  });
  const waitForLine = (pattern: RegExp, waitMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = stdout.split('\n').find((l) => pattern.test(l));
        if (line !== undefined) {
          clearTimeout(timer);
          watchers.delete(check);
          resolve(line);
        } else if (child.exitCode !== null) {
          clearTimeout(timer);
          watchers.delete(check);
          reject(new Error(`the connector exited without printing ${pattern}:\n${stdout}`));
        }
      };
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(new Error(`no stdout line matched ${pattern} within ${waitMs} ms:\n${stdout}`));
      }, waitMs);
      watchers.add(check);
      check();
    });
  return { child, waitForLine, result };
}

/** The messages of the LOG lines that match `pattern`. */
export function logMessages(result: RunResult, pattern: RegExp): string[] {
  return result
    .ofType('LOG')
    .map((m) => (m.log as { message: string }).message)
    .filter((message) => pattern.test(message));
}

/** The cursor of each STREAM state emitted, in order (states written by `streamStateLine`). */
export function streamCursors(result: RunResult): number[] {
  return result.states().map((state) => (state.stream as { stream_state: { cursor: number } }).stream_state.cursor);
}

export function runConnector(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startConnector(args, { ...options, stdin: options.onSpawn ? undefined : (options.stdin ?? '') }).result;
}

/**
 * Every stdout line must be an Airbyte message a destination may print, as the protocol defines it: the platform
 * parses them all. Throws, naming the line, its number and what the protocol refuses in it.
 */
export function parseLines(stdout: string): AirbyteLine[] {
  return parseProtocolLines(stdout);
}

export function writeTempJson(contents: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'destination-mqtt-'));
  const path = join(dir, 'file.json');
  writeFileSync(path, JSON.stringify(contents));
  return path;
}

/**
 * The one CONNECTION_STATUS of a `check` run, which must have exited 0 without a TRACE: every failure a user can fix is
 * a FAILED status, never a crash.
 */
export function checkStatus(result: RunResult): { status: string; message: string } {
  assert.equal(result.code, 0, `check must exit 0: ${result.stdout}${result.stderr}`);
  assert.equal(result.ofType('TRACE').length, 0, result.stdout);
  const statuses = result.ofType('CONNECTION_STATUS');
  assert.equal(statuses.length, 1, result.stdout);
  return statuses[0]?.connectionStatus as { status: string; message: string };
}

export function runCheck(config: Record<string, unknown>, options: RunOptions = {}): Promise<RunResult> {
  return runConnector(['check', '--config', writeTempJson(config)], options);
}

/** Starts `write`; the caller feeds and ends stdin. */
export function startWrite(
  config: Record<string, unknown>,
  catalog: Record<string, unknown>,
  options: RunOptions = {},
): RunningConnector {
  return startConnector(['write', '--config', writeTempJson(config), '--catalog', writeTempJson(catalog)], options);
}

export function runWrite(
  config: Record<string, unknown>,
  catalog: Record<string, unknown>,
  input: string | Buffer,
  options: RunOptions = {},
): Promise<RunResult> {
  return runConnector(['write', '--config', writeTempJson(config), '--catalog', writeTempJson(catalog)], {
    ...options,
    stdin: input,
  });
}
