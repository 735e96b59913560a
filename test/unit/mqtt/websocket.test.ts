/**
 * The WebSocket transport's `writev` joins the chunks of one write batch into one WebSocket frame. These tests send
 * through it to a real ws server on a loopback port and look at the frames that arrive: their number, their bytes in
 * order, and their sizes at the frame-length boundaries of the WebSocket protocol (125/126 and 65,535/65,536 bytes,
 * where the length field grows), up to 16 MiB. A write that cannot be sent must fail, never vanish.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer, createWebSocketStream, type RawData } from 'ws';
import { webSocketOptions, type WebSocketHooks } from '../../../src/mqtt/websocket.js';

type Chunk = { chunk: Buffer | string };
type Writev = (chunks: Chunk[], callback: (error?: Error | null) => void) => void;

interface Frame {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** A ws server that records every frame it receives, per connection, and can refuse handshakes on request. */
class Server {
  readonly wss: WebSocketServer;
  private received: Frame[] = [];
  private waiters: Array<() => void> = [];
  refuse = false;

  constructor() {
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      maxPayload: 64 * 1024 * 1024,
      verifyClient: (_info, done) => done(!this.refuse, 401, 'Unauthorized'),
    });
    this.wss.on('connection', (socket) => {
      socket.on('message', (data: RawData, isBinary: boolean) => {
        assert.ok(Buffer.isBuffer(data), 'frames arrive as one Buffer each');
        this.received.push({ data, isBinary });
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/mqtt`;
  }

  /** The frames received so far, emptied; waits until there are at least `count`. */
  async frames(count: number): Promise<Frame[]> {
    while (this.received.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.received.splice(0);
  }

  /** Frames that arrive within one round trip after the ones already taken: proves that nothing else was sent. */
  async noMoreFrames(socket: WebSocket): Promise<void> {
    socket.ping();
    await once(socket, 'pong');
    assert.deepEqual(
      this.received.map((f) => f.data.length),
      [],
      'no further frames',
    );
  }
}

interface Client {
  readonly socket: WebSocket;
  readonly writev: Writev;
  /** The stream MQTT.js would build over the socket, with the connector's options. */
  stream(): Duplex;
}

function client(
  url: string | undefined,
  hooks?: WebSocketHooks,
): Client & { readonly connect: (url: string) => WebSocket } {
  const options = webSocketOptions({}, hooks);
  const create = options.createWebsocket;
  assert.ok(create, 'the transport creates its own WebSocket');
  const wsOptions = options.wsOptions as unknown as { writev: Writev };
  let socket: WebSocket | undefined;
  const connect = (to: string): WebSocket => {
    socket = create(to, ['mqtt'], {}) as WebSocket;
    return socket;
  };
  if (url) connect(url);
  return {
    get socket(): WebSocket {
      assert.ok(socket);
      return socket;
    },
    writev: (chunks, callback) => wsOptions.writev(chunks, callback),
    stream: () => {
      assert.ok(socket);
      return createWebSocketStream(socket, wsOptions);
    },
    connect,
  };
}

function writev(c: Client, chunks: ReadonlyArray<Buffer | string>): Promise<Error | null | undefined> {
  return new Promise((resolve) =>
    c.writev(
      chunks.map((chunk) => ({ chunk })),
      resolve,
    ),
  );
}

const toBuffer = (chunk: Buffer | string): Buffer => (typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);

/** Deterministic bytes, so a misordered or shifted chunk shows as a mismatch rather than as equal zeros. */
function bytes(length: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buffer[i] = (i * 31 + seed) & 0xff;
  return buffer;
}

// A timeout so that a frame that never arrives fails the test instead of stalling the run.
describe('webSocketOptions writev', { timeout: 10_000 }, () => {
  const server = new Server();
  before(() => once(server.wss, 'listening'));
  after(() => {
    // The server's close waits for its connections; a failed test may leave one open.
    for (const socket of server.wss.clients) socket.terminate();
    return new Promise<void>((resolve) => server.wss.close(() => resolve()));
  });

  async function open(): Promise<Client> {
    const c = client(server.url);
    await once(c.socket, 'open');
    return c;
  }

  it('joins Buffer and string chunks, multi-byte text and empty chunks included, into one binary frame', async () => {
    const c = await open();
    const batches: ReadonlyArray<ReadonlyArray<Buffer | string>> = [
      [Buffer.from([0x30, 0x05]), 'é東😀', Buffer.alloc(0), '', Buffer.from([0x00])],
      ['', Buffer.from('a'), ''],
      ['only text, 東京'],
      [bytes(3, 1)],
    ];
    for (const batch of batches) {
      assert.ifError(await writev(c, batch));
      const [frame, ...more] = await server.frames(1);
      assert.deepEqual(more, [], 'one frame per batch');
      assert.equal(frame?.isBinary, true, 'MQTT over WebSocket is binary frames only');
      assert.deepEqual(frame?.data, Buffer.concat(batch.map(toBuffer)));
    }
    await server.noMoreFrames(c.socket);
    c.socket.close();
  });

  it('sends one frame of exactly the joined size at the WebSocket length-field boundaries, up to 16 MiB', async () => {
    const c = await open();
    for (const total of [1, 125, 126, 127, 65_535, 65_536, 65_537, 16 * 1024 * 1024]) {
      // Three chunks of uneven sizes and types: a Buffer, ASCII text and a Buffer holding the rest.
      const first = bytes(Math.floor(total / 3), total);
      const text = 'x'.repeat(Math.floor((total - first.length) / 2));
      const last = bytes(total - first.length - text.length, 7);
      assert.ifError(await writev(c, [first, text, last]));
      const frames = await server.frames(1);
      assert.equal(frames.length, 1, `one frame for ${total} bytes`);
      const data = frames[0]?.data;
      assert.equal(data?.length, total);
      assert.ok(
        data?.subarray(0, first.length).equals(first) &&
          data.subarray(first.length, first.length + text.length).toString('latin1') === text &&
          data.subarray(first.length + text.length).equals(last),
        `bytes in order for ${total}`,
      );
    }
    c.socket.close();
  });

  it('is what the stream MQTT.js builds over the socket uses: a corked batch of writes arrives as one frame', async () => {
    const c = await open();
    const stream = c.stream();
    const chunks = [Buffer.from([0x32]), Buffer.from([0x0b]), 'topic', Buffer.from([0x00, 0x01]), 'payload é'];
    stream.cork();
    const written = chunks.map(
      (chunk) => new Promise<Error | null | undefined>((resolve) => stream.write(chunk, resolve)),
    );
    process.nextTick(() => stream.uncork());
    for (const error of await Promise.all(written)) assert.ifError(error);
    const frames = await server.frames(1);
    assert.deepEqual(
      frames.map((f) => f.data),
      [Buffer.concat(chunks.map(toBuffer))],
    );
    await server.noMoreFrames(c.socket);
    stream.destroy();
  });

  it('holds a batch written while the socket is still connecting and sends it once open', async () => {
    const c = client(server.url);
    assert.equal(c.socket.readyState, WebSocket.CONNECTING);
    const batch = [Buffer.from('early '), 'bytes'];
    assert.ifError(await writev(c, batch));
    const frames = await server.frames(1);
    assert.deepEqual(
      frames.map((f) => f.data.toString()),
      ['early bytes'],
    );
    c.socket.close();
  });

  it('reports an error for a write when there is no socket yet, or it is closing or closed', async () => {
    const none = client(undefined);
    assert.match(String(await writev(none, [Buffer.from('x')])), /WebSocket is not open/);

    const closing = await open();
    closing.socket.close();
    assert.equal(closing.socket.readyState, WebSocket.CLOSING);
    assert.match(String(await writev(closing, [Buffer.from('x')])), /WebSocket is not open/);
    await once(closing.socket, 'close');
    assert.match(String(await writev(closing, ['y'])), /WebSocket is not open/);

    // Through the stream, as MQTT.js writes: the error reaches the write's callback, not just a log.
    const closed = await open();
    const stream = closed.stream();
    stream.on('error', () => undefined);
    closed.socket.close();
    await once(closed.socket, 'close');
    const error = await new Promise<Error | null | undefined>((resolve) => stream.write(Buffer.from('late'), resolve));
    assert.match(String(error), /WebSocket is not open/);
    const witness = await open();
    await server.noMoreFrames(witness.socket);
    witness.socket.close();
  });

  it('fails a write that waits for a handshake the server refuses, through the stream, and reports the refusal', async () => {
    const errors: Error[] = [];
    const c = client(undefined, { onError: (error) => errors.push(error) });
    server.refuse = true;
    try {
      c.connect(server.url);
      const stream = c.stream();
      const streamError = once(stream, 'error');
      // The write is pending on the handshake; when it fails the stream is destroyed with the error, so the data
      // is not taken as sent.
      let completed = false;
      stream.write(Buffer.from('never'), (err) => {
        completed = !err;
      });
      const [error] = (await streamError) as [Error];
      assert.match(error.message, /401/);
      assert.equal(completed, false, 'the write never counts as done');
      assert.match(errors.map((e) => e.message).join(), /401/, 'the hook hears the HTTP status');
    } finally {
      server.refuse = false;
    }
  });
});
