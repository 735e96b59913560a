/**
 * A byte stream handed out at once for a connection that is opened later, as `net.connect` hands out a socket before
 * it has connected. MQTT.js builds its stream synchronously (at the first connect and at every reconnect), and so do
 * `tls.connect({ socket })` and ws's `createConnection`, while a channel through an SSH tunnel (or a proxy) is only
 * there once the far end has answered. Writes made before then are held (one at a time, as a Writable hands them
 * over, so the writer's own buffering and backpressure apply) and passed on when the connection opens; a connection
 * that cannot be opened destroys this stream with the error that says why, which its users see as an `error` event.
 */
import { Duplex } from 'node:stream';

type WriteCallback = (error?: Error | null) => void;

export class PendingStream extends Duplex {
  private inner: Duplex | undefined;
  private held: { chunk: Buffer; encoding: BufferEncoding; callback: WriteCallback } | undefined;
  private ending: WriteCallback | undefined;

  constructor(opening: Promise<Duplex>) {
    super();
    opening.then(
      (inner) => this.attach(inner),
      (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** Whether the connection underneath is open yet. */
  get connected(): boolean {
    return this.inner !== undefined;
  }

  private attach(inner: Duplex): void {
    if (this.destroyed) {
      inner.destroy();
      return;
    }
    this.inner = inner;
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    let ended = false;
    inner.on('end', () => {
      ended = true;
      this.push(null);
    });
    inner.on('error', (err: Error) => this.destroy(err));
    // As a socket: after an orderly end, 'close' waits until what came before has been read ('end'); destroying at
    // once would drop it.
    inner.on('close', () => {
      if (!ended || this.readableEnded) this.destroy();
      else this.once('end', () => this.destroy());
    });
    const held = this.held;
    this.held = undefined;
    if (held) inner.write(held.chunk, held.encoding, held.callback);
    const ending = this.ending;
    this.ending = undefined;
    if (ending) inner.end(ending);
    // As net.Socket does once connected; MQTT.js and ws do not need it, but callers measuring set-up time may.
    this.emit('connect');
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: WriteCallback): void {
    if (this.inner) this.inner.write(chunk, encoding, callback);
    else this.held = { chunk, encoding, callback };
  }

  override _final(callback: WriteCallback): void {
    if (this.inner) this.inner.end(callback);
    else this.ending = callback;
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.held = undefined;
    this.ending = undefined;
    this.inner?.destroy();
    callback(error);
  }

  // net.Socket's TCP options, which ws calls on the socket it upgrades. A stream inside an SSH connection has none of
  // its own: the SSH connection's socket carries them for every channel.
  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }
}
