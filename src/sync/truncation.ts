/**
 * Overwrites, truncating refreshes and Clears on the broker's retained messages: after a truncated stream completes,
 * the retained messages in its territory (its key filter and its plain topic, see `StreamRoute.territory`) must be
 * exactly what this generation wrote retained. The steps, as a sync runs them:
 *
 *   1. before publishing: read the retained messages in each truncated stream's territory; those of a generation
 *      below `minimum_generation_id` (all of them for a plain `overwrite`, and on MQTT 3.1.x see `staleRule`) are
 *      candidates for clearing;
 *   2. while publishing: every topic the sync writes retained is marked, and so is no longer a candidate;
 *   3. at the end, once everything is acknowledged: for a stream the platform reported complete (or every stream, with
 *      `overwrite_cleanup` `end_of_input`) and without rejected records, read the territory again and clear each
 *      retained message that is a candidate left unmarked, with a zero-byte retained message.
 *
 * Keys written by an earlier attempt of the same generation carry that generation and are kept (a retry resumes from
 * state and does not write them again). Nothing is cleared for a stream that did not complete: a failed source ends
 * its input without the completion report, and clearing then would delete rows it simply did not get to.
 *
 * A stream whose own messages are not retained (append without `message_retained`: how a platform with refreshes
 * sends "Overwrite", and a Clear) has nothing of its own to keep on the broker, but may find what an earlier sync
 * retained there. For it the steps are a courtesy: a broker that will not let the connector read its territory only
 * earns a warning, where a retained stream's sync fails rather than leave stale keys unnoticed.
 */
import { describeStream } from '../airbyte/catalog.js';
import type { StreamRoute } from './routes.js';
import type { Log } from '../log.js';
import type { BrokerSettings, MessageSettings, OverwriteCleanup } from '../config/settings.js';
import { field } from '../config/spec.js';
import { asConnectorError } from '../errors.js';
import { RetainedScan } from '../mqtt/retained-scan.js';
import { claimGeneration } from './generation-marker.js';
import { Keyspace } from './keyspace.js';

/**
 * What a truncation needs of the settings: the broker to read from, how messages say their generation, when to clear.
 */
export interface TruncationSettings {
  readonly broker: BrokerSettings;
  readonly messages: MessageSettings;
  readonly overwriteCleanup: OverwriteCleanup;
}

interface TruncatedStream {
  readonly route: StreamRoute;
  /** The filters read: the route's territory, less any the broker would not let the connector read. */
  readonly filters: readonly string[];
  /**
   * Why nothing may be cleared whatever happens, when that is so: on MQTT 3.1.x a later attempt of a truncating
   * refresh cannot tell the keys an earlier attempt wrote from older ones, unless the payload says its generation.
   */
  readonly keepAll: string | undefined;
  readonly keyspace: Keyspace;
  /** Retained messages of a generation below this are stale unless rewritten. */
  readonly belowGeneration: number;
}

/**
 * Which of a truncated stream's retained messages are stale unless this attempt writes them.
 *
 * - `overwrite` from a platform without refreshes (no generations): all of them.
 * - A refresh that truncates (minimum generation == generation): those of an older generation. MQTT 5 messages carry
 *   their generation (`airbyte_generation_id`), as airbyte_v2 payloads do, so they say it themselves. On MQTT 3.1.x
 *   other payloads cannot: there the attempt decides. A full refresh that cannot resume gets a new generation with
 *   every attempt of a job (the platform's AttemptHandler), so nothing on the broker is of this generation and all of
 *   it is stale. A resumable full refresh and an incremental stream keep their generation across attempts: the
 *   generation marker (generation-marker.ts) says whether an earlier attempt already wrote keys of it, and if it may
 *   have, they cannot be told from stale ones and everything is kept.
 */
async function staleRule(
  scan: RetainedScan,
  settings: TruncationSettings,
  route: StreamRoute,
): Promise<Pick<TruncatedStream, 'keepAll' | 'belowGeneration'>> {
  if (route.minimumGenerationId === 0) return { keepAll: undefined, belowGeneration: Number.POSITIVE_INFINITY };
  const { messages } = settings;
  const tagged = messages.mqtt5 || messages.messageFormat === 'airbyte_v2';
  if (tagged) return { keepAll: undefined, belowGeneration: route.minimumGenerationId };
  const spansAttempts = route.syncMode === 'incremental' || route.resumable;
  const earlier = spansAttempts ? await claimGeneration(scan, messages, route) : { wrote: false as const };
  const keepAll = earlier.wrote
    ? `${earlier.why}, and MQTT ${settings.broker.mqttVersion} messages cannot carry their generation, ` +
      'so those keys cannot be told from stale ones; ' +
      'use MQTT 5 (or the airbyte_v2 message format, which carries it) ' +
      'for refreshes to clear stale keys whatever the attempt'
    : undefined;
  return { keepAll, belowGeneration: Number.POSITIVE_INFINITY };
}

function filterList(filters: readonly string[]): string {
  return filters.map((filter) => `"${filter}"`).join(' and ');
}

export class Truncation {
  private constructor(
    private readonly settings: TruncationSettings,
    private readonly streams: ReadonlyMap<string, TruncatedStream>,
    private readonly log: Log,
  ) {}

  /** Step 1: reads every truncated stream's retained messages; undefined when no stream is truncated. */
  static async prepare(
    settings: TruncationSettings,
    routes: ReadonlyMap<string, StreamRoute>,
    log: Log,
  ): Promise<Truncation | undefined> {
    const truncated = [...routes].filter(([, route]) => route.truncate && route.territory.length > 0);
    if (truncated.length === 0) return undefined;
    let scan: RetainedScan;
    try {
      scan = await RetainedScan.open(settings.broker, settings.messages.testTopic);
    } catch (err) {
      if (truncated.some(([, route]) => route.retained)) throw err;
      log(
        'WARN',
        `${notRead(truncated.map(([, route]) => route))}: ` +
          `the connection that reads them failed: ${asConnectorError(err).message}`,
      );
      return undefined;
    }
    const streams = new Map<string, TruncatedStream>();
    try {
      for (const [key, route] of truncated) {
        const stream = await Truncation.read(scan, settings, route, log);
        if (stream) streams.set(key, stream);
      }
    } finally {
      await scan.close();
    }
    return new Truncation(settings, streams, log);
  }

  private static async read(
    scan: RetainedScan,
    settings: TruncationSettings,
    route: StreamRoute,
    log: Log,
  ): Promise<TruncatedStream | undefined> {
    const name = describeStream(route.namespace, route.name);
    const keyspace = new Keyspace();
    const filters: string[] = [];
    let messages = 0;
    let rule: Pick<TruncatedStream, 'keepAll' | 'belowGeneration'>;
    try {
      rule = await staleRule(scan, settings, route);
      for (const filter of route.territory) {
        const result = await scan.scan(filter, (message) => {
          if ((message.generation ?? 0) < rule.belowGeneration) keyspace.add(message.topic);
        });
        messages += result.messages;
        filters.push(filter);
      }
    } catch (err) {
      if (route.retained) throw err;
      log('WARN', `${notRead([route])}: ${asConnectorError(err).message}`);
      return undefined;
    }
    const stream: TruncatedStream = { route, filters, keyspace, ...rule };
    const where = filterList(filters);
    if (messages === 0) {
      if (route.retained) {
        log(
          'WARN',
          `Stream ${name}: found no retained keys under ${where}. That is right for a stream's first sync; ` +
            'otherwise the broker withholds them from this client ' +
            '(Mosquitto grants any subscription and silently delivers nothing the ACL does not let it read): ' +
            'give the connector read permission on that filter, or stale keys will never be cleared.',
        );
      } else {
        log(
          'INFO',
          `Stream ${name} is truncated; its messages are not retained (append without ${field('message_retained')}), ` +
            `and nothing is retained under ${where}.`,
        );
      }
      return stream;
    }
    const older = Number.isFinite(stream.belowGeneration)
      ? `of a generation below ${stream.belowGeneration}`
      : 'from earlier syncs or attempts';
    log(
      'INFO',
      `Stream ${name}: ${messages} retained message(s) under ${where}, ` +
        `${keyspace.size} of them ${older}: cleared when the stream completes` +
        (route.retained
          ? ' unless this sync writes them'
          : ` (its own messages are not retained: append without ${field('message_retained')})`) +
        '.',
    );
    return stream;
  }

  /** Step 2: the sync wrote `topic` for the stream `key`; only a retained message keeps its topic. */
  written(key: string, topic: string): void {
    const stream = this.streams.get(key);
    if (stream?.route.retained) stream.keyspace.mark(topic);
  }

  /** Whether records of stream `key` have to be marked. */
  tracks(key: string): boolean {
    return this.streams.get(key)?.route.retained === true;
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
        const { route, keyspace, filters } = stream;
        const name = describeStream(route.namespace, route.name);
        const stale = keyspace.unmarked;
        if (stale === 0) {
          this.log('INFO', `Stream ${name}: no stale retained keys to clear.`);
          continue;
        }
        if (stream.keepAll) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${stale} retained key(s) of earlier generations or attempts: ${stream.keepAll}.`,
          );
          continue;
        }
        if (rejected(key) > 0) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${stale} stale retained key(s), ` +
              `because ${rejected(key)} record(s) of the stream were rejected and their keys may be among them.`,
          );
          continue;
        }
        if (this.settings.overwriteCleanup === 'after_complete' && !completed.has(key)) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${stale} stale retained key(s), ` +
              'because the platform did not report the stream complete ' +
              '(its source failed, or the platform never reports completion: ' +
              `then set ${field('overwrite_cleanup')} to end_of_input).`,
          );
          continue;
        }
        // The stale topics are collected first and cleared after, with flow control: only they are kept as strings.
        const topics: string[] = [];
        let unseen = 0;
        try {
          scan ??= await RetainedScan.open(this.settings.broker, this.settings.messages.testTopic);
          for (const filter of filters) {
            await scan.scan(filter, (message) => {
              if ((message.generation ?? 0) >= stream.belowGeneration) return;
              if (!keyspace.has(message.topic)) unseen++;
              else if (keyspace.isStale(message.topic)) topics.push(message.topic);
            });
          }
        } catch (err) {
          // As in step 1: for a stream whose own messages are not retained, clearing is a courtesy.
          if (route.retained) throw err;
          this.log('WARN', `${notRead([route])}: ${asConnectorError(err).message}`);
          continue;
        }
        this.log(
          'INFO',
          `Stream ${name}: clearing ${topics.length} stale retained key(s) under ${filterList(filters)}.`,
        );
        if (unseen > 0) {
          this.log(
            'WARN',
            `Stream ${name}: kept ${unseen} retained key(s) under ${filterList(filters)} ` +
              'that were not there when the sync started: another client wrote them meanwhile, ' +
              'or the broker delivered them only after the end marker when the keys were first read ' +
              '(aedes does; Mosquitto does not).',
          );
        }
        await clear(route, topics);
      }
    } finally {
      await scan?.close();
    }
  }
}

/** The start of a warning that a stream's older retained messages will not be cleared. */
function notRead(routes: readonly StreamRoute[]): string {
  const names = routes.map((route) => describeStream(route.namespace, route.name)).join(', ');
  return (
    `Retained messages that earlier syncs left for stream(s) ${names} cannot be read, ` +
    'so they are not cleared by this truncation ' +
    "(the streams' own messages are not retained, so nothing of this sync is at stake)"
  );
}
