/**
 * A TCP proxy that delays every byte by a fixed time in each direction, to measure a publisher against a broker that
 * is a round trip away without a real network (tc netem needs privileges a benchmark should not ask for).
 *
 * Each chunk read from one side is written to the other `oneWayMs` later. Chunks leave in the order they arrived, and
 * nothing limits how many are on their way, so the proxy adds latency, not a bandwidth limit: like a long wire, it
 * holds a round trip's worth of data in flight. Memory stays bounded because a side whose delayed bytes (queued here
 * plus those its peer has not yet taken) pass `MAX_HELD_BYTES` is paused until they fall below half of it; TCP then
 * pushes back on its sender.
 *
 * What it does not emulate exactly: the TCP acknowledgements an end receives come from the proxy's kernel over
 * loopback, not from its peer. One carried by data (the usual case while a publisher and a broker exchange PUBLISH
 * and PUBACK) still arrives a round trip after the segment it acknowledges, since that data left the peer after the
 * segment arrived there; a bare ACK (quick or delayed) arrives sooner than it would over a real path. So Nagle's
 * algorithm and delayed ACKs at either end behave as over a real path as long as data flows both ways. The proxy's
 * own sockets have Nagle's algorithm off (unless `noDelay: false`), so that it forwards each chunk the moment it is
 * due, as a wire would.
 */
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * Delayed bytes held per direction before the reading side is paused. It must exceed what a fast sender puts on the
 * wire in one delay, or the proxy would limit throughput: 4 MB per 10 ms is 400 MB/s, ten times what a publisher
 * reaches on loopback (about 40 MB/s at QoS 1: 200,000 records of about 290 bytes in 1.4 s). Through this proxy,
 * echoing, a single connection moved 124 MB/s each way.
 */
const MAX_HELD_BYTES = 4 * 1024 * 1024;

/**
 * Timers fire on the event loop's millisecond clock, which runs up to a millisecond behind `performance.now()`. A chunk
 * due within this margin goes out with the chunks being released, rather than a millisecond-long timer later: the
 * added delay is then `oneWayMs` on average instead of about one millisecond more.
 */
const RELEASE_MARGIN_MS = 0.5;

export interface DelayProxyOptions {
  /** Where the target listens; 127.0.0.1 by default. */
  readonly host?: string;
  /** Nagle's algorithm off on the proxy's own sockets; true by default. */
  readonly noDelay?: boolean;
}

export interface DelayProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
}

interface Pending {
  /** A chunk to write, or undefined for the end of the stream (the FIN, delayed like the data before it). */
  readonly chunk: Buffer | undefined;
  readonly due: number;
}

/** Forwards what `from` sends to `to`, each chunk `delayMs` after it was read, in order. */
function delayDirection(from: Socket, to: Socket, delayMs: number): void {
  const pending: Pending[] = [];
  let head = 0;
  let heldBytes = 0;
  let paused = false;
  let timer: NodeJS.Timeout | undefined;

  const held = (): number => heldBytes + to.writableLength;
  const resumeIfRoom = (): void => {
    if (paused && held() < MAX_HELD_BYTES / 2) {
      paused = false;
      from.resume();
    }
  };
  const schedule = (): void => {
    const next = pending[head];
    if (timer || !next) return;
    timer = setTimeout(release, Math.max(1, Math.ceil(next.due - performance.now() - RELEASE_MARGIN_MS)));
  };
  const release = (): void => {
    timer = undefined;
    const now = performance.now() + RELEASE_MARGIN_MS;
    for (let next = pending[head]; next && next.due <= now; next = pending[head]) {
      head++;
      if (next.chunk) {
        heldBytes -= next.chunk.length;
        to.write(next.chunk);
      } else {
        to.end();
      }
    }
    // Drop the released entries now and then, not on every release: shifting the array each time would be quadratic.
    if (head > 1024 && head * 2 > pending.length) {
      pending.splice(0, head);
      head = 0;
    }
    schedule();
    resumeIfRoom();
  };

  from.on('data', (chunk: Buffer) => {
    pending.push({ chunk, due: performance.now() + delayMs });
    heldBytes += chunk.length;
    if (!paused && held() > MAX_HELD_BYTES) {
      paused = true;
      from.pause();
    }
    schedule();
  });
  from.on('end', () => {
    pending.push({ chunk: undefined, due: performance.now() + delayMs });
    schedule();
  });
  to.on('drain', resumeIfRoom);
  // Whatever was still on its way to a closed socket has nowhere to go; no timer may outlive the connection.
  to.on('close', () => {
    clearTimeout(timer);
    timer = undefined;
    pending.length = 0;
    head = 0;
    heldBytes = 0;
  });
}

/**
 * Starts a proxy on a free port of 127.0.0.1 that forwards to `targetPort`, adding `oneWayMs` in each direction (so
 * `2 * oneWayMs` to every round trip).
 */
export async function startDelayProxy(
  targetPort: number,
  oneWayMs: number,
  options: DelayProxyOptions = {},
): Promise<DelayProxy> {
  const host = options.host ?? '127.0.0.1';
  const noDelay = options.noDelay ?? true;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    const upstream = connect({ port: targetPort, host, allowHalfOpen: true });
    track(client);
    track(upstream);
    client.setNoDelay(noDelay);
    upstream.setNoDelay(noDelay);
    // A reset or error is not delayed: the connection is gone on both sides at once. A clean close is, as the FIN
    // travels behind the data before it.
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut);
    upstream.on('error', cut);
    upstream.once('connect', () => {
      delayDirection(client, upstream, oneWayMs);
      delayDirection(upstream, client, oneWayMs);
      client.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
