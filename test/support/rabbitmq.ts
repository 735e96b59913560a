/**
 * A RabbitMQ node with its MQTT plugin, started for one test file, isolated from any RabbitMQ on the machine: its own
 * node name, Erlang port mapper (epmd) on its own port, distribution port, AMQP listener off, MQTT listener on a free
 * port, and its own configuration, plugin list, database and log directories. It starts in about ten seconds (half of
 * it the MQTT plugin waiting for cluster peers), so a test file shares one node among its tests.
 *
 * When RabbitMQ is not installed the tests are skipped with a message, unless the run requires it (CI, or
 * REQUIRE_RABBITMQ=1), in which case they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freePort } from './mosquitto.js';

const rabbitRequired = process.env.CI === 'true' || process.env.REQUIRE_RABBITMQ === '1';

/**
 * The server script itself. Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user and
 * its fixed directories; the script it calls takes the directories from the environment.
 */
function serverScript(): string | undefined {
  const debian = '/usr/lib/rabbitmq/bin/rabbitmq-server';
  return existsSync(debian) ? debian : findExecutable('rabbitmq-server');
}

/** undefined when the tests can run; otherwise the reason to skip them. Throws when RabbitMQ is required but missing. */
export function rabbitmqSkipReason(): string | undefined {
  if (serverScript() && findExecutable('epmd')) return undefined;
  if (rabbitRequired)
    throw new Error('rabbitmq-server is required for this run (CI or REQUIRE_RABBITMQ=1) but is not installed');
  return 'rabbitmq-server is not installed: RabbitMQ tests skipped (apt-get install rabbitmq-server to run them)';
}

export interface RabbitMq {
  /** The MQTT listener's port. */
  readonly port: number;
  readonly url: string;
  log(): string;
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForListener(port: number, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await listening(port))) {
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exited(child: ChildProcess | undefined): boolean {
  return !child || child.exitCode !== null || child.signalCode !== null;
}

/** Kills a process and, when it leads one, its process group (the Erlang VM's helpers); resolves once it has exited. */
function kill(child: ChildProcess | undefined, group: boolean): Promise<void> {
  return new Promise((resolve) => {
    if (!child || exited(child)) return resolve();
    child.once('exit', () => resolve());
    try {
      if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      resolve();
    }
  });
}

export async function startRabbitMq(): Promise<RabbitMq> {
  const script = serverScript();
  const epmdPath = findExecutable('epmd');
  if (!script || !epmdPath) throw new Error('rabbitmq-server is not installed');
  let lastError: Error | undefined;
  // Ports are picked free and then bound by other processes: retry with new ones if one was taken meanwhile.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(script, epmdPath);
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError ?? new Error('RabbitMQ did not start');
}

async function launch(script: string, epmdPath: string): Promise<RabbitMq> {
  const [epmdPort, distPort, amqpPort, mqttPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'rabbitmq-'));
  const configPath = join(dir, 'rabbitmq.conf');
  writeFileSync(
    configPath,
    [
      'listeners.tcp = none',
      `mqtt.listeners.tcp.default = 127.0.0.1:${mqttPort}`,
      'mqtt.allow_anonymous = true',
      'loopback_users = none',
      'log.console = true',
      'log.console.level = info',
      'log.file = false',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_NODENAME: `airbyte-test-${process.pid}-${mqttPort}@localhost`,
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: configPath,
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    RABBITMQ_LOGS: '-',
    // Never start a port mapper of its own, which would outlive the test: ours runs in the foreground.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-start_epmd false',
  };
  let log = '';
  let epmd: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    await kill(server, true);
    await kill(epmd, false);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    epmd = spawn(epmdPath, ['-port', String(epmdPort)], { stdio: 'ignore', env });
    await waitForListener(epmdPort, 'epmd', 10_000);
    const child = spawn(script, [], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir, detached: true });
    server = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`RabbitMQ did not complete its start-up within 90 s:\n${log}`)),
        90_000,
      );
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`RabbitMQ exited with code ${code} during start-up:\n${log}`));
      };
      child.once('exit', onExit);
      const onOutput = (chunk: string): void => {
        log += chunk;
        if (!/Server startup complete/.test(log)) return;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve();
      };
      child.stdout?.setEncoding('utf8').on('data', onOutput);
      child.stderr?.setEncoding('utf8').on('data', onOutput);
    });
    await waitForListener(mqttPort, 'the RabbitMQ MQTT listener', 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port: mqttPort, url: `mqtt://127.0.0.1:${mqttPort}`, log: () => log, stop };
}
