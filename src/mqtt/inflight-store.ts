/**
 * The messages in flight, by packet id: every message sent and not yet acknowledged, kept so that after a lost
 * connection it can be sent again on the next one. They belong to the MQTT session, which outlives a connection when
 * the broker keeps it (a resumed session expects PUBREL with the ids it acknowledged), so they are not kept with the
 * connection (send-state.ts).
 *
 * A message goes through three stages, FREE -> AWAITING_ACK -> AWAITING_COMPLETE (QoS 2 only) -> FREE, and back from
 * AWAITING_COMPLETE to AWAITING_ACK when a new session has forgotten it. A transition from any other stage is a bug,
 * and throws.
 *
 * What is kept of a message lives in flat arrays indexed by packet id, not in an object or a closure per message: at
 * tens of thousands of messages a second the garbage they make shows. At QoS 0 the ids are internal.
 */
import type { MessageValues, Payload, PublishTarget } from './packets.js';

/** MQTT packet identifiers are 16 bits; more messages in flight would reuse ids and confuse acknowledgements. */
export const MAX_PACKET_IDS = 65_535;

/** The id is not in use. */
export const FREE = 0;
/** Not yet sent on this connection, or awaiting PUBACK (QoS 1) / PUBREC (QoS 2) / the write (QoS 0). */
export const AWAITING_ACK = 1;
/** Awaiting PUBCOMP, after our PUBREL (QoS 2). */
export const AWAITING_COMPLETE = 2;

export type Stage = typeof FREE | typeof AWAITING_ACK | typeof AWAITING_COMPLETE;

const STAGE_NAMES = ['FREE', 'AWAITING_ACK', 'AWAITING_COMPLETE'];

function stageError(id: number, found: number, expected: string): Error {
  return new Error(`packet id ${id} is ${STAGE_NAMES[found] ?? found}, expected ${expected}`);
}

export class InflightStore {
  private inflight = 0;
  private inflightBytes = 0;
  private nextFree = 1;
  private readonly stage = new Uint8Array(MAX_PACKET_IDS + 1);
  /** The connection (its number) a message was last written on; 0: never written since it was added. */
  private readonly connectionById = new Uint32Array(MAX_PACKET_IDS + 1);
  private readonly tokenById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly lineById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly bytesById = new Float64Array(MAX_PACKET_IDS + 1);
  private readonly targetById: (PublishTarget | undefined)[] = new Array<PublishTarget | undefined>(MAX_PACKET_IDS + 1);
  private readonly payloadById: (Payload | undefined)[] = new Array<Payload | undefined>(MAX_PACKET_IDS + 1);
  private readonly valuesById: (MessageValues | undefined)[] = new Array<MessageValues | undefined>(MAX_PACKET_IDS + 1);

  /** Callbacks waiting for one message to be freed, by packet id (`whenFree`). */
  private readonly freeWaiters = new Map<number, () => void>();

  /** Messages waiting to be written, oldest first: those of a lost connection, then any sent meanwhile. */
  private queue: number[] = [];
  private queueHead = 0;

  /** Messages in flight. */
  get count(): number {
    return this.inflight;
  }

  /** Their payload bytes. */
  get payloadBytes(): number {
    return this.inflightBytes;
  }

  /** The id the next message added gets. */
  get nextId(): number {
    return this.nextFree;
  }

  /** The id of the message added last (65,535 before any). */
  get lastId(): number {
    return this.nextFree === 1 ? MAX_PACKET_IDS : this.nextFree - 1;
  }

  /** Keeps a message, AWAITING_ACK and never written, under the next id, which it returns. */
  add(
    target: PublishTarget,
    payload: Payload,
    payloadBytes: number,
    values: MessageValues,
    token: number,
    line: number,
  ): number {
    // Sequential ids are safe: an id comes round again only after 65,535 later messages, and the window never lets
    // that many be outstanding.
    const id = this.nextFree;
    const stage = this.stage[id] as number;
    if (stage !== FREE) throw stageError(id, stage, 'FREE');
    this.nextFree = id === MAX_PACKET_IDS ? 1 : id + 1;
    this.inflight++;
    this.inflightBytes += payloadBytes;
    this.stage[id] = AWAITING_ACK;
    this.connectionById[id] = 0;
    this.tokenById[id] = token;
    this.lineById[id] = line;
    this.bytesById[id] = payloadBytes;
    this.targetById[id] = target;
    this.payloadById[id] = payload;
    this.valuesById[id] = values;
    return id;
  }

  /** The broker has received message `id` (PUBREC): AWAITING_ACK -> AWAITING_COMPLETE. */
  received(id: number): void {
    const stage = this.stage[id] as number;
    if (stage !== AWAITING_ACK) throw stageError(id, stage, 'AWAITING_ACK');
    this.stage[id] = AWAITING_COMPLETE;
  }

  /**
   * The broker has forgotten message `id` (a new session): AWAITING_COMPLETE -> AWAITING_ACK, to be published again.
   */
  restart(id: number): void {
    const stage = this.stage[id] as number;
    if (stage !== AWAITING_COMPLETE) throw stageError(id, stage, 'AWAITING_COMPLETE');
    this.stage[id] = AWAITING_ACK;
  }

  /** Forgets message `id` (acknowledged or refused): its slot, its bytes, its count. */
  free(id: number): void {
    const stage = this.stage[id] as number;
    if (stage === FREE) throw stageError(id, stage, 'AWAITING_ACK or AWAITING_COMPLETE');
    this.stage[id] = FREE;
    this.targetById[id] = undefined;
    this.payloadById[id] = undefined;
    this.valuesById[id] = undefined;
    this.inflight--;
    this.inflightBytes -= this.bytesById[id] as number;
    if (this.freeWaiters.size > 0) {
      this.freeWaiters.get(id)?.();
      this.freeWaiters.delete(id);
    }
  }

  /** Calls `freed` once message `id` is freed (acknowledged or refused), or at once if it is not in flight. */
  whenFree(id: number, freed: () => void): void {
    if (this.stage[id] === FREE) freed();
    else this.freeWaiters.set(id, freed);
  }

  /** Message `id` was written (PUBLISH, or PUBREL) on connection `connection` (a number above 0). */
  wrote(id: number, connection: number): void {
    this.connectionById[id] = connection;
  }

  /** The stage of `id`; `undefined` for a number that is no packet id. */
  stageOf(id: number): Stage | undefined {
    return this.stage[id] as Stage | undefined;
  }

  /** The connection message `id` was last written on; 0 if it has not been written since it was added. */
  writtenOn(id: number): number {
    return this.connectionById[id] as number;
  }

  /** Of a message in flight: its target. */
  targetOf(id: number): PublishTarget {
    return this.targetById[id] as PublishTarget;
  }

  payloadOf(id: number): Payload {
    return this.payloadById[id] as Payload;
  }

  valuesOf(id: number): MessageValues {
    return this.valuesById[id] as MessageValues;
  }

  bytesOf(id: number): number {
    return this.bytesById[id] as number;
  }

  tokenOf(id: number): number {
    return this.tokenById[id] as number;
  }

  lineOf(id: number): number {
    return this.lineById[id] as number;
  }

  /** Ids in flight, oldest first. Ids are allocated in sequence, so the oldest follows the next one to allocate. */
  oldestFirst(): number[] {
    const ids: number[] = [];
    for (let n = 0, id = this.nextFree; n < MAX_PACKET_IDS; n++, id = id === MAX_PACKET_IDS ? 1 : id + 1) {
      if (this.stage[id] !== FREE) ids.push(id);
    }
    return ids;
  }

  /** Whether messages wait in the queue. */
  get waiting(): boolean {
    return this.queueHead < this.queue.length;
  }

  /**
   * Queues every message in flight, oldest first, in place of what was queued: for a new connection. Unless the
   * broker kept the session, it has forgotten the QoS 2 messages it acknowledged with PUBREC: they restart.
   */
  requeueAll(brokerKeptSession: boolean): void {
    this.queue = this.oldestFirst();
    this.queueHead = 0;
    if (brokerKeptSession) return;
    for (const id of this.queue) if (this.stage[id] === AWAITING_COMPLETE) this.restart(id);
  }

  /** Queues message `id` behind the others. */
  enqueue(id: number): void {
    this.queue.push(id);
  }

  /** Takes the oldest id from the queue (`waiting` says whether there is one). */
  dequeue(): number {
    if (!this.waiting) throw new Error('the resend queue is empty');
    const id = this.queue[this.queueHead++] as number;
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    }
    return id;
  }
}
