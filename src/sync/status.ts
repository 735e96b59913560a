/**
 * The sync's status on the broker (`status_topic`): retained QoS 1 JSON documents a dashboard subscribes to.
 *
 *   running      published when the sync starts (and again after a lost connection is back)
 *   interrupted  every publishing connection's Last Will: the broker publishes it when the connector dies without closing
 *   succeeded    at the end, with per-stream counts and the duration
 *   failed       at the end of a failed sync, with the failure's type and message (secrets redacted)
 *
 * A sync stopped by SIGTERM or SIGINT ends `interrupted` too, with its counts and the reason. The documents are
 * built by pure functions (`statusDocument`); `StatusTopic` publishes each over a short connection of its own (client
 * ID `<client>-status`), so that they never wait behind records. The publishing connections close with a DISCONNECT
 * at the end, even when the sync fails, so the broker discards their Wills instead of overwriting the final document
 * with "interrupted".
 */
import { type ConfiguredStream, streamKey } from '../airbyte/catalog.js';
import type { BrokerSettings } from '../config/settings.js';
import { ConfigError, type ConnectorError, InterruptedError, TransientError } from '../errors.js';
import type { Log } from '../log.js';
import { type LastWill, connectBroker, disconnect } from '../mqtt/connect.js';

export type SyncStatus = 'running' | 'interrupted' | 'succeeded' | 'failed';

/** What the status says about each stream: from the catalog, and at the end the counts. */
export interface StreamCounts {
  readonly records: number;
  readonly rejected: number;
  readonly bytes: number;
}

export const NO_COUNTS: StreamCounts = { records: 0, rejected: 0, bytes: 0 };

/** The sync the documents describe: fixed when it starts. */
export interface SyncIdentity {
  readonly syncId: number | null;
  readonly startedAt: Date;
  readonly clientId: string;
  readonly streams: readonly ConfiguredStream[];
}

interface StreamEntry {
  readonly namespace: string | null;
  readonly name: string;
  readonly destination_sync_mode: string;
  readonly generation_id: number;
  readonly minimum_generation_id: number;
  readonly records?: number;
  readonly rejected?: number;
  readonly bytes?: number;
}

/**
 * The JSON document for `status`. Counts (by stream key) and the outcome are given at the end only; `redact` cleans
 * the failure's message of secrets. Keys are snake_case like the Airbyte protocol's, and their order is fixed so a
 * person reading the topic sees the status first.
 */
export function statusDocument(
  status: SyncStatus,
  sync: SyncIdentity,
  end?: {
    readonly at: Date;
    readonly counts: (streamKey: string) => StreamCounts;
    readonly error?: ConnectorError;
    readonly redact: (text: string) => string;
  },
): string {
  const streams: StreamEntry[] = sync.streams.map((stream) => ({
    namespace: stream.namespace ?? null,
    name: stream.name,
    destination_sync_mode: stream.mode,
    generation_id: stream.generationId,
    minimum_generation_id: stream.minimumGenerationId,
    ...(end ? end.counts(streamKey(stream.namespace, stream.name)) : {}),
  }));
  const totals = end && {
    records: streams.reduce((sum, stream) => sum + (stream.records ?? 0), 0),
    rejected: streams.reduce((sum, stream) => sum + (stream.rejected ?? 0), 0),
    bytes: streams.reduce((sum, stream) => sum + (stream.bytes ?? 0), 0),
  };
  return JSON.stringify({
    status,
    sync_id: sync.syncId,
    connector: 'destination-mqtt',
    client_id: sync.clientId,
    started_at: sync.startedAt.toISOString(),
    ...(end
      ? { ended_at: end.at.toISOString(), duration_ms: end.at.getTime() - sync.startedAt.getTime(), ...totals }
      : {}),
    ...(end?.error ? { failure: { type: end.error.failureType, message: end.redact(end.error.message) } } : {}),
    streams,
  });
}

/** The sync id the platform gave the streams (every stream carries the same job id), or null when it did not. */
export function syncIdOf(streams: readonly ConfiguredStream[]): number | null {
  return streams.find((stream) => stream.syncId !== undefined)?.syncId ?? null;
}

export class StatusTopic {
  /** The Last Will every publishing connection of the sync carries. */
  readonly will: LastWill;
  private finished = false;
  /** Documents go out one after another, in the order they were made. */
  private last: Promise<void> = Promise.resolve();

  private constructor(
    private readonly broker: BrokerSettings,
    private readonly topic: string,
    private readonly sync: SyncIdentity,
    private readonly log: Log,
  ) {
    this.will = { topic, payload: statusDocument('interrupted', sync) };
  }

  /**
   * Publishes "running". A broker that refuses the status topic fails the sync before any record is read: the user
   * asked for the status, and a dashboard would otherwise show nothing.
   */
  static async open(
    broker: BrokerSettings,
    topic: string | undefined,
    streams: readonly ConfiguredStream[],
    log: Log,
  ): Promise<StatusTopic | undefined> {
    if (topic === undefined) return undefined;
    const sync: SyncIdentity = { syncId: syncIdOf(streams), startedAt: new Date(), clientId: broker.clientId, streams };
    const status = new StatusTopic(broker, topic, sync, log);
    await status.publish(statusDocument('running', sync));
    return status;
  }

  /** A publishing connection is back after a loss, its Will ("interrupted") published: say "running" again. */
  running(): void {
    if (this.finished) return;
    this.publish(statusDocument('running', this.sync)).catch((error: unknown) =>
      this.log('WARN', `Could not publish the status "running" again to "${this.topic}": ${messageOf(error)}`),
    );
  }

  /**
   * Publishes the final document. Never throws: the records are delivered (or the sync's own error is reported)
   * whatever happens to the status; a status that could not be published is a warning.
   */
  async finish(
    error: ConnectorError | undefined,
    counts: (streamKey: string) => StreamCounts | undefined,
    redact: (text: string) => string,
  ): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const outcome = error === undefined ? 'succeeded' : error instanceof InterruptedError ? 'interrupted' : 'failed';
    const end = { at: new Date(), counts: (key: string) => counts(key) ?? NO_COUNTS, redact };
    const document = statusDocument(outcome, this.sync, error ? { ...end, error } : end);
    try {
      await this.publish(document);
    } catch (err) {
      this.log('WARN', `Could not publish the status "${outcome}" to "${this.topic}": ${messageOf(err)}`);
    }
  }

  /**
   * Publishes retained at QoS 1 over a connection of its own, opened for it and closed with a DISCONNECT once the
   * broker has acknowledged: the status needs no connection between its few documents, and one made for each gets the
   * credential that is valid then. The publishing connections carry the Will.
   */
  private publish(document: string): Promise<void> {
    const send = async (): Promise<void> => {
      const { client } = await connectBroker(this.broker, {
        clientId: `${this.broker.clientId}-status`,
        freshSession: true,
      });
      try {
        await new Promise<void>((resolve, reject) => {
          const properties = this.broker.mqttVersion === '5' ? { properties: { contentType: 'application/json' } } : {};
          client.publish(this.topic, document, { qos: 1, retain: true, ...properties }, (error) =>
            error ? reject(refusal(this.topic, error)) : resolve(),
          );
        });
      } finally {
        await disconnect(client);
      }
    };
    const sent = this.last.then(send, send);
    this.last = sent.catch(() => undefined);
    return sent;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** MQTT.js reports an MQTT 5 refusal as an error whose `code` is the reason code. */
function refusal(topic: string, error: Error & { code?: unknown }): ConnectorError {
  const code = typeof error.code === 'number' ? error.code : undefined;
  return code !== undefined && code >= 0x80
    ? new ConfigError(
        `The broker refused the status message on "${topic}" (reason code 0x${code.toString(16)}, ${error.message}): ` +
          'let this client publish retained messages there, or change the status topic.',
      )
    : new TransientError(`Publishing the status message on "${topic}" failed: ${error.message}`);
}
