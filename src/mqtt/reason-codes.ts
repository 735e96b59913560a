/**
 * MQTT 5 reason codes a broker sends in PUBACK, PUBREC and DISCONNECT, with one answer to the question that decides
 * what the connector does next: would sending the same thing again meet the same answer? If it would (a topic the
 * broker refuses, a packet too large, an ACL), the sync stops with a `config_error` instead of looping; if it might not
 * (the broker was busy, shutting down, or did not say), a lost connection is reconnected and a refused message fails
 * the sync with a `transient_error`, which the platform retries.
 */

export const NO_MATCHING_SUBSCRIBERS = 0x10;
export const SESSION_TAKEN_OVER = 0x8e;

/**
 * Refusals of one message that say nothing about the connection or the messages after it: Not authorized (0x87), Topic
 * Name invalid (0x90), Quota exceeded (0x97), Payload format invalid (0x99). With `rejected_records` other than fail,
 * such a record is rejected (skipped or reported) and the sync goes on.
 */
export const RECORD_REFUSALS: ReadonlySet<number> = new Set([0x87, 0x90, 0x97, 0x99]);

interface Reason {
  readonly name: string;
  readonly repeats: boolean;
}

const REASONS: Readonly<Record<number, Reason>> = {
  0x80: { name: 'Unspecified error', repeats: false },
  0x81: { name: 'Malformed Packet', repeats: true },
  0x82: { name: 'Protocol Error', repeats: true },
  0x83: { name: 'Implementation specific error', repeats: true },
  0x87: { name: 'Not authorized', repeats: true },
  0x89: { name: 'Server busy', repeats: false },
  0x8b: { name: 'Server shutting down', repeats: false },
  0x8d: { name: 'Keep Alive timeout', repeats: false },
  0x8e: { name: 'Session taken over', repeats: true },
  0x90: { name: 'Topic Name invalid', repeats: true },
  0x91: { name: 'Packet identifier in use', repeats: true },
  0x92: { name: 'Packet identifier not found', repeats: true },
  0x93: { name: 'Receive Maximum exceeded', repeats: true },
  0x94: { name: 'Topic Alias invalid', repeats: true },
  0x95: { name: 'Packet too large', repeats: true },
  0x96: { name: 'Message rate too high', repeats: false },
  0x97: { name: 'Quota exceeded', repeats: true },
  0x98: { name: 'Administrative action', repeats: false },
  0x99: { name: 'Payload format invalid', repeats: true },
  0x9a: { name: 'Retain not supported', repeats: true },
  0x9b: { name: 'QoS not supported', repeats: true },
  0x9c: { name: 'Use another server', repeats: true },
  0x9d: { name: 'Server moved', repeats: true },
  0x9f: { name: 'Connection rate exceeded', repeats: false },
  0xa0: { name: 'Maximum connect time', repeats: false },
};

/** Reason codes of 0x80 and above are failures; below, success (0x10 "no matching subscribers" included). */
export function isFailure(code: number): boolean {
  return code >= 0x80;
}

/** Whether the same packet sent again, on this or a new connection, would meet the same failure. Unknown codes: yes. */
export function wouldRepeat(code: number): boolean {
  return REASONS[code]?.repeats ?? true;
}

/** `Not authorized (reason code 0x87)`. */
export function describeReason(code: number): string {
  return `${REASONS[code]?.name ?? 'Refused'} (reason code 0x${code.toString(16)})`;
}
