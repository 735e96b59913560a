/**
 * Records shaped like real data (see test/support/shapes.ts) through aedes, at every QoS, over TCP and WebSocket, with
 * MQTT 3.1 and 3.1.1: every record must arrive with its data byte for byte, in order per topic, nothing else, and
 * every state must come back with the right count. Sizes that only real data has (a run of a few kilobytes, 64 KiB,
 * 200 KB) are what break write batching and framing, and small uniform records never reach them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EmbeddedBroker, startAedes } from '../support/aedes.js';
import { runWrite } from '../support/connector.js';
import { catalogOf } from '../support/messages.js';
import {
  type ShapeStream,
  type Wire,
  aimsReached,
  assertShapesDelivered,
  assertShapesStates,
  deliveriesBeforeSentinel,
  shapeRecords,
  shapedSync,
} from '../support/shapes.js';
import { type Delivery, subscribe } from '../support/subscriber.js';

/** `s` has the shortest name, topic and emitted_at, so that the smallest payload and packet sizes can be reached. */
const STREAMS: readonly ShapeStream[] = [
  { name: 's', topic: 's', emittedAt: 7 },
  { name: 'users', namespace: 'crm', topic: 'crm/users', emittedAt: 1_700_000_000_000 },
  { name: 'events', namespace: 'app', topic: 'app/events', emittedAt: 1_700_000_012_345 },
];
const CATALOG = catalogOf(STREAMS);
const QOS_NAMES = ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'] as const;
/** Replays one seed for every case when set, e.g. to chase a failure seen with another seed. */
const SEED_OVERRIDE = process.env.SHAPES_SEED === undefined ? undefined : Number(process.env.SHAPES_SEED);

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
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startAedes({}, { path: '/mqtt' });
  });
  after(() => broker.close());

  CASES.forEach(({ qos, transport, version }, index) => {
    it(`delivers every size byte for byte and echoes every state at QoS ${qos} over ${transport} with MQTT ${version}`, async (t) => {
      const seed = SEED_OVERRIDE ?? 4100 + index;
      const label = `QoS ${qos} ${transport} MQTT ${version}`;
      const wire: Wire = { qos, mqtt5: false, aliases: false };
      const sync = shapedSync(seed, shapeRecords(seed, STREAMS, wire));
      const dataBytes = sync.records.reduce((sum, r) => sum + Buffer.byteLength(r.dataJson), 0);
      t.diagnostic(`seed ${seed}: ${sync.records.length} records, ${dataBytes} bytes of data, ${sync.states.length} states`);
      // The boundaries that framing and the write batch care about must be in the data, or the test proves little.
      const reached = aimsReached(sync.records);
      for (const aim of ['packet 65536 bytes', 'packet 4096 bytes', 'remaining 16384 bytes', 'payload 128 bytes']) {
        assert.ok(
          [...reached].some((r) => r.startsWith(aim)),
          `seed ${seed}: no record aimed at ${aim}`,
        );
      }
      if (qos === 0)
        assert.ok(
          [...reached].some((r) => r.startsWith('remaining 127 bytes')),
          `seed ${seed}: remaining length 127 not reached`,
        );

      const client = `shapes-aedes-${index}`;
      const gone = disconnected(broker, client, label);
      gone.catch(() => undefined); // awaited below; a test that fails earlier must not leave an unhandled rejection
      const subscriber = await subscribe(broker.url, '#');
      const receivedFrom = broker.received.length;
      try {
        const url = transport === 'tcp' ? broker.url : `ws://127.0.0.1:${broker.wsPort}/mqtt`;
        const config = { broker_url: url, protocol_version: version, message_qos: QOS_NAMES[qos], client, topic_pattern: '{namespace}/{stream}' };
        const result = await runWrite(config, CATALOG, sync.input, { timeoutMs: 60_000 });
        assertShapesStates(result, sync, label);
        // At QoS 0 a state only means "handed to the operating system": wait until the broker has read it all.
        await gone;

        // What the broker received from the connector: no subscriber in between, nothing it could drop.
        const received: Delivery[] = broker.received
          .slice(receivedFrom)
          .filter((p) => !p.topic.startsWith('sentinel/'))
          .map((p) => ({ topic: p.topic, payload: p.payload.toString('utf8'), qos: p.qos, retain: p.retain, properties: undefined }));
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
