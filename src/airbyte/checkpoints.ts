/**
 * Ack-gated state bookkeeping, the heart of the connector's correctness.
 *
 * Records are numbered in input order. A state message is held until every record that came before it has been
 * acknowledged by the broker, then released, always in input order, with `destinationStats.recordCount` set: the
 * records since the previous state of the same stream (STREAM) or since the previous GLOBAL/LEGACY state. The rest of
 * the line, other fields of `destinationStats` included, is echoed byte for byte. A state that is never released (the
 * sync failed first) is never emitted, which is exactly what lets the platform resume from the last state whose data
 * is safely on the broker.
 *
 * The ledger emits what it releases itself (to `emit`, the output's state lines): an acknowledgement goes from the
 * publisher to the ledger and from there out, and nothing between them can hold a released state back or reorder it.
 */
import type { StateMessage } from './input.js';
import { findPath, setMember } from '../text/raw-json.js';
import { streamKey } from './catalog.js';

const OPEN_BRACE = 0x7b;

/**
 * The counts the connector owns in `destinationStats` (protocol 0.18 defines these two). Everything else there is
 * echoed as it came. A count left out is not written: `rejectedRecordCount` goes out once `stateReceived` passes it.
 */
interface DestinationCounts {
  readonly recordCount: number;
  readonly rejectedRecordCount?: number;
}

/** A count as the protocol asks for it: a double, written with a decimal point (`2.0`). */
function countJson(value: number): string {
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

/**
 * `line` with the connector's counts set in `state.destinationStats`: added to the object the state already carries,
 * replacing only those members, or as a new object when it carries none (or something that is not an object).
 */
export function withDestinationStats(state: StateMessage, counts: DestinationCounts): string {
  const { line } = state;
  const entries = Object.entries(counts).filter((entry): entry is [string, number] => entry[1] !== undefined);
  let stats = findPath(line, ['state', 'destinationStats']);
  if (!stats || line.charCodeAt(stats.start) !== OPEN_BRACE) {
    const object = entries.map(([key, value]) => `${JSON.stringify(key)}:${countJson(value)}`).join(',');
    return setMember(line, state.stateSpan, 'destinationStats', `{${object}}`);
  }
  let result = line;
  for (const [key, value] of entries) {
    result = setMember(result, stats, key, countJson(value));
    // Setting a member moves the end of the object: find it again for the next count.
    stats = findPath(result, ['state', 'destinationStats']);
    if (!stats) break;
  }
  return result;
}

interface HeldState {
  /** Records numbered below this must all be acknowledged before the state may go out. */
  readonly coversBelow: number;
  readonly state: StateMessage;
  /** The stream of a STREAM state; undefined for GLOBAL and LEGACY states, which cover every stream. */
  readonly stream: string | undefined;
  readonly recordCount: number;
  /** Rejected records it covers; a refusal that arrives after the state can still add to it (`recordRefused`). */
  rejected: number;
}

export class Checkpoints {
  private received = 0;
  private emitted = 0;
  /** Every record numbered below this has been acknowledged. */
  private ackedBelow = 0;
  /** Acknowledgements that arrived ahead of an older, still outstanding record (QoS 2, republishing). */
  private readonly ackedAhead = new Set<number>();
  /**
   * States not yet released, from `heldHead` on. Released slots are cleared at once: a state line is a slice of the
   * input chunk it arrived in, and keeping it would keep that whole chunk (64 KB) alive.
   */
  private held: (HeldState | undefined)[] = [];
  private heldHead = 0;
  private readonly sinceStreamState = new Map<string, number>();
  private sinceGlobalState = 0;
  /** Rejected records (skipped or sent to the dead letter topic), counted the same way as records. */
  private readonly rejectedSinceStreamState = new Map<string, number>();
  private rejectedSinceGlobalState = 0;

  /** Numbers the next record of stream `key` and counts it; returns its number, to be passed to `acknowledged`. */
  recordReceived(key: string): number {
    this.sinceStreamState.set(key, (this.sinceStreamState.get(key) ?? 0) + 1);
    this.sinceGlobalState++;
    return this.received++;
  }

  /**
   * Counts record `recordNumber` of stream `key` as rejected after the broker refused it, which may be after later
   * states arrived: the count goes to the first held state that covers the record (and is of its stream, or global),
   * or to the next state if none does yet. The record is still to be passed to `acknowledged` once done with.
   */
  recordRefused(recordNumber: number, key: string): void {
    let streamCounted = false;
    let globalCounted = false;
    for (let i = this.heldHead; i < this.held.length && !(streamCounted && globalCounted); i++) {
      const held = this.held[i];
      if (!held || held.coversBelow <= recordNumber) continue;
      if (held.stream === undefined && !globalCounted) {
        held.rejected++;
        globalCounted = true;
      } else if (held.stream === key && !streamCounted) {
        held.rejected++;
        streamCounted = true;
      }
    }
    if (!streamCounted) this.rejectedSinceStreamState.set(key, (this.rejectedSinceStreamState.get(key) ?? 0) + 1);
    if (!globalCounted) this.rejectedSinceGlobalState++;
  }

  constructor(private readonly emit: (stateLine: string) => void) {}

  /** Record `recordNumber` is done with (acknowledged, or rejected); emits the states that this releases, in order. */
  acknowledged(recordNumber: number): void {
    if (recordNumber === this.ackedBelow) {
      this.ackedBelow++;
      while (this.ackedAhead.delete(this.ackedBelow)) this.ackedBelow++;
    } else if (recordNumber > this.ackedBelow && recordNumber < this.received) {
      this.ackedAhead.add(recordNumber);
      return;
    } else {
      throw new RangeError(`record ${recordNumber} acknowledged twice or never sent`);
    }
    this.release();
  }

  /** Holds the state (its counts taken now, from what preceded it) and emits whatever can be released already. */
  stateReceived(state: StateMessage): void {
    let count: number;
    let rejected: number;
    let key: string | undefined;
    if (state.scope.type === 'STREAM') {
      key = streamKey(state.scope.namespace, state.scope.stream);
      count = this.sinceStreamState.get(key) ?? 0;
      this.sinceStreamState.set(key, 0);
      rejected = this.rejectedSinceStreamState.get(key) ?? 0;
      this.rejectedSinceStreamState.set(key, 0);
    } else {
      count = this.sinceGlobalState;
      this.sinceGlobalState = 0;
      rejected = this.rejectedSinceGlobalState;
      this.rejectedSinceGlobalState = 0;
    }
    this.held.push({ coversBelow: this.received, state, stream: key, recordCount: count, rejected });
    this.release();
  }

  get recordsReceived(): number {
    return this.received;
  }

  get recordsAcknowledged(): number {
    return this.ackedBelow + this.ackedAhead.size;
  }

  get unacknowledged(): number {
    return this.received - this.recordsAcknowledged;
  }

  /** States received but not yet released. */
  get statesHeld(): number {
    return this.held.length - this.heldHead;
  }

  /** States released and emitted. */
  get statesEmitted(): number {
    return this.emitted;
  }

  private release(): void {
    while (this.heldHead < this.held.length) {
      const next = this.held[this.heldHead];
      if (next === undefined || next.coversBelow > this.ackedBelow) break;
      // The counts are written now, when nothing before the state can still be refused.
      const { recordCount, rejected } = next;
      const line = withDestinationStats(
        next.state,
        rejected > 0 ? { recordCount, rejectedRecordCount: rejected } : { recordCount },
      );
      this.held[this.heldHead++] = undefined;
      this.emitted++;
      this.emit(line);
    }
    if (this.heldHead === this.held.length) {
      this.held = [];
      this.heldHead = 0;
    } else if (this.heldHead >= 64 && this.heldHead * 2 >= this.held.length) {
      this.held = this.held.slice(this.heldHead);
      this.heldHead = 0;
    }
  }
}
