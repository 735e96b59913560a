/**
 * Reading the retained messages under a topic filter: what a broker sends a new subscriber. An overwrite uses it to
 * learn which keys a stream has on the broker before it publishes, and which of them are stale after.
 *
 * It runs on a connection of its own (client ID `<client>-keys`, clean session), not on a publishing one: the
 * publishers number their packets themselves, and a SUBACK on their connection would collide with those ids.
 *
 * It subscribes at QoS 0. At QoS 1 a default Mosquitto delivers at most 20 messages in flight and queues 1,000 more,
 * and drops the rest, the marker included: a stream with more than about 1,020 keys could never be read. At QoS 0 it
 * delivered 100,000 of 100,000 with the marker last (measured on Mosquitto 2.0.11 with default limits).
 *
 * MQTT has no "end of retained messages". The scan subscribes to the filter, and once the SUBACK is in, publishes a
 * marker at QoS 1 to a topic of its own that it also subscribes to. A broker queues the retained messages for the new
 * subscription before it can route the marker to the same client, so the marker arriving means every retained
 * message has arrived too. Mosquitto does that (verified by the tests); aedes does not (it sends retained messages
 * after later ones), and RabbitMQ sends no retained messages for wildcard filters at all. A key the first read misses
 * is never cleared, and the cleanup says how many such keys it found (truncation.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IPublishPacket, ISubscriptionGrant, MqttClient } from 'mqtt';
import type { BrokerSettings } from '../config/settings.js';
import { ConfigError, TransientError } from '../errors.js';
import { connectBroker } from './connect.js';

export interface RetainedMessage {
  readonly topic: string;
  /**
   * The message's generation: its MQTT 5 user property `airbyte_generation_id`, else the `_airbyte_generation_id` of
   * an airbyte_v2 payload; undefined when it carries neither.
   */
  readonly generation: number | undefined;
  readonly payload: Buffer;
}

/** What reading one filter found. */
export interface ScanResult {
  readonly messages: number;
}

/**
 * Where the connector keeps topics of its own (the scan's end marker, a stream's generation marker): under the test
 * topic, which the user already lets it publish to, or `airbyte/destination-mqtt` when none is set.
 */
export function ownTopicBase(testTopic: string | undefined): string {
  return testTopic ?? 'airbyte/destination-mqtt';
}

export class RetainedScan {
  private constructor(
    private readonly client: MqttClient,
    private readonly markerTopic: string,
    private readonly timeoutMs: number,
  ) {}

  /** Connects the scanning connection; its end markers go under the test topic, `testTopic`, or the default base. */
  static async open(broker: BrokerSettings, testTopic: string | undefined): Promise<RetainedScan> {
    const connection = await connectBroker(broker, { clientId: `${broker.clientId}-keys`, freshSession: true });
    return new RetainedScan(
      connection.client,
      `${ownTopicBase(testTopic)}/scan-marker/${randomUUID()}`,
      Math.max(broker.connectTimeoutMs, 30_000),
    );
  }

  /** Publishes a retained message at QoS 1 and resolves once the broker has acknowledged it. */
  publishRetained(topic: string, payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, { qos: 1, retain: true }, (error) =>
        error
          ? reject(new TransientError(`Publishing the retained message on "${topic}" failed: ${error.message}`))
          : resolve(),
      );
    });
  }

  /**
   * Calls `found` for every retained message under `filter`, and resolves once the broker has sent them all. Rejects
   * with a ConfigError when the broker refuses the subscription, and with a TransientError when the marker does not
   * come back within the timeout after the last message (the timeout restarts with every message received).
   */
  scan(filter: string, found: (message: RetainedMessage) => void): Promise<ScanResult> {
    const { client, markerTopic } = this;
    let messages = 0;
    return new Promise<ScanResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (error?: Error): void => {
        clearTimeout(timer);
        client.off('message', onMessage);
        client.off('close', onClose);
        if (error) return reject(error);
        // The scan connection reads one filter after another: leave this one before the next.
        client.unsubscribe([filter, markerTopic], (err) =>
          err
            ? reject(
                new TransientError(
                  `The connection that reads retained messages failed after reading "${filter}": ${err.message}`,
                ),
              )
            : resolve({ messages }),
        );
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            done(
              new TransientError(
                `Reading the retained messages under "${filter}" did not finish: ` +
                  `the broker did not deliver the end marker published to "${markerTopic}" ` +
                  `within ${this.timeoutMs / 1000} s. ` +
                  'The connector needs to publish and subscribe there ' +
                  '(under the test topic, or airbyte/destination-mqtt when none is set), ' +
                  'and the broker must not drop messages to a slow subscriber.',
              ),
            ),
          this.timeoutMs,
        );
      };
      const onMessage = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
        arm();
        if (topic === markerTopic) return done();
        if (!packet.retain || payload.length === 0) return;
        messages++;
        found({ topic, generation: generationOf(packet, payload), payload });
      };
      const onClose = (): void =>
        done(
          new TransientError(
            `The broker closed the connection while the retained messages under "${filter}" were being read. ` +
              'Some brokers close it instead of refusing a subscription: ' +
              'the connector needs subscribe permission on that filter for an overwrite.',
          ),
        );
      client.on('message', onMessage);
      client.on('close', onClose);
      arm();
      client.subscribe([markerTopic, filter], { qos: 0 }, (err, granted) => {
        // MQTT.js reports a failure SUBACK as an error that carries the SUBACK (ErrorWithSubackPacket), and a
        // connection lost meanwhile as a plain error: only the first is the broker's refusal.
        const suback = err !== null && err !== undefined && 'packet' in err;
        if (err && !suback)
          return done(
            new TransientError(
              `The connection that reads retained messages failed while subscribing to "${filter}": ${err.message}`,
            ),
          );
        const refused = err
          ? err.message
          : (granted ?? []).find((grant: ISubscriptionGrant) => grant.qos >= 0x80)?.topic;
        if (refused !== undefined) {
          return done(
            new ConfigError(
              `The broker refused the subscription to "${filter}" (${err ? err.message : 'failure SUBACK'}). ` +
                "An overwrite reads the stream's retained keys before it publishes: " +
                'give this client subscribe permission on that filter, ' +
                'or use the sync mode append_dedup, which keeps keys without clearing stale ones.',
            ),
          );
        }
        client.publish(markerTopic, 'end', { qos: 1, retain: false }, (error) => {
          if (error) done(error);
        });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(false, {}, () => resolve()));
  }
}

const V2_START = Buffer.from('{"_airbyte_raw_id":');
const V2_GENERATION = Buffer.from('"_airbyte_generation_id":');

function generationOf(packet: IPublishPacket, payload: Buffer): number | undefined {
  const value = packet.properties?.userProperties?.airbyte_generation_id;
  let text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) {
    // An airbyte_v2 payload (the connector writes it without spaces): the digits after the member name.
    if (!payload.subarray(0, V2_START.length).equals(V2_START)) return undefined;
    const at = payload.indexOf(V2_GENERATION);
    if (at < 0) return undefined;
    text = /^\d+/.exec(payload.toString('latin1', at + V2_GENERATION.length, at + V2_GENERATION.length + 20))?.[0];
    if (text === undefined) return undefined;
  }
  const generation = Number(text);
  return Number.isSafeInteger(generation) && generation >= 0 ? generation : undefined;
}
