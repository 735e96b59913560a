/**
 * A small MQTT 5 server for MQTT 5 enhanced authentication with tokens, as Azure Event Grid's MQTT broker does it
 * with `OAUTH2-JWT`: it exists because no broker available to these tests speaks enhanced authentication (aedes speaks
 * MQTT 3.1.1 only; Mosquitto needs a plugin for it). Built on mqtt-packet, the codec MQTT.js and aedes use, on a free
 * loopback port.
 *
 * What it does, and nothing more:
 * - CONNECT must be MQTT 5 and carry the configured Authentication Method and a token as Authentication Data. A valid
 *   token gets CONNACK 0x00 (with the method, and Maximum QoS 1, as Event Grid announces); a wrong or missing method
 *   gets CONNACK 0x8C (bad authentication method); a token that is unknown or expired gets 0x87 (not authorised).
 * - AUTH with reason 0x19 (re-authenticate) and a new token: a valid one gets AUTH 0x00 (success) and moves the
 *   connection's expiry; an invalid one gets DISCONNECT 0x87 (not authorised). A different method gets DISCONNECT
 *   0x82 (protocol error), not 0x8C: the client MUST keep its method (MQTT-4.12.1-1), 0x8C is not among DISCONNECT's
 *   reason codes (MQTT 5.0 §3.14.2.1), and MQTT.js, through mqtt-packet, rejects a DISCONNECT carrying it as malformed.
 * - A connection whose token expires without re-authentication gets DISCONNECT 0x87 (not authorised) and is closed:
 *   Event Grid reports such a disconnect as an authentication error ("ClientAuthenticationError"), and 0x87 is MQTT 5's
 *   code for that; 0xA0 (maximum connect time) would tell the client the session has a fixed length, which is not it.
 * - PUBLISH at QoS 0 and 1 is recorded, QoS 1 answered with PUBACK 0x00; QoS 2 gets DISCONNECT 0x9B (QoS not
 *   supported), as Event Grid supports QoS 0 and 1 only. PINGREQ gets PINGRESP. SUBSCRIBE gets SUBACK 0x87 for every
 *   filter: this broker only receives.
 */
import { EventEmitter, once } from 'node:events';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import mqttPacket, { type IAuthPacket, type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import { until } from './until.js';

export const REASON = {
  success: 0x00,
  reauthenticate: 0x19,
  protocolError: 0x82,
  notAuthorized: 0x87,
  badAuthenticationMethod: 0x8c,
  qosNotSupported: 0x9b,
} as const;

export interface AuthBrokerOptions {
  /** The Authentication Method clients must use; default `OAUTH2-JWT`. */
  readonly authenticationMethod?: string;
  /** When a token stops being valid (ms; Infinity for never), or undefined when it is not valid `now`. */
  readonly validUntil: (token: string, now: number) => number | undefined;
}

export interface AuthBrokerEvent {
  readonly clientId: string;
  readonly at: number;
  /** The reason code sent (CONNACK, AUTH or DISCONNECT). */
  readonly reasonCode: number;
}

export interface ReceivedPublish {
  readonly clientId: string;
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
}

export type AuthBrokerEventKind = 'connects' | 'reauths' | 'expiries' | 'published';

export interface Mqtt5AuthBroker {
  readonly port: number;
  readonly url: string;
  /** Every CONNECT answered, accepted (0x00) or refused. */
  readonly connects: readonly AuthBrokerEvent[];
  /** Every re-authentication answered: 0x00 by AUTH, or the DISCONNECT's reason. */
  readonly reauths: readonly AuthBrokerEvent[];
  /** Connections closed with DISCONNECT 0x87 because their token expired. */
  readonly expiries: readonly AuthBrokerEvent[];
  readonly published: readonly ReceivedPublish[];
  /** Resolves once there are `count` entries of the kind; rejects after `timeoutMs`. */
  waitFor(kind: AuthBrokerEventKind, count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** setTimeout fires at once past 2^31 - 1 ms; a token valid longer outlives any test and gets no timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export async function startMqtt5AuthBroker(options: AuthBrokerOptions): Promise<Mqtt5AuthBroker> {
  const method = options.authenticationMethod ?? 'OAUTH2-JWT';
  const events = new EventEmitter();
  const log = {
    connects: [] as AuthBrokerEvent[],
    reauths: [] as AuthBrokerEvent[],
    expiries: [] as AuthBrokerEvent[],
    published: [] as ReceivedPublish[],
  };
  const sockets = new Set<Socket>();

  const serve = (socket: Socket) => {
    sockets.add(socket);
    const parser = mqttPacket.parser();
    let clientId: string | undefined;
    let expiry: NodeJS.Timeout | undefined;
    const send = (packet: Packet) => {
      if (!socket.destroyed) socket.write(mqttPacket.generate(packet, { protocolVersion: 5 }));
    };
    const disconnect = (reasonCode: number) => {
      send({ cmd: 'disconnect', reasonCode });
      socket.end();
    };
    const expireAt = (validUntil: number) => {
      clearTimeout(expiry);
      const delay = validUntil - Date.now();
      if (delay > MAX_TIMER_MS) return;
      expiry = setTimeout(() => {
        log.expiries.push({ clientId: clientId ?? '', at: Date.now(), reasonCode: REASON.notAuthorized });
        events.emit('expiries');
        disconnect(REASON.notAuthorized);
      }, delay);
    };
    const tokenOf = (properties: { authenticationData?: Buffer } | undefined) =>
      properties?.authenticationData?.toString('utf8') ?? '';

    const onConnect = (packet: IConnectPacket) => {
      if (packet.protocolVersion !== 5) {
        // Answered in the client's version: return code 1, unacceptable protocol version.
        socket.end(mqttPacket.generate({ cmd: 'connack', returnCode: 1, sessionPresent: false }));
        return;
      }
      const id = packet.clientId;
      const answer = (reasonCode: number) => {
        log.connects.push({ clientId: id, at: Date.now(), reasonCode });
        events.emit('connects');
      };
      if (packet.properties?.authenticationMethod !== method) {
        answer(REASON.badAuthenticationMethod);
        send({ cmd: 'connack', reasonCode: REASON.badAuthenticationMethod, sessionPresent: false });
        socket.end();
        return;
      }
      const validUntil = options.validUntil(tokenOf(packet.properties), Date.now());
      if (validUntil === undefined) {
        answer(REASON.notAuthorized);
        send({ cmd: 'connack', reasonCode: REASON.notAuthorized, sessionPresent: false });
        socket.end();
        return;
      }
      clientId = id;
      answer(REASON.success);
      send({
        cmd: 'connack',
        reasonCode: REASON.success,
        sessionPresent: false,
        properties: { authenticationMethod: method, maximumQoS: 1 },
      });
      expireAt(validUntil);
    };

    const onAuth = (packet: IAuthPacket) => {
      const answer = (reasonCode: number) => {
        log.reauths.push({ clientId: clientId ?? '', at: Date.now(), reasonCode });
        events.emit('reauths');
      };
      if (packet.reasonCode !== REASON.reauthenticate) {
        answer(REASON.protocolError);
        disconnect(REASON.protocolError);
        return;
      }
      if (packet.properties?.authenticationMethod !== method) {
        answer(REASON.protocolError);
        disconnect(REASON.protocolError);
        return;
      }
      const validUntil = options.validUntil(tokenOf(packet.properties), Date.now());
      if (validUntil === undefined) {
        answer(REASON.notAuthorized);
        disconnect(REASON.notAuthorized);
        return;
      }
      answer(REASON.success);
      send({ cmd: 'auth', reasonCode: REASON.success, properties: { authenticationMethod: method } });
      expireAt(validUntil);
    };

    const onPublish = (packet: IPublishPacket) => {
      if (packet.qos === 2) {
        disconnect(REASON.qosNotSupported);
        return;
      }
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      log.published.push({ clientId: clientId ?? '', topic: packet.topic, payload, qos: packet.qos });
      if (packet.qos === 1) send({ cmd: 'puback', messageId: packet.messageId, reasonCode: REASON.success });
      events.emit('published');
    };

    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') {
        if (clientId === undefined) onConnect(packet);
        else disconnect(REASON.protocolError); // A second CONNECT is a protocol error.
        return;
      }
      if (clientId === undefined) {
        socket.destroy(); // Nothing but CONNECT may come first.
        return;
      }
      switch (packet.cmd) {
        case 'auth':
          onAuth(packet);
          break;
        case 'publish':
          onPublish(packet);
          break;
        case 'pingreq':
          send({ cmd: 'pingresp' });
          break;
        case 'subscribe':
          send({
            cmd: 'suback',
            messageId: packet.messageId,
            granted: packet.subscriptions.map(() => REASON.notAuthorized),
          });
          break;
        case 'disconnect':
          socket.end();
          break;
        default:
          disconnect(REASON.protocolError);
      }
    });
    parser.on('error', () => disconnect(REASON.protocolError));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(expiry);
      sockets.delete(socket);
    });
  };

  const server: Server = createServer(serve);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    ...log,
    waitFor: (kind, count, timeoutMs = 10_000) =>
      until(
        events,
        kind,
        () => (log[kind].length >= count ? true : undefined),
        timeoutMs,
        () =>
          `${log[kind].length} ${kind} (of ${count}); connects ${log.connects.map((e) => e.reasonCode).join(',')}, ` +
          `reauths ${log.reauths.map((e) => e.reasonCode).join(',')}, expiries ${log.expiries.length}`,
      ).then(() => undefined),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
