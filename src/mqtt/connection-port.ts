/**
 * What the publisher needs of a connection, and nothing more: somewhere to write bytes, whether to wait before writing
 * more, and the acknowledgements the broker sends back. Keeping the publisher behind this port means its logic (flow
 * control, handshakes, resending) is tested with a fake connection, without a broker; `mqttPort` adapts a real
 * MQTT.js connection to it.
 */
import type { Duplex } from 'node:stream';
import type { MqttClient, Packet } from 'mqtt';

/** An acknowledgement of one of our packets. */
export interface Acknowledgement {
  readonly kind: 'puback' | 'pubrec' | 'pubcomp';
  readonly packetId: number;
  /** MQTT 5 reason code; 0 (success) below MQTT 5 and when the broker leaves it out. */
  readonly reasonCode: number;
}

export interface PortListener {
  readonly acknowledged: (ack: Acknowledgement) => void;
  /** The transport's buffer has room again after `needsDrain` was true. */
  readonly drained: () => void;
}

/** The limits an MQTT 5 broker announced in its CONNACK that bound what is sent; none below MQTT 5. */
export interface SendLimits {
  readonly receiveMaximum?: number;
  readonly topicAliasMaximum?: number;
  readonly maximumPacketSize?: number;
}

export interface ConnectionPort {
  readonly limits: SendLimits;
  /** The broker resumed an earlier session, so it remembers the QoS 2 messages it has received (PUBREC sent). */
  readonly sessionPresent: boolean;
  /** The transport's buffer is over its high-water mark: write more only after `drained`. */
  readonly needsDrain: boolean;
  /** Writes `chunk`; `written` is called once the bytes are handed to the operating system, or with the error. */
  write(chunk: Buffer, written?: (error?: Error | null) => void): void;
  /** Starts passing acknowledgements and drain events to `listener`; the returned function stops it. */
  listen(listener: PortListener): () => void;
}

/** The facts of a connection that the port passes on; `Connection` in connect.ts has them all. */
interface MqttConnection {
  readonly client: MqttClient;
  readonly limits: SendLimits;
  readonly sessionPresent: boolean;
}

/**
 * Adapts an MQTT.js connection. MQTT.js keeps the connection (CONNECT, TLS, WebSocket, keepalive) and parses what the
 * broker sends; acknowledgements of packet ids it did not allocate itself are passed to us through `packetreceive`,
 * and MQTT.js leaves them alone otherwise (a test pins that behaviour of the version in package.json).
 */
export function mqttPort(connection: MqttConnection): ConnectionPort {
  const { client } = connection;
  // MQTT.js replaces its stream when it reconnects by itself; it never does here, but the stream is looked up, not
  // kept.
  const stream = (): Duplex => client.stream;
  return {
    limits: connection.limits,
    sessionPresent: connection.sessionPresent,
    get needsDrain() {
      return stream().writableNeedDrain;
    },
    write(chunk, written) {
      stream().write(chunk, written);
    },
    listen(listener) {
      const onPacket = (packet: Packet): void => {
        if (packet.cmd !== 'puback' && packet.cmd !== 'pubrec' && packet.cmd !== 'pubcomp') return;
        listener.acknowledged({
          kind: packet.cmd,
          packetId: packet.messageId ?? 0,
          reasonCode: packet.reasonCode ?? 0,
        });
      };
      const onDrain = (): void => listener.drained();
      const drainSource = stream();
      client.on('packetreceive', onPacket);
      drainSource.on('drain', onDrain);
      return () => {
        client.off('packetreceive', onPacket);
        drainSource.off('drain', onDrain);
      };
    },
  };
}
