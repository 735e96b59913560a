/**
 * One handshake with a proxy, as a short conversation over a socket: write a request, wait for the bytes of the
 * reply, move on to the next step. Proxies answer in pieces of any size, and the broker may already speak in the
 * chunk that ends the proxy's reply; so replies are cut from a buffer (`read`), and what remains of it when the
 * handshake is done is put back into the socket (`finish`) for whoever speaks to the broker next.
 *
 * One deadline covers the whole handshake, and each step says what a timeout or a closed connection means while it
 * is the current one (a proxy that never answers its greeting is not the same fault as one that never reports on the
 * broker). On any failure the socket is destroyed.
 */
import type { Socket } from 'node:net';

/** How many bytes at the start of `buffered` make the awaited reply, undefined while more are needed; throws to refuse it. */
export type Take = (buffered: Buffer) => number | undefined;

/** What failures mean during one step of the handshake. */
export interface Step {
  /** The deadline passed during this step. */
  readonly timedOut: () => Error;
  /**
   * The connection failed or was closed during this step. `error` is the socket's error, if one came; `received` what
   * the proxy sent of a reply that it did not finish.
   */
  readonly closed: (error: Error | undefined, received: Buffer) => Error;
}

export class Conversation {
  private buffered: Buffer = Buffer.alloc(0);
  private failure: Error | undefined;
  private rejectFailed: (error: Error) => void = () => undefined;
  /** Rejects with the first failure; every wait races against it. */
  private readonly failed = new Promise<never>((_resolve, reject) => {
    this.rejectFailed = reject;
  });
  private readonly timer: NodeJS.Timeout;
  private readonly onError = (error: Error): void => this.fail(this.step.closed(error, this.buffered));
  private readonly onClosed = (): void => this.fail(this.step.closed(undefined, this.buffered));

  constructor(
    readonly socket: Socket,
    timeoutMs: number,
    private step: Step,
  ) {
    // Nobody may be waiting when a failure comes; the next wait or `finish` reports it.
    this.failed.catch(() => undefined);
    this.timer = setTimeout(() => this.fail(this.step.timedOut()), timeoutMs);
    socket.on('error', this.onError);
    socket.on('end', this.onClosed);
    socket.on('close', this.onClosed);
  }

  /** Moves on to a step of the handshake with its own meaning of a timeout or a closed connection. */
  enter(step: Step): void {
    this.step = step;
  }

  /** `promise`, unless the handshake fails first. */
  wait<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.failed]);
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /**
   * The next reply, as `take` delimits it, once it has arrived. The socket is read only while a read waits (in paused
   * mode, so that it is not left flowing or paused when the handshake is done): between steps, and after the
   * handshake, what arrives stays in the socket for the next reader.
   */
  read(take: Take): Promise<Buffer> {
    return this.wait(
      new Promise<Buffer>((resolve, reject) => {
        const attempt = (): boolean => {
          let size: number | undefined;
          try {
            size = take(this.buffered);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
            return true;
          }
          if (size === undefined) return false;
          resolve(this.buffered.subarray(0, size));
          this.buffered = this.buffered.subarray(size);
          return true;
        };
        if (attempt()) return;
        const onReadable = (): void => {
          for (let chunk: unknown; (chunk = this.socket.read()) !== null;) {
            this.buffered = Buffer.concat([this.buffered, chunk as Buffer]);
          }
          if (attempt()) this.socket.off('readable', onReadable);
        };
        this.socket.on('readable', onReadable);
      }),
    );
  }

  /**
   * Ends the handshake: the socket, not yet read, with the bytes that came after the last reply put back in front of what
   * it has yet to deliver. It has no error listener from here on; the caller adds its own at once.
   */
  finish(): Socket {
    if (this.failure) throw this.failure;
    clearTimeout(this.timer);
    this.socket.off('error', this.onError);
    this.socket.off('end', this.onClosed);
    this.socket.off('close', this.onClosed);
    if (this.buffered.length > 0) this.socket.unshift(this.buffered);
    this.buffered = Buffer.alloc(0);
    return this.socket;
  }

  /** Ends a handshake that failed: no timer left behind, the socket destroyed. */
  abandon(): void {
    clearTimeout(this.timer);
    this.socket.destroy();
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.rejectFailed(error);
    this.abandon();
  }
}
