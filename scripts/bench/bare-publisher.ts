/**
 * The reference the connector is measured against: a bare MQTT.js publisher that does none of the connector's work.
 * It reads envelopes already built ("topic<TAB>payload" per line), then publishes them as fast as MQTT.js allows done
 * well: at QoS 0 paced by the socket's drain, at QoS 1/2 with a window refilled once per tick.
 *
 *   node dist/scripts/bench/bare-publisher.js URL QOS WINDOW FILE [PROTOCOL_VERSION]
 *
 * PROTOCOL_VERSION is MQTT.js's `protocolVersion`: 4 (MQTT 3.1.1, the default) or 5.
 */
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';

const [url, qosText, windowText, file, protocolText = '4'] = process.argv.slice(2);
if (!url || !qosText || !windowText || !file)
  throw new Error('usage: bare-publisher URL QOS WINDOW FILE [PROTOCOL_VERSION]');
if (protocolText !== '4' && protocolText !== '5')
  throw new Error(`protocol version must be 4 or 5, not ${protocolText}`);
const qos = Number(qosText) as 0 | 1 | 2;
const window = Number(windowText);
const protocolVersion = protocolText === '5' ? 5 : 4;
const messages = readFileSync(file, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => {
    const tab = line.indexOf('\t');
    return [line.slice(0, tab), line.slice(tab + 1)] as const;
  });

// Logging off, as in the connector: MQTT.js calls `debug` on every step of every publish.
const client = await mqtt.connectAsync(url, {
  protocolVersion,
  reconnectPeriod: 0,
  writeCache: false,
  queueQoSZero: false,
  log: () => undefined,
});
const options = { qos, retain: false };
let next = 0;
let inflight = 0;
let scheduled = false;

await new Promise<void>((resolve, reject) => {
  const onAck = (err?: Error): void => {
    if (err) return reject(err);
    inflight--;
    if (next === messages.length && inflight === 0) return resolve();
    if (!scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  const pump = (): void => {
    scheduled = false;
    while (next < messages.length && inflight < window) {
      const [topic, payload] = messages[next++] as readonly [string, string];
      inflight++;
      client.publish(topic, payload, options, onAck);
      if (qos === 0 && client.stream.writableNeedDrain) return;
    }
  };
  pump();
});
await client.endAsync();
