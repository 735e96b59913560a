/** A separate MQTT client that records everything published on the broker, to compare with what was sent. */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';

export interface Delivery {
  readonly topic: string;
  readonly payload: string;
  /** The payload's bytes, for payloads that are not text (compressed ones). */
  readonly raw: Buffer;
  readonly qos: number;
  readonly retain: boolean;
  /** MQTT 5 publish properties, when the subscriber connected with MQTT 5. */
  readonly properties: IPublishPacket['properties'];
}

export interface Subscriber {
  readonly client: MqttClient;
  readonly messages: Delivery[];
  /** Resolves once `count` messages have arrived; rejects after `timeoutMs` saying how many did. */
  waitFor(count: number, timeoutMs?: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

export async function subscribe(url: string, filter = '#', options: IClientOptions = {}): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  const messages: Delivery[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      payload: payload.toString('utf8'),
      raw: payload,
      qos: packet.qos,
      retain: packet.retain,
      properties: packet.properties,
    });
    for (const waiter of waiters) waiter();
  });
  await client.subscribeAsync(filter, { qos: 2 });
  return {
    client,
    messages,
    waitFor: (count, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (messages.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} messages, got ${messages.length} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => client.endAsync(),
  };
}
