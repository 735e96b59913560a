/**
 * Delivery verification for MQTT 3.1 and 3.1.1, which give a broker no way to refuse a single message: a broker whose
 * access rules forbid publishing to a topic acknowledges the message and drops it (Mosquitto does), so a sync would
 * end with every state echoed and nothing delivered. Here a subscriber watches each stream's topic filter, and the
 * first message published to it must come back before the sync goes on; if it does not, the sync fails before any
 * state that covers it is emitted. MQTT 5 needs none of this: its PUBACK carries "Not authorized" (0x87).
 *
 * The subscriber is a separate, short-lived connection, not a subscription on a publishing connection:
 * - the publisher allocates packet ids on its connection itself, while MQTT.js would allocate the SUBSCRIBE's, and
 *   MQTT.js reports an error when an acknowledgement arrives for an id it allocated to something else;
 * - a subscription on the publishing session would bring every later message of the topic back over the publishing
 *   connection, doubling its traffic until unsubscribed, and the broker's deliveries would need acknowledging there;
 * - it closes as soon as every filter is verified, and its failures (a subscription refused, a client ID not
 *   allowed) only mean "could not verify", never a failed publish.
 *
 * Filters are verified once each: streams that share a topic share its verdict (access rules are per topic). A
 * filter may hold wildcards (`+` for per-record key levels), so one subscription covers every topic of a stream.
 */
import type { MqttClient } from 'mqtt';
import { describeStream } from '../airbyte/catalog.js';
import type { StreamRoute } from './routes.js';
import type { Channel } from './channel.js';
import type { BrokerSettings } from '../config/settings.js';
import type { Payload } from '../mqtt/packets.js';
import { field } from '../config/spec.js';
import { ConfigError, asConnectorError } from '../errors.js';
import { connectBroker, disconnect } from '../mqtt/connect.js';

/** What is verified: for each key (a stream, or the check's test message), the topic filter its messages match. */
export type VerifiedFilters = ReadonlyMap<string, { readonly filter: string; readonly label: string }>;

/**
 * What a sync verifies: per stream, its topic. A stream whose topics vary per record (key levels) gives the filter
 * that matches them all, with `+` for each such level, and its first message is verified against that.
 */
export function streamFilters(routes: ReadonlyMap<string, StreamRoute>): VerifiedFilters {
  const filters = new Map<string, { filter: string; label: string }>();
  for (const [key, route] of routes)
    filters.set(key, {
      filter: route.topicName,
      label: `the first record of stream ${describeStream(route.namespace, route.name)}`,
    });
  return filters;
}

type FilterState = 'subscribed' | 'verified' | 'unverifiable';

/** Waits for a probe: given the promise of its acknowledgement, resolves once it has come back (delivery-check.ts). */
export type DeliveryWait = (acknowledged: Promise<void>) => Promise<void>;

interface Probe {
  readonly filter: string;
  /** Resolves once the probe came back, or once it cannot be verified any more (the subscriber is gone). */
  readonly arrived: Promise<void>;
  settle(): void;
}

export class DeliveryCheck {
  private readonly states = new Map<string, FilterState>();
  /** Probes not yet back, by payload. */
  private readonly waiting = new Map<string, Probe>();
  private readonly running = new Map<string, DeliveryWait>();
  private closed = false;

  private constructor(
    private readonly broker: BrokerSettings,
    private readonly filters: VerifiedFilters,
    private readonly client: MqttClient | undefined,
    private readonly warn: (message: string) => void,
  ) {
    client?.on('message', (_topic, payload, packet) => {
      // A retained message sent because the subscription is new is someone's earlier message, never the probe.
      if (packet.retain || this.waiting.size === 0) return;
      this.waiting.get(payload.toString('latin1'))?.settle();
    });
    client?.once('close', () => this.subscriberLost());
  }

  /**
   * Subscribes to every filter over a connection of its own, and resolves once the broker has answered each
   * subscription (or `connect_timeout` has passed). Returns undefined when nothing is to be verified (`verify`
   * false: MQTT 5, or `verify_delivery` off). Anything that prevents verifying is passed to `warn` and leaves those
   * filters unverified; it never fails the sync.
   */
  static async open(
    broker: BrokerSettings,
    verify: boolean,
    filters: VerifiedFilters,
    warn: (message: string) => void,
  ): Promise<DeliveryCheck | undefined> {
    if (!verify || filters.size === 0) return undefined;
    const unique = [...new Set([...filters.values()].map(({ filter }) => filter))];
    let client: MqttClient;
    try {
      ({ client } = await connectBroker(broker, { clientId: `${broker.clientId}-verify`, freshSession: true }));
    } catch (err) {
      warn(
        `${cannotVerify(unique)}: ` +
          `the connection for the verifying subscription failed: ${asConnectorError(err).message}`,
      );
      const check = new DeliveryCheck(broker, filters, undefined, warn);
      for (const filter of unique) check.states.set(filter, 'unverifiable');
      return check;
    }
    client.on('error', () => undefined);
    const check = new DeliveryCheck(broker, filters, client, warn);
    const answers = unique.map(
      (filter) =>
        new Promise<string | undefined>((resolve) => {
          // QoS 0: a stream's filter may hold thousands of retained keys, which the broker sends first; at QoS 1 a
          // default Mosquitto drops all but about 1,020 of them, the probe included (retained-scan.ts).
          client.subscribe(filter, { qos: 0 }, (err) => resolve(err ? filter : undefined));
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), broker.connectTimeoutMs)));
    const answered = await Promise.race([Promise.all(answers), late]);
    clearTimeout(timer);
    if (answered === 'late') {
      for (const filter of unique) check.states.set(filter, 'unverifiable');
      warn(
        `${cannotVerify(unique)}: ` +
          `the broker did not answer the subscription within ${broker.connectTimeoutMs / 1000} s.`,
      );
    } else {
      const refused = answered.filter((filter): filter is string => filter !== undefined);
      for (const filter of unique) check.states.set(filter, refused.includes(filter) ? 'unverifiable' : 'subscribed');
      if (refused.length > 0)
        warn(`${cannotVerify(refused)}: the broker refused the subscription, so this user may not read the topic.`);
    }
    await check.closeIfDone();
    return check;
  }

  /** The first message of a filter being verified holds `channel` back until it has come back (or fails the sync). */
  holdFirst(key: string, sent: Payload, channel: Pick<Channel, 'holdUntil'>): void {
    const verifying = this.published(key, sent);
    if (verifying) channel.holdUntil(verifying);
  }

  /**
   * Called with every message published under `key`, before it can have come back. For the first one on a filter not
   * yet verified, returns the wait for it (`DeliveryWait`): it resolves once the message has come back to the
   * subscriber, and rejects with a configuration error if it has not within `connect_timeout` of being acknowledged.
   * Otherwise undefined: nothing to wait for.
   */
  published(key: string, sent: Payload): DeliveryWait | undefined {
    // Once everything is verified (or cannot be), every record passes here at the cost of one comparison.
    if (this.closed) return undefined;
    const entry = this.filters.get(key);
    if (!entry || this.states.get(entry.filter) !== 'subscribed') return undefined;
    const { filter, label } = entry;
    const running = this.running.get(filter);
    if (running) return running;
    // Probes are compared as bytes, one character per byte: a payload may be compressed, and text is UTF-8 on the wire.
    const payload = typeof sent === 'string' ? Buffer.from(sent, 'utf8').toString('latin1') : sent.toString('latin1');
    let settle = (): void => undefined;
    const arrived = new Promise<void>((resolve) => (settle = resolve));
    this.waiting.set(payload, { filter, arrived, settle });
    const wait: DeliveryWait = async (acknowledged) => {
      await acknowledged;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>(
        (resolve) => (timer = setTimeout(() => resolve('late'), this.broker.connectTimeoutMs)),
      );
      const outcome = await Promise.race([arrived, late]);
      clearTimeout(timer);
      this.waiting.delete(payload);
      this.running.delete(filter);
      if (outcome === 'late') throw this.swallowed(label, filter);
      if (this.states.get(filter) === 'subscribed') {
        this.states.set(filter, 'verified');
        // The last filter verified closes the connection at once: an UNSUBSCRIBE first would make a graceful end wait
        // for its UNSUBACK, which a broker with Nagle's algorithm on (Mosquitto, aedes) holds back behind the message
        // it just delivered until our delayed ACK, about 40 ms (measured: check against aedes 144 ms, 88 ms without
        // it).
        if ([...this.states.values()].includes('subscribed')) this.client?.unsubscribe(filter);
        await this.closeIfDone();
      }
    };
    this.running.set(filter, wait);
    return wait;
  }

  /** Ends the subscriber's connection; nothing is verified afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client) await disconnect(this.client);
  }

  /** Closes the connection once no filter is left to verify. */
  private async closeIfDone(): Promise<void> {
    for (const state of this.states.values()) if (state === 'subscribed') return;
    await this.close();
  }

  /** The subscriber's connection was lost: what it did not verify yet stays unverified, and probes stop waiting. */
  private subscriberLost(): void {
    if (this.closed) return;
    this.closed = true;
    const open = [...this.states].filter(([, state]) => state === 'subscribed').map(([filter]) => filter);
    for (const filter of open) this.states.set(filter, 'unverifiable');
    for (const probe of this.waiting.values()) probe.settle();
    if (open.length > 0) this.warn(`${cannotVerify(open)}: the connection of the verifying subscription was lost.`);
  }

  private swallowed(label: string, filter: string): ConfigError {
    const user = this.broker.username === undefined ? 'anonymous clients' : `user "${this.broker.username}"`;
    const seconds = this.broker.connectTimeoutMs / 1000;
    return new ConfigError(
      `The broker acknowledged ${label} but did not deliver it to a subscription on ${JSON.stringify(filter)} ` +
        `within ${seconds} s (${field('verify_delivery')}). ` +
        `With MQTT ${this.broker.mqttVersion} a broker whose access rules forbid publishing to a topic acknowledges ` +
        `the message and drops it, so most likely its ACL does not let ${user} publish there; ` +
        "or it lets the user publish but not read the topic. Allow publishing (and reading) in the broker's ACL, " +
        `or, if the user may only publish, turn off ${field('verify_delivery')}.`,
    );
  }
}

/** The start of a warning that some filters will not be verified, and what that means. */
function cannotVerify(filters: readonly string[]): string {
  return (
    `Delivery on ${filters.map((filter) => JSON.stringify(filter)).join(', ')} ` +
    `cannot be verified (${field('verify_delivery')}), ` +
    'so a broker whose access rules drop messages there would go unnoticed'
  );
}
