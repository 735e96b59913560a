/**
 * The configured catalog: which streams this sync may carry, and the topic each one publishes to. Topics are rendered
 * and validated for every configured stream before the first record is read, so a bad pattern fails the sync before
 * anything is published rather than halfway through.
 */
import { readFile } from 'node:fs/promises';
import { field, supportedSyncModes } from '../config/spec.js';
import { ConfigError, SystemError } from '../errors.js';
import { type StreamTopic, type TopicEscaping, keyFilter, patternHasKey, streamTopic, topicProblem } from '../payload/topic.js';

/** A primary key: each element is the path of one key field inside the record's `data`. */
export type PrimaryKey = readonly (readonly string[])[];

/** The sync modes that mean something on the broker; the spec's `supported_destination_sync_modes` lists them. */
export const SYNC_MODES = ['append', 'append_dedup', 'overwrite', 'overwrite_dedup'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/** What the configured catalog says about a stream, checked. */
export interface ConfiguredStream {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly primaryKey: PrimaryKey;
  /** The cursor field's path into `data`; empty when the stream has none. */
  readonly cursorField: readonly string[];
  readonly mode: SyncMode;
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
  /** Messages are retained: the broker keeps the last one per topic (append_dedup and overwrite). */
  readonly retained: boolean;
  /**
   * The stream is truncated: when it completes, retained keys of older generations that this sync did not write are
   * cleared (mode overwrite, or a refresh that says so with minimum_generation_id == generation_id > 0).
   */
  readonly truncate: boolean;
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
function primaryKeyOf(entry: { primary_key?: unknown; stream?: { source_defined_primary_key?: unknown } }, name: string, source: string): PrimaryKey {
  const declared = entry.primary_key ?? entry.stream?.source_defined_primary_key;
  if (declared === undefined || declared === null) return [];
  if (!Array.isArray(declared) || !declared.every(isKeyPath)) {
    throw new SystemError(`The catalog ${source} gives stream "${name}" a primary key that is not a list of field paths (lists of strings)`);
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
  readonly stream?: { name?: unknown; namespace?: unknown; source_defined_primary_key?: unknown };
}

/**
 * The stream's sync mode. A catalog without one is from a platform older than sync modes: append. A mode the spec
 * does not declare fails the sync before anything is published (the platform does not enforce the spec's list), so
 * `update`, `soft_delete` or a typo are never written as if they were `append`.
 */
function syncModeOf(mode: unknown, stream: string): SyncMode {
  if (mode === undefined || mode === null) return 'append';
  const supported = supportedSyncModes();
  if (typeof mode !== 'string' || !supported.includes(mode)) {
    throw new ConfigError(
      `Stream ${stream} asks for the sync mode ${JSON.stringify(mode)}, which this destination does not support (it supports ${supported.join(', ')}). ` +
        'Choose one of those for the stream in the connection settings.',
    );
  }
  return mode as SyncMode;
}

function wholeNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** generation_id, minimum_generation_id and sync_id; absent on platforms without refreshes. */
function generationsOf(entry: CatalogEntry, stream: string): Pick<ConfiguredStream, 'generationId' | 'minimumGenerationId' | 'syncId'> {
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

/** The routes of every configured stream, keyed by `streamKey`, or a ConfigError naming each stream whose topic is invalid. */
export function routeStreams(streams: readonly ConfiguredStream[], topicPattern: string, escaping: TopicEscaping = 'standard'): Map<string, StreamRoute> {
  const routes = new Map<string, StreamRoute>();
  const problems: string[] = [];
  const patternKeyed = patternHasKey(topicPattern);
  for (const stream of streams) {
    const { name, namespace, primaryKey, mode } = stream;
    const retained = mode !== 'append';
    // overwrite_dedup is overwrite: both keep one retained message per key, and clear the stale ones.
    const overwrite = mode === 'overwrite' || mode === 'overwrite_dedup';
    const keyed = patternKeyed || retained;
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
    const truncate = retained && (overwrite || (stream.minimumGenerationId > 0 && stream.minimumGenerationId === stream.generationId));
    if (truncate && topicName.split('/').every((level) => level === '+')) {
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
      retained,
      // Only retained keys can be cleared: an append stream's messages are gone once delivered, whatever a refresh says.
      truncate,
      streamJson: JSON.stringify(name),
    });
  }
  if (problems.length > 0) {
    throw new ConfigError(`topic_pattern ${JSON.stringify(topicPattern)} cannot be used with this catalog: ${problems.join('; ')}`);
  }
  return routes;
}

/** Whether some topic matches both `a` and `b`, where `+` stands for any one level (key filters). */
function filtersOverlap(a: string, b: string): boolean {
  const left = a.split('/');
  const right = b.split('/');
  return left.length === right.length && left.every((level, i) => level === '+' || right[i] === '+' || level === right[i]);
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
        if (a.keyed || b.keyed) return true;
        const byName = a.name !== b.name && identity.carriesStream;
        const byNamespace = (a.namespace ?? '') !== (b.namespace ?? '') && identity.carriesNamespace;
        return !byName && !byNamespace;
      }),
    );
    if (clash) {
      problems.push(
        sharing.some((route) => route.keyed)
          ? `streams ${names} would keep their keys under the same topics "${topic}"`
          : `streams ${names} would publish indistinguishable messages to the same topic "${topic}"`,
      );
    } else {
      warnings.push(`Streams ${names} share the topic "${topic}"; their messages say which stream each is, so consumers must look there.`);
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(
      `${field('topic_pattern')} merges streams: ${problems.join('; ')}. Add {namespace} (or {stream}) to the pattern so that each stream gets topics of its own.`,
    );
  }
  return warnings;
}
