/**
 * A broker that refuses chosen records: a Mosquitto behind a small proxy that reads the MQTT 5 packets the client
 * sends and answers a QoS 1 PUBLISH whose payload holds a marker with PUBACK 0x99 (Payload format invalid) itself,
 * without passing it on. Everything else goes through byte for byte, both ways.
 *
 * Brokers refuse one message for reasons of their own (a schema check, a rule, a quota), and a test needs one that
 * refuses a record in the middle of a batch while accepting the rest. Mosquitto refuses by topic only (its ACL), and
 * aedes 1.2 speaks MQTT 3.1.1, which has no reason codes: it can only close the connection. The proxy only drops
 * PUBLISH packets it answers itself, so the broker must not be told topic aliases (`max_topic_alias 0` on the
 * Mosquitto behind it): an alias set up by a dropped packet would be unknown to it.
 */
import { type AddressInfo, type Socket, createConnection, createServer } from 'node:net';

export interface RefusingProxy {
  readonly port: number;
  /** How many PUBLISH packets the proxy refused, and how many it passed on. */
  readonly refused: number;
  readonly passed: number;
  close(): Promise<void>;
}

const PUBLISH = 3;
const PAYLOAD_FORMAT_INVALID = 0x99;

/** A variable byte integer at `at`: its value and its length, or undefined when `buffer` ends inside it. */
function varint(buffer: Buffer, at: number): { value: number; length: number } | undefined {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (at + i >= buffer.length) return undefined;
    const byte = buffer[at + i] as number;
    value += (byte & 0x7f) * 128 ** i;
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
  }
  throw new Error('malformed remaining length');
}

/** Splits the client's byte stream into whole MQTT packets, keeping what is left for the next chunk. */
class PacketSplitter {
  private pending: Buffer = Buffer.alloc(0);

  *packets(chunk: Buffer): Generator<Buffer> {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const length = varint(this.pending, 1);
      if (!length) return;
      const end = 1 + length.length + length.value;
      if (this.pending.length < end) return;
      yield this.pending.subarray(0, end);
      this.pending = this.pending.subarray(end);
    }
  }
}

/** The packet id and payload of an MQTT 5 QoS 1 or 2 PUBLISH packet. */
function publishParts(packet: Buffer): { id: number; payload: Buffer } | undefined {
  const header = packet[0] as number;
  if (header >> 4 !== PUBLISH || ((header >> 1) & 3) === 0) return undefined;
  const remaining = varint(packet, 1) as { length: number };
  let at = 1 + remaining.length;
  at += 2 + packet.readUInt16BE(at); // topic
  const id = packet.readUInt16BE(at);
  at += 2;
  const properties = varint(packet, at) as { value: number; length: number };
  at += properties.length + properties.value;
  return { id, payload: packet.subarray(at) };
}

/** Starts the proxy on a free port in front of the broker at `brokerPort`, refusing payloads that contain `marker`. */
export async function startRefusingProxy(brokerPort: number, marker: string): Promise<RefusingProxy> {
  const needle = Buffer.from(marker, 'utf8');
  const sockets = new Set<Socket>();
  const counts = { refused: 0, passed: 0 };
  const server = createServer((client) => {
    const broker = createConnection({ host: '127.0.0.1', port: brokerPort });
    sockets.add(client).add(broker);
    const splitter = new PacketSplitter();
    client.on('data', (chunk: Buffer) => {
      for (const packet of splitter.packets(chunk)) {
        const publish = publishParts(packet);
        if (publish?.payload.includes(needle)) {
          counts.refused++;
          client.write(Buffer.from([0x40, 0x03, publish.id >> 8, publish.id & 0xff, PAYLOAD_FORMAT_INVALID]));
          continue;
        }
        if (publish) counts.passed++;
        broker.write(packet);
      }
    });
    broker.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    for (const socket of [client, broker]) socket.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get refused() {
      return counts.refused;
    },
    get passed() {
      return counts.passed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
