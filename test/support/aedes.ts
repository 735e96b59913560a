/** An aedes broker embedded in the test process, listening on a free loopback port. */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type AedesOptions, type AedesPublishPacket } from 'aedes';

export interface EmbeddedBroker {
  readonly aedes: Aedes;
  readonly port: number;
  readonly url: string;
  /** Every PUBLISH a client sent, as the broker received it (broker-side view, independent of any subscriber). */
  readonly received: AedesPublishPacket[];
  close(): Promise<void>;
}

export async function startAedes(options: AedesOptions = {}): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker(options);
  const received: AedesPublishPacket[] = [];
  aedes.on('publish', (packet, client) => {
    if (client) received.push(packet);
  });
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    aedes,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    received,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
