/**
 * What the user is told when publishing cannot go on, in one place: each text says what the broker did and what to
 * change. The publisher decides when; these functions decide the words and whether retrying later may help
 * (`TransientError`) or the configuration must change first (`ConfigError`), as reason-codes.ts judges a refusal.
 */
import type { QoS } from '../config/settings.js';
import { field } from '../config/spec.js';
import { ConfigError, type ConnectorError, TransientError } from '../errors.js';
import { describeReason, wouldRepeat } from './reason-codes.js';

/** What a message too large for its connection was measured against (send-state.ts's `sizeLimit`). */
export interface Oversize {
  /** What the message is: `the record of stream "users"`. */
  readonly label: string;
  /** Its packet size, in bytes. */
  readonly size: number;
  /** The largest packet the connection may carry, and what sets that limit, in words. */
  readonly limit: { readonly bytes: number; readonly source: string };
  /** Its size without the MQTT 5 user properties (`size` when it has none). */
  readonly withoutUserProperties: number;
}

/**
 * `the record of stream "users" makes a 395-byte MQTT message, larger than the 256 bytes the broker accepts (...).
 * Turning off ... makes it 201 bytes, which fits; ...`: why it cannot be sent, and the cheapest fix.
 */
export function describeOversize({ label, size, limit, withoutUserProperties }: Oversize): string {
  // The cheapest fix, when there is one: the user properties repeat the stream, namespace and time on every message.
  const fix =
    withoutUserProperties <= limit.bytes
      ? `Turning off ${field('mqtt5_user_properties')} makes it ${withoutUserProperties} bytes, which fits; ` +
        "otherwise raise the broker's limit or leave out this record's large fields."
      : "Nothing larger can be published to this broker; raise its limit or leave out this record's large fields.";
  return `${label} makes a ${size}-byte MQTT message, larger than the ${limit.bytes} bytes ${limit.source}. ${fix}`;
}

/** A message found too large only when it was written (the connection's limit shrank after it was queued). */
export function messageTooLarge(oversize: Oversize, line: number): ConnectorError {
  const what = describeOversize(oversize);
  // Records name their input line; a message that has none (the check's) starts the sentence itself.
  return new ConfigError(line > 0 ? `Input line ${line}: ${what}` : `${what.charAt(0).toUpperCase()}${what.slice(1)}`);
}

/** The broker answered a QoS 2 message with PUBACK: it downgraded it (RabbitMQ does) and will never send PUBREC. */
export function qos2Downgraded(topic: string): ConnectorError {
  return new ConfigError(
    `The broker answered a QoS 2 (exactly once) message on topic ${JSON.stringify(topic)} with PUBACK, ` +
      'the QoS 1 acknowledgement: it does not support QoS 2 and downgraded the message. ' +
      `Set ${field('message_qos')} to AT_LEAST_ONCE.`,
    'PUBACK for a QoS 2 PUBLISH',
  );
}

/** The broker refused a message with reason code `code`; transient when the same message may be accepted later. */
export function messageRefused(topic: string, code: number): ConnectorError {
  const reason = describeReason(code);
  if (!wouldRepeat(code)) {
    return new TransientError(
      `The broker refused a message on topic "${topic}": ${reason}. ` +
        'It may accept it later; the sync stops so that it can be retried.',
      reason,
    );
  }
  return new ConfigError(
    `The broker refused a message on topic "${topic}": ${reason}. ` +
      "Check the broker's access rules and limits for this topic.",
    reason,
  );
}

/**
 * Messages left unanswered again after the connection was replaced for their silence and they were sent once more;
 * `silence` is the acknowledgement watch's description of them (ack-watchdog.ts).
 */
export function silentTwice(silence: string, qos: QoS): ConnectorError {
  return new TransientError(
    `The broker left ${silence}, again after the connector reconnected and sent them once more: ` +
      `it keeps the connection open but does not answer at QoS ${qos}. ` +
      `Check the broker's log and load; if it is only slow, raise ${field('ack_timeout_seconds')}.`,
    `silent twice: ${silence}`,
  );
}
