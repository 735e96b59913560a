/**
 * Each configured stream's way to the broker: its topic (or, for keyed messages, the topic around each record's key
 * levels), whether its messages are keyed and retained, and what a truncation clears. Topics are rendered and
 * validated for every configured stream before the first record is read, so a bad pattern fails the sync before
 * anything is published rather than halfway through; so do streams whose messages would be indistinguishable.
 */
import { type ConfiguredStream, describeStream, streamKey } from '../airbyte/catalog.js';
import type { MessageSettings } from '../config/settings.js';
import { field } from '../config/spec.js';
import { ConfigError } from '../errors.js';
import { prepareFormat } from '../payload/formats.js';
import {
  type PatternField,
  type StreamTopic,
  type TopicEscaping,
  patternFields,
  patternHasKey,
  streamTopic,
  topicFilter,
  topicProblem,
} from '../payload/topic.js';

export interface StreamRoute extends ConfiguredStream {
  /** Where its messages go: one topic, or for keyed messages the topic around each record's key levels. */
  readonly topic: StreamTopic;
  /** The record fields the topic holds (`{field:PATH}`), by the index its slots give. */
  readonly fields: readonly PatternField[];
  /**
   * The topic of every message, or for topics with slots the filter that matches every record's: for logs, errors and
   * scans.
   */
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
   * Where a truncated stream's retained messages may be, whatever mode wrote them: its key filter (when it has a
   * primary key) and its plain topic (when the pattern has no `{key}`). A platform with refreshes sends "Overwrite" and
   * a Clear as `append`, so an append stream's truncation must still find the keys an earlier deduped sync retained.
   * Empty when the stream is not truncated.
   */
  readonly territory: readonly string[];
  /** The stream name as a JSON string, encoded once for every envelope of this stream. */
  readonly streamJson: string;
}

function shorten(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text);
}

/** The filters of a truncated stream's territory (see `StreamRoute.territory`). */
function retainedTerritory(pattern: string, stream: ConfiguredStream, escaping: TopicEscaping): string[] {
  const filters: string[] = [];
  const { namespace, name, primaryKey } = stream;
  if (primaryKey.length > 0) {
    filters.push(topicFilter(streamTopic(pattern, namespace, name, true, escaping), primaryKey.length));
  }
  if (!patternHasKey(pattern)) filters.push(topicFilter(streamTopic(pattern, namespace, name, false, escaping), 0));
  return filters;
}

/** How topics are rendered and messages flagged, from the settings. */
export interface RoutingOptions {
  /** What substituted values escape beyond what MQTT forbids (`topic_value_escaping`). */
  readonly escaping?: TopicEscaping;
  /** Every message is published retained (`message_retained`), whatever the sync mode. */
  readonly retain?: boolean;
}

/**
 * The routes of every configured stream, keyed by `streamKey`, or a ConfigError naming each stream whose topic is
 * invalid.
 */
export function routeStreams(
  streams: readonly ConfiguredStream[],
  topicPattern: string,
  options: RoutingOptions = {},
): Map<string, StreamRoute> {
  const escaping = options.escaping ?? 'standard';
  const routes = new Map<string, StreamRoute>();
  const problems: string[] = [];
  const patternKeyed = patternHasKey(topicPattern);
  const fields = patternFields(topicPattern);
  for (const stream of streams) {
    const { name, namespace, primaryKey, mode } = stream;
    const deduped = mode !== 'append';
    // overwrite_dedup is overwrite: both keep one retained message per key, and clear the stale ones.
    const overwrite = mode === 'overwrite' || mode === 'overwrite_dedup';
    const keyed = patternKeyed || deduped;
    if (keyed && primaryKey.length === 0) {
      problems.push(
        patternKeyed
          ? `stream ${describeStream(namespace, name)} has no primary key, ` +
              `which ${field('topic_pattern')} needs for {key}`
          : `stream ${describeStream(namespace, name)} has no primary key, ` +
              `which the sync mode ${mode} needs (it keeps one retained message per key)`,
      );
      continue;
    }
    const topic = streamTopic(topicPattern, namespace, name, keyed, escaping);
    const perRecord = topic.slots.length > 0;
    const topicName = topicFilter(topic, primaryKey.length);
    // For topics with slots, the filter stands for every record's topic: `+` is a valid level there ("some value").
    const problem = topicProblem(perRecord ? topicName.replaceAll('+', 'k') : topicName);
    const retained = deduped || options.retain === true;
    const truncate =
      overwrite || (stream.minimumGenerationId > 0 && stream.minimumGenerationId === stream.generationId);
    const territory = truncate ? retainedTerritory(topicPattern, stream, escaping) : [];
    if (truncate && retained && topicName.split('/').every((level) => level === '+')) {
      // The filter would take in every topic of that depth on the broker, other applications' retained messages too.
      problems.push(
        `stream ${describeStream(namespace, name)} is truncated (${mode}), ` +
          `which clears retained keys under "${topicName}": that filter is not the stream's own. ` +
          'Put the keys under a level of the stream, as in {stream}/{key}',
      );
    }
    if (problem) problems.push(`stream ${describeStream(namespace, name)}: ${problem} (topic ${shorten(topicName)})`);
    routes.set(streamKey(namespace, name), {
      ...stream,
      topic,
      topicName,
      fields,
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

/** What each message says about its stream with these settings: the format's own fields, and MQTT 5 user properties. */
export function messageIdentity(messages: MessageSettings): MessageIdentity {
  const properties = messages.mqtt5 && messages.mqtt5UserProperties;
  const format = prepareFormat(messages.messageFormat, { name: '', namespace: undefined });
  return { carriesStream: properties || format.carriesStream, carriesNamespace: properties || format.carriesNamespace };
}

/**
 * Streams whose messages would share a topic. Two streams on one topic are one stream to a consumer unless every
 * message says which it is: that fails the sync before publishing (a consumer could not tell `eu.users` from
 * `us.users`). Keyed streams on one filter always fail: they would overwrite, and an overwrite clear, each other's
 * keys. Streams that share a topic but stay distinguishable are returned as warnings, one per topic.
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
          `streams ${describeStream(a.namespace, a.name)} and ${describeStream(b.namespace, b.name)} ` +
            `would share topics ("${a.topicName}" and "${b.topicName}" overlap)`,
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
        `Streams ${names} share the topic "${topic}"; ` +
          'their messages say which stream each is, so consumers must look there.',
      );
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(
      `${field('topic_pattern')} merges streams: ${problems.join('; ')}. ` +
        'Add {namespace} (or {stream}) to the pattern so that each stream gets topics of its own.',
    );
  }
  return warnings;
}

/**
 * Warnings for keyed retained streams whose topic holds a field that is not part of the primary key: when the field's
 * value changes for a key, the key's message moves to another topic and its old retained message stays behind (a
 * truncation clears it; append_dedup never does). One per stream.
 */
export function fieldTopicWarnings(routes: ReadonlyMap<string, StreamRoute>): string[] {
  const warnings: string[] = [];
  for (const route of routes.values()) {
    if (!route.keyed || !route.retained) continue;
    const keyPaths = route.primaryKey.map((path) => path.join('\u0000'));
    const loose = route.fields.filter((field) => !keyPaths.includes(field.path.join('\u0000')));
    if (loose.length === 0) continue;
    warnings.push(
      `Stream ${describeStream(route.namespace, route.name)} keeps one retained message per key on topics that hold ` +
        `${loose.map((field) => field.placeholder).join(' and ')}, which is not part of its primary key: a key whose ` +
        'value there changes leaves its old retained message behind, ' +
        'until an overwrite or a truncating refresh clears it.',
    );
  }
  return warnings;
}
