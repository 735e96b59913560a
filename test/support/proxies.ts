/**
 * Real proxies started for one test file, each on a free loopback port: microsocks (SOCKS5, optionally with a user
 * name and password) and tinyproxy (HTTP CONNECT, with a configuration the test describes: the ports it may tunnel
 * to, optionally Basic authentication). Their logs are kept, so a test can show that the proxy forwarded to the broker.
 *
 * When a program is not installed the tests that need it are skipped with a message, unless the run requires it (CI,
 * or REQUIRE_PROXIES=1), in which case they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { type FSWatcher, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before } from 'node:test';
import { findExecutable, freePort } from './mosquitto.js';

export const proxiesRequired = process.env.CI === 'true' || process.env.REQUIRE_PROXIES === '1';

type Program = 'microsocks' | 'tinyproxy';

/** undefined when `program` can run; otherwise the reason to skip. Throws when the run requires it but it is missing. */
export function proxySkipReason(program: Program): string | undefined {
  if (findExecutable(program)) return undefined;
  if (proxiesRequired)
    throw new Error(`${program} is required for this run (CI or REQUIRE_PROXIES=1) but is not installed`);
  return `${program} is not installed: tests through it skipped (apt-get install ${program} to run them)`;
}

export interface ProxyProcess {
  readonly port: number;
  /** What the proxy logged so far. */
  log(): string;
  /** Resolves with the log once it matches `pattern`; rejects, showing the log, after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface MicrosocksOptions {
  /** Require this user name and password (RFC 1929). */
  readonly auth?: { readonly username: string; readonly password: string };
}

export interface TinyproxyOptions {
  /** The only ports CONNECT may reach; tinyproxy answers 403 for any other. At least one. */
  readonly connectPorts: readonly number[];
  /** Require Basic authentication with this user name and password. */
  readonly auth?: { readonly username: string; readonly password: string };
}

export function startMicrosocks(options: MicrosocksOptions = {}): Promise<ProxyProcess> {
  return startWithRetries('microsocks', (port) => {
    const auth = options.auth ? ['-u', options.auth.username, '-P', options.auth.password] : [];
    return { args: ['-i', '127.0.0.1', '-p', String(port), ...auth] };
  });
}

export function startTinyproxy(options: TinyproxyOptions): Promise<ProxyProcess> {
  if (options.connectPorts.length === 0) throw new Error('tinyproxy without ConnectPort lines would tunnel anywhere');
  return startWithRetries('tinyproxy', (port) => {
    const dir = mkdtempSync(join(tmpdir(), 'tinyproxy-'));
    const logFile = join(dir, 'tinyproxy.log');
    const config = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      `PidFile "${join(dir, 'tinyproxy.pid')}"`,
      `LogFile "${logFile}"`,
      // Connect logs each request line ("CONNECT host:port") and each connection made to a host.
      'LogLevel Connect',
      'MaxClients 50',
      'Timeout 60',
      ...options.connectPorts.map((connectPort) => `ConnectPort ${connectPort}`),
      ...(options.auth ? [`BasicAuth ${options.auth.username} ${options.auth.password}`] : []),
    ];
    const configFile = join(dir, 'tinyproxy.conf');
    writeFileSync(configFile, `${config.join('\n')}\n`);
    return { args: ['-d', '-c', configFile], dir, logFile };
  });
}

/**
 * A proxy for the tests of the calling `describe`, started in a `before` hook and stopped in an `after` hook (see
 * withMosquitto for why not at a file's top level). `options` may be a function, called when the proxy starts, so
 * that it can name ports of brokers started by earlier hooks.
 */
export function withMicrosocks(options: MicrosocksOptions | (() => MicrosocksOptions) = {}): ProxyProcess {
  return withProxy(() => startMicrosocks(typeof options === 'function' ? options() : options));
}

export function withTinyproxy(options: TinyproxyOptions | (() => TinyproxyOptions)): ProxyProcess {
  return withProxy(() => startTinyproxy(typeof options === 'function' ? options() : options));
}

function withProxy(start: () => Promise<ProxyProcess>): ProxyProcess {
  let proxy: ProxyProcess | undefined;
  const started = (): ProxyProcess => {
    if (!proxy) throw new Error('the proxy is used before its before hook started it, or after it failed to start');
    return proxy;
  };
  before(async () => {
    proxy = await start();
  });
  after(() => proxy?.stop());
  return {
    get port() {
      return started().port;
    },
    log: () => started().log(),
    waitForLog: (pattern, timeoutMs) => started().waitForLog(pattern, timeoutMs),
    stop: () => started().stop(),
  };
}

interface Launch {
  readonly args: string[];
  /** A directory to remove when the proxy stops. */
  readonly dir?: string;
  /** A file the proxy logs to, rather than to its stderr. */
  readonly logFile?: string;
}

async function startWithRetries(program: Program, prepare: (port: number) => Launch): Promise<ProxyProcess> {
  const executable = findExecutable(program);
  if (!executable) throw new Error(`${program} is not installed`);
  let lastError: Error | undefined;
  // The port may be taken between picking and binding; the program then exits, and another port is tried.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const launch = prepare(port);
    try {
      return await launchProxy(program, executable, port, launch);
    } catch (err) {
      lastError = err as Error;
      if (launch.dir) rmSync(launch.dir, { recursive: true, force: true });
      if (!/exited/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error(`${program} did not start`);
}

async function launchProxy(program: Program, executable: string, port: number, launch: Launch): Promise<ProxyProcess> {
  const changed = new EventEmitter();
  let output = '';
  const child: ChildProcess = spawn(executable, launch.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      output += chunk;
      changed.emit('change');
    });
  }
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    }),
  );
  const log = (): string => {
    if (!launch.logFile) return output;
    try {
      return output + readFileSync(launch.logFile, 'utf8');
    } catch {
      return output;
    }
  };
  try {
    await listening(port, 10_000, () => exit);
  } catch (err) {
    if (!exit) child.kill('SIGKILL');
    await exited;
    throw new Error(`${program} ${exit ?? 'did not start'}: ${(err as Error).message}\n${log()}`, { cause: err });
  }
  let watcher: FSWatcher | undefined;
  if (launch.logFile) {
    // The directory, not the file: the program may create the file only when it first logs, after it listens.
    watcher = watch(dirname(launch.logFile), () => changed.emit('change'));
  }

  return {
    port,
    log,
    waitForLog: (pattern, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const text = log();
          if (!pattern.test(text)) return;
          clearTimeout(timer);
          changed.off('change', check);
          resolve(text);
        };
        const timer = setTimeout(() => {
          changed.off('change', check);
          reject(new Error(`${program} did not log ${pattern} within ${timeoutMs} ms; its log:\n${log()}`));
        }, timeoutMs);
        changed.on('change', check);
        check();
      }),
    stop: async () => {
      watcher?.close();
      if (!exit) child.kill('SIGTERM');
      await exited;
      if (launch.dir) rmSync(launch.dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once a TCP connection to the port succeeds. Neither program says when it listens, so the port is tried
 * every 20 ms until it accepts, the program exits (`exit` says how) or the deadline passes.
 */
async function listening(port: number, timeoutMs: number, exit: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await accepts(port)) return;
    const how = exit();
    if (how) throw new Error(how);
    if (Date.now() > deadline) throw new Error(`port ${port} did not accept connections within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
