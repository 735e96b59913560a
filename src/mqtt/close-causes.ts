/**
 * Why a broker closed the connection right after receiving something, judged from what was sent. An MQTT 3.1.1 broker
 * has no way to refuse a single message except closing the connection (MQTT 5 brokers send a reason code instead,
 * and often do not get here), so the closing itself says nothing; what was in flight does. Each likely cause is
 * ruled in or out by that evidence and the rest are ordered by how often they explain it:
 *
 * - QoS 2 and retain: refused by NATS, AWS IoT, Azure IoT Hub and Mosquitto with `max_qos 1` or
 *   `retain_available false`. Ruled out once the broker has acknowledged any message of the sync, since every message
 *   carries the same QoS and retain flag.
 * - Topic characters: NATS maps `/` to `.` and refuses topics containing `.` or a space; `$` topics are reserved.
 *   Ruled out when the broker acknowledged a message on the same topic before.
 * - Size: ruled out when the broker acknowledged a payload at least as large.
 * - Access rules: brokers that close rather than acknowledge and drop (HiveMQ, EMQX with `deny_action = disconnect`).
 * - Messages in flight: Mosquitto closes a 3.1.1 connection with more than 20 QoS 2 messages awaiting release.
 */
import type { QoS } from '../config/settings.js';
import { field } from '../config/spec.js';

/** The message a closed connection most likely failed on. */
export interface Suspect {
  readonly topic: string;
  readonly payloadBytes: number;
  /** The broker acknowledged an earlier message on this topic. */
  readonly topicAcknowledged: boolean;
}

/** What the publisher knows of the messages a connection carried when it closed. */
export interface SendEvidence {
  readonly qos: QoS;
  readonly retain: boolean;
  /** Messages written on the connection that it closed without acknowledging. */
  readonly unacknowledged: number;
  /** The first of them (at QoS 0, which has no acknowledgements, the last message written just before the close). */
  readonly suspect: Suspect | undefined;
  /** The broker acknowledged at least one message of this sync, so it accepts this QoS and retain flag. */
  readonly acknowledgedAny: boolean;
  /** The largest payload the broker acknowledged, in bytes (0: none). */
  readonly largestAcknowledged: number;
}

/** Mosquitto's default receive maximum for QoS 2, which a 3.1.1 client cannot learn and must not exceed. */
const MOSQUITTO_QOS2_INFLIGHT = 20;
/** AWS IoT Core's message size limit, the smallest common one below MQTT's own. */
const COMMON_SIZE_LIMIT = 128 * 1024;

/** Characters NATS refuses in MQTT topics (it maps `/` to `.`, and subjects cannot hold spaces). */
const NATS_REFUSED = /[. ]/;

/** `a message at QoS 1, not retained, on topic "a.b" (payload 120 bytes)`. */
export function describeSuspect(evidence: SendEvidence, suspect: Suspect): string {
  const retained = evidence.retain ? 'retained' : 'not retained';
  return (
    `a message at QoS ${evidence.qos}, ${retained}, on topic ${JSON.stringify(suspect.topic)} ` +
    `(payload ${suspect.payloadBytes} bytes)`
  );
}

/** The causes that fit the evidence, most likely first; each says what to change. Empty when all are ruled out. */
export function likelyCauses(evidence: SendEvidence): string[] {
  const { suspect, acknowledgedAny } = evidence;
  const causes: { readonly weight: number; readonly text: string }[] = [];
  const add = (weight: number, text: string): void => void causes.push({ weight, text });
  if (evidence.qos === 2 && !acknowledgedAny) {
    add(
      90,
      'the broker does not accept QoS 2 (NATS, AWS IoT and Mosquitto with max_qos 1 close the connection): ' +
        `set ${field('message_qos')} to AT_LEAST_ONCE`,
    );
  }
  if (evidence.retain && !acknowledgedAny) {
    add(
      80,
      'the broker does not accept retained messages (Mosquitto with retain_available false closes the connection): ' +
        `turn off ${field('message_retained')}`,
    );
  }
  if (acknowledgedAny && evidence.qos === 2 && evidence.unacknowledged > MOSQUITTO_QOS2_INFLIGHT) {
    add(
      75,
      `the broker limits QoS 2 messages in flight per client (Mosquitto: ${MOSQUITTO_QOS2_INFLIGHT}) ` +
        `and ${evidence.unacknowledged} were: lower ${field('max_inflight')}`,
    );
  }
  if (suspect && !suspect.topicAcknowledged) {
    if (NATS_REFUSED.test(suspect.topic) || suspect.topic.startsWith('$')) {
      add(
        85,
        'the broker refuses characters in the topic (NATS refuses "." and spaces, and "$" topics are reserved): ' +
          `keep them out of ${field('topic_pattern')}, and out of stream and namespace names`,
      );
    } else {
      add(30, 'the broker refuses this topic (its name, or a limit on topic levels or length)');
    }
  }
  if (suspect && suspect.payloadBytes > evidence.largestAcknowledged) {
    add(
      suspect.payloadBytes > COMMON_SIZE_LIMIT ? 70 : 40,
      "the message is larger than the broker accepts (Mosquitto's message_size_limit or max_packet_size, " +
        `AWS IoT's 128 KB): set ${field('max_message_bytes')} to the broker's limit`,
    );
  }
  if (suspect && !suspect.topicAcknowledged) {
    add(
      35,
      "the broker's access rules forbid publishing to this topic, " +
        'and it closes the connection instead of acknowledging',
    );
  }
  if (
    evidence.unacknowledged > 1 &&
    !(acknowledgedAny && evidence.qos === 2 && evidence.unacknowledged > MOSQUITTO_QOS2_INFLIGHT)
  ) {
    add(20, `the broker limits messages in flight per client: lower ${field('max_inflight')}`);
  }
  return causes.sort((a, b) => b.weight - a.weight).map((cause) => cause.text);
}

const NOTHING_EXPLAINS =
  "Nothing sent explains it (the broker had accepted the same kind of message before): check the broker's log.";

/** `Likely causes, most likely first: (1) ...; (2) ....` or a pointer to the broker's log when nothing fits. */
export function listCauses(evidence: SendEvidence): string {
  const causes = likelyCauses(evidence);
  if (causes.length === 0) return NOTHING_EXPLAINS;
  const numbered = causes.map((cause, index) => `(${index + 1}) ${cause}`).join('; ');
  return `Likely causes, most likely first: ${numbered}. The broker's log says which.`;
}
