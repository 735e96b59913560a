/**
 * The evidence for judging why a broker closed the connection (close-causes.ts): what it has accepted so far in this
 * sync (any message at all, the largest payload, which targets), and what the closed connection carried that it had
 * not acknowledged. The publisher feeds it every message written and every message accepted; the messages still in
 * flight it reads from the in-flight store when asked.
 */
import type { QoS } from '../config/settings.js';
import type { SendEvidence, Suspect } from './close-causes.js';
import { AWAITING_ACK, type InflightStore } from './inflight-store.js';
import type { PublishTarget } from './packets.js';

export class EvidenceCollector {
  private acknowledgedAny = false;
  private largestAcknowledged = 0;
  private readonly acknowledgedTargets = new WeakSet<PublishTarget>();
  /** The target added last: acknowledgements come in runs of one stream, so most skip the set. */
  private lastAcknowledgedTarget: PublishTarget | undefined;
  /** The message written last, and the connection (its number) it was written on: QoS 0's only evidence. */
  private lastTarget: PublishTarget | undefined;
  private lastBytes = 0;
  private lastConnection = 0;

  /** `retain` is the encoder's: every message carries it, whatever its target says. */
  constructor(
    private readonly qos: QoS,
    private readonly retain: boolean,
  ) {}

  /** A message of `payloadBytes` to `target` was written on connection `connection`. */
  written(target: PublishTarget, payloadBytes: number, connection: number): void {
    this.lastTarget = target;
    this.lastBytes = payloadBytes;
    this.lastConnection = connection;
  }

  /** The broker took a message (PUBACK, or PUBREC at QoS 2): what it was counts as evidence of what it accepts. */
  accepted(target: PublishTarget, payloadBytes: number): void {
    this.acknowledgedAny = true;
    if (payloadBytes > this.largestAcknowledged) this.largestAcknowledged = payloadBytes;
    if (target !== this.lastAcknowledgedTarget) {
      this.acknowledgedTargets.add(target);
      this.lastAcknowledgedTarget = target;
    }
  }

  /**
   * What connection `connection` (0: none is up) carried that the broker had not acknowledged, with what it had
   * accepted before: the messages in `store` last written on it, the oldest of them the suspect.
   */
  collect(store: InflightStore, connection: number): SendEvidence {
    const { qos } = this;
    let unacknowledged = 0;
    let first = 0;
    if (connection > 0) {
      for (const id of store.oldestFirst()) {
        if (store.writtenOn(id) !== connection || store.stageOf(id) !== AWAITING_ACK) continue;
        unacknowledged++;
        if (first === 0) first = id;
      }
    }
    // QoS 0 has nothing to acknowledge: the last message written before the close is the best suspect there is.
    let target: PublishTarget | undefined;
    let payloadBytes = 0;
    if (qos === 0) {
      if (connection > 0 && this.lastConnection === connection) target = this.lastTarget;
      payloadBytes = this.lastBytes;
    } else if (first !== 0) {
      target = store.targetOf(first);
      payloadBytes = store.bytesOf(first);
    }
    const suspect: Suspect | undefined = target && {
      topic: target.topic,
      payloadBytes,
      topicAcknowledged: this.acknowledgedTargets.has(target),
    };
    return {
      qos,
      // Retain is the stream's (its sync mode, message_retained): the suspect's flag is the one that counts.
      retain: this.retain || target?.retain === true,
      unacknowledged,
      suspect,
      acknowledgedAny: this.acknowledgedAny,
      largestAcknowledged: this.largestAcknowledged,
    };
  }
}
