/**
 * Records that cannot be published, handled as `rejected_records` says: the sync fails; or the record is counted as
 * rejected (in the states that cover it, and the stream's summary) and skipped with a warning, or reported on the
 * dead letter topic. A rejected record still holds back the states after it until it is done with: at once when
 * skipped, on its report's acknowledgement otherwise, so no state claims more than was done.
 *
 * A record is rejected before it is sent (no usable key, a message too large), or after, when the broker refuses it
 * for a reason of its own (MQTT 5 Not authorized, Topic Name invalid, Quota exceeded, Payload format invalid): the
 * report then carries the message that was refused rather than the record's data.
 */
import type { Checkpoints } from '../airbyte/checkpoints.js';
import type { Settings } from '../config/settings.js';
import { field } from '../config/spec.js';
import { ConfigError, type ConnectorError } from '../errors.js';
import type { Log } from '../log.js';
import { NO_VALUES, type PublishTarget, publishTarget, retarget } from '../mqtt/packets.js';
import { keyValueText, keyValues, unusableKeyReason } from '../payload/key-values.js';
import {
  type PatternField,
  type StreamTopic,
  type TopicEscaping,
  encodeKeyLevel,
  fillTopic,
  patternFields,
  streamTopic,
  topicProblem,
} from '../payload/topic.js';
import type { Channel, RefusedMessage } from './channel.js';
import type { Channels } from './channels.js';
import type { Lane, Publish } from './lane.js';
import type { Summary } from './summary.js';

/** Where a report went, for the caller to pace input by. */
export interface Sent {
  readonly channel: Channel;
  readonly bytes: number;
  /** Messages it counts for against the rate limit: 1, or 0 for a record that went into a batch. */
  readonly messages?: number;
}

/** A rejected record: which lane, why, its number in the ledger, and what the report carries of it. */
interface Rejected {
  readonly lane: Lane;
  readonly reason: string;
  readonly token: number;
  readonly line: number;
  readonly recordId: string | undefined;
  /** The report's member for the record: its data, or the refused message, as JSON text (undefined: size only). */
  readonly name: 'data' | 'message';
  readonly json: string | undefined;
  /** Its size as the report gives it when the whole would be too large. */
  readonly bytes: number;
}

export class Rejections {
  /** Where reports go, when `rejected_records` is `dead_letter`: the target, and the topic's template per stream. */
  private readonly deadLetter: PublishTarget | undefined;
  private readonly reportTopics = new Map<string, StreamTopic>();
  private readonly reportFields: readonly PatternField[];

  constructor(
    private readonly settings: Settings,
    private readonly lanes: ReadonlyMap<string, Lane>,
    private readonly channels: Channels,
    private readonly ledger: Checkpoints,
    private readonly summary: Summary,
    private readonly log: Log,
  ) {
    const topic = settings.sync.deadLetterTopic;
    this.reportFields = topic === undefined ? [] : patternFields(topic);
    this.deadLetter =
      topic === undefined
        ? undefined
        : publishTarget(topic, {
            mqtt5: settings.messages.mqtt5,
            contentType: 'application/json',
            customUserProperties: settings.messages.customUserProperties,
            label: 'the dead letter report',
          });
  }

  /** Whether a broker's refusal of one record rejects it (and the sync goes on) rather than failing the sync. */
  get takesRefusals(): boolean {
    return this.settings.sync.rejectedRecords !== 'fail';
  }

  /**
   * A record of `lane` that cannot be published, on input line `line`. With `fail` this throws the error that ends
   * the sync; otherwise the record is rejected under its number in the ledger (`numbered`, or a new one). Returns
   * where its report went, if anywhere.
   */
  reject(
    lane: Lane,
    reason: string,
    line: number,
    recordId: string,
    dataJson: string,
    numbered?: number,
  ): Sent | undefined {
    if (!this.takesRefusals) {
      // Reasons start with the input line, as every input error does.
      throw new ConfigError(
        `${reason.charAt(0).toUpperCase()}${reason.slice(1)}. ` +
          `Set ${field('rejected_records')} to skip or dead_letter to go on past such records.`,
      );
    }
    const token = numbered ?? this.ledger.recordReceived(lane.key);
    const bytes = Buffer.byteLength(dataJson, 'utf8');
    return this.drop({ lane, reason, token, line, recordId, name: 'data', json: dataJson, bytes });
  }

  /** A record's message is `size` bytes, more than `channel` may carry: rejected with the size and the cheapest fix. */
  oversize(lane: Lane, channel: Channel, record: Publish, line: number, dataJson: string, token: number, size: number) {
    const { target, bytes, recordId } = record;
    // Without its final full stop: the rejection adds what to set to go on past such records.
    const reason = `input line ${line}: ${channel.describeOversize(target, bytes, size).replace(/\.$/, '')}`;
    return this.reject(lane, reason, line, recordId, dataJson, token);
  }

  /**
   * The broker refused a record it was sent, for a reason of that record's own: it is rejected as if it had been
   * refused before sending. Returns the error to end the sync with when it cannot be (the stream is unknown).
   */
  refused(refusal: RefusedMessage): ConnectorError | undefined {
    const { target } = refusal;
    const lane = this.lanes.get(target.source);
    if (!lane)
      return new ConfigError(`The broker refused ${target.label} on topic "${target.topic}": ${refusal.reason}.`);
    const reason =
      `input line ${refusal.line}: ${target.label} was refused by the broker ` +
      `on topic "${target.topic}": ${refusal.reason}`;
    // The report takes the refused message's place in the window; the reader's own checks keep input within room.
    const { payload, token, line } = refusal;
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
    // A compressed payload is no JSON to splice in: the report gives its size.
    const json = typeof payload === 'string' ? payload || 'null' : undefined;
    this.drop({ lane, reason, token, line, recordId: undefined, name: 'message', json, bytes });
    return undefined;
  }

  private reportTopic(rejected: Rejected): string {
    const { route, key } = rejected.lane;
    const { messages, sync } = this.settings;
    let template = this.reportTopics.get(key);
    if (!template) {
      template = streamTopic(sync.deadLetterTopic ?? '', route.namespace, route.name, false, messages.topicEscaping);
      this.reportTopics.set(key, template);
    }
    return reportTopicOf(template, this.reportFields, rejected, messages.topicEscaping);
  }

  private drop(rejected: Rejected): Sent | undefined {
    const { lane, token } = rejected;
    this.summary.rejected(lane.key);
    this.ledger.recordRefused(token, lane.key);
    if (this.settings.sync.rejectedRecords === 'skip' || !this.deadLetter) {
      this.log('WARN', `Skipped ${rejected.reason}.`);
      this.ledger.acknowledged(token);
      return undefined;
    }
    const channel = this.channels.for(lane.route, undefined);
    const target = retarget(this.deadLetter, this.reportTopic(rejected));
    const send = (json: string | undefined): string | undefined => {
      const report = deadLetterReport(rejected, json);
      const bytes = Buffer.byteLength(report, 'utf8');
      return channel.send(target, report, bytes, NO_VALUES, token, rejected.line) === 0 ? report : undefined;
    };
    // Too large for the broker with the record in it: the report says how large the record was instead.
    const report = send(rejected.json) ?? (rejected.json === undefined ? undefined : send(undefined));
    if (report === undefined) {
      this.log('WARN', `Skipped ${rejected.reason} (even its report is larger than the broker accepts).`);
      this.ledger.acknowledged(token);
      return undefined;
    }
    return { channel, bytes: Buffer.byteLength(report, 'utf8') };
  }
}

/**
 * The dead letter topic of one report: its {namespace} and {stream} from the record's stream, each {field:PATH} from
 * the record's data. A field the report cannot give (missing, null, an object or an array, or a message the broker
 * refused, whose data the report does not carry) leaves its level empty, as does any field when the topic would be
 * longer than MQTT allows.
 */
function reportTopicOf(
  template: StreamTopic,
  fields: readonly PatternField[],
  rejected: Rejected,
  escaping: TopicEscaping,
): string {
  if (fields.length === 0) return template.texts[0] as string;
  const { json } = rejected;
  const values =
    rejected.name === 'data' && json !== undefined
      ? keyValues(
          json,
          fields.map((f) => f.path),
        )
      : [];
  const levels = fields.map((_field, index) => {
    const value = values[index];
    return value && unusableKeyReason(value) === undefined ? (encodeKeyLevel(keyValueText(value), escaping) ?? '') : '';
  });
  const topic = fillTopic(template, [], levels);
  return topicProblem(topic) === undefined
    ? topic
    : fillTopic(
        template,
        [],
        levels.map(() => ''),
      );
}

/**
 * The dead letter report: reason, stream, namespace, input line and record ID, then the record's data (or the refused
 * message) as the source wrote it, spliced in as text so that its numbers stay exact; or, when `json` is undefined,
 * only its size in bytes (`data_bytes`, `message_bytes`).
 */
function deadLetterReport(rejected: Rejected, json: string | undefined): string {
  const { route } = rejected.lane;
  const head = JSON.stringify({
    reason: rejected.reason,
    stream: route.name,
    namespace: route.namespace ?? null,
    line: rejected.line,
    record_id: rejected.recordId ?? null,
  });
  const body = json === undefined ? `"${rejected.name}_bytes":${rejected.bytes}` : `"${rejected.name}":${json}`;
  return `${head.slice(0, -1)},${body}}`;
}
