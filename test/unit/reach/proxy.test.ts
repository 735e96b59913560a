/**
 * The proxy client's parts on their own: proxy URLs, and the SOCKS5 and HTTP CONNECT handshakes against small
 * servers in this process that answer byte for byte as the test says (replies split into single bytes, every reply
 * code, a header block at its size limit, broker bytes in the same chunk as the proxy's reply, silence, garbage). The
 * servers record what the client sent, so the bytes on the wire are checked too.
 */
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { ConfigError, type ConnectorError, TransientError } from '../../../src/errors.js';
import { MAX_HEADER_BLOCK, headerBlockLength } from '../../../src/reach/http-connect.js';
import {
  BrokerUnreachableThroughProxyError,
  type ProxyAddress,
  ProxyAuthenticationError,
  ProxyHostNotFoundError,
  ProxyProtocolError,
  ProxyRefusedError,
  ProxyTimeoutError,
  describeProxy,
  openThroughProxy,
  parseProxyUrl,
} from '../../../src/reach/proxy.js';

const PASSWORD = 'pässwörd-42';
const ROUTE = { proxy: 'http://proxy:3128', broker: 'broker:1883', protocol: 'HTTP CONNECT' } as const;

// ---------------------------------------------------------------------------------------------------------------
// Small servers

/** Reads what a server-side socket receives: a number of bytes, or up to and including a delimiter. */
function reader(socket: Socket): {
  bytes(count: number): Promise<Buffer>;
  through(delimiter: string): Promise<Buffer>;
} {
  let buffered = Buffer.alloc(0);
  let check: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    check?.();
  });
  const until = (size: (b: Buffer) => number | undefined): Promise<Buffer> =>
    new Promise((resolve) => {
      check = () => {
        const length = size(buffered);
        if (length === undefined) return;
        check = undefined;
        resolve(buffered.subarray(0, length));
        buffered = buffered.subarray(length);
      };
      check();
    });
  return {
    bytes: (count) => until((b) => (b.length >= count ? count : undefined)),
    through: (delimiter) =>
      until((b) => {
        const at = b.indexOf(delimiter);
        return at === -1 ? undefined : at + delimiter.length;
      }),
  };
}

interface TestServer {
  readonly port: number;
  /** The server's ends of the connections it accepted. */
  readonly sockets: Socket[];
}

const servers: Server[] = [];
const accepted: Socket[] = [];
after(async () => {
  // Connections a test left open (a silent server's, once the client gave up) would keep close() waiting.
  for (const socket of accepted) socket.destroy();
  for (const server of servers) {
    server.close();
    await once(server, 'close');
  }
});

async function serve(script: (socket: Socket) => Promise<void> | void): Promise<TestServer> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    accepted.push(socket);
    socket.on('error', () => undefined);
    void script(socket);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, sockets };
}

/** Writes `bytes` one at a time, each in its own write after the previous one went out. */
async function dribble(socket: Socket, bytes: Buffer): Promise<void> {
  for (const byte of bytes) {
    await new Promise<void>((resolve) => socket.write(Buffer.from([byte]), () => resolve()));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Resolves with the first `count` bytes the socket delivers, read the way any caller would: a `data` listener. */
function firstBytes(socket: Socket, count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`only "${text}" arrived`)), 2_000);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.length < count) return;
      clearTimeout(timer);
      resolve(text.slice(0, count));
    });
  });
}

async function rejection(opening: Promise<Socket>): Promise<ConnectorError> {
  const error = await opening.then(
    (socket) => {
      socket.destroy();
      return assert.fail('the connection opened');
    },
    (err: unknown) => err,
  );
  assert.ok(error instanceof ConfigError || error instanceof TransientError, String(error));
  const texts = JSON.stringify([error.message, error.internalMessage]);
  assert.ok(!texts.includes(PASSWORD) && !texts.includes(encodeURIComponent(PASSWORD)), `no password in ${texts}`);
  return error;
}

function address(url: string): ProxyAddress {
  const parsed = parseProxyUrl(url);
  if (typeof parsed === 'string') assert.fail(parsed);
  return parsed;
}

// ---------------------------------------------------------------------------------------------------------------
// A SOCKS5 server

interface SocksScript {
  /** The method it picks; by default user name and password when offered, else none. */
  readonly method?: number;
  /** Its answer to the user name and password; 0 accepts. */
  readonly authStatus?: number;
  /** Its reply code to CONNECT. */
  readonly reply?: number;
  /** The bound address in its reply, with its type byte; by default IPv4 0.0.0.0. */
  readonly bound?: Buffer;
  /** Sent in the same write as the reply, as a broker that speaks at once. */
  readonly then?: string;
  /** Sends the reply a byte at a time. */
  readonly dribble?: boolean;
  /** Stops answering at this step. */
  readonly silentAt?: 'greeting' | 'request';
  /** Closes the connection at this step instead of answering. */
  readonly closeAt?: 'greeting' | 'request';
  /** Answers the greeting with these bytes instead. */
  readonly greetingAnswer?: Buffer;
}

interface SocksSeen {
  methods: number[];
  username?: string;
  password?: string;
  authVersion?: number;
  addressType?: number;
  host?: string;
  port?: number;
}

function hexGroups(bytes: Buffer): string {
  return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
}

async function socksServer(script: SocksScript = {}): Promise<TestServer & { seen: SocksSeen[] }> {
  const seen: SocksSeen[] = [];
  const server = await serve(async (socket) => {
    const read = reader(socket);
    const record: SocksSeen = { methods: [] };
    seen.push(record);
    const [, count = 0] = await read.bytes(2);
    record.methods = [...(await read.bytes(count))];
    if (script.silentAt === 'greeting') return;
    if (script.closeAt === 'greeting') return void socket.end();
    const method = script.method ?? (record.methods.includes(2) ? 2 : 0);
    socket.write(script.greetingAnswer ?? Buffer.from([5, method]));
    if (method === 2) {
      const [version, userLength = 0] = await read.bytes(2);
      record.authVersion = version;
      record.username = (await read.bytes(userLength)).toString('utf8');
      const [passwordLength = 0] = await read.bytes(1);
      record.password = (await read.bytes(passwordLength)).toString('utf8');
      socket.write(Buffer.from([1, script.authStatus ?? 0]));
      if ((script.authStatus ?? 0) !== 0) return void socket.end();
    }
    const [, , , type] = await read.bytes(4);
    record.addressType = type;
    if (type === 1) record.host = [...(await read.bytes(4))].join('.');
    else if (type === 4) record.host = hexGroups(await read.bytes(16));
    else record.host = (await read.bytes((await read.bytes(1))[0] ?? 0)).toString('utf8');
    record.port = (await read.bytes(2)).readUInt16BE();
    if (script.silentAt === 'request') return;
    if (script.closeAt === 'request') return void socket.end();
    const reply = Buffer.concat([
      Buffer.from([5, script.reply ?? 0, 0]),
      script.bound ?? Buffer.from([1, 0, 0, 0, 0]),
      Buffer.from([0x07, 0x5b]),
      Buffer.from(script.then ?? '', 'latin1'),
    ]);
    if (script.dribble) await dribble(socket, reply);
    else socket.write(reply);
  });
  return { ...server, seen };
}

// ---------------------------------------------------------------------------------------------------------------
// An HTTP proxy

async function httpServer(
  answer: string | Buffer,
  options: { dribble?: boolean; close?: boolean } = {},
): Promise<TestServer & { requests: string[] }> {
  const requests: string[] = [];
  const server = await serve(async (socket) => {
    requests.push((await reader(socket).through('\r\n\r\n')).toString('utf8'));
    const bytes = Buffer.isBuffer(answer) ? answer : Buffer.from(answer, 'latin1');
    if (options.dribble) await dribble(socket, bytes);
    else socket.write(bytes);
    if (options.close) socket.end();
  });
  return { ...server, requests };
}

const BROKER = { host: 'broker.example', port: 1883 };

// ---------------------------------------------------------------------------------------------------------------

describe('parseProxyUrl', () => {
  it('reads scheme, host, port and credentials, with SOCKS5 port 1080 when none is given', () => {
    const cases: [string, ProxyAddress][] = [
      ['socks5://proxy.example.com', { scheme: 'socks5', host: 'proxy.example.com', port: 1080 }],
      ['SOCKS5H://10.0.0.1:1081/', { scheme: 'socks5h', host: '10.0.0.1', port: 1081 }],
      ['http://proxy:3128', { scheme: 'http', host: 'proxy', port: 3128 }],
      // The WHATWG URL parser drops a port that is the scheme's default; this one must stay.
      ['http://proxy:80', { scheme: 'http', host: 'proxy', port: 80 }],
      ['socks5://[2001:db8::1]:1080', { scheme: 'socks5', host: '2001:db8::1', port: 1080 }],
      ['socks5://alice@proxy', { scheme: 'socks5', host: 'proxy', port: 1080, username: 'alice' }],
      [
        `http://al%40ice:${encodeURIComponent(PASSWORD)}%3A@proxy:8080`,
        { scheme: 'http', host: 'proxy', port: 8080, username: 'al@ice', password: `${PASSWORD}:` },
      ],
    ];
    for (const [url, expected] of cases) assert.deepEqual(parseProxyUrl(url), expected, url);
  });

  it('says what is wrong with a URL, never quoting its password', () => {
    const cases: [string, RegExp][] = [
      ['proxy:3128', /^it must start with socks5:\/\/, socks5h:\/\/, http:\/\/$/],
      ['socks4://proxy:1080', /must start with/],
      ['https://proxy:443', /https:\/\/ \(TLS to the proxy\) is not supported/],
      ['http://proxy', /names no port.*3128/],
      ['socks5://', /names no valid host/],
      [`socks5://u:${PASSWORD}@`, /names no valid host/],
      ['socks5://pro xy:1080', /names no valid host/],
      ['socks5://[not-ipv6]:1080', /in brackets is not an IPv6 address/],
      ['socks5://proxy:0', /port must be a number from 1 to 65535/],
      ['socks5://proxy:65536', /port must be a number from 1 to 65535/],
      ['socks5://proxy:12ab', /port must be a number from 1 to 65535/],
      ['socks5://proxy:1080/path', /must not have a path, query/],
      ['socks5://proxy:1080?x=1', /must not have a path, query/],
      [`socks5://:${PASSWORD}@proxy`, /has a password but no user name/],
      [`socks5://u:${PASSWORD}%zz@proxy`, /not correctly percent-encoded/],
    ];
    for (const [url, problem] of cases) {
      const parsed = parseProxyUrl(url);
      assert.equal(typeof parsed, 'string', url);
      assert.match(parsed as string, problem, url);
      assert.ok(!(parsed as string).includes(PASSWORD), url);
    }
  });

  it('describes a proxy without its credentials, an IPv6 host in brackets', () => {
    assert.equal(
      describeProxy({ scheme: 'socks5h', host: '::1', port: 1080, username: 'alice', password: PASSWORD }),
      'socks5h://[::1]:1080',
    );
    assert.equal(describeProxy(address(`http://alice:${PASSWORD}@proxy:3128`)), 'http://proxy:3128');
  });
});

describe('SOCKS5', () => {
  it('offers no authentication without credentials, and both methods with them, sending RFC 1929 bytes', async () => {
    const proxy = await socksServer();
    (await openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 })).destroy();
    (
      await openThroughProxy(
        address(`socks5h://alice:${encodeURIComponent(PASSWORD)}@127.0.0.1:${proxy.port}`),
        BROKER,
        {
          timeoutMs: 2_000,
        },
      )
    ).destroy();
    assert.deepEqual(proxy.seen[0]?.methods, [0]);
    assert.deepEqual(proxy.seen[1]?.methods, [0, 2]);
    assert.equal(proxy.seen[1]?.authVersion, 1);
    assert.equal(proxy.seen[1]?.username, 'alice');
    assert.equal(proxy.seen[1]?.password, PASSWORD, 'a password of multi-byte characters, with its length in bytes');
  });

  it("sends the options' user name and password in place of the URL's, each on its own", async () => {
    const proxy = await socksServer();
    const open = async (url: string, options: { username?: string; password?: string }): Promise<void> => {
      (await openThroughProxy(address(url), BROKER, { timeoutMs: 2_000, ...options })).destroy();
    };
    await open(`socks5h://url-user:url-pass@127.0.0.1:${proxy.port}`, { username: 'option-user', password: PASSWORD });
    // A URL that names the user and leaves the password to a secret field; an empty user name counts as not given.
    await open(`socks5h://url-user@127.0.0.1:${proxy.port}`, { username: '', password: PASSWORD });
    assert.deepEqual(
      proxy.seen.map((seen) => [seen.username, seen.password]),
      [
        ['option-user', PASSWORD],
        ['url-user', PASSWORD],
      ],
    );
  });

  it('socks5:// resolves a host name here and sends the address; socks5h:// sends the name', async () => {
    const proxy = await socksServer();
    const local = await lookup('localhost');
    const target = { host: 'localhost', port: 0xabcd };
    (await openThroughProxy(address(`socks5://127.0.0.1:${proxy.port}`), target, { timeoutMs: 2_000 })).destroy();
    (await openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), target, { timeoutMs: 2_000 })).destroy();
    assert.equal(proxy.seen[0]?.addressType, local.family === 4 ? 1 : 4, 'an address, not the name');
    if (local.family === 4) assert.equal(proxy.seen[0]?.host, local.address);
    assert.deepEqual({ type: proxy.seen[1]?.addressType, host: proxy.seen[1]?.host }, { type: 3, host: 'localhost' });
    assert.equal(proxy.seen[0]?.port, 0xabcd, 'the port in network byte order');
  });

  it('names a broker host that socks5:// cannot resolve here as a configuration error suggesting socks5h://', async () => {
    const proxy = await socksServer();
    const error = await rejection(
      openThroughProxy(
        address(`socks5://127.0.0.1:${proxy.port}`),
        { host: 'broker.invalid', port: 1883 },
        {
          timeoutMs: 5_000,
        },
      ),
    );
    assert.ok(error instanceof ProxyHostNotFoundError, error.name);
    assert.match(error.message, /The broker host "broker\.invalid" could not be resolved here .*use socks5h:\/\//);
    assert.equal(proxy.seen[0]?.addressType, undefined, 'no CONNECT was sent');
  });

  it('sends an IP address as an address for both schemes, IPv6 in every text form as its 16 bytes', async () => {
    const proxy = await socksServer();
    const cases: [string, number, string][] = [
      ['192.0.2.7', 1, '192.0.2.7'],
      ['2001:db8::1', 4, '2001:db8:0:0:0:0:0:1'],
      ['::ffff:192.0.2.1', 4, '0:0:0:0:0:ffff:c000:201'],
      ['fe80::1:2', 4, 'fe80:0:0:0:0:0:1:2'],
      ['1:2:3:4:5:6:7:8', 4, '1:2:3:4:5:6:7:8'],
      ['::', 4, '0:0:0:0:0:0:0:0'],
    ];
    for (const [host, type, wire] of cases) {
      const socket = await openThroughProxy(
        address(`socks5h://127.0.0.1:${proxy.port}`),
        { host, port: 1883 },
        {
          timeoutMs: 2_000,
        },
      );
      socket.destroy();
      const seen = proxy.seen.at(-1);
      assert.deepEqual({ type: seen?.addressType, host: seen?.host }, { type, host: wire }, host);
    }
  });

  it('keeps the bytes that came in the same chunk as the reply, and hands over a socket that reads as a fresh one', async () => {
    const proxy = await socksServer({ then: 'CONNACK-ish' });
    const socket = await openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 });
    assert.equal(await firstBytes(socket, 11), 'CONNACK-ish');
    socket.destroy();
  });

  it('reads a reply that comes a byte at a time, whatever the type of the bound address', async () => {
    const bounds = [
      Buffer.from([1, 10, 0, 0, 1]),
      Buffer.concat([Buffer.from([4]), Buffer.alloc(16, 0xfe)]),
      Buffer.concat([Buffer.from([3, 11]), Buffer.from('proxy.local')]),
    ];
    for (const bound of bounds) {
      const proxy = await socksServer({ bound, dribble: true, then: '!' });
      const socket = await openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 });
      assert.equal(await firstBytes(socket, 1), '!', `the reply ended where its ${bound[0]}-typed address did`);
      socket.destroy();
    }
  });

  it('maps every reply code to the error for the end at fault', async () => {
    const cases: [number, abstract new (...args: never[]) => ConnectorError, string][] = [
      [0x01, BrokerUnreachableThroughProxyError, 'general SOCKS server failure'],
      [0x02, ProxyRefusedError, 'connection not allowed by ruleset'],
      [0x03, BrokerUnreachableThroughProxyError, 'network unreachable'],
      [0x04, BrokerUnreachableThroughProxyError, 'host unreachable'],
      [0x05, BrokerUnreachableThroughProxyError, 'connection refused'],
      [0x06, BrokerUnreachableThroughProxyError, 'TTL expired'],
      [0x07, ProxyRefusedError, 'command not supported'],
      [0x08, ProxyRefusedError, 'address type not supported'],
      [0x09, BrokerUnreachableThroughProxyError, 'unassigned reply code 0x09'],
    ];
    for (const [code, type, words] of cases) {
      const proxy = await socksServer({ reply: code });
      const error = await rejection(
        openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 }),
      );
      assert.ok(error instanceof type, `0x0${code}: ${error.name}`);
      assert.ok(error.message.includes(`"${words}"`), `0x0${code}: ${error.message}`);
      assert.ok(error.message.includes(`socks5h://127.0.0.1:${proxy.port}`), error.message);
      assert.ok(error.message.includes('broker.example:1883'), error.message);
      if (type === BrokerUnreachableThroughProxyError) {
        assert.ok(error instanceof TransientError);
        assert.match(error.message, /^Reached the proxy at \S+ but not the broker at \S+ behind it/);
      } else assert.ok(error instanceof ConfigError);
    }
  });

  it('suggests socks5:// when a proxy does not take host names', async () => {
    const proxy = await socksServer({ reply: 0x08 });
    const error = await rejection(
      openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 }),
    );
    assert.match(error.message, /use socks5:\/\/ so that the broker host is resolved here/);
  });

  it('tells a proxy that wants credentials from one that refuses them or takes neither method', async () => {
    const url = (port: number, withCredentials: boolean): ProxyAddress =>
      address(`socks5h://${withCredentials ? `alice:${encodeURIComponent(PASSWORD)}@` : ''}127.0.0.1:${port}`);
    const wants = await socksServer({ method: 0xff });
    const needs = await rejection(openThroughProxy(url(wants.port, false), BROKER, { timeoutMs: 2_000 }));
    assert.ok(needs instanceof ProxyAuthenticationError);
    assert.match(needs.message, /requires a user name and password/);
    const neither = await rejection(openThroughProxy(url(wants.port, true), BROKER, { timeoutMs: 2_000 }));
    assert.ok(neither instanceof ProxyAuthenticationError);
    assert.match(neither.message, /accepts neither no authentication nor a user name and password/);
    const refuses = await socksServer({ authStatus: 1 });
    const refused = await rejection(openThroughProxy(url(refuses.port, true), BROKER, { timeoutMs: 2_000 }));
    assert.ok(refused instanceof ProxyAuthenticationError);
    assert.match(refused.message, /refused the user name and password/);
  });

  it('names answers that are not SOCKS5 as a protocol mismatch', async () => {
    const scripts: SocksScript[] = [
      { greetingAnswer: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n') },
      { greetingAnswer: Buffer.from([5, 0x01]) },
      { bound: Buffer.from([9, 0, 0, 0, 0]) },
      { closeAt: 'greeting' },
    ];
    for (const script of scripts) {
      const proxy = await socksServer(script);
      const error = await rejection(
        openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 }),
      );
      assert.ok(error instanceof ProxyProtocolError, `${JSON.stringify(script)}: ${error.name}`);
      assert.match(error.message, /did not answer as a SOCKS5 proxy .*scheme may be wrong/);
    }
  });

  it('tells silence at the greeting from silence about the broker, and closes the connection', async () => {
    const greeting = await socksServer({ silentAt: 'greeting' });
    const notSocks = await rejection(
      openThroughProxy(address(`socks5h://127.0.0.1:${greeting.port}`), BROKER, { timeoutMs: 200 }),
    );
    assert.ok(notSocks instanceof ProxyTimeoutError);
    assert.match(notSocks.message, /within 0\.2 s: it did not answer the SOCKS5 greeting/);
    const request = await socksServer({ silentAt: 'request' });
    const stillTrying = await rejection(
      openThroughProxy(address(`socks5h://127.0.0.1:${request.port}`), BROKER, { timeoutMs: 200 }),
    );
    assert.ok(stillTrying instanceof ProxyTimeoutError);
    assert.match(stillTrying.message, /did not report whether it reached the broker/);
    for (const socket of [...greeting.sockets, ...request.sockets]) {
      if (!socket.closed) await once(socket, 'close', { signal: AbortSignal.timeout(2_000) });
    }
  });

  it('names a proxy that closes the connection instead of answering CONNECT as not reaching the broker', async () => {
    const proxy = await socksServer({ closeAt: 'request' });
    const error = await rejection(
      openThroughProxy(address(`socks5h://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 }),
    );
    assert.ok(error instanceof BrokerUnreachableThroughProxyError);
    assert.match(error.message, /closed the connection without reporting whether it reached the broker/);
  });
});

describe('HTTP CONNECT', () => {
  const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\nProxy-agent: test\r\n\r\n';

  it('asks for a tunnel to host:port, with Basic credentials when there are some', async () => {
    const proxy = await httpServer(ESTABLISHED);
    const url = `http://127.0.0.1:${proxy.port}`;
    (await openThroughProxy(address(url), BROKER, { timeoutMs: 2_000 })).destroy();
    (
      await openThroughProxy(
        address(url),
        { host: '2001:db8::1', port: 8883 },
        {
          timeoutMs: 2_000,
          username: 'alice',
          password: PASSWORD,
        },
      )
    ).destroy();
    assert.equal(proxy.requests[0], 'CONNECT broker.example:1883 HTTP/1.1\r\nHost: broker.example:1883\r\n\r\n');
    const basic = Buffer.from(`alice:${PASSWORD}`, 'utf8').toString('base64');
    assert.equal(
      proxy.requests[1],
      `CONNECT [2001:db8::1]:8883 HTTP/1.1\r\nHost: [2001:db8::1]:8883\r\nProxy-Authorization: Basic ${basic}\r\n\r\n`,
    );
  });

  it('keeps the bytes after the header block, and hands over a socket that reads as a fresh one', async () => {
    const proxy = await httpServer(`${ESTABLISHED}broker first`);
    const socket = await openThroughProxy(address(`http://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 });
    assert.equal(await firstBytes(socket, 12), 'broker first');
    socket.destroy();
  });

  it('reads an answer that comes a byte at a time', async () => {
    const proxy = await httpServer(`HTTP/1.0 200 OK\r\n\r\n#`, { dribble: true });
    const socket = await openThroughProxy(address(`http://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 });
    assert.equal(await firstBytes(socket, 1), '#');
    socket.destroy();
  });

  it('maps each status to the error for the end at fault', async () => {
    const cases: [string, boolean, abstract new (...args: never[]) => ConnectorError, RegExp][] = [
      ['407 Proxy Authentication Required', false, ProxyAuthenticationError, /requires a user name and password/],
      ['407 Proxy Authentication Required', true, ProxyAuthenticationError, /refused the user name and password/],
      ['401 Unauthorized', true, ProxyAuthenticationError, /refused the user name and password/],
      ['403 Forbidden', false, ProxyRefusedError, /refuses to connect to the broker .*"HTTP 403 Forbidden"/],
      ['405 Method Not Allowed', false, ProxyRefusedError, /"HTTP 405 Method Not Allowed".*allows CONNECT/],
      ['500 Unable to connect', false, BrokerUnreachableThroughProxyError, /"HTTP 500 Unable to connect"/],
      ['502 Bad Gateway', false, BrokerUnreachableThroughProxyError, /"HTTP 502 Bad Gateway"/],
      ['503 Service Unavailable', false, BrokerUnreachableThroughProxyError, /"HTTP 503 Service Unavailable"/],
      ['504 Gateway Timeout', false, BrokerUnreachableThroughProxyError, /"HTTP 504 Gateway Timeout"/],
    ];
    for (const [status, credentials, type, words] of cases) {
      const proxy = await httpServer(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\n\r\n`);
      const error = await rejection(
        openThroughProxy(address(`http://127.0.0.1:${proxy.port}`), BROKER, {
          timeoutMs: 2_000,
          ...(credentials ? { username: 'alice', password: PASSWORD } : {}),
        }),
      );
      assert.ok(error instanceof type, `${status}: ${error.name}`);
      assert.match(error.message, words, status);
      assert.ok(
        error.message.includes(`http://127.0.0.1:${proxy.port}`) && error.message.includes('broker.example:1883'),
      );
    }
  });

  it('names an authentication scheme other than Basic that the proxy asks for', async () => {
    const proxy = await httpServer(
      'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: NTLM\r\n\r\n',
    );
    const error = await rejection(
      openThroughProxy(address(`http://alice:x@127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 2_000 }),
    );
    assert.match(error.message, /It asks for Negotiate, NTLM authentication, which the connector does not support/);
  });

  it('refuses a header block over 16 KB as soon as it is over, not at the deadline', async () => {
    assert.equal(MAX_HEADER_BLOCK, 16_384);
    const block = (size: number): Buffer => {
      const start = 'HTTP/1.1 200 OK\r\nX-Pad: ';
      return Buffer.from(`${start}${'a'.repeat(size - start.length - 4)}\r\n\r\n`, 'latin1');
    };
    assert.equal(headerBlockLength(block(MAX_HEADER_BLOCK), ROUTE), MAX_HEADER_BLOCK);
    assert.throws(() => headerBlockLength(block(MAX_HEADER_BLOCK + 1), ROUTE), ProxyProtocolError);
    assert.equal(headerBlockLength(block(MAX_HEADER_BLOCK).subarray(0, MAX_HEADER_BLOCK - 1), ROUTE), undefined);

    const endless = await httpServer(`HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(20_000)}`);
    const started = Date.now();
    const error = await rejection(
      openThroughProxy(address(`http://127.0.0.1:${endless.port}`), BROKER, { timeoutMs: 10_000 }),
    );
    assert.ok(error instanceof ProxyProtocolError, error.name);
    assert.match(error.message, /header block is over 16 KB/);
    assert.ok(Date.now() - started < 5_000, 'well before the deadline');
  });

  it('names answers that are not HTTP as a protocol mismatch at once', async () => {
    for (const [answer, close] of [
      ['SSH-2.0-OpenSSH_9.2\r\n', false],
      [Buffer.from([5, 0xff]), false],
      ['HTTP/1.1 abc\r\n\r\n', false],
      ['HTTP/1.1 200 OK\r\n', true],
      ['', true],
    ] as const) {
      const proxy = await httpServer(answer, { close });
      const error = await rejection(
        openThroughProxy(address(`http://127.0.0.1:${proxy.port}`), BROKER, { timeoutMs: 10_000 }),
      );
      assert.ok(error instanceof ProxyProtocolError, `${JSON.stringify(answer)}: ${error.name}`);
      assert.match(error.message, /did not answer as an HTTP CONNECT proxy .*scheme may be wrong/);
    }
  });

  it('gives up on a proxy that never answers CONNECT at the deadline, and closes the connection', async () => {
    const silent = await serve(() => undefined);
    const error = await rejection(
      openThroughProxy(address(`http://127.0.0.1:${silent.port}`), BROKER, { timeoutMs: 200 }),
    );
    assert.ok(error instanceof ProxyTimeoutError);
    assert.match(error.message, /within 0\.2 s: it did not answer the CONNECT request/);
    for (const socket of silent.sockets) {
      socket.resume();
      if (!socket.closed) await once(socket, 'close', { signal: AbortSignal.timeout(2_000) });
    }
  });
});

describe('what a protocol cannot carry', () => {
  it('is refused before anything is sent, as a configuration error', async () => {
    const proxy = await socksServer();
    const socks = `socks5://127.0.0.1:${proxy.port}`;
    const cases: [string, { host: string; port: number }, { username?: string; password?: string }, RegExp][] = [
      [socks, BROKER, { username: 'u'.repeat(256), password: PASSWORD }, /up to 255 bytes each/],
      [socks, BROKER, { username: 'alice', password: 'ü'.repeat(128) }, /up to 255 bytes each/],
      [`socks5h://127.0.0.1:${proxy.port}`, { host: `${'a'.repeat(252)}.com`, port: 1883 }, {}, /up to 255 bytes/],
      [socks, BROKER, { password: PASSWORD }, /a proxy password is set but no proxy user name/],
      ['http://127.0.0.1:9', BROKER, { username: 'al:ice', password: PASSWORD }, /cannot contain a colon/],
      ['http://127.0.0.1:9', { host: 'broker\r\nX-Injected: 1', port: 1883 }, {}, /not a host name/],
      [socks, { host: 'broker', port: 70_000 }, {}, /port must be a number/],
    ];
    for (const [url, target, credentials, problem] of cases) {
      const error = await rejection(openThroughProxy(address(url), target, { timeoutMs: 2_000, ...credentials }));
      assert.equal(error.constructor, ConfigError, String(problem));
      assert.match(error.message, problem);
    }
    assert.equal(proxy.seen.length, 0, 'no connection was made');
  });
});
