/**
 * A TCP proxy between the connector and a broker, for tests that need the network to misbehave: it can hold back
 * everything the broker sends after the CONNACK (so nothing is acknowledged), then release it.
 */
import { EventEmitter } from 'node:events';
import { type Socket, createConnection, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Proxy {
  readonly port: number;
  /** Bytes the broker has sent to clients and the proxy holds back. */
  readonly heldBytes: number;
  /** Bytes clients have sent towards the broker. */
  readonly upstreamBytes: number;
  /** Hold back what the broker sends, from the byte after `afterBytes` of each new connection. */
  holdDownstream(afterBytes: number): void;
  release(): void;
  /** Resolves once clients have sent at least `bytes` bytes towards the broker. */
  whenUpstream(bytes: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  const held: { socket: Socket; chunk: Buffer }[] = [];
  let holdAfter: number | undefined;
  let heldBytes = 0;
  let upstreamBytes = 0;

  const server = createServer((client) => {
    const broker = createConnection({ port: targetPort, host: '127.0.0.1' });
    sockets.add(client).add(broker);
    let downstream = 0;
    client.on('data', (chunk) => {
      upstreamBytes += chunk.length;
      broker.write(chunk);
      events.emit('upstream');
    });
    broker.on('data', (chunk: Buffer) => {
      const limit = holdAfter;
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
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('close', closeBoth).on('error', closeBoth);
    broker.on('close', closeBoth).on('error', closeBoth);
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
    holdDownstream: (afterBytes) => {
      holdAfter = afterBytes;
    },
    release: () => {
      holdAfter = undefined;
      for (const { socket, chunk } of held.splice(0)) socket.write(chunk);
      heldBytes = 0;
    },
    whenUpstream: (bytes, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (upstreamBytes < bytes) return;
          clearTimeout(timer);
          events.off('upstream', check);
          resolve();
        };
        const timer = setTimeout(() => {
          events.off('upstream', check);
          reject(new Error(`only ${upstreamBytes} of ${bytes} bytes reached the broker within ${timeoutMs} ms`));
        }, timeoutMs);
        events.on('upstream', check);
        check();
      }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
