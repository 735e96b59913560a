/**
 * Publishing with flow control, and the QoS handshakes. The publisher writes PUBLISH and PUBREL packets itself, through
 * a port (connection-port.ts) that also lets it be tested without a broker, because MQTT.js has no flow control (it
 * ignores the broker's Receive Maximum, applies no backpressure to QoS 1/2, and reuses message ids past 65,535),
 * replays stored messages one per round trip after a reconnect, and its per-message cost exceeds the broker's.
 *
 * Messages sent in one turn of the event loop go out as one write (write-batch.ts). At most `window` messages (and
 * `MAX_INFLIGHT_BYTES` of payload) await acknowledgement; the caller stops reading input while there is no room and is
 * told, in a later turn (so that every acknowledgement already received is counted first), when to go on.
 *
 * Every message is kept until it is acknowledged (inflight-store.ts): PUBACK at QoS 1, PUBCOMP at QoS 2, and at QoS 0
 * the write that carries it. After a lost connection it is sent again on the next one, in its original order, with
 * the DUP flag, and at QoS 2 as a PUBREL instead when the broker kept the session and had already received it.
 *
 * Nothing is awaited without bound while the connection is up: a broker that answers a QoS 2 message with PUBACK (it
 * downgraded it) fails the sync at once, and messages left unanswered are watched (ack-watchdog.ts).
 */
import type { Acknowledgement, ConnectionPort } from './connection-port.js';
import { AckWatchdog } from './ack-watchdog.js';
import { AWAITING_ACK, AWAITING_COMPLETE, InflightStore } from './inflight-store.js';
import { type SendOptions, SendState, windowSize } from './send-state.js';
import { type ConnectorError, asConnectorError } from '../errors.js';
import { NO_MATCHING_SUBSCRIBERS, describeReason, isFailure } from './reason-codes.js';
import type { QoS } from '../config/settings.js';
import type { SendEvidence } from './close-causes.js';
import { EvidenceCollector } from './send-evidence.js';
import type { MessageValues, Payload, PublishEncoder, PublishTarget } from './packets.js';
import { describeOversize, messageRefused, messageTooLarge, qos2Downgraded } from './publish-errors.js';

/** Payload bytes kept for messages in flight: bounds memory when records are large, whatever the window. */
const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;

export interface PublisherOptions extends SendOptions {
  readonly qos: QoS;
  /** Bound on the payload bytes in flight; `MAX_INFLIGHT_BYTES` unless a test needs a smaller one. */
  readonly maxInflightBytes?: number;
  /** How long a QoS 1/2 message may wait for its acknowledgement on a live connection; unset: no limit. */
  readonly ackTimeoutMs?: number;
}

interface PublisherHandlers {
  /** The message sent with this token is acknowledged. Called once per message unless the sync fails. */
  readonly acknowledged: (token: number) => void;
  /** The broker refused a message; publishing cannot go on. Called at most once. */
  readonly failed: (error: ConnectorError) => void;
  /**
   * The broker refused a message (a reason code of 0x80 or above), and `takes` said the caller handles it: the
   * message is dropped, not acknowledged, and its place goes on. Otherwise a refusal fails publishing.
   */
  readonly refused?: (refusal: RefusedMessage) => void;
  /** Whether the caller handles the refusal of the message sent with `token` for reason `code` (see `refused`). */
  readonly takes?: (token: number, code: number) => boolean;
  /**
   * Messages waited `ackTimeoutMs` on this connection without an answer (`description`: how many, at which QoS, since
   * when): the connection should be replaced, which sends them again. At most once per connection.
   */
  readonly silent?: (description: string) => void;
}

/** A message the broker refused, as `PublisherHandlers.refused` reports it. */
export interface RefusedMessage {
  readonly token: number;
  readonly line: number;
  readonly target: PublishTarget;
  readonly payload: Payload;
  readonly reason: string;
  /** The reason code, 0x80 or above. */
  readonly code: number;
}

export class Publisher {
  private readonly store = new InflightStore();
  private readonly watchdog: AckWatchdog;
  private readonly evidence: EvidenceCollector;
  private readonly maxInflightBytes: number;
  private failure: ConnectorError | undefined;

  /** The current connection's own state for sending, built when it is attached and dropped with it. */
  private sendState: SendState | undefined;
  /** The current connection's, or while reconnecting the last one's: what messages are sized against. */
  private latestSendState: SendState | undefined;
  /** Counts connections attached: the current one's number, so that a message can tell where it was written. */
  private connectionNumber = 0;

  /** The paused reader's callback (`whenRoom`), and the wake-up pending for it, if one is. */
  private resume: (() => void) | undefined;
  private wakeUp: NodeJS.Immediate | undefined;
  /** The `drain` waiting for everything to be acknowledged, if one is. */
  private drained: (() => void) | undefined;
  /** Holds that keep new messages back until they settle (`holdUntil`). */
  private holds = 0;

  /** Per target group (a topic, or a stream's key filter), messages accepted with "no matching subscribers" (0x10). */
  readonly noSubscribers = new Map<string, number>();

  constructor(
    private readonly encoder: PublishEncoder,
    private readonly options: PublisherOptions,
    private readonly handlers: PublisherHandlers,
  ) {
    this.maxInflightBytes = options.maxInflightBytes ?? MAX_INFLIGHT_BYTES;
    this.watchdog = new AckWatchdog(this.store, options, {
      silent: (description) => this.handlers.silent?.(description),
      failed: (error) => this.fail(error),
    });
    this.evidence = new EvidenceCollector(options.qos, encoder.retain);
  }

  get unacknowledged(): number {
    return this.store.count;
  }

  /** Messages allowed in flight on the current connection (before one is attached: the configured bound). */
  get window(): number {
    return this.sendState?.window ?? windowSize({ ...this.options, brokerReceiveMaximum: undefined });
  }

  /** Whether another message may be sent now. */
  get hasRoom(): boolean {
    const { sendState, store } = this;
    if (this.failure || !sendState || this.holds > 0 || store.waiting) return false;
    if (store.count >= sendState.window || store.payloadBytes >= this.maxInflightBytes) return false;
    return !sendState.port.needsDrain;
  }

  /**
   * Starts publishing on a connection: the first, or a new one after the previous was lost. Everything not yet
   * acknowledged goes out again first, in its original order.
   */
  attach(port: ConnectionPort): void {
    this.detach();
    const state: SendState = new SendState(port, this.encoder, this.options, {
      acknowledged: (ack) => this.received(ack),
      drained: () => this.afterAck(),
      delivered: this.options.qos === 0 ? (ids) => this.delivered(state, ids) : undefined,
    });
    this.sendState = state;
    this.latestSendState = state;
    this.connectionNumber++;
    if (!this.failure) this.watchdog.start();
    this.watchdog.watch(this.connectionNumber);
    this.store.requeueAll(port.sessionPresent);
    this.refill();
  }

  /** The connection is gone: stop writing. Messages in flight stay, to go out again on the next connection. */
  detach(): void {
    if (!this.sendState) return;
    this.sendState.close();
    this.sendState = undefined;
    this.watchdog.watch(0);
  }

  /**
   * Queues one message; it leaves with this turn's batch. `token` is reported back on acknowledgement; `line` names its
   * origin if it cannot be sent. Returns 0, or its size when it is larger than the current connection (while
   * reconnecting, the last one) may carry: then nothing is kept, written or reported, and the caller rejects it.
   */
  send(target: PublishTarget, payload: Payload, bytes: number, values: MessageValues, token: number, line = 0): number {
    const { sendState, store } = this;
    // Held (a delivery check, a planned reconnect), it waits in the queue: the hold is for messages sent after it.
    if (sendState && !store.waiting && !sendState.windowFull && this.holds === 0) {
      // Written at once, under the id it gets if it fits; `publish` writes nothing when it does not.
      const id = store.nextId;
      const packetId = this.options.qos > 0 ? id : 0;
      const tooLarge = sendState.publish(target, packetId, payload, bytes, values, false);
      if (tooLarge > 0) return tooLarge;
      store.add(target, payload, bytes, values, token, line);
      this.published(sendState, id, target, bytes);
      return 0;
    }
    // Sized against the current connection, or while reconnecting the last one.
    const tooLarge = this.latestSendState?.oversize(target, bytes, values) ?? 0;
    if (tooLarge > 0) return tooLarge;
    store.enqueue(store.add(target, payload, bytes, values, token, line));
    return 0;
  }

  /** The most payload bytes a message to `target` with `values` may have now (send-state.ts); unlimited before any. */
  payloadRoom(target: PublishTarget, values: MessageValues): number {
    return this.latestSendState?.payloadRoom(target, values) ?? Number.POSITIVE_INFINITY;
  }

  /** Why a message of `size` bytes (its `oversize`) cannot be sent (`sizing` unset: on the latest connection). */
  describeOversize(sizing: SendState | undefined, target: PublishTarget, bytes: number, size: number): string {
    // Without a connection nothing is too large (`oversize` is 0): there is none to measure against.
    const unmeasured = { label: target.label, size, limit: { bytes: 0, source: '' }, withoutUserProperties: size };
    return describeOversize((sizing ?? this.latestSendState)?.oversizeOf(target, bytes, size) ?? unmeasured);
  }

  /** Calls `resume` once there is room again, in a later turn of the event loop. */
  whenRoom(resume: () => void): void {
    this.resume = resume;
    this.afterAck();
  }

  /**
   * Keeps new messages back (no room; sent ones queue) until the promise `release` returns resolves: for a check on
   * what was sent (delivery-check.ts), or a planned reconnect. `drain` waits for it too; a rejection fails publishing.
   * `release` gets a promise of the last message's acknowledgement, so that a clock can start there.
   */
  holdUntil(release: (lastAcknowledged: Promise<void>) => Promise<void>): void {
    const acknowledged = new Promise<void>((resolve) => this.store.whenFree(this.store.lastId, resolve));
    this.holds++;
    release(acknowledged).then(
      () => {
        this.holds--;
        if (this.holds === 0)
          this.refill(); // what was sent meanwhile waits in the queue
        else this.afterAck();
      },
      (err: unknown) => {
        this.holds--;
        this.fail(asConnectorError(err));
      },
    );
  }

  /** Resolves once every message sent is acknowledged (and no hold is left); rejects if the publisher stops first. */
  drain(): Promise<void> {
    this.sendState?.batch.flush();
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (this.store.count === 0 && this.holds === 0) return resolve();
      this.drained = () => (this.failure ? reject(this.failure) : resolve());
    });
  }

  /** Stops publishing for good: nothing more is written, and `drain` rejects with `error`. */
  stop(error: ConnectorError): void {
    if (this.failure) return;
    this.failure = error;
    this.watchdog.stop();
    this.detach();
    this.resume = undefined;
    this.settleDrain();
  }

  /** What the current connection carried unacknowledged, to judge why it closed (close-causes.ts); before `detach`. */
  sendEvidence(): SendEvidence {
    return this.evidence.collect(this.store, this.sendState ? this.connectionNumber : 0);
  }

  /** After room was made: what waits goes out, oldest first, as far as the window allows; then `afterAck`. */
  private refill(): void {
    const { sendState, store } = this;
    while (sendState && sendState === this.sendState && store.waiting && !sendState.windowFull) {
      const id = store.dequeue();
      const stage = store.stageOf(id);
      if (stage === AWAITING_COMPLETE) {
        // The broker kept the session and has the message: only its release is due again.
        sendState.releaseAgain(id);
        this.wrote(id);
      } else if (stage === AWAITING_ACK) {
        this.transmit(sendState, id);
      }
    }
    this.afterAck();
  }

  /** Writes message `id` from the queue: a resend carries DUP (QoS 1/2 only: QoS 0 must not). */
  private transmit(sendState: SendState, id: number): void {
    const { store } = this;
    const target = store.targetOf(id);
    const bytes = store.bytesOf(id);
    const dup = this.options.qos > 0 && store.writtenOn(id) !== 0;
    const packetId = this.options.qos > 0 ? id : 0;
    const tooLarge = sendState.publish(target, packetId, store.payloadOf(id), bytes, store.valuesOf(id), dup);
    if (tooLarge > 0) {
      // `send` refuses a message too large already, so this one was queued for a connection that allowed more.
      this.fail(messageTooLarge(sendState.oversizeOf(target, bytes, tooLarge), store.lineOf(id)));
      return;
    }
    this.published(sendState, id, target, bytes);
  }

  /** Message `id` (a PUBLISH) is in this turn's batch. */
  private published(sendState: SendState, id: number, target: PublishTarget, payloadBytes: number): void {
    this.wrote(id);
    this.evidence.written(target, payloadBytes, this.connectionNumber);
    if (this.options.qos === 0) sendState.carries(id);
  }

  /** Message `id` went out on the current connection now (PUBLISH or PUBREL), or PUBREC came for it. */
  private wrote(id: number): void {
    this.store.wrote(id, this.connectionNumber);
    this.watchdog.wrote(id);
  }

  /** QoS 0's only handshake: the write that carried messages `ids` on `sendState` is done. */
  private delivered(sendState: SendState, ids: readonly number[]): void {
    // A write of a lost connection, done after the reconnect, says nothing of the messages sent again since.
    if (sendState !== this.sendState) return;
    for (const id of ids) this.complete(id);
    this.refill();
  }

  /** The QoS 1/2 handshakes: PUBACK; PUBREC, answered by PUBREL; PUBCOMP. */
  private received(ack: Acknowledgement): void {
    const { store } = this;
    const { qos } = this.options;
    const id = ack.packetId;
    const stage = store.stageOf(id);
    if (ack.kind === 'puback' && qos === 2 && stage === AWAITING_ACK && store.writtenOn(id) !== 0) {
      // The QoS 1 answer to a QoS 2 message: the broker downgraded it (RabbitMQ does) and will never send PUBREC.
      this.fail(qos2Downgraded(store.targetOf(id).topic));
      return;
    }
    const expected = ack.kind === 'pubcomp' ? AWAITING_COMPLETE : AWAITING_ACK;
    // Not ours (MQTT.js's own publishes) or a duplicate: leave it.
    if (stage !== expected || store.writtenOn(id) === 0 || (ack.kind === 'puback') !== (qos === 1)) return;
    const target = store.targetOf(id);
    const reason = ack.reasonCode;
    if (isFailure(reason)) {
      if (this.handlers.takes?.(store.tokenOf(id), reason) === true) this.drop(id, reason);
      else this.fail(messageRefused(target.topic, reason));
      return;
    }
    if (reason === NO_MATCHING_SUBSCRIBERS)
      this.noSubscribers.set(target.group, (this.noSubscribers.get(target.group) ?? 0) + 1);
    if (ack.kind !== 'pubcomp') this.evidence.accepted(target, store.bytesOf(id));
    if (ack.kind === 'pubrec') {
      store.received(id);
      this.sendState?.release(id);
      this.wrote(id);
      return;
    }
    this.complete(id);
    this.refill();
  }

  /** The broker refused message `id` for a reason of its own: the caller handles it, and its place goes on. */
  private drop(id: number, reason: number): void {
    const { store } = this;
    const refusal: RefusedMessage = {
      token: store.tokenOf(id),
      line: store.lineOf(id),
      target: store.targetOf(id),
      payload: store.payloadOf(id),
      reason: describeReason(reason),
      code: reason,
    };
    this.free(id);
    this.handlers.refused?.(refusal);
    this.refill();
  }

  private complete(id: number): void {
    const token = this.store.tokenOf(id);
    this.free(id);
    this.handlers.acknowledged(token);
  }

  /** Forgets message `id`: its slot, its bytes, its place in the window, its silence. */
  private free(id: number): void {
    this.store.free(id);
    this.watchdog.forget(id);
    this.sendState?.settled();
  }

  /**
   * After acknowledgements: resolves `drain` when nothing is left in flight, and wakes a paused reader as soon as there
   * is room for one more message. The wake-up comes in a later turn, after every acknowledgement already received has
   * been counted, so a refill goes out as one write of as many messages as were acknowledged meanwhile, not as one
   * write per acknowledgement.
   *
   * Waiting for more room than that (half the window, say) stalls: a broker with Nagle's algorithm on (Mosquitto's
   * default) holds back its PUBACKs after the first segment until our side acknowledges that segment, and our side,
   * sending nothing while it waits, acknowledges it only after a delayed ACK of about 40 ms. On loopback a segment
   * holds 64 KB, so that is every PUBACK of the round, however large the window. Measured with 200,000 records at QoS 1
   * and the default window of 1,000: waiting for half the window paused the reader 45 to 80 times for a median of
   * 43 ms each (1.5 to 1.9 s in all), and the sync took 4.1 s; waking at once, 1.4 s (a bare MQTT.js publisher: 1.6 s).
   */
  private afterAck(): void {
    if (this.store.count === 0 && this.holds === 0) this.settleDrain();
    if (!this.resume || this.wakeUp || !this.hasRoom) return;
    this.wakeUp = setImmediate(this.wake);
  }

  /** The pending wake-up: the paused reader goes on, unless publishing stopped meanwhile. */
  private readonly wake = (): void => {
    this.wakeUp = undefined;
    const resume = this.resume;
    this.resume = undefined;
    if (resume && !this.failure) resume();
  };

  /** Resolves (or, once stopped, rejects) the pending `drain`, if there is one. */
  private settleDrain(): void {
    const drained = this.drained;
    this.drained = undefined;
    drained?.();
  }

  private fail(error: ConnectorError): void {
    if (this.failure) return;
    this.stop(error);
    this.handlers.failed(error);
  }
}
