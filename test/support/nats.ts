/**
 * A NATS server with its MQTT listener, started for one test file with its own configuration and JetStream directory
 * (NATS's MQTT support needs JetStream and a server name). Every port is chosen by the server itself (`-1`) and read
 * from its log, so no other process can take one in between. It never uses a NATS server that happens to be running.
 *
 * When `nats-server` is not installed the tests are skipped with a message, unless the run requires it (CI, or
 * REQUIRE_NATS=1), in which case they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './mosquitto.js';

const natsRequired = process.env.CI === 'true' || process.env.REQUIRE_NATS === '1';

/** undefined when the tests can run; otherwise the reason to skip them. Throws when NATS is required but missing. */
export function natsSkipReason(): string | undefined {
  if (findExecutable('nats-server')) return undefined;
  if (natsRequired) throw new Error('nats-server is required for this run (CI or REQUIRE_NATS=1) but is not installed');
  return 'nats-server is not installed: NATS tests skipped (apt-get install nats-server to run them)';
}

export interface Nats {
  /** The MQTT listener's port. */
  readonly port: number;
  readonly url: string;
  /** What the server logged so far. */
  log(): string;
  stop(): Promise<void>;
}

const MQTT_LISTENING = /Listening for MQTT clients on mqtt:\/\/[^:\s]+:(\d+)/;

export async function startNats(): Promise<Nats> {
  const executable = findExecutable('nats-server');
  if (!executable) throw new Error('nats-server is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'nats-'));
  const config = [
    'server_name: airbyte-test',
    'listen: 127.0.0.1:-1',
    // Small limits: the tests store a few messages, and the defaults reserve a share of the machine's memory and disk.
    `jetstream { store_dir: ${JSON.stringify(join(dir, 'jetstream'))}, max_memory_store: 64MB, max_file_store: 256MB }`,
    'mqtt { host: 127.0.0.1, port: -1 }',
  ].join('\n');
  const configPath = join(dir, 'nats.conf');
  writeFileSync(configPath, `${config}\n`);
  let log = '';
  let child: ChildProcess | undefined;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const process = spawn(executable, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = process;
      const timer = setTimeout(() => {
        process.kill('SIGKILL');
        reject(new Error(`nats-server was not ready within 20 s:\n${log}`));
      }, 20_000);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with code ${code} before it was ready:\n${log}`));
      };
      process.once('exit', onExit);
      process.stderr?.setEncoding('utf8');
      process.stderr?.on('data', (chunk: string) => {
        log += chunk;
        const mqttPort = MQTT_LISTENING.exec(log)?.[1];
        if (mqttPort === undefined || !/Server is ready/.test(log)) return;
        clearTimeout(timer);
        process.off('exit', onExit);
        resolve(Number(mqttPort));
      });
    });
    return {
      port,
      url: `mqtt://127.0.0.1:${port}`,
      log: () => log,
      stop: async () => {
        await new Promise<void>((done) => {
          if (!child || child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill('SIGTERM');
        });
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
