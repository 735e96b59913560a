/**
 * An OpenSSH server (`sshd -D -e -f CONFIG`) started for one test file as a bastion host: on a free loopback port,
 * with its own configuration, host key and authorized_keys in a temporary directory, logging at DEBUG1 to stderr,
 * which the tests read (each login, each forward: `server_request_direct_tcpip: ... target HOST port PORT`). It lets
 * in the user running the tests, with keys generated here; it never uses a running sshd or the machine's keys.
 *
 * When sshd is not installed the tests that need it are skipped with a message, unless the run requires it (CI, or
 * REQUIRE_SSHD=1), in which case they fail.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { findExecutable, freePort } from './mosquitto.js';

export const sshdRequired = process.env.CI === 'true' || process.env.REQUIRE_SSHD === '1';

/** undefined when the tests can run; otherwise the reason to skip them. Throws when sshd is required but missing. */
export function sshdSkipReason(): string | undefined {
  const installed = findExecutable('sshd') !== undefined && findExecutable('ssh-keygen') !== undefined;
  // sshd's privilege separation needs /run/sshd, which startSshd makes when it may (as root).
  const runnable = existsSync('/run/sshd') || process.getuid?.() === 0;
  if (installed && runnable) return undefined;
  const why = installed ? 'sshd needs /run/sshd, which only root can make' : 'sshd is not installed';
  if (sshdRequired) throw new Error(`sshd is required for this run (CI or REQUIRE_SSHD=1), but ${why}`);
  return `${why}: SSH tunnel tests through OpenSSH skipped (apt-get install openssh-server, as root, to run them)`;
}

/** A key pair made with ssh-keygen: the private key as its file holds it, and the path of its .pub file. */
export interface KeyPair {
  readonly privateKey: string;
  readonly publicKeyPath: string;
}

export interface Sshd {
  readonly port: number;
  readonly dir: string;
  /** The user the bastion lets in: the one running the tests. */
  readonly user: string;
  /** In authorized_keys: ed25519 in OpenSSH format, RSA in PEM format, and ed25519 encrypted with `passphrase`. */
  readonly clientKey: KeyPair;
  readonly rsaPemKey: KeyPair;
  readonly encryptedKey: KeyPair;
  readonly passphrase: string;
  /** A key the bastion does not know. */
  readonly strangerKey: KeyPair;
  /** The host key's public half, for `ssh-keygen -lf`. */
  readonly hostKeyPath: string;
  /** What sshd logged so far, across all its connections. */
  log(): string;
  /** Resolves once the log, from offset `from` on, matches `pattern` at least `count` times; rejects at the deadline. */
  waitForLog(pattern: RegExp, count?: number, from?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** sshd's AllowTcpForwarding; true by default. */
  readonly allowTcpForwarding?: boolean;
}

/** Occurrences of `pattern` in `text`. */
export function countMatches(text: string, pattern: RegExp): number {
  return [
    ...text.matchAll(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`)),
  ].length;
}

/**
 * An sshd for the tests of the calling `describe`: started in a `before` hook, stopped in an `after` hook, both
 * registered where this is called. The server returned stands for the one started, for use in hooks and tests only.
 * Skipping the `describe` when sshd is missing stays with its caller (`sshdSkipReason`).
 */
export function withSshd(options: SshdOptions = {}): Sshd {
  let server: Sshd | undefined;
  const started = (): Sshd => {
    if (!server) throw new Error('sshd is used before its before hook started it, or after it failed to start');
    return server;
  };
  before(async () => {
    server = await startSshd(options);
  });
  after(() => server?.stop());
  return {
    get port() {
      return started().port;
    },
    get dir() {
      return started().dir;
    },
    get user() {
      return started().user;
    },
    get clientKey() {
      return started().clientKey;
    },
    get rsaPemKey() {
      return started().rsaPemKey;
    },
    get encryptedKey() {
      return started().encryptedKey;
    },
    get passphrase() {
      return started().passphrase;
    },
    get strangerKey() {
      return started().strangerKey;
    },
    get hostKeyPath() {
      return started().hostKeyPath;
    },
    log: () => started().log(),
    waitForLog: (...args) => started().waitForLog(...args),
    stop: () => started().stop(),
  };
}

function generateKey(dir: string, name: string, args: readonly string[], passphrase = ''): KeyPair {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-N', passphrase, '-C', `${name}@destination-mqtt-tests`, '-f', path], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return { privateKey: readFileSync(path, 'utf8'), publicKeyPath: `${path}.pub` };
}

/** Starts sshd and resolves once it logs that it listens. Retries on another port when the one picked was taken. */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const executable = findExecutable('sshd');
  if (!executable) throw new Error('sshd is not installed');
  // sshd's privilege separation needs this directory; Debian's package makes it only when its service starts.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'sshd-'));
  try {
    const passphrase = 'correct horse battery staple';
    const keys = {
      clientKey: generateKey(dir, 'client', ['-t', 'ed25519']),
      rsaPemKey: generateKey(dir, 'client-rsa', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']),
      encryptedKey: generateKey(dir, 'client-encrypted', ['-t', 'ed25519'], passphrase),
      strangerKey: generateKey(dir, 'stranger', ['-t', 'ed25519']),
    };
    generateKey(dir, 'hostkey', ['-t', 'ed25519']);
    const authorized = [keys.clientKey, keys.rsaPemKey, keys.encryptedKey].map((k) => readFileSync(k.publicKeyPath));
    writeFileSync(join(dir, 'authorized_keys'), Buffer.concat(authorized), { mode: 0o600 });
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const running = await launch(executable, dir, await freePort(), options);
        return { ...running, dir, passphrase, ...keys, hostKeyPath: join(dir, 'hostkey.pub') };
      } catch (err) {
        lastError = err as Error;
        if (!/Address already in use/i.test(lastError.message)) throw lastError;
      }
    }
    throw lastError ?? new Error('sshd did not start');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The parent of a running process (Linux), so that only sshd's own children are ended, never a reused pid. */
function parentOf(pid: number): number | undefined {
  try {
    // /proc/PID/stat: "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

type Running = Pick<Sshd, 'port' | 'user' | 'log' | 'waitForLog' | 'stop'>;

function launch(executable: string, dir: string, port: number, options: SshdOptions): Promise<Running> {
  const user = userInfo().username;
  const config = [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${join(dir, 'hostkey')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    // The temporary directory is not owned and locked down as sshd demands of a home directory.
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    `AllowUsers ${user}`,
    `AllowTcpForwarding ${options.allowTcpForwarding === false ? 'no' : 'yes'}`,
    // DEBUG1 logs every forward (server_request_direct_tcpip) and the pid of every connection's process.
    'LogLevel DEBUG1',
  ].join('\n');
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, `${config}\n`, { mode: 0o600 });

  let log = '';
  const events = new Set<() => void>();
  const child: ChildProcess = spawn(executable, ['-D', '-e', '-f', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    log += chunk;
    for (const listener of events) listener();
  });

  const waitForLog = (pattern: RegExp, count = 1, from = 0, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (countMatches(log.slice(from), pattern) < count) return;
        clearTimeout(timer);
        events.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        events.delete(check);
        reject(new Error(`sshd did not log ${pattern} ${count} time(s) within ${timeoutMs} ms:\n${log.slice(from)}`));
      }, timeoutMs);
      events.add(check);
      check();
    });

  const stop = async (): Promise<void> => {
    // Each connection runs in a process of its own, in a session of its own, which stopping the listener leaves
    // running (and holding the log pipe) when a test left its connection open: end those too.
    for (const [, pid] of log.matchAll(/Forked child (\d+)/g)) {
      try {
        if (parentOf(Number(pid)) === child.pid) process.kill(Number(pid), 'SIGTERM');
      } catch {
        // it ended in between
      }
    }
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    child.stderr?.destroy();
    rmSync(dir, { recursive: true, force: true });
  };

  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => {
      clearTimeout(deadline);
      events.delete(onLog);
      reject(new Error(`sshd exited with code ${code} before listening:\n${log}`));
    };
    const deadline = setTimeout(() => {
      child.off('exit', onExit);
      events.delete(onLog);
      child.kill('SIGKILL');
      reject(new Error(`sshd did not report listening within 10 s:\n${log}`));
    }, 10_000);
    const onLog = (): void => {
      if (!/Server listening on 127\.0\.0\.1 port/.test(log)) return;
      clearTimeout(deadline);
      child.off('exit', onExit);
      events.delete(onLog);
      resolve({ port, user, log: () => log, waitForLog, stop });
    };
    child.once('exit', onExit);
    events.add(onLog);
  });
}
