/**
 * Records shaped like real data (see test/support/shapes.ts) through aedes, at every QoS, over TCP and WebSocket, with
 * MQTT 3.1 and 3.1.1: every record must arrive with its data byte for byte, in order per topic, nothing else, and
 * every state must come back with the right count. Sizes that only real data has (a run of a few kilobytes, 64 KiB,
 * 200 KB) are what break write batching and framing, and small uniform records never reach them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type EmbeddedBroker, withAedes } from '../support/aedes.js';
import { runWrite } from '../support/connector.js';
import {
  type Wire,
  aimsReached,
  assertShapesDelivered,
  assertShapesStates,
  deliveriesBeforeSentinel,
  SHAPE_CATALOG,
  SHAPES_SEED,
  plannedSync,
  QOS_NAMES,
} from '../support/shapes.js';
import { type Delivery, subscribe } from '../support/subscriber.js';

/** Each QoS over each transport, the protocol version alternating so that both meet every QoS and transport. */
const CASES = [
  { qos: 0, transport: 'tcp', version: '3.1.1' },
  { qos: 1, transport: 'tcp', version: '3.1' },
  { qos: 2, transport: 'tcp', version: '3.1.1' },
  { qos: 0, transport: 'websocket', version: '3.1' },
  { qos: 1, transport: 'websocket', version: '3.1.1' },
  { qos: 2, transport: 'websocket', version: '3.1' },
] as const;

/** Resolves once the broker has closed the connection of `clientId`, so it has read everything that client sent. */
function disconnected(broker: EmbeddedBroker, clientId: string, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      broker.aedes.off('clientDisconnect', onDisconnect);
      reject(new Error(`${label}: the connector's connection was still open on the broker after 30 s`));
    }, 30_000);
    // When the test fails before waiting for this, the timer must not hold the process open.
    timer.unref();
    const onDisconnect = (client: { id: string }): void => {
      if (client.id !== clientId) return;
      clearTimeout(timer);
      broker.aedes.off('clientDisconnect', onDisconnect);
      resolve();
    };
    broker.aedes.on('clientDisconnect', onDisconnect);
  });
}

describe('records shaped like real data, through aedes', () => {
  const broker = withAedes({}, { path: '/mqtt' });

  CASES.forEach(({ qos, transport, version }, index) => {
    it(`delivers every size byte for byte and echoes every state at QoS ${qos} over ${transport} with MQTT ${version}`, async (t) => {
      const seed = SHAPES_SEED ?? 4100 + index;
      const label = `QoS ${qos} ${transport} MQTT ${version}`;
      const wire: Wire = { qos, mqtt5: false, aliases: false };
      const sync = plannedSync(seed, wire, (line) => t.diagnostic(line));
      if (qos === 0)
        assert.ok(
          [...aimsReached(sync.records)].some((r) => r.startsWith('remaining 127 bytes')),
          `seed ${seed}: remaining length 127 not reached`,
        );

      const client = `shapes-aedes-${index}`;
      const gone = disconnected(broker, client, label);
      gone.catch(() => undefined); // awaited below; a test that fails earlier must not leave an unhandled rejection
      const subscriber = await subscribe(broker.url, '#');
      const receivedFrom = broker.received.length;
      try {
        const url = transport === 'tcp' ? broker.url : `ws://127.0.0.1:${broker.wsPort}/mqtt`;
        const config = {
          broker_url: url,
          protocol_version: version,
          message_qos: QOS_NAMES[qos],
          client,
          topic_pattern: '{namespace}/{stream}',
        };
        const result = await runWrite(config, SHAPE_CATALOG, sync.input, { timeoutMs: 60_000 });
        assertShapesStates(result, sync, label);
        // At QoS 0 a state only means "handed to the operating system": wait until the broker has read it all.
        await gone;

        // What the broker received from the connector: no subscriber in between, nothing it could drop.
        const received: Delivery[] = broker.received
          .slice(receivedFrom)
          .filter((p) => !p.topic.startsWith('sentinel/'))
          .map((p) => ({
            topic: p.topic,
            payload: p.payload.toString('utf8'),
            raw: Buffer.from(p.payload),
            qos: p.qos,
            retain: p.retain,
            properties: undefined,
          }));
        assertShapesDelivered(received, sync, `${label}, as the broker received them`);
        assert.ok(
          received.every((p) => p.qos === qos && !p.retain),
          `${label}, seed ${seed}: published with QoS ${qos}, not retained`,
        );

        const deliveries = await deliveriesBeforeSentinel(subscriber, sync.records.length, `${label}, seed ${seed}`);
        assertShapesDelivered(deliveries, sync, `${label}, as a subscriber received them`);
      } finally {
        await subscriber.close();
      }
    });
  });
});
