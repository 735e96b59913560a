/**
 * An aedes broker embedded in the test process, listening on free loopback ports: plain TCP always, and optionally
 * MQTT over WebSocket (ws or wss) through a real HTTP(S) server, at a fixed path.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';
import { Aedes, type AedesOptions, type AedesPublishPacket } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';

export interface EmbeddedBroker {
  readonly aedes: Aedes;
  readonly port: number;
  readonly url: string;
  /** Port of the WebSocket listener, when one was asked for. */
  readonly wsPort: number | undefined;
  /** WebSocket frames received from clients, counted per client connection in arrival order. */
  readonly wsFrames: number[];
  /** The request URL (path and query) of each WebSocket connection, in arrival order. */
  readonly wsRequests: string[];
  /** Port of the MQTT-over-TLS listener, when one was asked for. */
  readonly tlsPort: number | undefined;
  /** The ALPN protocol each TLS connection negotiated (false when none). */
  readonly alpn: (string | false | null)[];
  /** The server name (SNI) each TLS connection asked for (false when none). */
  readonly servernames: (string | false | null)[];
  /** Every PUBLISH a client sent, as the broker received it (broker-side view, independent of any subscriber). */
  readonly received: AedesPublishPacket[];
  close(): Promise<void>;
}

export interface WebSocketListener {
  readonly path: string;
  /** Serve wss:// with this certificate and key. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface TlsListener {
  readonly cert: string;
  readonly key: string;
  /** Protocols the server accepts; a client offering none of them fails the handshake. */
  readonly ALPNProtocols?: string[];
}

type Closable = { close(callback: () => void): unknown };

function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

export async function startAedes(
  options: AedesOptions = {},
  websocket?: WebSocketListener,
  tls?: TlsListener,
): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker(options);
  const received: AedesPublishPacket[] = [];
  aedes.on('publish', (packet, client) => {
    if (client) received.push(packet);
  });
  const server: Server = createServer(aedes.handle);
  const port = await listen(server);
  const closables: Closable[] = [server];
  let wsPort: number | undefined;
  const wsFrames: number[] = [];
  const wsRequests: string[] = [];
  if (websocket) {
    const http = websocket.tls
      ? createHttpsServer({ cert: websocket.tls.cert, key: websocket.tls.key })
      : createHttpServer();
    const wss = new WebSocketServer({ server: http, path: websocket.path });
    wss.on('connection', (socket, request) => {
      wsRequests.push(request.url ?? '');
      const index = wsFrames.push(0) - 1;
      socket.on('message', () => (wsFrames[index] = (wsFrames[index] ?? 0) + 1));
      aedes.handle(createWebSocketStream(socket), request);
    });
    wsPort = await listen(http);
    closables.unshift(wss, http);
  }
  let tlsPort: number | undefined;
  const alpn: (string | false | null)[] = [];
  const servernames: (string | false | null)[] = [];
  if (tls) {
    const secure = createTlsServer(
      { cert: tls.cert, key: tls.key, ALPNProtocols: tls.ALPNProtocols },
      (socket: TLSSocket) => {
        alpn.push(socket.alpnProtocol);
        servernames.push(socket.servername);
        aedes.handle(socket);
      },
    );
    tlsPort = await listen(secure);
    closables.unshift(secure);
  }
  return {
    aedes,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    wsPort,
    wsFrames,
    wsRequests,
    tlsPort,
    alpn,
    servernames,
    received,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const closable of closables) await new Promise<void>((resolve) => closable.close(() => resolve()));
    },
  };
}

type AedesListeners = Parameters<typeof startAedes>;

/**
 * An aedes broker for the tests of the calling `describe` (or of the file, called at its top level): started in a
 * `before` hook, closed in an `after` hook, both registered where this is called. The broker returned stands for the
 * one started and may be used from the hooks and tests only. In a `describe`, hooks registered after this call find
 * the broker running; at the top level of a file they do not, as node:test starts each top-level `before` hook when
 * it is registered, without waiting for the ones before it.
 *
 * Takes what `startAedes` takes, or a function returning that, called when the broker starts (so that certificates
 * are made only for tests that run).
 */
export function withAedes(...listeners: AedesListeners | [() => AedesListeners]): EmbeddedBroker {
  let broker: EmbeddedBroker | undefined;
  const started = (): EmbeddedBroker => {
    if (!broker) throw new Error('aedes is used before its before hook started it, or after it failed to start');
    return broker;
  };
  before(async () => {
    const [first] = listeners;
    broker = await startAedes(...(typeof first === 'function' ? first() : (listeners as AedesListeners)));
  });
  after(() => broker?.close());
  return {
    get aedes() {
      return started().aedes;
    },
    get port() {
      return started().port;
    },
    get url() {
      return started().url;
    },
    get wsPort() {
      return started().wsPort;
    },
    get wsFrames() {
      return started().wsFrames;
    },
    get wsRequests() {
      return started().wsRequests;
    },
    get tlsPort() {
      return started().tlsPort;
    },
    get alpn() {
      return started().alpn;
    },
    get servernames() {
      return started().servernames;
    },
    get received() {
      return started().received;
    },
    close: () => started().close(),
  };
}
