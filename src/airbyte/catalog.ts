/**
 * The configured catalog: which streams this sync may carry, and the topic each one publishes to. Topics are rendered
 * and validated for every configured stream before the first record is read, so a bad pattern fails the sync before
 * anything is published rather than halfway through.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, SystemError } from '../errors.js';
import { renderTopic, topicProblem } from '../payload/topic.js';

/** A primary key: each element is the path of one key field inside the record's `data`. */
export type PrimaryKey = readonly (readonly string[])[];

export interface StreamRoute {
  readonly name: string;
  readonly namespace: string | undefined;
  /** The configured stream's primary key, or the source's own; empty when the stream has none. */
  readonly primaryKey: PrimaryKey;
  readonly topic: string;
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

interface ConfiguredStream {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly primaryKey: PrimaryKey;
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
    const configured = (entry ?? {}) as { primary_key?: unknown; stream?: { name?: unknown; namespace?: unknown; source_defined_primary_key?: unknown } };
    const stream = configured.stream;
    if (typeof stream?.name !== 'string' || stream.name === '') {
      throw new SystemError(`The catalog ${source} has no stream name at streams[${index}].stream.name`);
    }
    const namespace = typeof stream.namespace === 'string' && stream.namespace !== '' ? stream.namespace : undefined;
    return { name: stream.name, namespace, primaryKey: primaryKeyOf(configured, stream.name, source) };
  });
}

function shorten(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text);
}

/** The routes of every configured stream, keyed by `streamKey`, or a ConfigError naming each stream whose topic is invalid. */
export function routeStreams(streams: readonly ConfiguredStream[], topicPattern: string): Map<string, StreamRoute> {
  const routes = new Map<string, StreamRoute>();
  const problems: string[] = [];
  for (const { name, namespace, primaryKey } of streams) {
    const topic = renderTopic(topicPattern, namespace, name);
    const problem = topicProblem(topic);
    if (problem) problems.push(`stream ${describeStream(namespace, name)}: ${problem} (topic ${shorten(topic)})`);
    routes.set(streamKey(namespace, name), { name, namespace, primaryKey, topic, streamJson: JSON.stringify(name) });
  }
  if (problems.length > 0) {
    throw new ConfigError(`topic_pattern ${JSON.stringify(topicPattern)} gives invalid topics: ${problems.join('; ')}`);
  }
  return routes;
}
