/**
 * Overwrite and truncating refreshes on a retained keyspace: after a stream completes, the broker's retained messages
 * under the stream's key filter must be exactly what this generation wrote. The steps, as a sync runs them:
 *
 *   1. before publishing: read the retained keys under each truncated stream's filter; those of a generation below
 *      `minimum_generation_id` (all of them for a plain `overwrite`) are candidates for clearing;
 *   2. while publishing: every key the sync writes is marked, and so is no longer a candidate;
 *   3. at the end, once everything is acknowledged: for a stream the platform reported complete (or every stream, with
 *      `overwrite_cleanup` `end_of_input`) and without rejected records, read the filter again and clear each retained
 *      message whose key is a candidate left unmarked, with a zero-byte retained message.
 *
 * Keys written by an earlier attempt of the same generation carry that generation and are kept (a retry resumes from
 * state and does not write them again). Nothing is cleared for a stream that did not complete: a failed source ends
 * its input without the completion report, and clearing then would delete rows it simply did not get to.
 */
import { type StreamRoute, describeStream } from '../airbyte/catalog.js';
import type { LogLevel } from '../airbyte/output.js';
import type { Settings } from '../config/settings.js';
import { field } from '../config/spec.js';
import { RetainedScan } from '../mqtt/retained-scan.js';
import { Keyspace } from './keyspace.js';

interface TruncatedStream {
  readonly route: StreamRoute;
  /**
   * Why nothing may be cleared whatever happens, when that is so: on MQTT 3.1.x a retry of a truncating refresh
   * cannot tell the keys its earlier attempt wrote from older ones, unless the payload says its generation.
   */
  readonly keepAll: string | undefined;
  readonly keyspace: Keyspace;
  /** Retained messages of a generation below this are stale unless rewritten. */
  readonly belowGeneration: number;
}

type Log = (level: LogLevel, message: string) => void;

export class Truncation {
  private constructor(
    private readonly settings: Settings,
    private readonly streams: ReadonlyMap<string, TruncatedStream>,
    private readonly log: Log,
  ) {}

  /** Step 1: reads every truncated stream's retained keys; undefined when no stream is truncated. */
  static async prepare(settings: Settings, routes: ReadonlyMap<string, StreamRoute>, log: Log): Promise<Truncation | undefined> {
    for (const [, route] of routes) {
      if (route.mode === 'append' && route.minimumGenerationId > 0 && route.minimumGenerationId === route.generationId) {
        log(
          'WARN',
          `Stream ${describeStream(route.namespace, route.name)} is truncated (an overwrite or a refresh), but in append mode its messages are not retained, ` +
            'so there is nothing on the broker to clear. For a retained keyspace that an overwrite replaces, choose "Overwrite + Deduped" (or a deduped mode) for the stream.',
        );
      }
    }
    const truncated = [...routes].filter(([, route]) => route.truncate);
    if (truncated.length === 0) return undefined;
    const streams = new Map<string, TruncatedStream>();
    const scan = await RetainedScan.open(settings);
    try {
      for (const [key, route] of truncated) {
        const untagged = settings.mqttVersion !== '5' && route.minimumGenerationId > 0 && settings.messageFormat !== 'airbyte_v2';
        const stream: TruncatedStream = {
          route,
          keepAll: untagged
            ? `MQTT ${settings.mqttVersion} messages cannot carry their generation, so the keys an earlier attempt of this refresh wrote cannot be told from stale ones; ` +
              'use MQTT 5 (or the airbyte_v2 message format, which carries it) for refreshes to clear stale keys'
            : undefined,
          keyspace: new Keyspace(),
          belowGeneration: route.minimumGenerationId > 0 ? route.minimumGenerationId : Number.POSITIVE_INFINITY,
        };
        const result = await scan.scan(route.topicName, (message) => {
          if ((message.generation ?? 0) < stream.belowGeneration) stream.keyspace.add(message.topic);
        });
        streams.set(key, stream);
        if (result.messages === 0) {
          log(
            'WARN',
            `Stream ${describeStream(route.namespace, route.name)}: found no retained keys under "${route.topicName}". That is right for a stream's first sync; ` +
              'otherwise the broker withholds them from this client (Mosquitto grants any subscription and silently delivers nothing the ACL does not let it read): ' +
              'give the connector read permission on that filter, or stale keys will never be cleared.',
          );
          continue;
        }
        log(
          'INFO',
          `Stream ${describeStream(route.namespace, route.name)}: ${result.messages} retained key(s) under "${route.topicName}", ${stream.keyspace.size} of them ` +
            `${Number.isFinite(stream.belowGeneration) ? `of a generation below ${stream.belowGeneration}` : 'from earlier syncs'}: cleared when the stream completes unless this sync writes them.`,
        );
      }
    } finally {
      await scan.close();
    }
    return new Truncation(settings, streams, log);
  }

  /** Step 2: the sync wrote `topic` for the stream `key`. */
  written(key: string, topic: string): void {
    this.streams.get(key)?.keyspace.mark(topic);
  }

  /** Whether records of stream `key` have to be marked. */
  tracks(key: string): boolean {
    return this.streams.has(key);
  }

  /**
   * Step 3: clears the stale keys of every stream that may be cleared, through `clear` (a zero-byte retained message
   * on the topic); the caller waits for their acknowledgements. `completed` holds the streams the platform reported
   * complete, `rejected` the number of rejected records per stream.
   */
  async cleanup(
    completed: ReadonlySet<string>,
    rejected: (key: string) => number,
    clear: (route: StreamRoute, topics: readonly string[]) => Promise<void>,
  ): Promise<void> {
    let scan: RetainedScan | undefined;
    try {
      for (const [key, stream] of this.streams) {
        const { route, keyspace } = stream;
        const name = describeStream(route.namespace, route.name);
        const stale = keyspace.unmarked;
        if (stale === 0) {
          this.log('INFO', `Stream ${name}: no stale retained keys to clear.`);
          continue;
        }
        if (stream.keepAll) {
          this.log('WARN', `Stream ${name}: kept ${stale} retained key(s) of earlier generations or attempts: ${stream.keepAll}.`);
          continue;
        }
        if (rejected(key) > 0) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${stale} stale retained key(s), because ${rejected(key)} record(s) of the stream were rejected and their keys may be among them.`,
          );
          continue;
        }
        if (this.settings.overwriteCleanup === 'after_complete' && !completed.has(key)) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${stale} stale retained key(s), because the platform did not report the stream complete (its source failed, or the platform never reports completion: ` +
              `then set ${field('overwrite_cleanup')} to end_of_input).`,
          );
          continue;
        }
        scan ??= await RetainedScan.open(this.settings);
        // The stale topics are collected first and cleared after, with flow control: only they are kept as strings.
        const topics: string[] = [];
        let unseen = 0;
        await scan.scan(route.topicName, (message) => {
          if ((message.generation ?? 0) >= stream.belowGeneration) return;
          if (!keyspace.has(message.topic)) unseen++;
          else if (keyspace.isStale(message.topic)) topics.push(message.topic);
        });
        this.log('INFO', `Stream ${name}: clearing ${topics.length} stale retained key(s) under "${route.topicName}".`);
        if (unseen > 0) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${unseen} retained key(s) under "${route.topicName}" that were not there when the sync started: another client wrote them meanwhile, ` +
              'or the broker delivered them only after the end marker when the keys were first read (aedes does; Mosquitto does not).',
          );
        }
        await clear(route, topics);
      }
    } finally {
      await scan?.close();
    }
  }
}
