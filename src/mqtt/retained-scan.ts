/**
 * Reading the retained messages under a topic filter: what a broker sends a new subscriber. An overwrite uses it to
 * learn which keys a stream has on the broker before it publishes, and which of them are stale after.
 *
 * It runs on a connection of its own (client ID `<client>-keys`, clean session), not on a publishing one: the
 * publishers number their packets themselves, and a SUBACK on their connection would collide with those ids.
 *
 * MQTT has no "end of retained messages". The scan subscribes to the filter, and once the SUBACK is in, publishes a
 * marker at QoS 1 to a topic of its own that it also subscribes to. A broker queues the retained messages for the new
 * subscription before it can route the marker to the same client, so the marker arriving means every retained
 * message has arrived too (Mosquitto, EMQX and HiveMQ deliver a client's messages in the order they were queued).
 */
import { randomUUID } from 'node:crypto';
import type { IPublishPacket, ISubscriptionGrant, MqttClient } from 'mqtt';
import type { Settings } from '../config/settings.js';
import { ConfigError, TransientError } from '../errors.js';
import { connectBroker } from './connect.js';

export interface RetainedMessage {
  readonly topic: string;
  /** `airbyte_generation_id` of the message (MQTT 5 user property); undefined when it has none. */
  readonly generation: number | undefined;
}

/** What reading one filter found. */
export interface ScanResult {
  readonly messages: number;
}

export class RetainedScan {
  private constructor(
    private readonly client: MqttClient,
    private readonly markerTopic: string,
    private readonly timeoutMs: number,
  ) {}

  /** Connects the scanning connection. */
  static async open(settings: Settings): Promise<RetainedScan> {
    const clientId = `${settings.clientId}-keys`;
    const connection = await connectBroker({ ...settings, clientId, cleanSession: true, sessionExpirySeconds: 0 });
    const base = settings.testTopic ?? 'airbyte/destination-mqtt';
    return new RetainedScan(connection.client, `${base}/scan-marker/${randomUUID()}`, Math.max(settings.connectTimeoutMs, 30_000));
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
        client.unsubscribe([filter, markerTopic], (err) => (err ? reject(err) : resolve({ messages })));
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            done(
              new TransientError(
                `Reading the retained messages under "${filter}" did not finish: the broker did not deliver the end marker published to "${markerTopic}" within ${this.timeoutMs / 1000} s. ` +
                  'The connector needs to publish and subscribe there (under the test topic, or airbyte/destination-mqtt when none is set).',
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
        found({ topic, generation: generationOf(packet) });
      };
      const onClose = (): void =>
        done(
          new TransientError(
            `The broker closed the connection while the retained messages under "${filter}" were being read. Some brokers close it instead of refusing a subscription: ` +
              'the connector needs subscribe permission on that filter for an overwrite.',
          ),
        );
      client.on('message', onMessage);
      client.on('close', onClose);
      arm();
      client.subscribe([markerTopic, filter], { qos: 1 }, (err, granted) => {
        // MQTT.js reports a failure SUBACK as an error (ErrorWithSubackPacket), older versions as a grant of 0x80.
        const refused = err ? err.message : (granted ?? []).find((grant: ISubscriptionGrant) => grant.qos >= 0x80)?.topic;
        if (refused !== undefined) {
          return done(
            new ConfigError(
              `The broker refused the subscription to "${filter}" (${err ? err.message : 'failure SUBACK'}). An overwrite reads the stream's retained keys before it publishes: ` +
                'give this client subscribe permission on that filter, or use the sync mode append_dedup, which keeps keys without clearing stale ones.',
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

function generationOf(packet: IPublishPacket): number | undefined {
  const value = packet.properties?.userProperties?.airbyte_generation_id;
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const generation = Number(text);
  return Number.isSafeInteger(generation) && generation >= 0 ? generation : undefined;
}
