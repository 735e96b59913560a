/**
 * A Mosquitto process started for one test file, on a free port, with a configuration the test writes. It never uses
 * a broker that happens to be running already.
 *
 * When `mosquitto` is not installed the tests that need it are skipped with a message, unless the run requires it
 * (CI, or REQUIRE_MOSQUITTO=1), in which case they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before } from 'node:test';

const SEARCH_PATH = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];

export function findExecutable(name: string): string | undefined {
  for (const dir of SEARCH_PATH) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export const mosquittoRequired = process.env.CI === 'true' || process.env.REQUIRE_MOSQUITTO === '1';

/** undefined when the tests can run; otherwise the reason to skip them. Throws when Mosquitto is required but missing. */
export function mosquittoSkipReason(): string | undefined {
  if (findExecutable('mosquitto')) return undefined;
  if (mosquittoRequired)
    throw new Error('mosquitto is required for this run (CI or REQUIRE_MOSQUITTO=1) but is not installed');
  return 'mosquitto is not installed: Mosquitto tests skipped (apt-get install mosquitto mosquitto-clients to run them)';
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Mosquitto {
  /** The first listener's port. */
  readonly port: number;
  /** Every listener's port, in the order `listeners` was given them. */
  readonly ports: readonly number[];
  readonly url: string;
  readonly dir: string;
  /** What the broker logged so far, across restarts. */
  log(): string;
  /** Kills the process with SIGKILL, as a crash would: nothing is saved, no client is told. */
  kill(): Promise<void>;
  /** Starts the broker again, on the same ports with the same configuration, after `kill`. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface MosquittoOptions {
  /** Extra global configuration lines; logging, persistence and queue settings come first. */
  readonly config?: string;
  /** How many listener ports to pick; `listeners` receives them. Default 1. */
  readonly portCount?: number;
  /** Listener sections; by default one anonymous plain listener on the first port. */
  readonly listeners?: (ports: readonly number[], dir: string) => string;
  /** Files to write into the broker's directory before it starts (certificates, password files). */
  readonly files?: Readonly<Record<string, string>>;
}

/**
 * A Mosquitto for the tests of the calling `describe`: started in a `before` hook, stopped in an `after` hook, both
 * registered where this is called (so hooks registered after it find the broker running, and run their `after` once
 * it has stopped). The broker returned stands for the one started and may be used from the hooks and tests only.
 * Not for the top level of a file: node:test starts each top-level `before` hook as it is registered, without
 * waiting for the ones before it, so a later hook there would find no broker yet.
 *
 * `options` may be a function, called when the broker starts: what it writes (certificates, password files) is then
 * made only for tests that run. Skipping the `describe` when Mosquitto is missing stays with its caller
 * (`mosquittoSkipReason`): node:test does not even build a skipped suite, so no hook is registered.
 */
export function withMosquitto(options: MosquittoOptions | (() => MosquittoOptions) = {}): Mosquitto {
  let broker: Mosquitto | undefined;
  const started = (): Mosquitto => {
    if (!broker) throw new Error('Mosquitto is used before its before hook started it, or after it failed to start');
    return broker;
  };
  before(async () => {
    broker = await startMosquitto(typeof options === 'function' ? options() : options);
  });
  after(() => broker?.stop());
  return {
    get port() {
      return started().port;
    },
    get ports() {
      return started().ports;
    },
    get url() {
      return started().url;
    },
    get dir() {
      return started().dir;
    },
    log: () => started().log(),
    kill: () => started().kill(),
    restart: () => started().restart(),
    stop: () => started().stop(),
  };
}

/**
 * Starts Mosquitto and resolves once it logs that it is running. Retries on another port when the chosen one was taken
 * between picking and binding.
 */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const executable = findExecutable('mosquitto');
  if (!executable) throw new Error('mosquitto is not installed');
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const ports: number[] = [];
    while (ports.length < (options.portCount ?? 1)) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    try {
      return await launch(executable, ports, options);
    } catch (err) {
      lastError = err as Error;
      if (!/Address already in use/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error('mosquitto did not start');
}

function launch(executable: string, ports: readonly number[], options: MosquittoOptions): Promise<Mosquitto> {
  const port = ports[0] as number;
  const dir = mkdtempSync(join(tmpdir(), 'mosquitto-'));
  // Started as root, Mosquitto drops to the mosquitto user, which must be able to read everything here.
  chmodSync(dir, 0o755);
  for (const [name, content] of Object.entries(options.files ?? {})) {
    writeFileSync(join(dir, name), content, { mode: 0o644 });
  }
  const config = [
    'persistence false',
    // Subscribers in tests count every delivery; the default queue limit of 1000 would drop some.
    'max_queued_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    options.config ?? '',
    options.listeners ? options.listeners(ports, dir) : `listener ${port} 127.0.0.1\nallow_anonymous true`,
  ].join('\n');
  const configPath = join(dir, 'mosquitto.conf');
  writeFileSync(configPath, `${config}\n`, { mode: 0o644 });
  let log = '';
  let child: ChildProcess | undefined;
  const exited = (): boolean => !child || child.exitCode !== null || child.signalCode !== null;

  const run = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const process = spawn(executable, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = process;
      let started = false;
      const from = log.length;
      const timer = setTimeout(() => {
        process.kill('SIGKILL');
        reject(new Error(`mosquitto did not report running within 10 s:\n${log}`));
      }, 10_000);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`mosquitto exited with code ${code} before running:\n${log}`));
      };
      process.once('exit', onExit);
      process.stderr?.setEncoding('utf8');
      process.stderr?.on('data', (chunk: string) => {
        log += chunk;
        if (started || !/ running\b/.test(log.slice(from))) return;
        started = true;
        clearTimeout(timer);
        process.off('exit', onExit);
        resolve();
      });
    });

  const end = (signal: NodeJS.Signals): Promise<void> =>
    new Promise<void>((done) => {
      if (exited()) return done();
      child?.once('exit', () => done());
      child?.kill(signal);
    });

  return run().then(
    () => ({
      port,
      ports,
      url: `mqtt://127.0.0.1:${port}`,
      dir,
      log: () => log,
      kill: () => end('SIGKILL'),
      restart: async () => {
        // The old process may hold the port for a moment after it dies; retry briefly.
        for (let attempt = 0; ; attempt++) {
          try {
            await run();
            return;
          } catch (err) {
            if (attempt >= 20 || !/Address already in use/i.test((err as Error).message)) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      },
      stop: async () => {
        await end('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      },
    }),
    (err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    },
  );
}
