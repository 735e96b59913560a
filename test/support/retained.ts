/**
 * What a new subscriber sees: every retained message under a filter, read the way the connector itself reads them
 * (at QoS 0, a marker published after the SUBACK ends the list), so a test can compare the broker's whole retained set.
 */
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';

export interface RetainedEntry {
  readonly payload: string;
  /** `airbyte_generation_id`, when the subscriber is MQTT 5 and the message carries it. */
  readonly generation: string | undefined;
}

export async function retainedUnder(
  url: string,
  filter: string,
  timeoutMs = 10_000,
): Promise<Map<string, RetainedEntry>> {
  const client = await mqtt.connectAsync(url, {
    reconnectPeriod: 0,
    protocolVersion: 5,
    clientId: `retained-${randomUUID()}`,
  });
  const marker = `test-marker/${randomUUID()}`;
  const found = new Map<string, RetainedEntry>();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no end marker within ${timeoutMs} ms; ${found.size} retained message(s) so far`)),
        timeoutMs,
      );
      client.on('message', (topic, payload, packet) => {
        if (topic === marker) {
          clearTimeout(timer);
          resolve();
          return;
        }
        if (!packet.retain) return;
        const generation = packet.properties?.userProperties?.airbyte_generation_id;
        found.set(topic, {
          payload: payload.toString('utf8'),
          generation: Array.isArray(generation) ? generation[0] : generation,
        });
      });
      client.subscribeAsync([filter, marker], { qos: 0 }).then(
        () => client.publishAsync(marker, 'end', { qos: 1 }),
        (err: unknown) => reject(err as Error),
      );
    });
  } finally {
    await client.endAsync();
  }
  return found;
}

/** Publishes retained messages directly, as an earlier sync or another writer would have left them. */
export async function putRetained(
  url: string,
  messages: Readonly<Record<string, string>>,
  generation?: number,
): Promise<void> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, protocolVersion: 5 });
  try {
    for (const [topic, payload] of Object.entries(messages)) {
      const properties =
        generation === undefined ? undefined : { userProperties: { airbyte_generation_id: String(generation) } };
      await client.publishAsync(topic, payload, { qos: 1, retain: true, properties });
    }
  } finally {
    await client.endAsync();
  }
}
