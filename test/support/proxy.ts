/**
 * A TCP proxy between the connector and a broker, for tests that need the network to misbehave: it can hold back
 * what the broker sends (so nothing is acknowledged) and release it, cut connections, refuse new ones, or accept them
 * and never answer (a broker that hangs).
 */
import { EventEmitter } from 'node:events';
import { type Socket, createConnection, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * forward: pass everything both ways. refuse: close each new connection at once (the broker is down).
 * silent: accept new connections and never answer them (a broker that hangs).
 */
export type ProxyMode = 'forward' | 'refuse' | 'silent';

export interface ProxyConnection {
  /** 0 for the first connection the proxy accepted, and so on. */
  readonly index: number;
  readonly openedAt: number;
  /** Bytes the broker has sent on this connection, forwarded or held. */
  readonly downstreamBytes: number;
  /** Hold back what the broker sends on this connection from the byte after `afterBytes` on. */
  holdAfter(afterBytes: number): void;
  /** Cuts the connection, with a TCP reset towards the client, as a failing network does. */
  cut(): void;
  /** Sends `packet` to the client as if from the broker, then closes the connection in order (a broker's DISCONNECT). */
  closeWith(packet: Buffer): void;
  readonly closed: boolean;
}

export interface Proxy {
  readonly port: number;
  /** Bytes the broker has sent to clients and the proxy holds back. */
  readonly heldBytes: number;
  /** Bytes clients have sent towards the broker. */
  readonly upstreamBytes: number;
  readonly connections: readonly ProxyConnection[];
  mode: ProxyMode;
  /** Hold back what the broker sends, from the byte after `afterBytes` of each connection, new ones included. */
  holdDownstream(afterBytes: number): void;
  release(): void;
  /** Called for each connection accepted in forward mode, to give it its own behaviour. */
  onConnection(handler: (connection: ProxyConnection) => void): void;
  /** Resolves once clients have sent at least `bytes` bytes towards the broker. */
  whenUpstream(bytes: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `count` connections have been accepted in forward mode. */
  whenConnections(count: number, timeoutMs?: number): Promise<ProxyConnection>;
  close(): Promise<void>;
}

function waitUntil(
  events: EventEmitter,
  event: string,
  done: () => boolean,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!done()) return;
      clearTimeout(timer);
      events.off(event, check);
      resolve();
    };
    const timer = setTimeout(() => {
      events.off(event, check);
      reject(new Error(what()));
    }, timeoutMs);
    events.on(event, check);
    check();
  });
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  const connections: ProxyConnection[] = [];
  const held: { socket: Socket; chunk: Buffer }[] = [];
  let holdAll: number | undefined;
  let heldBytes = 0;
  let upstreamBytes = 0;
  let mode: ProxyMode = 'forward';
  let accepted = 0;
  let handler: ((connection: ProxyConnection) => void) | undefined;
  const releases = new Set<() => void>();

  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    if (mode === 'silent') {
      client.resume(); // read and drop: the CONNECT is never answered
      return;
    }
    const broker = createConnection({ port: targetPort, host: '127.0.0.1' });
    sockets.add(broker);
    let downstream = 0;
    let holdAfter: number | undefined;
    let closed = false;
    releases.add(() => (holdAfter = undefined));
    const connection: ProxyConnection = {
      index: accepted++,
      openedAt: Date.now(),
      get downstreamBytes() {
        return downstream;
      },
      holdAfter: (afterBytes) => {
        holdAfter = afterBytes;
      },
      cut: () => {
        closed = true;
        client.resetAndDestroy();
        broker.destroy();
      },
      closeWith: (packet) => {
        closed = true;
        broker.destroy();
        client.end(packet);
      },
      get closed() {
        return closed;
      },
    };
    connections.push(connection);
    client.on('data', (chunk: Buffer) => {
      upstreamBytes += chunk.length;
      broker.write(chunk);
      events.emit('upstream');
    });
    broker.on('data', (chunk: Buffer) => {
      const limit = holdAfter ?? holdAll;
      if (limit === undefined || downstream + chunk.length <= limit) {
        downstream += chunk.length;
        client.write(chunk);
        return;
      }
      const passing = Math.max(0, limit - downstream);
      if (passing > 0) client.write(chunk.subarray(0, passing));
      downstream += chunk.length;
      held.push({ socket: client, chunk: chunk.subarray(passing) });
      heldBytes += chunk.length - passing;
    });
    const closeBoth = (): void => {
      closed = true;
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('close', closeBoth);
    broker.on('close', closeBoth).on('error', closeBoth);
    handler?.(connection);
    events.emit('connection');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    get heldBytes() {
      return heldBytes;
    },
    get upstreamBytes() {
      return upstreamBytes;
    },
    connections,
    get mode() {
      return mode;
    },
    set mode(value: ProxyMode) {
      mode = value;
    },
    holdDownstream: (afterBytes) => {
      holdAll = afterBytes;
    },
    release: () => {
      holdAll = undefined;
      for (const releaseOne of releases) releaseOne();
      for (const { socket, chunk } of held.splice(0)) if (!socket.destroyed) socket.write(chunk);
      heldBytes = 0;
    },
    onConnection: (next) => {
      handler = next;
    },
    whenUpstream: (bytes, timeoutMs = 10_000) =>
      waitUntil(
        events,
        'upstream',
        () => upstreamBytes >= bytes,
        timeoutMs,
        () => `only ${upstreamBytes} of ${bytes} bytes reached the broker within ${timeoutMs} ms`,
      ),
    whenConnections: async (count, timeoutMs = 10_000) => {
      await waitUntil(
        events,
        'connection',
        () => connections.length >= count,
        timeoutMs,
        () => `only ${connections.length} of ${count} connections within ${timeoutMs} ms`,
      );
      return connections[count - 1] as ProxyConnection;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
