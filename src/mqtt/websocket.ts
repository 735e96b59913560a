/**
 * MQTT over WebSocket. ws's stream sends every write as its own WebSocket frame, and mqtt-packet writes a PUBLISH as
 * several small chunks, so without help one message costs five or six frames. Giving the stream a `writev` that joins
 * the chunks buffered in one tick into one frame brings WebSocket throughput close to plain TCP. The WebSocket is
 * created here (rather than inside MQTT.js) so that `writev` can reach it, and so that `check` can report the TLS
 * socket underneath a wss:// connection.
 */
import { createRequire } from 'node:module';
import type { TLSSocket } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import type WebSocket from 'ws';
import type { ClientOptions } from 'ws';

// ws is loaded when a WebSocket is made, not when this module is: over TCP nothing needs it, and loading it took about
// 30 ms of a `check` on Node 20, where `node -e 0` takes 50.
const require = createRequire(import.meta.url);
let loaded: typeof WebSocket | undefined;
function webSocketClass(): typeof WebSocket {
  loaded ??= require('ws') as typeof WebSocket;
  return loaded;
}

type Chunk = { chunk: Buffer | string };

export interface WebSocketHooks {
  /** The TLS socket under a wss:// connection, once the handshake is done. */
  readonly onTlsSocket?: (socket: TLSSocket) => void;
  /**
   * Errors of the WebSocket itself (HTTP status of a refused handshake, TLS failures), which MQTT.js does not pass on.
   */
  readonly onError?: (error: Error) => void;
}

export function webSocketOptions(tlsOptions: ClientOptions, hooks: WebSocketHooks = {}): Partial<IClientOptions> {
  let socket: WebSocket | undefined;
  const wsOptions = {
    ...tlsOptions,
    writev(chunks: Chunk[], callback: (error?: Error | null) => void): void {
      const frame = Buffer.concat(chunks.map(({ chunk }) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk)));
      const send = (): void => {
        if (!socket || socket.readyState !== socket.OPEN) {
          callback(new Error('WebSocket is not open'));
          return;
        }
        socket.send(frame, callback);
      };
      if (socket && socket.readyState === socket.CONNECTING) socket.once('open', send);
      else send();
    },
  };
  return {
    wsOptions,
    createWebsocket: (url: string, protocols: string[]) => {
      const WebSocketClass = webSocketClass();
      socket = new WebSocketClass(url, protocols, tlsOptions);
      socket.on('upgrade', (response) => {
        if ('getPeerCertificate' in response.socket) hooks.onTlsSocket?.(response.socket as TLSSocket);
      });
      socket.on('error', (error) => hooks.onError?.(error));
      return socket;
    },
  };
}
