/**
 * Reaching a broker through real proxies: microsocks (SOCKS5: socks5:// and socks5h://, with and without a user name
 * and password) and tinyproxy (HTTP CONNECT, with and without Basic authentication), to an aedes broker in this
 * process. Over the socket `openThroughProxy` hands back runs a real MQTT CONNECT/CONNACK and QoS 1 PUBLISH/PUBACK:
 * directly, inside TLS verified against the broker's name, and inside WebSocket; the proxies' logs show the forward to
 * the broker's port. Then each way it fails that a user meets, as its own error class with a message that names the
 * proxy and the broker, never the password.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, type Server, type Socket, createConnection, createServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls } from 'node:tls';
import mqtt from 'mqtt';
import WebSocket, { createWebSocketStream } from 'ws';
import { ConfigError, type ConnectorError, TransientError } from '../../src/errors.js';
import {
  BrokerUnreachableThroughProxyError,
  type ProxyAddress,
  ProxyAuthenticationError,
  ProxyProtocolError,
  ProxyRefusedError,
  ProxyTimeoutError,
  ProxyUnreachableError,
  openThroughProxy,
  parseProxyUrl,
} from '../../src/reach/proxy.js';
import { type EmbeddedBroker, withAedes } from '../support/aedes.js';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { freePort } from '../support/mosquitto.js';
import { proxySkipReason, withMicrosocks, withTinyproxy } from '../support/proxies.js';

const USER = 'airbyte';
const PASSWORD = 'pr0xy-Pa55word';
const TIMEOUT_MS = 5_000;

function proxyAt(url: string): ProxyAddress {
  const proxy = parseProxyUrl(url);
  if (typeof proxy === 'string') throw new Error(`bad test URL: ${proxy}`);
  return proxy;
}

/** A real MQTT 3.1.1 session over `stream`: CONNECT/CONNACK, then a QoS 1 PUBLISH the broker acknowledges and got. */
async function publishOver(stream: Duplex, broker: EmbeddedBroker, topic: string): Promise<void> {
  const client = new mqtt.MqttClient(() => stream, {
    clientId: `through-${topic.replace(/\W/g, '-')}`,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: TIMEOUT_MS,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no CONNACK in time')), TIMEOUT_MS);
      client.once('connect', () => resolve(clearTimeout(timer)));
      client.once('error', (error) => reject(error));
    });
    const payload = `through the proxy to ${topic}`;
    const acknowledged = await client.publishAsync(topic, payload, { qos: 1 });
    assert.equal(acknowledged?.messageId !== undefined, true, 'the PUBLISH carried a packet id and was acknowledged');
    const got = broker.received.find((packet) => packet.topic === topic);
    assert.equal(got?.payload.toString(), payload);
    assert.equal(got?.qos, 1);
  } finally {
    await client.endAsync();
  }
}

async function tlsOver(socket: Socket, certs: TestCertificates): Promise<Duplex> {
  const secure = connectTls({ socket, servername: 'localhost', ca: certs.caCert });
  await once(secure, 'secureConnect', { signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(secure.authorized, true, 'the broker certificate is verified for localhost');
  return secure;
}

/** Awaits `opening` to fail with `type`; checks that the message names both ends and that no text has the password. */
async function failure(
  opening: Promise<Socket>,
  type: abstract new (...args: never[]) => ConnectorError,
  ends: { proxy: string; broker: string },
): Promise<ConnectorError> {
  const error = await opening.then(
    () => assert.fail(`expected ${type.name}, but the connection opened`),
    (err: unknown) => err,
  );
  assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
  assert.ok(error.message.includes(ends.proxy), `names the proxy ${ends.proxy}: ${error.message}`);
  assert.ok(error.message.includes(ends.broker), `names the broker ${ends.broker}: ${error.message}`);
  const texts = JSON.stringify([error.message, error.internalMessage, error.stack]);
  assert.ok(!texts.includes(PASSWORD), `the password stays out of ${texts}`);
  return error;
}

/** A server on a loopback port; `onSocket` decides how it answers. Resolves with the port and what it accepted. */
async function tinyServer(
  onSocket: (socket: Socket) => void,
): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    // Read (and drop) what the client sends, so that the server sees the client close its end.
    socket.resume();
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

/** Resolves once the server's end of a connection has closed: the client gave it up. */
async function closing(socket: Socket): Promise<void> {
  if (!socket.closed) await once(socket, 'close', { signal: AbortSignal.timeout(TIMEOUT_MS) });
}

/**
 * microsocks connects to the first address a name resolves to. Where "localhost" resolves to ::1 first, the broker
 * (listening on 127.0.0.1) must answer there too: this forwards ::1 to 127.0.0.1 on the same port, where ::1 exists.
 */
async function mirrorOnIpv6Loopback(port: number): Promise<Server | undefined> {
  const server = createServer((socket) => {
    const upstream = createConnection({ host: '127.0.0.1', port });
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  const bound = await new Promise<boolean>((resolve) => {
    server.once('listening', () => resolve(true));
    server.once('error', () => resolve(false));
    server.listen(port, '::1');
  });
  return bound ? server : undefined;
}

/** Certificates made when the broker starts (only for tests that run), for the tests to trust. */
function certificateHolder(): { make(): TestCertificates; readonly certs: TestCertificates } {
  let made: TestCertificates | undefined;
  return {
    make: () => (made = generateCertificates()),
    get certs() {
      if (!made) throw new Error('no certificates before the broker started');
      return made;
    },
  };
}

describe('through microsocks (SOCKS5)', { skip: proxySkipReason('microsocks') ?? opensslSkipReason() }, () => {
  const tls = certificateHolder();
  const broker = withAedes(() => {
    const certs = tls.make();
    return [{}, undefined, { cert: certs.serverCert, key: certs.serverKey }];
  });
  const open = withMicrosocks();
  const authenticating = withMicrosocks({ auth: { username: USER, password: PASSWORD } });
  const mirrors: Server[] = [];
  before(async () => {
    for (const port of [broker.port, broker.tlsPort ?? 0]) {
      const mirror = await mirrorOnIpv6Loopback(port);
      if (mirror) mirrors.push(mirror);
    }
  });
  after(() => Promise.all(mirrors.map((mirror) => new Promise((resolve) => mirror.close(resolve)))));

  it('socks5:// resolves the broker host here and has the proxy connect to its address', async () => {
    const socket = await openThroughProxy(
      proxyAt(`socks5://127.0.0.1:${open.port}`),
      { host: 'localhost', port: broker.port },
      { timeoutMs: TIMEOUT_MS },
    );
    await publishOver(socket, broker, 'socks5/plain');
    const log = await open.waitForLog(new RegExp(`connected to (127\\.0\\.0\\.1|::1):${broker.port}\\b`));
    assert.doesNotMatch(
      log,
      new RegExp(`connected to localhost:${broker.port}\\b`),
      'the name never reached the proxy',
    );
  });

  it('socks5h:// sends the broker host name for the proxy to resolve', async () => {
    const socket = await openThroughProxy(
      proxyAt(`socks5h://127.0.0.1:${open.port}`),
      { host: 'localhost', port: broker.port },
      { timeoutMs: TIMEOUT_MS },
    );
    await publishOver(socket, broker, 'socks5h/plain');
    await open.waitForLog(new RegExp(`connected to localhost:${broker.port}\\b`));
  });

  it('authenticates with the user name and password of the URL', async () => {
    const socket = await openThroughProxy(
      proxyAt(`socks5h://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${authenticating.port}`),
      { host: '127.0.0.1', port: broker.port },
      { timeoutMs: TIMEOUT_MS },
    );
    await publishOver(socket, broker, 'socks5/url-credentials');
    await authenticating.waitForLog(new RegExp(`connected to 127\\.0\\.0\\.1:${broker.port}\\b`));
  });

  it('authenticates with a user name and password given apart from the URL', async () => {
    const socket = await openThroughProxy(
      proxyAt(`socks5://127.0.0.1:${authenticating.port}`),
      { host: '127.0.0.1', port: broker.port },
      { timeoutMs: TIMEOUT_MS, username: USER, password: PASSWORD },
    );
    await publishOver(socket, broker, 'socks5/option-credentials');
  });

  it('carries TLS to the broker, verified against the broker name', async () => {
    const socket = await openThroughProxy(
      proxyAt(`socks5h://${USER}@127.0.0.1:${authenticating.port}`),
      { host: 'localhost', port: broker.tlsPort ?? 0 },
      { timeoutMs: TIMEOUT_MS, password: PASSWORD },
    );
    await publishOver(await tlsOver(socket, tls.certs), broker, 'socks5h/tls');
    await authenticating.waitForLog(new RegExp(`connected to localhost:${broker.tlsPort}\\b`));
  });

  it('names a wrong password as refused by the proxy, without quoting it', async () => {
    const url = `socks5://${USER}:wrong-${PASSWORD}@127.0.0.1:${authenticating.port}`;
    const error = await failure(
      openThroughProxy(proxyAt(url), { host: '127.0.0.1', port: broker.port }, { timeoutMs: TIMEOUT_MS }),
      ProxyAuthenticationError,
      { proxy: `socks5://127.0.0.1:${authenticating.port}`, broker: `127.0.0.1:${broker.port}` },
    );
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /refused the user name and password/);
  });

  it('says the proxy requires credentials when none are given', async () => {
    const error = await failure(
      openThroughProxy(
        proxyAt(`socks5://127.0.0.1:${authenticating.port}`),
        { host: '127.0.0.1', port: broker.port },
        { timeoutMs: TIMEOUT_MS },
      ),
      ProxyAuthenticationError,
      { proxy: `socks5://127.0.0.1:${authenticating.port}`, broker: `127.0.0.1:${broker.port}` },
    );
    assert.match(error.message, /requires a user name and password/);
  });

  it('tells a closed broker port behind the proxy from an unreachable proxy', async () => {
    const closed = await freePort();
    const error = await failure(
      openThroughProxy(
        proxyAt(`socks5://${USER}:${PASSWORD}@127.0.0.1:${authenticating.port}`),
        { host: '127.0.0.1', port: closed },
        { timeoutMs: TIMEOUT_MS },
      ),
      BrokerUnreachableThroughProxyError,
      { proxy: `socks5://127.0.0.1:${authenticating.port}`, broker: `127.0.0.1:${closed}` },
    );
    assert.ok(error instanceof TransientError);
    assert.match(error.message, /Reached the proxy at \S+ but not the broker at \S+ behind it/);
    assert.match(error.message, /"connection refused"/);
  });

  it('names an http:// URL that points at a SOCKS5 proxy as a protocol mismatch', async () => {
    const error = await failure(
      openThroughProxy(
        proxyAt(`http://127.0.0.1:${open.port}`),
        { host: '127.0.0.1', port: broker.port },
        { timeoutMs: TIMEOUT_MS },
      ),
      ProxyProtocolError,
      { proxy: `http://127.0.0.1:${open.port}`, broker: `127.0.0.1:${broker.port}` },
    );
    assert.match(error.message, /scheme may be wrong/);
  });
});

describe('through tinyproxy (HTTP CONNECT)', { skip: proxySkipReason('tinyproxy') ?? opensslSkipReason() }, () => {
  const tls = certificateHolder();
  const broker = withAedes(() => {
    const certs = tls.make();
    return [{}, { path: '/mqtt' }, { cert: certs.serverCert, key: certs.serverKey }];
  });
  let closedPort = 0;
  before(async () => {
    closedPort = await freePort();
  });
  const brokerPorts = (): number[] => [broker.port, broker.tlsPort ?? 0, broker.wsPort ?? 0, closedPort];
  const open = withTinyproxy(() => ({ connectPorts: brokerPorts() }));
  const authenticating = withTinyproxy(() => ({
    connectPorts: brokerPorts(),
    auth: { username: USER, password: PASSWORD },
  }));

  it('tunnels MQTT to the broker', async () => {
    const socket = await openThroughProxy(
      proxyAt(`http://127.0.0.1:${open.port}`),
      { host: '127.0.0.1', port: broker.port },
      { timeoutMs: TIMEOUT_MS },
    );
    await publishOver(socket, broker, 'http/plain');
    const log = await open.waitForLog(new RegExp(`CONNECT 127\\.0\\.0\\.1:${broker.port} HTTP/1\\.1`));
    assert.match(log, /Established connection to host "127\.0\.0\.1"/);
  });

  it('authenticates with Basic credentials given apart from the URL', async () => {
    const socket = await openThroughProxy(
      proxyAt(`http://127.0.0.1:${authenticating.port}`),
      { host: '127.0.0.1', port: broker.port },
      { timeoutMs: TIMEOUT_MS, username: USER, password: PASSWORD },
    );
    await publishOver(socket, broker, 'http/credentials');
    await authenticating.waitForLog(new RegExp(`CONNECT 127\\.0\\.0\\.1:${broker.port} HTTP/1\\.1`));
  });

  it('carries TLS to the broker, verified against the broker name', async () => {
    const socket = await openThroughProxy(
      proxyAt(`http://${USER}:${PASSWORD}@127.0.0.1:${authenticating.port}`),
      { host: 'localhost', port: broker.tlsPort ?? 0 },
      { timeoutMs: TIMEOUT_MS },
    );
    await publishOver(await tlsOver(socket, tls.certs), broker, 'http/tls');
    await authenticating.waitForLog(new RegExp(`CONNECT localhost:${broker.tlsPort} HTTP/1\\.1`));
  });

  it('carries MQTT over WebSocket to the broker', async () => {
    const socket = await openThroughProxy(
      proxyAt(`http://127.0.0.1:${open.port}`),
      { host: '127.0.0.1', port: broker.wsPort ?? 0 },
      { timeoutMs: TIMEOUT_MS },
    );
    const ws = new WebSocket(`ws://127.0.0.1:${broker.wsPort}/mqtt`, 'mqtt', { createConnection: () => socket });
    await once(ws, 'open', { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await publishOver(createWebSocketStream(ws), broker, 'http/websocket');
    assert.ok(broker.wsFrames.length > 0, 'the broker took the frames on its WebSocket listener');
  });

  it('says the proxy requires credentials when none are given (407)', async () => {
    const error = await failure(
      openThroughProxy(
        proxyAt(`http://127.0.0.1:${authenticating.port}`),
        { host: '127.0.0.1', port: broker.port },
        { timeoutMs: TIMEOUT_MS },
      ),
      ProxyAuthenticationError,
      { proxy: `http://127.0.0.1:${authenticating.port}`, broker: `127.0.0.1:${broker.port}` },
    );
    assert.match(error.message, /requires a user name and password/);
    assert.match(error.internalMessage ?? '', /HTTP 407/);
  });

  it('names a wrong password as refused by the proxy (tinyproxy answers 401), without quoting it', async () => {
    const error = await failure(
      openThroughProxy(
        proxyAt(`http://${USER}:wrong-${PASSWORD}@127.0.0.1:${authenticating.port}`),
        { host: '127.0.0.1', port: broker.port },
        { timeoutMs: TIMEOUT_MS },
      ),
      ProxyAuthenticationError,
      { proxy: `http://127.0.0.1:${authenticating.port}`, broker: `127.0.0.1:${broker.port}` },
    );
    assert.match(error.message, /refused the user name and password/);
    assert.match(error.internalMessage ?? '', /HTTP 401/);
  });

  it('names a port the proxy may not tunnel to as refused by the proxy (403)', async () => {
    const forbidden = await freePort();
    const error = await failure(
      openThroughProxy(
        proxyAt(`http://127.0.0.1:${open.port}`),
        { host: '127.0.0.1', port: forbidden },
        { timeoutMs: TIMEOUT_MS },
      ),
      ProxyRefusedError,
      { proxy: `http://127.0.0.1:${open.port}`, broker: `127.0.0.1:${forbidden}` },
    );
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /refuses to connect to the broker .* "HTTP 403/);
  });

  it('tells a closed broker port behind the proxy from an unreachable proxy', async () => {
    const error = await failure(
      openThroughProxy(
        proxyAt(`http://127.0.0.1:${open.port}`),
        { host: '127.0.0.1', port: closedPort },
        { timeoutMs: TIMEOUT_MS },
      ),
      BrokerUnreachableThroughProxyError,
      { proxy: `http://127.0.0.1:${open.port}`, broker: `127.0.0.1:${closedPort}` },
    );
    assert.match(error.message, /Reached the proxy at \S+ but not the broker at \S+ behind it/);
    assert.match(error.message, /"HTTP 50\d/);
  });

  it('names a socks5:// URL that points at an HTTP proxy as a proxy that does not answer the greeting', async () => {
    const error = await failure(
      openThroughProxy(
        proxyAt(`socks5://127.0.0.1:${open.port}`),
        { host: '127.0.0.1', port: broker.port },
        { timeoutMs: 500 },
      ),
      ProxyTimeoutError,
      { proxy: `socks5://127.0.0.1:${open.port}`, broker: `127.0.0.1:${broker.port}` },
    );
    assert.match(error.message, /probably not a SOCKS5 proxy/);
  });
});

describe('proxies that cannot be used', () => {
  const broker = { host: '127.0.0.1', port: 1883 };
  const servers: Server[] = [];
  after(() => Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))));

  it('names a closed proxy port as an unreachable proxy', async () => {
    const port = await freePort();
    for (const scheme of ['socks5', 'http']) {
      const error = await failure(
        openThroughProxy(proxyAt(`${scheme}://${USER}:${PASSWORD}@127.0.0.1:${port}`), broker, {
          timeoutMs: TIMEOUT_MS,
        }),
        ProxyUnreachableError,
        { proxy: `${scheme}://127.0.0.1:${port}`, broker: '127.0.0.1:1883' },
      );
      assert.ok(error instanceof TransientError);
      assert.match(error.message, /Could not reach the proxy .*nothing accepts connections there/);
    }
  });

  it('names a server that answers garbage as not the protocol the URL names, and closes the connection', async () => {
    const garbage = await tinyServer((socket) => socket.write('220 mail.example.com ESMTP ready\r\n'));
    servers.push(garbage.server);
    for (const scheme of ['socks5', 'socks5h', 'http']) {
      const error = await failure(
        openThroughProxy(proxyAt(`${scheme}://${USER}:${PASSWORD}@127.0.0.1:${garbage.port}`), broker, {
          timeoutMs: TIMEOUT_MS,
        }),
        ProxyProtocolError,
        { proxy: `${scheme}://127.0.0.1:${garbage.port}`, broker: '127.0.0.1:1883' },
      );
      assert.match(error.message, /scheme may be wrong/);
    }
    await Promise.all(garbage.sockets.map(closing));
  });

  it('gives up on a proxy that never answers when the time is up, and closes the connection', async () => {
    const silent = await tinyServer(() => undefined);
    servers.push(silent.server);
    for (const scheme of ['socks5', 'http']) {
      const started = Date.now();
      const error = await failure(
        openThroughProxy(proxyAt(`${scheme}://${USER}:${PASSWORD}@127.0.0.1:${silent.port}`), broker, {
          timeoutMs: 300,
        }),
        ProxyTimeoutError,
        { proxy: `${scheme}://127.0.0.1:${silent.port}`, broker: '127.0.0.1:1883' },
      );
      assert.ok(Date.now() - started >= 290, 'not before the time is up');
      assert.match(error.message, /within 0\.3 s/);
    }
    await Promise.all(silent.sockets.map(closing));
  });
});
