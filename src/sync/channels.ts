/**
 * Every channel of a sync (channel.ts), and which one each record goes over: one key's records, or one topic's when
 * there is no key, always go over the same connection, so their order holds (key-spread.ts).
 */
import type { Settings } from '../config/settings.js';
import type { ConnectorError } from '../errors.js';
import { type Connection, type LastWill, confirmProtocolVersion, connectBroker } from '../mqtt/connect.js';
import { Channel, type ChannelEvents, channelClientId, channelConnectAs } from './channel.js';
import { KeySpread } from './key-spread.js';
import type { StreamRoute } from './routes.js';

/**
 * Connects every channel's first connection, in parallel. If any fails, the others are closed and the first failure is
 * what the sync reports (a suspected protocol version confirmed or not first).
 */
export async function connectChannels(settings: Settings, will?: LastWill): Promise<Connection[]> {
  const { broker, sync } = settings;
  const attempts = Array.from({ length: sync.connections }, (_, index) =>
    connectBroker(broker, channelConnectAs(settings, index, will)),
  );
  const results = await Promise.allSettled(attempts);
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (!failure) return results.map((result) => (result as PromiseFulfilledResult<Connection>).value);
  for (const result of results) if (result.status === 'fulfilled') result.value.client.end(true);
  throw await confirmProtocolVersion(broker, channelClientId(broker.clientId, 0, sync.connections), failure.reason);
}

/** Every channel of a sync, and the one each record goes over. */
export class Channels {
  readonly all: readonly Channel[];
  private readonly spread: KeySpread;

  /** The channels over `connections` (connectChannels, with the same `will`), each reporting to `events`. */
  constructor(settings: Settings, connections: readonly Connection[], events: ChannelEvents, will?: LastWill) {
    this.all = connections.map((connection, index) => new Channel(index, settings, connection, events, will));
    this.spread = new KeySpread(this.all.length);
  }

  /**
   * The channel for a record of `route` whose key values are `key` (see key-spread.ts): one key's records, or one
   * topic's when there is no key, always go over the same connection, so their order holds.
   */
  for(route: StreamRoute, key: readonly string[] | undefined): Channel {
    return this.all[this.spread.indexFor(route, key)] as Channel;
  }

  /** `client IDs "a-1" to "a-4"`, or the one client ID. */
  get clientIds(): string {
    const first = this.all[0]?.clientId;
    return this.all.length === 1 ? `client ID "${first}"` : `client IDs "${first}" to "${this.all.at(-1)?.clientId}"`;
  }

  get unacknowledged(): number {
    return this.all.reduce((sum, channel) => sum + channel.unacknowledged, 0);
  }

  get connected(): boolean {
    return this.all.every((channel) => channel.connected);
  }

  noSubscribers(group: string): number {
    return this.all.reduce((sum, channel) => sum + channel.noSubscribers(group), 0);
  }

  /** `Credentials renewed 3 time(s): 3 by reconnecting.`, or undefined when none was. */
  get renewalLine(): string | undefined {
    const reauthenticated = this.all.reduce((sum, channel) => sum + channel.renewals.reauthenticated, 0);
    const reconnected = this.all.reduce((sum, channel) => sum + channel.renewals.reconnected, 0);
    if (reauthenticated + reconnected === 0) return undefined;
    const ways = [
      reauthenticated > 0 ? `${reauthenticated} by MQTT 5 re-authentication` : '',
      reconnected > 0 ? `${reconnected} by reconnecting` : '',
    ].filter(Boolean);
    return `Credentials renewed ${reauthenticated + reconnected} time(s): ${ways.join(', ')}.`;
  }

  /** Resolves once every channel's messages are acknowledged; rejects if the sync stops first. */
  async drain(): Promise<void> {
    await Promise.all(this.all.map((channel) => channel.drain()));
  }

  stop(error: ConnectorError): void {
    for (const channel of this.all) channel.stop(error);
  }

  /** Ends every connection with a DISCONNECT. */
  async close(): Promise<void> {
    await Promise.all(this.all.map((channel) => channel.close()));
  }

  abort(): void {
    for (const channel of this.all) channel.abort();
  }
}
