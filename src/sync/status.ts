/**
 * The sync's status on the broker (`status_topic`): retained QoS 1 JSON documents a dashboard subscribes to.
 *
 *   running      published when the sync starts (and again after a lost connection is back)
 *   interrupted  every connection's Last Will: the broker publishes it when the connector dies without closing
 *   succeeded    at the end, with per-stream counts and the duration
 *   failed       at the end of a failed sync, with the failure's type and message (secrets redacted)
 *
 * A sync stopped by SIGTERM or SIGINT ends `interrupted` too, with its counts and the reason. The documents are
 * built by pure functions (`statusDocument`); `StatusTopic` publishes them over a connection of its own (client ID
 * `<client>-status`), so that they never wait behind records. Its connection closes with a DISCONNECT at the end, as
 * do the publishing ones, even when the sync fails, so the broker discards their Wills instead of overwriting the
 * final document with "interrupted".
 */
import { type ConfiguredStream, streamKey } from '../airbyte/catalog.js';
import type { BrokerSettings } from '../config/settings.js';
import { ConfigError, type ConnectorError, InterruptedError, TransientError } from '../errors.js';
import type { Log } from '../log.js';
import { backoffDelay } from '../mqtt/backoff.js';
import { type LastWill, connectBroker, disconnect } from '../mqtt/connect.js';
import type { MqttClient } from 'mqtt';

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
  /** The Last Will every connection of the sync carries. */
  readonly will: LastWill;
  private client: MqttClient | undefined;
  private finished = false;

  private constructor(
    private readonly broker: BrokerSettings,
    private readonly topic: string,
    private readonly sync: SyncIdentity,
    private readonly log: Log,
  ) {
    this.will = { topic, payload: statusDocument('interrupted', sync) };
  }

  /**
   * Connects the status connection and publishes "running". A broker that refuses the status topic fails the sync
   * before any record is read: the user asked for the status, and a dashboard would otherwise show nothing.
   */
  static async open(
    broker: BrokerSettings,
    topic: string | undefined,
    sync: SyncIdentity,
    log: Log,
  ): Promise<StatusTopic | undefined> {
    if (topic === undefined) return undefined;
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
   * Publishes the final document and closes the connection. Never throws: the records are delivered (or the sync's own
   * error is reported) whatever happens to the status; a status that could not be published is a warning.
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
    const client = this.client;
    this.client = undefined;
    if (client) await disconnect(client);
  }

  /** Publishes retained at QoS 1 and waits for the acknowledgement, connecting first when there is no connection. */
  private async publish(document: string): Promise<void> {
    const client = await this.connected();
    await new Promise<void>((resolve, reject) => {
      client.publish(
        this.topic,
        document,
        {
          qos: 1,
          retain: true,
          ...(this.broker.mqttVersion === '5' ? { properties: { contentType: 'application/json' } } : {}),
        },
        (error) => (error ? reject(refusal(this.topic, error)) : resolve()),
      );
    });
  }

  private async connected(): Promise<MqttClient> {
    if (this.client?.connected) return this.client;
    const old = this.client;
    this.client = undefined;
    old?.end(true);
    const connection = await connectBroker(this.broker, {
      clientId: `${this.broker.clientId}-status`,
      freshSession: true,
      will: this.will,
    });
    const { client } = connection;
    this.client = client;
    // Lost while the sync runs, its Will said "interrupted": say "running" again once it is back.
    client.once('close', () => {
      if (this.client === client && !this.finished) this.reconnect(0);
    });
    return client;
  }

  private reconnect(attempt: number): void {
    const timer = setTimeout(() => {
      if (this.finished) return;
      this.publish(statusDocument('running', this.sync)).catch(() => this.reconnect(attempt + 1));
    }, backoffDelay(attempt));
    // The status alone must never keep the process alive.
    timer.unref();
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
