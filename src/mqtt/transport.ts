/**
 * The MQTT.js client, over a byte stream opened here rather than by `mqtt.connect`.
 *
 * `mqtt.connect`, at its first call, loads every transport MQTT.js knows before it opens one: WebSocket (ws), SOCKS
 * (socks, ip-address, smart-buffer), TLS. A process that only connects to a refused port took 119 ms of CPU above
 * `node -e 0` through `mqtt.connect`, and 90 ms through MQTT.js's client (`mqtt/lib/client`) over a socket opened
 * here (Node 20, unbundled), and the platform starts a process for every `check`. So this module opens TCP and TLS
 * sockets itself, behaving as MQTT.js's own stream builders do (below), and leaves WebSocket to MQTT.js's builder,
 * loaded only for that transport. The one thing of `mqtt.connect` left out is its undocumented MQTTJS_SOCKS_PROXY
 * environment variable: a proxy is configured (`proxy_url`), and its stream, or an SSH tunnel's, is given here as
 * `through`, over which TCP, TLS or WebSocket then run.
 *
 * The client is required when the first connection is made, not when this module is loaded, so that a command
 * that never connects does not pay for it.
 */
import { createRequire } from 'node:module';
import { createConnection, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as connectTls } from 'node:tls';
import type { IClientOptions, IStream, MqttClient } from 'mqtt';
import type { ClientOptions } from 'ws';

// The bundled build (scripts/bundle.mjs) turns these requires into bundled ones; they stay lazy there as well.
const require = createRequire(import.meta.url);

type StreamBuilder = (client: MqttClient) => IStream;
type WebSocketConnect = NonNullable<ClientOptions['createConnection']>;
type ClientConstructor = new (streamBuilder: StreamBuilder, options: IClientOptions) => MqttClient;

let clientClass: ClientConstructor | undefined;

function tcpStream(options: IClientOptions, through: Duplex | undefined): IStream {
  return (
    through ?? createConnection({ host: options.hostname ?? options.host ?? 'localhost', port: options.port ?? 1883 })
  );
}

/** TLS over a stream opened through a proxy or a tunnel, verified against the broker's own name, as `tlsStream` is. */
function tlsOver(through: Duplex, options: IClientOptions): TLSSocket {
  const host = options.hostname ?? options.host ?? 'localhost';
  const { path: _path, ...rest } = options;
  return connectTls({
    ...(rest as ConnectionOptions),
    socket: through,
    ...(isIP(host) === 0 && !options.servername ? { servername: host } : {}),
    rejectUnauthorized: options.rejectUnauthorized !== false,
  });
}

/**
 * As MQTT.js's TLS builder: the host name is sent as SNI unless it is an IP address, certificates are verified
 * unless turned off, and a TLS error before the handshake completes also reaches the client's `error` listeners
 * (connect.ts relies on that to name what failed, and settles once however often it is told).
 */
function tlsStream(client: MqttClient, options: IClientOptions, through: Duplex | undefined): IStream {
  const host = options.hostname ?? options.host ?? 'localhost';
  const verify = options.rejectUnauthorized !== false;
  const { path: _path, ...rest } = options;
  const socket = through
    ? tlsOver(through, options)
    : connectTls({
        ...(rest as ConnectionOptions),
        host,
        port: options.port ?? 8883,
        ...(isIP(host) === 0 && !options.servername ? { servername: host } : {}),
        rejectUnauthorized: verify,
      });
  const onHandshakeError = (error: Error): void => {
    if (verify) client.emit('error', error);
    socket.end();
  };
  socket.on('error', onHandshakeError);
  socket.once('secureConnect', () => {
    if (verify && !socket.authorized) socket.emit('error', new Error('TLS not authorized'));
    else socket.off('error', onHandshakeError);
  });
  return socket;
}

function webSocketStream(client: MqttClient, options: IClientOptions): IStream {
  const { streamBuilder } = require('mqtt/lib/connect/ws') as {
    streamBuilder: (client: MqttClient, options: IClientOptions) => IStream;
  };
  return streamBuilder(client, options);
}

/**
 * The socket ws opens for its HTTP upgrade, when the connection goes through a proxy or a tunnel: the stream opened
 * there, inside TLS for wss://. Given to ws as its `createConnection`.
 */
export function webSocketConnection(through: Duplex, options: IClientOptions): WebSocketConnect {
  const connect = (): Duplex => (options.protocol === 'wss' ? tlsOver(through, options) : through);
  // Typed for net.connect's overloads, but Node's HTTP client only reads and writes the stream it gets.
  return connect as unknown as WebSocketConnect;
}

/**
 * A connecting MQTT.js client for `options.protocol`, as `mqtt.connect(options)` returns one: it starts connecting
 * at once and has an `error` listener, so that an error nobody else handles is not thrown.
 */
export function connectClient(options: IClientOptions, through?: Duplex): MqttClient {
  clientClass ??= (require('mqtt/lib/client') as { default: ClientConstructor }).default;
  // connect.ts asks for mqtt, mqtts, ws or wss only; over `through` a WebSocket is given it in the options.
  const build: StreamBuilder = (client) =>
    options.protocol === 'mqtt'
      ? tcpStream(options, through)
      : options.protocol === 'mqtts'
        ? tlsStream(client, options, through)
        : webSocketStream(client, options);
  const client = new clientClass(build, options);
  client.on('error', () => undefined);
  return client;
}
