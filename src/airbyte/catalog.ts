/**
 * The configured catalog: which streams this sync may carry, and the topic each one publishes to. Topics are rendered
 * and validated for every configured stream before the first record is read, so a bad pattern fails the sync before
 * anything is published rather than halfway through.
 */
import { readFile } from 'node:fs/promises';
import { field, supportedSyncModes } from '../config/spec.js';
import { ConfigError, SystemError } from '../errors.js';
import {
  type StreamTopic,
  type TopicEscaping,
  keyFilter,
  patternHasKey,
  streamTopic,
  topicProblem,
} from '../payload/topic.js';

/** A primary key: each element is the path of one key field inside the record's `data`. */
export type PrimaryKey = readonly (readonly string[])[];

/**
 * The sync modes that mean something on the broker, as the spec's `supported_destination_sync_modes` declares them:
 * only values of the protocol's DestinationSyncMode, or the platform cannot read the spec at all. "Overwrite +
 * Deduped" is a choice the platform itself offers in its UI for a destination that declares these three and
 * refreshes; it arrives as `append_dedup` with a truncating generation (or as `overwrite` without refreshes).
 */
export const DECLARED_SYNC_MODES = ['append', 'append_dedup', 'overwrite'] as const;
/** What a catalog may ask for: the declared modes, and `overwrite_dedup`, which no platform sends but means overwrite. */
const ACCEPTED_SYNC_MODES = [...DECLARED_SYNC_MODES, 'overwrite_dedup'] as const;
export type SyncMode = (typeof ACCEPTED_SYNC_MODES)[number];

/** What the configured catalog says about a stream, checked. */
export interface ConfiguredStream {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly primaryKey: PrimaryKey;
  /** The cursor field's path into `data`; empty when the stream has none. */
  readonly cursorField: readonly string[];
  readonly mode: SyncMode;
  /** How the source reads the stream: everything every sync (`full_refresh`), or what changed (`incremental`). */
  readonly syncMode: 'full_refresh' | 'incremental';
  /**
   * The source can resume the stream from a state within one job (`stream.is_resumable`). The platform keeps the
   * generation of such a full refresh, as of every incremental stream, across the attempts of a job; any other full
   * refresh gets a new generation with every attempt.
   */
  readonly resumable: boolean;
  /** The generation this sync writes (0 when the platform does not say). */
  readonly generationId: number;
  /** Data of generations below this may be cleared once the stream completes (0: nothing may be). */
  readonly minimumGenerationId: number;
  /** The platform's job id, the same for every attempt; undefined when the catalog has none. */
  readonly syncId: number | undefined;
}

export interface StreamRoute extends ConfiguredStream {
  /** Where its messages go: one topic, or for keyed messages the topic around each record's key levels. */
  readonly topic: StreamTopic;
  /** The topic of every message, or for keyed topics the filter that matches every key's topic: for logs and errors. */
  readonly topicName: string;
  /** Each record goes to its own key's topic. */
  readonly keyed: boolean;
  /** The sync mode keeps the last value of each key (append_dedup, overwrite): a CDC delete removes its key. */
  readonly deduped: boolean;
  /** Messages are retained, the broker keeping the last one per topic: a deduped mode, or `message_retained`. */
  readonly retained: boolean;
  /**
   * The stream is truncated (mode overwrite, or a refresh that says so with minimum_generation_id == generation_id >
   * 0): when it completes, the retained messages of older generations in its territory are cleared, except the topics
   * this sync wrote retained.
   */
  readonly truncate: boolean;
  /**
   * Where a truncated stream's retained messages may be, whatever mode wrote them: its key filter (when it has a primary
   * key) and its plain topic (when the pattern has no `{key}`). A platform with refreshes sends "Overwrite" and a Clear
   * as `append`, so an append stream's truncation must still find the keys an earlier deduped sync retained. Empty
   * when the stream is not truncated.
   */
  readonly territory: readonly string[];
  /** The stream name as a JSON string, encoded once for every envelope of this stream. */
  readonly streamJson: string;
}

/** One string per (namespace, stream) pair; a missing namespace and an empty one are the same stream. */
export function streamKey(namespace: string | undefined | null, name: string): string {
  return `${namespace ?? ''}\u0000${name}`;
}

export function describeStream(namespace: string | undefined, name: string): string {
  return namespace ? `"${namespace}.${name}"` : `"${name}"`;
}

function isKeyPath(path: unknown): path is string[] {
  return Array.isArray(path) && path.length > 0 && path.every((part) => typeof part === 'string');
}

/** `primary_key` of the configured stream, else the source-defined one; a malformed key names the stream. */
function primaryKeyOf(
  entry: { primary_key?: unknown; stream?: { source_defined_primary_key?: unknown } },
  name: string,
  source: string,
): PrimaryKey {
  const declared = entry.primary_key ?? entry.stream?.source_defined_primary_key;
  if (declared === undefined || declared === null) return [];
  if (!Array.isArray(declared) || !declared.every(isKeyPath)) {
    throw new SystemError(
      `The catalog ${source} gives stream "${name}" a primary key that is not a list of field paths (lists of strings)`,
    );
  }
  return declared;
}

export async function readCatalog(path: string): Promise<ConfiguredStream[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the catalog file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseCatalog(text, path);
}

function parseCatalog(text: string, source: string): ConfiguredStream[] {
  let catalog: unknown;
  try {
    catalog = JSON.parse(text);
  } catch {
    throw new SystemError(`The catalog ${source} is not valid JSON`);
  }
  const streams = (catalog as { streams?: unknown } | null)?.streams;
  if (!Array.isArray(streams)) throw new SystemError(`The catalog ${source} has no "streams" list`);
  return streams.map((entry: unknown, index) => {
    const configured = (entry ?? {}) as CatalogEntry;
    const stream = configured.stream;
    if (typeof stream?.name !== 'string' || stream.name === '') {
      throw new SystemError(`The catalog ${source} has no stream name at streams[${index}].stream.name`);
    }
    const namespace = typeof stream.namespace === 'string' && stream.namespace !== '' ? stream.namespace : undefined;
    const name = stream.name;
    const cursor = configured.cursor_field;
    return {
      name,
      namespace,
      primaryKey: primaryKeyOf(configured, name, source),
      cursorField: isKeyPath(cursor) ? cursor : [],
      syncMode: configured.sync_mode === 'incremental' ? 'incremental' : 'full_refresh',
      resumable: stream.is_resumable === true,
      ...generationsOf(configured, describeStream(namespace, name)),
      mode: syncModeOf(configured.destination_sync_mode, describeStream(namespace, name)),
    };
  });
}

interface CatalogEntry {
  readonly primary_key?: unknown;
  readonly cursor_field?: unknown;
  readonly destination_sync_mode?: unknown;
  readonly generation_id?: unknown;
  readonly minimum_generation_id?: unknown;
  readonly sync_id?: unknown;
  readonly sync_mode?: unknown;
  readonly stream?: {
    name?: unknown;
    namespace?: unknown;
    source_defined_primary_key?: unknown;
    is_resumable?: unknown;
  };
}

/**
 * The stream's sync mode. A catalog without one is from a platform older than sync modes: append. A mode the spec
 * does not declare fails the sync before anything is published (the platform does not enforce the spec's list), so
 * `update`, `soft_delete` or a typo are never written as if they were `append`.
 */
function syncModeOf(mode: unknown, stream: string): SyncMode {
  if (mode === undefined || mode === null) return 'append';
  if (typeof mode !== 'string' || !(ACCEPTED_SYNC_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(
      `Stream ${stream} asks for the sync mode ${JSON.stringify(mode)}, which this destination does not support (it supports ${supportedSyncModes().join(', ')}). ` +
        'Choose one of those for the stream in the connection settings.',
    );
  }
  return mode as SyncMode;
}

function wholeNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** generation_id, minimum_generation_id and sync_id; absent on platforms without refreshes. */
function generationsOf(
  entry: CatalogEntry,
  stream: string,
): Pick<ConfiguredStream, 'generationId' | 'minimumGenerationId' | 'syncId'> {
  const generationId = wholeNumber(entry.generation_id) ?? 0;
  const minimumGenerationId = wholeNumber(entry.minimum_generation_id) ?? 0;
  if (minimumGenerationId > 0 && minimumGenerationId !== generationId) {
    // Airbyte knows two refreshes: truncate (minimum == generation) and merge (minimum 0). Anything between would
    // ask to clear data of a generation newer than the minimum but older than this one, which no platform sends.
    throw new ConfigError(
      `Stream ${stream} has minimum_generation_id ${minimumGenerationId} and generation_id ${generationId}: the minimum must be 0 or equal to the generation. ` +
        'The catalog is not one the Airbyte platform sends; refresh the stream again.',
    );
  }
  return { generationId, minimumGenerationId, syncId: wholeNumber(entry.sync_id) };
}

function shorten(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text);
}

/** The filters of a truncated stream's territory (see `StreamRoute.territory`). */
function retainedTerritory(pattern: string, stream: ConfiguredStream, escaping: TopicEscaping): string[] {
  const filters: string[] = [];
  if (stream.primaryKey.length > 0)
    filters.push(
      keyFilter(streamTopic(pattern, stream.namespace, stream.name, true, escaping), stream.primaryKey.length),
    );
  if (!patternHasKey(pattern))
    filters.push(streamTopic(pattern, stream.namespace, stream.name, false, escaping).before);
  return filters;
}

/** How topics are rendered and messages flagged, from the settings. */
export interface RoutingOptions {
  /** What substituted values escape beyond what MQTT forbids (`topic_value_escaping`). */
  readonly escaping?: TopicEscaping;
  /** Every message is published retained (`message_retained`), whatever the sync mode. */
  readonly retain?: boolean;
}

/** The routes of every configured stream, keyed by `streamKey`, or a ConfigError naming each stream whose topic is invalid. */
export function routeStreams(
  streams: readonly ConfiguredStream[],
  topicPattern: string,
  options: RoutingOptions = {},
): Map<string, StreamRoute> {
  const escaping = options.escaping ?? 'standard';
  const routes = new Map<string, StreamRoute>();
  const problems: string[] = [];
  const patternKeyed = patternHasKey(topicPattern);
  for (const stream of streams) {
    const { name, namespace, primaryKey, mode } = stream;
    const deduped = mode !== 'append';
    // overwrite_dedup is overwrite: both keep one retained message per key, and clear the stale ones.
    const overwrite = mode === 'overwrite' || mode === 'overwrite_dedup';
    const keyed = patternKeyed || deduped;
    if (keyed && primaryKey.length === 0) {
      problems.push(
        patternKeyed
          ? `stream ${describeStream(namespace, name)} has no primary key, which ${field('topic_pattern')} needs for {key}`
          : `stream ${describeStream(namespace, name)} has no primary key, which the sync mode ${mode} needs (it keeps one retained message per key)`,
      );
      continue;
    }
    const topic = streamTopic(topicPattern, namespace, name, keyed, escaping);
    const topicName = keyed ? keyFilter(topic, primaryKey.length) : topic.before;
    // For keyed topics, the filter stands for every key's topic: `+` is a valid level there and means "some key".
    const problem = topicProblem(keyed ? topicName.replaceAll('+', 'k') : topicName);
    const retained = deduped || options.retain === true;
    const truncate =
      overwrite || (stream.minimumGenerationId > 0 && stream.minimumGenerationId === stream.generationId);
    const territory = truncate ? retainedTerritory(topicPattern, stream, escaping) : [];
    if (truncate && retained && topicName.split('/').every((level) => level === '+')) {
      // The filter would take in every topic of that depth on the broker, other applications' retained messages too.
      problems.push(
        `stream ${describeStream(namespace, name)} is truncated (${mode}), which clears retained keys under "${topicName}": that filter is not the stream's own. ` +
          'Put the keys under a level of the stream, as in {stream}/{key}',
      );
    }
    if (problem) problems.push(`stream ${describeStream(namespace, name)}: ${problem} (topic ${shorten(topicName)})`);
    routes.set(streamKey(namespace, name), {
      ...stream,
      topic,
      topicName,
      keyed,
      deduped,
      retained,
      truncate,
      // A key filter of nothing but `+` is not the stream's own: a stream whose keys are not retained there leaves it.
      territory: retained
        ? territory
        : territory.filter((filter) => !filter.split('/').every((level) => level === '+')),
      streamJson: JSON.stringify(name),
    });
  }
  if (problems.length > 0) {
    throw new ConfigError(
      `topic_pattern ${JSON.stringify(topicPattern)} cannot be used with this catalog: ${problems.join('; ')}`,
    );
  }
  return routes;
}

/** Whether some topic matches both `a` and `b`, where `+` stands for any one level (key filters). */
function filtersOverlap(a: string, b: string): boolean {
  const left = a.split('/');
  const right = b.split('/');
  return (
    left.length === right.length && left.every((level, i) => level === '+' || right[i] === '+' || level === right[i])
  );
}

/** What every message says about its stream, whatever its topic: the payload format and the MQTT 5 user properties. */
export interface MessageIdentity {
  readonly carriesStream: boolean;
  readonly carriesNamespace: boolean;
}

/**
 * Streams whose messages would share a topic. Two streams on one topic are one stream to a consumer unless every
 * message says which it is: that fails the sync before publishing (a consumer could not tell `eu.users` from
 * `us.users`). Keyed streams on one filter always fail: they would overwrite, and an overwrite clear, each other's keys.
 * Streams that share a topic but stay distinguishable are returned as warnings, one per topic.
 */
export function sharedTopics(routes: ReadonlyMap<string, StreamRoute>, identity: MessageIdentity): string[] {
  const problems: string[] = [];
  const byTopic = new Map<string, StreamRoute[]>();
  for (const route of routes.values()) byTopic.set(route.topicName, [...(byTopic.get(route.topicName) ?? []), route]);
  // A keyed stream's filter also takes in topics that are not spelled the same: x/+/+ and x/y/+ share x/y/1.
  const all = [...routes.values()];
  for (const [i, a] of all.entries()) {
    for (const b of all.slice(i + 1)) {
      if (a.topicName !== b.topicName && (a.keyed || b.keyed) && filtersOverlap(a.topicName, b.topicName)) {
        problems.push(
          `streams ${describeStream(a.namespace, a.name)} and ${describeStream(b.namespace, b.name)} would share topics ("${a.topicName}" and "${b.topicName}" overlap)`,
        );
      }
    }
  }
  const warnings: string[] = [];
  for (const [topic, sharing] of byTopic) {
    if (sharing.length < 2) continue;
    const names = sharing.map((route) => describeStream(route.namespace, route.name)).join(' and ');
    const clash = sharing.some((a, i) =>
      sharing.slice(i + 1).some((b) => {
        // A keyspace, or a retained topic that a truncation clears, is one stream's alone.
        if (a.keyed || b.keyed || (a.truncate && a.retained) || (b.truncate && b.retained)) return true;
        const byName = a.name !== b.name && identity.carriesStream;
        const byNamespace = (a.namespace ?? '') !== (b.namespace ?? '') && identity.carriesNamespace;
        return !byName && !byNamespace;
      }),
    );
    if (clash) {
      problems.push(
        sharing.some((route) => route.keyed || (route.truncate && route.retained))
          ? `streams ${names} would keep their keys under the same topics "${topic}"`
          : `streams ${names} would publish indistinguishable messages to the same topic "${topic}"`,
      );
    } else {
      warnings.push(
        `Streams ${names} share the topic "${topic}"; their messages say which stream each is, so consumers must look there.`,
      );
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(
      `${field('topic_pattern')} merges streams: ${problems.join('; ')}. Add {namespace} (or {stream}) to the pattern so that each stream gets topics of its own.`,
    );
  }
  return warnings;
}
