/**
 * An SSH tunnel to a broker behind a bastion host: the platform's `tunnel_method` (SSH_KEY_AUTH, SSH_PASSWORD_AUTH).
 * Each MQTT connection is a `direct-tcpip` channel ("ssh -W host:port") through one SSH connection to the bastion,
 * which the tunnel opens at the first forward, shares between all forwards made while it is up (parallel MQTT
 * connections log in once), and opens again at the next forward after it was lost: the caller's reconnect loop, which
 * asks for a new forward, drives that within its own reconnect timeout. Whatever runs over a forward (MQTT over TCP,
 * TLS with the broker's own name, WebSocket) sees a plain byte stream to the broker.
 *
 * The bastion's host key is accepted on first use and kept for the rest of the run, so a later connection that shows
 * another key is refused; `hostKey()` names the key shown (type and SHA256 fingerprint, as `ssh-keygen -lf` prints
 * it) so that `check` can report it. With a pinned fingerprint, every other key is refused from the start.
 *
 * ssh2 is required when the first tunnel is made, not when this module is loaded: loading it costs 36 ms of CPU from
 * its own bundle beside the connector's (scripts/bundle-options.mjs), 50 ms unbundled with its native parts (Node 20,
 * medians of 21 runs; `node -e 0` takes about 70), and runs without a tunnel never need it.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type * as Ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthenticationType, Client, ClientChannel, ParsedKey } from 'ssh2';
import { ConfigError, type ConnectorError } from '../errors.js';
import { PendingStream } from './pending-stream.js';
import {
  SshKeyError,
  type TunnelContext,
  closedBeforeLogin,
  describeForwardError,
  describeSshError,
  forwardTimedOut,
  hostKeyMismatch,
  keyProblem,
  lostWhileForwarding,
  tunnelClosed,
} from './ssh-errors.js';
import { type HostKey, canonicalFingerprint, fromPkcs8, hostKeyOf, normaliseKeyText } from './ssh-keys.js';

// The errors `forward` and the constructor throw, and the host key `hostKey` names, for callers that import this only.
export * from './ssh-errors.js';
export type { HostKey } from './ssh-keys.js';

// The bundled build (scripts/bundle.mjs) turns this require into a bundled one; it stays lazy there as well.
const require = createRequire(import.meta.url);

let ssh2: typeof Ssh2 | undefined;
function loadSsh2(): typeof Ssh2 {
  ssh2 ??= require('ssh2') as typeof Ssh2;
  return ssh2;
}

export type SshAuth =
  | { readonly kind: 'key'; readonly privateKey: string; readonly passphrase?: string }
  | { readonly kind: 'password'; readonly password: string };

export interface SshTunnelSettings {
  /** The bastion host and its SSH port (tunnel_host, tunnel_port). */
  readonly host: string;
  readonly port: number;
  /** The user to log in as on the bastion (tunnel_user). */
  readonly user: string;
  /** ssh_key (PEM or OpenSSH text; literal `\n` sequences are accepted), or tunnel_user_password. */
  readonly auth: SshAuth;
  /** `SHA256:...` as `ssh-keygen -lf` prints it; when set, any other host key is refused. */
  readonly pinnedFingerprint?: string;
  /** How long the SSH login, and then each forward, may take; 0 waits without limit. */
  readonly connectTimeoutMs: number;
}

// A dead SSH connection (the bastion gone without a word) is noticed by keepalives, as OpenSSH's
// ServerAliveInterval does: without them every forward through it would wait for its timeout, forever.
const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 3;
// Past the timeout, the bastion is given this long to acknowledge the end of the connection before the socket is
// destroyed, so that `close` always ends.
const CLOSE_GRACE_MS = 1_000;
// The originator a forward names (RFC 4254, 7.2); OpenSSH only logs it.
const ORIGIN_ADDRESS = '127.0.0.1';

interface Connection {
  readonly client: Client;
  /** Logged in. */
  ready: boolean;
  lost: boolean;
  /** Makes the next forward open a new connection instead of this one. */
  readonly forget: () => void;
}

/** The connection was lost before the bastion answered a forward: the forward may try once more on a new one. */
class ConnectionLost extends Error {}

/** The private key as ssh2 uses it; a configuration error naming the problem (never the key) when it is unusable. */
export function parsePrivateKey(text: string, passphrase?: string): ParsedKey {
  const given = passphrase === '' ? undefined : passphrase;
  let normalised = normaliseKeyText(text);
  try {
    normalised = fromPkcs8(normalised, given) ?? normalised;
  } catch (err) {
    // OpenSSL's own words for a missing passphrase are "interrupted or cancelled"; keyProblem knows ssh2's.
    const message = err instanceof Error ? err.message : String(err);
    throw keyProblem(
      given === undefined && /ENCRYPTED/.test(normalised) ? 'no passphrase given' : message,
      given !== undefined,
    );
  }
  const parsed: unknown = loadSsh2().utils.parseKey(normalised, given);
  // OpenSSH's own format may hold several keys; ssh2 returns them as an array and uses the first.
  const key = (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey | Error | undefined;
  if (key === undefined) throw keyProblem('no key found', given !== undefined);
  if (key instanceof Error) throw keyProblem(key.message, given !== undefined);
  if (!key.isPrivateKey()) {
    throw new SshKeyError(
      'The SSH key (ssh_key) is a public key; paste the private key (the file without .pub) instead.',
    );
  }
  return key;
}

export class SshTunnel {
  private readonly context: TunnelContext;
  private readonly pin: string | undefined;
  private readonly key: ParsedKey | undefined;
  /** The host key of the latest connection attempt, accepted or not. */
  private seen: HostKey | undefined;
  /** The first host key accepted: the only one accepted for the rest of the run. */
  private trusted: HostKey | undefined;
  private current: Promise<Connection> | undefined;
  /** The connection `current` stands for, from the start of its login on. */
  private latest: Connection | undefined;
  private closed = false;

  /** Throws a ConfigError for a key that cannot be used or a pinned fingerprint that is not one; connects later. */
  constructor(private readonly settings: SshTunnelSettings) {
    this.context = {
      host: settings.host,
      port: settings.port,
      user: settings.user,
      auth: settings.auth.kind,
      connectTimeoutMs: settings.connectTimeoutMs,
    };
    const pin = settings.pinnedFingerprint?.trim();
    if (pin) {
      this.pin = canonicalFingerprint(pin);
      if (this.pin === undefined) {
        throw new ConfigError(
          `The pinned SSH host key fingerprint "${pin}" is not a SHA256 fingerprint as ssh-keygen -lf prints it ` +
            '(SHA256: and 43 base64 characters).',
        );
      }
    }
    if (settings.auth.kind === 'key') this.key = parsePrivateKey(settings.auth.privateKey, settings.auth.passphrase);
  }

  /** The bastion's host key as last seen (also when it was refused); undefined before the first connection. */
  hostKey(): HostKey | undefined {
    return this.seen;
  }

  /**
   * A stream to `host`:`port` as the bastion reaches it. Rejects with a typed ConnectorError: the bastion unreachable
   * or the login refused (see describeSshError), or the bastion reached but the broker not (describeForwardError).
   */
  async forward(host: string, port: number): Promise<Duplex> {
    for (let attempt = 1; ; attempt++) {
      const connection = await this.connection();
      try {
        return await this.openChannel(connection, host, port);
      } catch (err) {
        if (!(err instanceof ConnectionLost)) throw err;
        if (this.closed) throw tunnelClosed(this.context);
        // Lost between two forwards, before this one noticed: one more try, on a new connection.
        connection.forget();
        if (attempt > 1) throw lostWhileForwarding(this.context, { host, port });
      }
    }
  }

  /**
   * `forward` as `net.connect` returns a socket: a stream at once, which holds what is written until the forward is
   * open, and fails with `forward`'s error. For stream builders that must return synchronously (MQTT.js, ws).
   */
  connect(host: string, port: number): PendingStream {
    return new PendingStream(this.forward(host, port));
  }

  /**
   * Ends the SSH connection, and with it every forward, so that nothing keeps the process alive; a login under way is
   * abandoned rather than waited for. Final: forwards asked for later fail.
   */
  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    const latest = this.latest;
    this.current = undefined;
    if (!current || !latest) return;
    if (!latest.ready) latest.client.destroy();
    let connection: Connection;
    try {
      connection = await current;
    } catch {
      return; // it never opened, so there is nothing to end
    }
    if (connection.lost) return;
    const { client } = connection;
    await new Promise<void>((resolve) => {
      const grace = setTimeout(() => client.destroy(), this.settings.connectTimeoutMs + CLOSE_GRACE_MS);
      client.once('close', () => {
        clearTimeout(grace);
        resolve();
      });
      client.end();
    });
  }

  private connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(tunnelClosed(this.context));
    if (!this.current) {
      const opening: Promise<Connection> = this.open(() => {
        if (this.current === opening) this.current = undefined;
      });
      this.current = opening;
    }
    return this.current;
  }

  /** Connects and logs in; settles once the login succeeded or the socket is closed, never with a live socket left. */
  private open(onGone: () => void): Promise<Connection> {
    const client = new (loadSsh2().Client)();
    const connection: Connection = { client, ready: false, lost: false, forget: onGone };
    this.latest = connection;
    return new Promise((resolve, reject) => {
      let failure: ConnectorError | undefined;
      client.on('ready', () => {
        connection.ready = true;
        // MQTT waits for small acknowledgements: Nagle's algorithm on the one socket under every channel would hold
        // them back for a delayed ACK.
        client.setNoDelay(true);
        resolve(connection);
      });
      client.on('error', (err: Error) => {
        if (connection.ready) return; // the connection is lost; 'close' follows and says so
        failure ??= describeSshError(err, this.context);
        client.destroy();
      });
      client.on('close', () => {
        connection.lost = true;
        onGone();
        if (connection.ready) return;
        reject(this.closed ? tunnelClosed(this.context) : (failure ?? closedBeforeLogin(this.context)));
      });
      const verifyHostKey = (blob: Buffer): boolean => {
        const key = hostKeyOf(blob);
        this.seen = key;
        const expected = this.pin ?? this.trusted?.fingerprint;
        if (expected !== undefined && key.fingerprint !== expected) {
          failure = hostKeyMismatch(this.context, key, expected, this.pin !== undefined);
          return false;
        }
        this.trusted ??= key;
        return true;
      };
      try {
        client.connect({
          host: this.settings.host,
          port: this.settings.port,
          username: this.settings.user,
          readyTimeout: this.settings.connectTimeoutMs,
          keepaliveInterval: KEEPALIVE_INTERVAL_MS,
          keepaliveCountMax: KEEPALIVE_COUNT_MAX,
          hostVerifier: verifyHostKey,
          authHandler: this.authMethods(),
        });
      } catch (err) {
        reject(describeSshError(err, this.context));
      }
    });
  }

  /**
   * The login methods, in order, each tried once if the bastion still offers it. A password is offered as such and
   * then through keyboard-interactive, which is how bastions that check passwords with PAM ask for it.
   */
  private authMethods(): (methodsLeft: AuthenticationType[] | null) => AnyAuthMethod | false {
    const username = this.settings.user;
    const { auth } = this.settings;
    const methods: AnyAuthMethod[] =
      auth.kind === 'key'
        ? [{ type: 'publickey', username, key: this.key as ParsedKey }]
        : [
            { type: 'password', username, password: auth.password },
            {
              type: 'keyboard-interactive',
              username,
              prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => auth.password)),
            },
          ];
    return (methodsLeft) => {
      for (let next = methods.shift(); next; next = methods.shift()) {
        if (methodsLeft === null || methodsLeft.includes(next.type)) return next;
      }
      return false;
    };
  }

  private openChannel(connection: Connection, host: string, port: number): Promise<ClientChannel> {
    const target = { host, port };
    return new Promise((resolve, reject) => {
      let settled = false;
      const timeoutMs = this.settings.connectTimeoutMs;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              settled = true;
              reject(forwardTimedOut(this.context, target));
            }, timeoutMs)
          : undefined;
      const answered = (err: Error | undefined, channel: ClientChannel | undefined): void => {
        if (settled) {
          channel?.close(); // opened after its forward gave up: nobody will use it
          return;
        }
        settled = true;
        clearTimeout(timer);
        if (channel) resolve(channel);
        else if (connection.lost) reject(new ConnectionLost());
        else reject(describeForwardError(err, this.context, target));
      };
      try {
        connection.client.forwardOut(ORIGIN_ADDRESS, 0, host, port, answered);
      } catch {
        // ssh2 throws 'Not connected' when the socket has already gone, before its 'close' has been emitted.
        connection.lost = true;
        connection.client.destroy();
        settled = true;
        clearTimeout(timer);
        reject(new ConnectionLost());
      }
    });
  }
}
