/**
 * Records shaped like real data (see test/support/shapes.ts) through a real Mosquitto 2.0, with MQTT 3.1.1 and 5, over
 * TCP and WebSocket, at every QoS: every record must arrive with its data byte for byte, in order per topic, nothing
 * else, and every state must come back with the right count. A 3.1.1 client gets no Receive Maximum from Mosquitto,
 * which closes the connection of one with more than 20 QoS 2 messages in flight, so large records at QoS 2 also test
 * the window's defaults.
 *
 * Then the packet size limit of MQTT 5, at its edge: a record whose PUBLISH packet is exactly the broker's Maximum
 * Packet Size is delivered, and one byte more fails the sync before that record is sent, naming the stream and the
 * input line.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { runWrite } from '../support/connector.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import {
  type ShapeStream,
  type ShapedRecord,
  type Wire,
  assertShapesDelivered,
  assertShapesStates,
  dataBytesForPacket,
  dataOfBytes,
  deliveriesBeforeSentinel,
  mulberry32,
  shapedSync,
  SHAPE_CATALOG,
  SHAPES_SEED,
  plannedSync,
  QOS_NAMES,
} from '../support/shapes.js';
import { catalogOf } from '../support/messages.js';
import { subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();

describe('records shaped like real data, through Mosquitto', { skip }, () => {
  // A WebSocket listener takes no bind address: this Mosquitto's libwebsockets backend refuses to start with one.
  const mosquitto = withMosquitto({
    portCount: 2,
    listeners: ([tcp, ws]) => `listener ${tcp} 127.0.0.1\nallow_anonymous true\nlistener ${ws}\nprotocol websockets`,
  });
  let tcpPort: number;
  let wsPort: number;
  before(() => {
    [tcpPort, wsPort] = mosquitto.ports as [number, number];
  });

  let index = 0;
  for (const version of ['3.1.1', '5'] as const) {
    for (const transport of ['tcp', 'websocket'] as const) {
      for (const qos of [0, 1, 2] as const) {
        const caseIndex = index++;
        const seed = SHAPES_SEED ?? 5100 + caseIndex;
        it(`delivers every size byte for byte and echoes every state at QoS ${qos} over ${transport} with MQTT ${version}`, async (t) => {
          const label = `QoS ${qos} ${transport} MQTT ${version}`;
          // Mosquitto announces a topic alias maximum to MQTT 5 clients: after a stream's first message, no topic.
          const wire: Wire = { qos, mqtt5: version === '5', aliases: version === '5' };
          const sync = plannedSync(seed, wire, (line) => t.diagnostic(line));

          const subscriber = await subscribe(mosquitto.url, '#');
          try {
            const url = transport === 'tcp' ? `mqtt://127.0.0.1:${tcpPort}` : `ws://127.0.0.1:${wsPort}/mqtt`;
            const client = `shapes-mosquitto-${caseIndex}`;
            const config = {
              broker_url: url,
              protocol_version: version,
              message_qos: QOS_NAMES[qos],
              client,
              topic_pattern: '{namespace}/{stream}',
            };
            const result = await runWrite(config, SHAPE_CATALOG, sync.input, { timeoutMs: 60_000 });
            assertShapesStates(result, sync, label, mosquitto.log().slice(-2000));
            const deliveries = await deliveriesBeforeSentinel(
              subscriber,
              sync.records.length,
              `${label}, seed ${seed}`,
            );
            assertShapesDelivered(deliveries, sync, label);
            // The connector ended with a DISCONNECT, not by having its connection dropped (over a limit, say).
            assert.match(mosquitto.log(), new RegExp(`Client ${client} disconnected\\.`), `${label}, seed ${seed}`);
            assert.ok(
              deliveries.every((d) => d.qos === qos && !d.retain),
              `${label}, seed ${seed}: delivered at QoS ${qos}, not retained`,
            );
          } finally {
            await subscriber.close();
          }
        });
      }
    }
  }
});

describe('MQTT 5 Maximum Packet Size at its edge, against Mosquitto', { skip }, () => {
  /** Exactly one write batch: the largest packet that still fits a fresh batch buffer. */
  const LIMIT = 65_536;
  const mosquitto = withMosquitto({ config: `max_packet_size ${LIMIT}` });

  /**
   * Runs `write` for records of one stream, of the data sizes `sizes` returns given the size that makes a packet of
   * exactly the limit. The topic starts with `prefix` (three characters, so that every case has the same topic
   * length), and the subscriber watches that prefix alone, so that no other case's messages can mix in.
   */
  async function syncAtEdge(
    prefix: string,
    qos: 0 | 1 | 2,
    sizes: (atLimit: number) => number[],
    env: NodeJS.ProcessEnv = {},
  ) {
    const stream: ShapeStream = {
      name: 'blobs',
      namespace: 'lake',
      topic: `${prefix}/lake/blobs`,
      emittedAt: 1_700_000_000_000,
    };
    // The limit applies to a record as it is sent first on a connection: with its topic as well as the alias.
    const atLimit = dataBytesForPacket(stream, { qos, mqtt5: true, aliases: true }, LIMIT, true);
    assert.ok(atLimit !== undefined, `no data size makes a ${LIMIT}-byte packet`);
    const random = mulberry32(5200 + qos);
    const records: ShapedRecord[] = sizes(atLimit).map((bytes) => ({ stream, dataJson: dataOfBytes(random, bytes) }));
    const sync = shapedSync(5200 + qos, records);
    const subscriber = await subscribe(mosquitto.url, `${prefix}/#`);
    const config = {
      broker_host: '127.0.0.1',
      broker_port: mosquitto.port,
      protocol_version: '5',
      message_qos: QOS_NAMES[qos],
      topic_pattern: `${prefix}/{namespace}/{stream}`,
    };
    try {
      const result = await runWrite(config, catalogOf([stream]), sync.input, { env });
      return { sync, result, subscriber };
    } catch (err) {
      await subscriber.close();
      throw err;
    }
  }

  for (const qos of [0, 1, 2] as const) {
    it(`delivers a record whose PUBLISH packet is exactly the limit at QoS ${qos}`, async () => {
      // First on the connection, so the packet on the wire carries the topic and is exactly the limit; then smaller
      // ones; then the same size again, sent with the alias alone.
      const { sync, result, subscriber } = await syncAtEdge(
        `ok${qos}`,
        qos,
        (atLimit) => [atLimit, 2, 16_000, atLimit],
        { LOG_LEVEL: 'DEBUG' },
      );
      const label = `QoS ${qos}`;
      try {
        assertShapesStates(result, sync, label, mosquitto.log().slice(-2000));
        // The limit was in force: the broker announced it and the connector read it.
        assert.match(
          result.stdout,
          new RegExp(`broker limits: .*maximum packet size ${LIMIT} bytes`),
          `${label}, seed ${sync.seed}`,
        );
        const deliveries = await deliveriesBeforeSentinel(
          subscriber,
          sync.records.length,
          `${label}, seed ${sync.seed}`,
          `ok${qos}/sentinel`,
        );
        assertShapesDelivered(deliveries, sync, label);
        assert.doesNotMatch(
          mosquitto.log(),
          /disconnected due to (protocol error|oversize)/i,
          `${label}, seed ${sync.seed}`,
        );
      } finally {
        await subscriber.close();
      }
    });

    it(`fails the sync, naming the stream and the input line, for a record one byte over the limit at QoS ${qos}`, async () => {
      const { sync, result, subscriber } = await syncAtEdge(`no${qos}`, qos, (atLimit) => [
        300,
        atLimit,
        atLimit + 1,
        10,
      ]);
      const label = `QoS ${qos}, seed ${sync.seed}`;
      try {
        const lines = sync.input.split('\n');
        const line = lines.findIndex((l) => l.includes(sync.records[2]?.dataJson ?? '-')) + 1;
        assert.equal(result.code, 1, `${label}: ${result.stdout}`);
        const error = result.traceError();
        assert.equal(error.failure_type, 'config_error', label);
        assert.match(
          String(error.message),
          new RegExp(
            `^Input line ${line}: the record of stream "lake\\.blobs" makes a ${LIMIT + 1}-byte MQTT message, larger than the ${LIMIT} bytes the broker accepts`,
          ),
          label,
        );
        // Only states from before the refused record may have been echoed, in order.
        const statesBefore = lines.slice(0, line - 1).filter((l) => l.startsWith('{"type":"STATE"')).length;
        assert.ok(result.states().length <= statesBefore, `${label}: ${result.stdout}`);
        result
          .states()
          .forEach(({ destinationStats: _stats, ...state }, i) =>
            assert.deepEqual(state, JSON.parse(sync.states[i]?.stateJson ?? 'null'), label),
          );
        // Refused before it was sent: the broker never had to drop the connection.
        assert.doesNotMatch(mosquitto.log(), /disconnected due to (protocol error|oversize)/i, label);
      } finally {
        await subscriber.close();
      }
    });
  }
});
