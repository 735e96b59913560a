/**
 * One of the sync's connections to the broker, with everything that is its own: a client ID, the publisher that owns
 * its session's messages in flight, and the keeper that reconnects it. A sync has one channel per `connections`;
 * each reconnects on its own and is watched for takeover on its own, while the others go on.
 */
import type { Settings } from '../config/settings.js';
import type { ConnectorError } from '../errors.js';
import type { Log } from '../log.js';
import { type Connection, confirmProtocolVersion, connectBroker, describeLimits } from '../mqtt/connect.js';
import { ConnectionKeeper } from '../mqtt/connection-keeper.js';
import { mqttPort } from '../mqtt/connection-port.js';
import { PublishEncoder } from '../mqtt/packets.js';
import { Publisher, type Refusal } from '../mqtt/publisher.js';

export interface ChannelEvents {
  /** The message sent with this token is acknowledged. */
  acknowledged(token: number): void;
  /** The channel cannot go on (the broker refused a message, or the connection could not be kept); at most once. */
  failed(error: ConnectorError): void;
  /** The broker refused one message for a reason of its own (publisher.ts); absent, such a refusal fails the sync. */
  refused?(refusal: Refusal): void;
  readonly log: Log;
}

/** The client ID of connection `index` of `count`: the configured one alone, or `<client>-1` to `<client>-N`. */
export function channelClientId(clientId: string, index: number, count: number): string {
  return count === 1 ? clientId : `${clientId}-${index + 1}`;
}

/**
 * Connects every channel's first connection, in parallel. If any fails, the others are closed and the first failure is
 * what the sync reports (a suspected protocol version confirmed or not first).
 */
export async function connectChannels(settings: Settings): Promise<Connection[]> {
  const attempts = Array.from({ length: settings.connections }, (_, index) =>
    connectBroker({ ...settings, clientId: channelClientId(settings.clientId, index, settings.connections) }),
  );
  const results = await Promise.allSettled(attempts);
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (!failure) return results.map((result) => (result as PromiseFulfilledResult<Connection>).value);
  for (const result of results) if (result.status === 'fulfilled') result.value.client.end(true);
  throw await confirmProtocolVersion(settings, failure.reason);
}

export class Channel {
  readonly publisher: Publisher;
  readonly keeper: ConnectionKeeper;
  readonly clientId: string;
  private stopped = false;

  constructor(
    readonly index: number,
    private readonly settings: Settings,
    first: Connection,
    private readonly events: ChannelEvents,
  ) {
    this.clientId = channelClientId(settings.clientId, index, settings.connections);
    this.publisher = new Publisher(
      new PublishEncoder(settings.qos, false, settings.mqttVersion === '5'),
      {
        qos: settings.qos,
        maxInflight: settings.maxInflight,
        oneAtATime: settings.publisherSync,
        maxMessageBytes: settings.maxMessageBytes,
        ackTimeoutMs: settings.ackTimeoutMs,
      },
      {
        acknowledged: events.acknowledged,
        failed: events.failed,
        refused: events.refused,
        silent: (description) => this.silent(description),
      },
    );
    this.keeper = new ConnectionKeeper(
      { ...settings, clientId: this.clientId },
      first,
      {
        lost: (cause) => this.lost(cause),
        restored: (connection, attempts, downtimeMs) => this.restored(connection, attempts, downtimeMs),
        failed: events.failed,
        evidence: () => this.publisher.sendEvidence(),
      },
      events.log,
    );
    events.log(
      'DEBUG',
      `${this.single ? 'Connected' : `${this.name} connected`}; broker limits: ${describeLimits(first.limits)}.`,
    );
    if (first.sessionPresent)
      events.log('INFO', `The broker resumed the session it kept for client ID "${this.clientId}".`);
    this.publisher.attach(mqttPort(first));
  }

  get connected(): boolean {
    return this.keeper.connection !== undefined;
  }

  /** Stops publishing for good with `error`; the connection is dropped (`close` or `abort` it afterwards). */
  stop(error: ConnectorError): void {
    this.stopped = true;
    this.publisher.stop(error);
  }

  private get single(): boolean {
    return this.settings.connections === 1;
  }

  /** How this channel is named in log lines: "The connection" alone, or with its client ID among several. */
  private get name(): string {
    return this.single ? 'The connection' : `Connection ${this.index + 1} (client ID "${this.clientId}")`;
  }

  /** The broker stopped answering on a live connection: replace it, which sends the silent messages again. */
  private silent(description: string): void {
    this.events.log(
      'WARN',
      `${this.name}: the broker left ${description} although the connection is up; reconnecting to send them again.`,
    );
    this.keeper.replace(description);
  }

  private lost(cause: string): void {
    this.publisher.detach();
    this.events.log(
      'WARN',
      `${this.name} to the broker was lost (${cause}) with ${this.publisher.unacknowledged} message(s) not yet acknowledged. ` +
        `${this.single ? 'Input waits' : 'Its messages wait'} while the connector reconnects, for up to ${this.settings.reconnectTimeoutMs / 1000} s.`,
    );
  }

  private restored(connection: Connection, attempts: number, downtimeMs: number): void {
    if (this.stopped) return;
    const session = connection.sessionPresent ? 'the broker resumed the session' : 'in a new session';
    this.events.log(
      'INFO',
      `${this.single ? 'Reconnected' : `${this.name} reconnected`} after ${attempts} attempt(s) and ${(downtimeMs / 1000).toFixed(1)} s, ${session}; sending the ${this.publisher.unacknowledged} unacknowledged message(s) again.`,
    );
    this.publisher.attach(mqttPort(connection));
  }
}
