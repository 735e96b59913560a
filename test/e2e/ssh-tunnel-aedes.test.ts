/**
 * The SSH tunnel (src/reach/ssh-tunnel.ts) through real bastions to an aedes broker in this process: OpenSSH's sshd
 * (test/support/sshd.ts) for key logins, and for password logins an SSH server built on ssh2's Server
 * (test/support/ssh-password-server.ts), since OpenSSH would need a system user with a password. MQTT runs over each
 * forward as the connector runs it: CONNECT/CONNACK and a QoS 1 PUBLISH/PUBACK with MQTT.js, over plain TCP, over TLS
 * verified against the broker's own name, and over WebSocket. What sshd logs (each login, each forward) shows how
 * many SSH connections were made and where each forward went.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type TestContext, after, before, describe, it } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { type BuildOptions, type Metafile, build } from 'esbuild';
import { MqttClient } from 'mqtt';
import WebSocket, { type ClientOptions, createWebSocketStream } from 'ws';
import { ConnectorError } from '../../src/errors.js';
import type * as TunnelModule from '../../src/reach/ssh-tunnel.js';
import {
  SshAuthenticationError,
  SshBrokerUnreachableError,
  SshForwardRefusedError,
  SshHostKeyMismatchError,
  SshKeyError,
  SshTunnel,
  type SshTunnelSettings,
  SshUnreachableError,
} from '../../src/reach/ssh-tunnel.js';
import { withAedes } from '../support/aedes.js';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { PROJECT_ROOT } from '../support/connector.js';
import { freePort } from '../support/mosquitto.js';
import { startProxy } from '../support/proxy.js';
import { type PasswordServer, startPasswordServer } from '../support/ssh-password-server.js';
import { type KeyPair, type Sshd, countMatches, sshdSkipReason, withSshd } from '../support/sshd.js';

const LOGIN = /Accepted publickey for /;
const CONNECTION = /Connection from 127\.0\.0\.1 port/;
const forwardTo = (port: number): RegExp => new RegExp(`server_request_direct_tcpip: .* target [^ ]+ port ${port}\\b`);

/** What scripts/bundle-options.mjs exports: how the connector's bundle is built. */
interface BundleOptions {
  readonly connectorOptions: BuildOptions;
  checkExternals(metafile: Metafile | undefined): void;
  bundleSeparatePackages(bundle: typeof build, outdir: string): Promise<void>;
}

let certs: TestCertificates | undefined;
const broker = withAedes(() => {
  if (opensslSkipReason() !== undefined) return [{}, { path: '/mqtt' }];
  certs = generateCertificates();
  return [{}, { path: '/mqtt' }, { cert: certs.serverCert, key: certs.serverKey }];
});
after(() => certs && rmSync(certs.dir, { recursive: true, force: true }));

/** An MQTT.js client over `stream`, connected (CONNACK received); records the packets it receives. */
async function mqttOver(stream: Duplex, clientId: string): Promise<{ client: MqttClient; received: string[] }> {
  const received: string[] = [];
  const client = new MqttClient(() => stream, { clientId, protocolVersion: 4, reconnectPeriod: 0 });
  client.on('packetreceive', (packet) => received.push(packet.cmd));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error(`${clientId}: closed before CONNACK`)));
  });
  return { client, received };
}

/** CONNECT, a QoS 1 PUBLISH acknowledged by PUBACK, and DISCONNECT over `stream`; checks that the broker got it. */
async function publishThrough(stream: Duplex, clientId: string): Promise<void> {
  const { client, received } = await mqttOver(stream, clientId);
  const topic = `tunnel/${clientId}`;
  await client.publishAsync(topic, `through ${clientId}`, { qos: 1 });
  await client.endAsync();
  assert.deepEqual(received, ['connack', 'puback']);
  const arrived = broker.received.filter((p) => p.topic === topic);
  assert.equal(arrived.length, 1, `the broker received ${topic}`);
  assert.equal(arrived[0]?.qos, 1);
  assert.equal(arrived[0]?.payload.toString(), `through ${clientId}`);
}

/** A tunnel closed when the test ends, pass or fail. */
function tunnelFor(t: TestContext, settings: SshTunnelSettings): SshTunnel {
  const tunnel = new SshTunnel(settings);
  t.after(() => tunnel.close());
  return tunnel;
}

/** What `ssh-keygen -lf` prints for a public key: its SHA256 fingerprint. */
function sshKeygenFingerprint(publicKeyPath: string): string {
  const line = execFileSync('ssh-keygen', ['-lf', publicKeyPath], { encoding: 'utf8' });
  const fingerprint = /\b(SHA256:[A-Za-z0-9+/]+)/.exec(line)?.[1];
  assert.ok(fingerprint, line);
  return fingerprint;
}

/** The lines of a private key that are its secret (the base64 body), none of which a message may hold. */
function keySecrets(key: KeyPair): string[] {
  return key.privateKey.split('\n').filter((line) => /^[A-Za-z0-9+/=]{20,}$/.test(line));
}

async function rejection(promise: Promise<unknown>): Promise<ConnectorError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ConnectorError, `a ConnectorError, not ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

function assertNoSecret(err: ConnectorError, secrets: readonly string[]): void {
  assert.ok(secrets.length > 0);
  for (const text of [err.message, err.internalMessage ?? '']) {
    for (const secret of secrets) assert.ok(!text.includes(secret), `a secret in: ${text}`);
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('SSH tunnel through OpenSSH sshd (SSH_KEY_AUTH)', { skip: sshdSkipReason() ?? opensslSkipReason() }, () => {
  const sshd = withSshd();
  const closedSshd = withSshd({ allowTcpForwarding: false });
  const settings = (server: Sshd, changes: Partial<SshTunnelSettings> = {}): SshTunnelSettings => ({
    host: '127.0.0.1',
    port: server.port,
    user: server.user,
    auth: { kind: 'key', privateKey: server.clientKey.privateKey },
    connectTimeoutMs: 10_000,
    ...changes,
  });

  it('carries MQTT CONNECT and a QoS 1 PUBLISH through a forward, which sshd logs to the broker port', async (t) => {
    const from = sshd.log().length;
    const tunnel = tunnelFor(t, settings(sshd));
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'tcp');
    await sshd.waitForLog(forwardTo(broker.port), 1, from);
    assert.equal(countMatches(sshd.log().slice(from), LOGIN), 1);
  });

  it('carries TLS to the broker, verified against its own name, which it also sends as SNI', async (t) => {
    const tunnel = tunnelFor(t, settings(sshd));
    const tlsPort = broker.tlsPort as number;
    const ca = certs?.caCert;
    const socket = connectTls({ socket: tunnel.connect('localhost', tlsPort), servername: 'localhost', ca });
    await publishThrough(socket, 'tls');
    assert.equal(socket.authorized, true);
    assert.equal(broker.servernames.at(-1), 'localhost');

    // A name the broker's certificate does not carry is refused over the tunnel as it would be without one.
    const wrong = connectTls({ socket: tunnel.connect('localhost', tlsPort), servername: 'other.test', ca });
    const [error] = (await once(wrong, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('carries MQTT over WebSocket through a stream handed out before the forward is open', async (t) => {
    const tunnel = tunnelFor(t, settings(sshd));
    const wsPort = broker.wsPort as number;
    const pending = tunnel.connect('127.0.0.1', wsPort);
    assert.equal(pending.connected, false);
    const ws = new WebSocket(`ws://broker.behind.bastion:${wsPort}/mqtt`, 'mqtt', {
      createConnection: (() => pending) as unknown as ClientOptions['createConnection'],
    });
    await publishThrough(createWebSocketStream(ws), 'websocket');
    assert.equal(pending.connected, true);
  });

  it('shares one SSH connection between parallel forwards, opening it once for concurrent first calls', async (t) => {
    const from = sshd.log().length;
    const tunnel = tunnelFor(t, settings(sshd));
    const streams = await Promise.all([1, 2, 3].map(() => tunnel.forward('127.0.0.1', broker.port)));
    const clients = await Promise.all(streams.map((stream, i) => mqttOver(stream, `parallel-${i}`)));
    await Promise.all(clients.map(({ client }, i) => client.publishAsync(`tunnel/parallel-${i}`, 'x', { qos: 1 })));
    await Promise.all(clients.map(({ client }) => client.endAsync()));
    await sshd.waitForLog(forwardTo(broker.port), 3, from);
    const log = sshd.log().slice(from);
    assert.equal(countMatches(log, CONNECTION), 1, log);
    assert.equal(countMatches(log, LOGIN), 1, log);
  });

  it('opens a new SSH connection at the next forward after the connection was lost', async (t) => {
    const proxy = await startProxy(sshd.port);
    t.after(() => proxy.close());
    const from = sshd.log().length;
    const tunnel = tunnelFor(t, settings(sshd, { port: proxy.port }));
    const first = await tunnel.forward('127.0.0.1', broker.port);
    const { client } = await mqttOver(first, 'before-loss');
    t.after(() => client.endAsync(true));
    const firstClosed = once(first, 'close');

    // Cut with a TCP reset, and forward at once, before the tunnel has seen the reset.
    (await proxy.whenConnections(1)).cut();
    const second = await tunnel.forward('127.0.0.1', broker.port);
    await firstClosed;
    await publishThrough(second, 'after-loss');
    assert.equal(proxy.connections.length, 2);
    assert.equal(countMatches(sshd.log().slice(from), LOGIN), 2);
  });

  it("names the bastion's host key as ssh-keygen -lf does, and connects with that fingerprint pinned", async (t) => {
    const expected = sshKeygenFingerprint(sshd.hostKeyPath);
    const tunnel = tunnelFor(t, settings(sshd));
    assert.equal(tunnel.hostKey(), undefined);
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'host-key');
    assert.deepEqual(tunnel.hostKey(), { type: 'ssh-ed25519', fingerprint: expected });

    const pinned = tunnelFor(t, settings(sshd, { pinnedFingerprint: expected }));
    await publishThrough(await pinned.forward('127.0.0.1', broker.port), 'pinned');
  });

  it('refuses a host key other than the pinned one, naming the key it saw, before logging in', async (t) => {
    const from = sshd.log().length;
    const otherKey = sshKeygenFingerprint(sshd.strangerKey.publicKeyPath);
    const tunnel = tunnelFor(t, settings(sshd, { pinnedFingerprint: otherKey }));
    const err = await rejection(tunnel.forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshHostKeyMismatchError);
    assert.equal(err.failureType, 'config_error');
    const seen = sshKeygenFingerprint(sshd.hostKeyPath);
    assert.match(err.message, new RegExp(`${seen.replace(/[+/]/g, '\\$&')} \\(ssh-ed25519\\), not the pinned`));
    assert.deepEqual(tunnel.hostKey(), { type: 'ssh-ed25519', fingerprint: seen });
    assert.equal(countMatches(sshd.log().slice(from), LOGIN), 0);
  });

  it('refuses, after a reconnect, a host key other than the one accepted first', async (t) => {
    // A relay whose target can change: the same address leads to another bastion after the first connection.
    let target = sshd.port;
    const sockets = new Set<Socket>();
    const relay = createServer((socket) => {
      const upstream = createConnection({ host: '127.0.0.1', port: target });
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined).on('close', () => sockets.delete(s));
      }
      socket.pipe(upstream).pipe(socket);
    });
    const port = await listen(relay);
    t.after(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    const tunnel = tunnelFor(t, settings(sshd, { port }));
    const first = await tunnel.forward('127.0.0.1', broker.port);
    const firstKey = tunnel.hostKey();
    // A channel, as a socket, tells its end once what came before has been read.
    const closed = once(first.resume(), 'close');
    target = closedSshd.port;
    for (const socket of sockets) socket.destroy();
    await closed;
    const err = await rejection(tunnel.forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshHostKeyMismatchError);
    assert.equal(err.expected, firstKey?.fingerprint);
    assert.equal(err.seen.fingerprint, sshKeygenFingerprint(closedSshd.hostKeyPath));
  });

  it('logs in with RSA keys in PEM forms, an encrypted key and its passphrase, and a key pasted with literal \\n', async (t) => {
    const pkcs8 = createPrivateKey(sshd.rsaPemKey.privateKey).export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: sshd.passphrase,
    });
    const keys = [
      { privateKey: sshd.rsaPemKey.privateKey },
      { privateKey: pkcs8.toString(), passphrase: sshd.passphrase },
      { privateKey: sshd.encryptedKey.privateKey, passphrase: sshd.passphrase },
      { privateKey: sshd.clientKey.privateKey.replace(/\n/g, '\\n') },
    ];
    for (const [i, key] of keys.entries()) {
      const tunnel = tunnelFor(t, settings(sshd, { auth: { kind: 'key', ...key } }));
      await publishThrough(await tunnel.forward('127.0.0.1', broker.port), `key-${i}`);
    }
  });

  it('reports a key the bastion does not know as an authentication error naming the user, not the key', async (t) => {
    const tunnel = tunnelFor(t, settings(sshd, { auth: { kind: 'key', privateKey: sshd.strangerKey.privateKey } }));
    const err = await rejection(tunnel.forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshAuthenticationError);
    assert.equal(err.failureType, 'config_error');
    assert.match(err.message, new RegExp(`refused user "${sshd.user}" with the SSH key`));
    assertNoSecret(err, keySecrets(sshd.strangerKey));
  });

  it('reports an encrypted key without its passphrase, or with a wrong one, as a key error', () => {
    for (const passphrase of [undefined, 'wrong horse']) {
      const auth = { kind: 'key', privateKey: sshd.encryptedKey.privateKey, passphrase } as const;
      assert.throws(
        () => new SshTunnel(settings(sshd, { auth })),
        (err: unknown) => {
          assert.ok(err instanceof SshKeyError);
          assert.equal(err.failureType, 'config_error');
          assertNoSecret(err, [...keySecrets(sshd.encryptedKey), sshd.passphrase]);
          return true;
        },
      );
    }
  });

  it('reports a closed bastion port as transient, naming the bastion', async (t) => {
    const port = await freePort();
    const err = await rejection(tunnelFor(t, settings(sshd, { port })).forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshUnreachableError);
    assert.equal(err.failureType, 'transient_error');
    assert.match(
      err.message,
      new RegExp(`bastion host at 127\\.0\\.0\\.1:${port} cannot be reached \\(ECONNREFUSED\\)`),
    );
  });

  it('reports a bastion that never answers as transient once the connect timeout has passed', async (t) => {
    // Reads (and drops) what the client says, so that it sees the client go and the server can close.
    const silent = createServer((socket) => socket.on('error', () => undefined).resume());
    const port = await listen(silent);
    t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const tunnel = tunnelFor(t, settings(sshd, { port, connectTimeoutMs: 300 }));
    const err = await rejection(tunnel.forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshUnreachableError);
    assert.equal(err.failureType, 'transient_error');
    assert.match(err.message, /did not complete the SSH login within 0\.3 s/);
  });

  it('says the bastion was reached but the broker was not, for a closed broker port', async (t) => {
    const from = sshd.log().length;
    const port = await freePort();
    const tunnel = tunnelFor(t, settings(sshd));
    const err = await rejection(tunnel.forward('127.0.0.1', port));
    assert.ok(err instanceof SshBrokerUnreachableError);
    assert.equal(err.failureType, 'transient_error');
    assert.match(err.message, new RegExp(`was reached, but the broker at 127\\.0\\.0\\.1:${port} was not reachable`));
    await sshd.waitForLog(forwardTo(port), 1, from);
    // The connection itself stays up for the next forward.
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'after-refused-forward');
    assert.equal(countMatches(sshd.log().slice(from), LOGIN), 1);
  });

  it('says the bastion was reached but refused to forward, when sshd has AllowTcpForwarding no', async (t) => {
    const tunnel = tunnelFor(t, settings(closedSshd));
    const err = await rejection(tunnel.forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshForwardRefusedError);
    assert.equal(err.failureType, 'config_error');
    assert.match(err.message, new RegExp(`was reached and accepted user "${closedSshd.user}", but refused to forward`));
    assert.match(err.message, new RegExp(`broker at 127\\.0\\.0\\.1:${broker.port}`));
  });

  it('works from a bundle built as the connector is: ssh2 in a file of its own, its native parts left out', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ssh-tunnel-bundle-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const options = (await import(
      pathToFileURL(join(PROJECT_ROOT, 'scripts/bundle-options.mjs')).href
    )) as BundleOptions;
    const outfile = join(dir, 'ssh-tunnel.cjs');
    const entry = join(PROJECT_ROOT, 'dist/src/reach/ssh-tunnel.js');
    const result = await build({ ...options.connectorOptions, entryPoints: [entry], outfile, logLevel: 'error' });
    options.checkExternals(result.metafile);
    await options.bundleSeparatePackages(build, dir);
    assert.match(readFileSync(outfile, 'utf8'), /require\("\.\/ssh2\.cjs"\)/);
    const ssh2Bundle = readFileSync(join(dir, 'ssh2.cjs'), 'utf8');
    assert.doesNotMatch(ssh2Bundle, /require\("[^"]*\.node"\)|require\("cpu-features"\)/);
    assert.match(ssh2Bundle, /cpu-features is not in the bundle/);
    assert.match(ssh2Bundle, /sshcrypto\.node is not in the bundle/);

    // Loaded from a directory without node_modules, so nothing can come from anywhere but the two files.
    const bundled = createRequire(import.meta.url)(outfile) as typeof TunnelModule;
    const tunnel = new bundled.SshTunnel(settings(sshd));
    t.after(() => tunnel.close());
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'bundled');
    assert.equal(tunnel.hostKey()?.fingerprint, sshKeygenFingerprint(sshd.hostKeyPath));
  });

  it('leaves no socket or timer behind once closed, and cannot be used after that', async () => {
    const resources = (): string[] =>
      process
        .getActiveResourcesInfo()
        .filter((r) => r === 'TCPSocketWrap' || r === 'Timeout')
        .sort();
    const baseline = resources();
    const tunnel = new SshTunnel(settings(sshd));
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'close');
    assert.notDeepEqual(resources(), baseline);
    await tunnel.close();
    assert.deepEqual(resources(), baseline);
    const err = await rejection(tunnel.forward('127.0.0.1', broker.port));
    assert.match(err.message, /SSH tunnel through the bastion host at 127\.0\.0\.1:\d+ was closed/);
  });

  it('abandons a login under way when closed, rather than waiting for the connect timeout', async (t) => {
    const silent = createServer((socket) => socket.on('error', () => undefined).resume());
    const port = await listen(silent);
    t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const tunnel = new SshTunnel(settings(sshd, { port, connectTimeoutMs: 60_000 }));
    const forwarding = rejection(tunnel.forward('127.0.0.1', broker.port));
    await new Promise<void>((resolve) => silent.once('connection', () => resolve()));
    const started = Date.now();
    await tunnel.close();
    const err = await forwarding;
    assert.ok(Date.now() - started < 10_000, 'closed long before the 60 s connect timeout');
    assert.ok(err instanceof SshUnreachableError);
    assert.match(err.message, /was closed/);
  });
});

describe('SSH tunnel through an ssh2 server (SSH_PASSWORD_AUTH)', () => {
  const user = 'bastion-user';
  const password = 'pa55-w0rd-not-for-messages';
  let server: PasswordServer;
  let keyboardOnly: PasswordServer;
  before(async () => {
    server = await startPasswordServer({ user, password });
    keyboardOnly = await startPasswordServer({ user, password, methods: ['keyboard-interactive'] });
  });
  after(async () => {
    await server?.close();
    await keyboardOnly?.close();
  });
  const settings = (port: number, secret = password): SshTunnelSettings => ({
    host: '127.0.0.1',
    port,
    user,
    auth: { kind: 'password', password: secret },
    connectTimeoutMs: 10_000,
  });

  it('logs in with the password and carries MQTT through the forward', async (t) => {
    const tunnel = tunnelFor(t, settings(server.port));
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'password');
    assert.deepEqual(server.forwards, [`127.0.0.1:${broker.port}`]);
    assert.equal(server.logins, 1);
    assert.equal(tunnel.hostKey()?.type, 'ssh-ed25519');
  });

  it('answers a keyboard-interactive prompt with the password, as PAM bastions ask for it', async (t) => {
    const tunnel = tunnelFor(t, settings(keyboardOnly.port));
    await publishThrough(await tunnel.forward('127.0.0.1', broker.port), 'keyboard-interactive');
    assert.equal(keyboardOnly.logins, 1);
  });

  it('reports a wrong password as an authentication error naming the user, not the password', async (t) => {
    const refusals = server.refusals;
    const wrong = 'not-the-password-either';
    const err = await rejection(tunnelFor(t, settings(server.port, wrong)).forward('127.0.0.1', broker.port));
    assert.ok(err instanceof SshAuthenticationError);
    assert.equal(err.failureType, 'config_error');
    assert.match(err.message, new RegExp(`refused user "${user}" with the password \\(tunnel_user_password\\)`));
    assertNoSecret(err, [wrong, password]);
    assert.ok(server.refusals > refusals);
  });
});
