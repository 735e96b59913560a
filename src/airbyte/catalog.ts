/**
 * The configured catalog: which streams this sync may carry, and the topic each one publishes to. Topics are rendered
 * and validated for every configured stream before the first record is read, so a bad pattern fails the sync before
 * anything is published rather than halfway through.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, SystemError } from '../errors.js';
import { renderTopic, topicProblem } from '../payload/topic.js';

export interface StreamRoute {
  readonly name: string;
  readonly namespace: string | undefined;
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
    const stream = (entry as { stream?: { name?: unknown; namespace?: unknown } } | null)?.stream;
    if (typeof stream?.name !== 'string' || stream.name === '') {
      throw new SystemError(`The catalog ${source} has no stream name at streams[${index}].stream.name`);
    }
    const namespace = typeof stream.namespace === 'string' && stream.namespace !== '' ? stream.namespace : undefined;
    return { name: stream.name, namespace };
  });
}

function shorten(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text);
}

/** The routes of every configured stream, keyed by `streamKey`, or a ConfigError naming each stream whose topic is invalid. */
export function routeStreams(streams: readonly ConfiguredStream[], topicPattern: string): Map<string, StreamRoute> {
  const routes = new Map<string, StreamRoute>();
  const problems: string[] = [];
  for (const { name, namespace } of streams) {
    const topic = renderTopic(topicPattern, namespace, name);
    const problem = topicProblem(topic);
    if (problem) problems.push(`stream ${describeStream(namespace, name)}: ${problem} (topic ${shorten(topic)})`);
    routes.set(streamKey(namespace, name), { name, namespace, topic, streamJson: JSON.stringify(name) });
  }
  if (problems.length > 0) {
    throw new ConfigError(`topic_pattern ${JSON.stringify(topicPattern)} gives invalid topics: ${problems.join('; ')}`);
  }
  return routes;
}
