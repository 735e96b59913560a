/**
 * What the broker remembers of a truncated stream's generation from one attempt to the next, for MQTT 3.1.x, whose
 * retained messages cannot say which generation wrote them.
 *
 * The platform keeps the generation of a resumable full refresh, and of an incremental stream, across the attempts
 * of a job: keys an earlier attempt wrote then belong to the current generation and must be kept, and on MQTT 3.1.x
 * they look like stale ones. Any other full refresh gets a new generation with every attempt, so nothing of its
 * generation is on the broker when an attempt starts (the caller needs no marker for it). So before a resumable or
 * incremental stream publishes anything, the attempt leaves a retained marker with its generation under the
 * connector's own topics, and reads the one an earlier attempt left: a marker of an older generation, or none, means
 * that no earlier attempt of this generation published anything, and every key this attempt does not write is stale.
 * A marker the connector cannot read back proves nothing, and everything is kept.
 */
import type { StreamRoute } from './routes.js';
import type { MessageSettings } from '../config/settings.js';
import { encodeKeyLevel } from '../payload/topic.js';
import { type RetainedScan, ownTopicBase } from '../mqtt/retained-scan.js';

/** Whether keys of this stream's current generation may already be on the broker, and if so why. */
export type EarlierAttempts = { readonly wrote: false } | { readonly wrote: true; readonly why: string };

/**
 * The marker's topic: one level under the connector's own base, holding the first filter of the stream's territory
 * (its key filter, whatever the mode of this sync) percent-encoded.
 */
export function markerTopic(
  messages: Pick<MessageSettings, 'testTopic' | 'topicEscaping'>,
  route: Pick<StreamRoute, 'territory' | 'topicName'>,
): string {
  const level = encodeKeyLevel(route.territory[0] ?? route.topicName, messages.topicEscaping) ?? '_';
  return `${ownTopicBase(messages.testTopic)}/generation/${level}`;
}

function markerPayload(route: StreamRoute): string {
  return JSON.stringify({
    stream: route.name,
    namespace: route.namespace ?? null,
    filter: route.territory[0] ?? route.topicName,
    generation_id: route.generationId,
    sync_id: route.syncId ?? null,
  });
}

/** The generation and sync a marker names, or undefined for a payload that is not one. */
function readMarker(payload: Buffer | undefined): { generation: number; syncId: unknown } | undefined {
  if (payload === undefined) return undefined;
  try {
    const parsed = JSON.parse(payload.toString('utf8')) as { generation_id?: unknown; sync_id?: unknown };
    return typeof parsed.generation_id === 'number' && Number.isSafeInteger(parsed.generation_id)
      ? { generation: parsed.generation_id, syncId: parsed.sync_id }
      : undefined;
  } catch {
    return undefined;
  }
}

async function retainedAt(scan: RetainedScan, topic: string): Promise<Buffer | undefined> {
  let found: Buffer | undefined;
  await scan.scan(topic, (message) => {
    if (message.topic === topic) found = message.payload;
  });
  return found;
}

/**
 * Reads the stream's marker, then leaves this attempt's, before the stream publishes anything; says whether an
 * earlier attempt of the same generation may have written keys.
 */
export async function claimGeneration(
  scan: RetainedScan,
  messages: MessageSettings,
  route: StreamRoute,
): Promise<EarlierAttempts> {
  const topic = markerTopic(messages, route);
  const earlier = readMarker(await retainedAt(scan, topic));
  await scan.publishRetained(topic, markerPayload(route));
  const own = readMarker(await retainedAt(scan, topic));
  if (own?.generation !== route.generationId) {
    return {
      wrote: true,
      why:
        `the connector cannot read back the marker it keeps at "${topic}" ` +
        `to tell a first attempt of generation ${route.generationId} from a later one ` +
        '(give it read and write permission there)',
    };
  }
  if (earlier !== undefined && earlier.generation >= route.generationId) {
    const sync = typeof earlier.syncId === 'number' ? ` of sync ${earlier.syncId}` : '';
    return { wrote: true, why: `an earlier attempt${sync} already published keys of generation ${earlier.generation}` };
  }
  return { wrote: false };
}
