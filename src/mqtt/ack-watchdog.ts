/**
 * The acknowledgement watch: nothing is awaited without bound while the connection is up. A QoS 1/2 message left
 * unanswered for `ackTimeoutMs` on a live connection is silent; the first time, the caller is told (once per
 * connection), so that the connection is replaced and the message sent again, the only retransmission MQTT allows. A
 * message that is silent a second time, after being sent again, fails the sync: the broker keeps the connection open
 * but does not answer.
 *
 * The publisher tells it which connection is current (`watch`), when a message is written (`wrote`) and when one is
 * gone (`forget`); which messages are in flight and where each was last written it reads from the in-flight store.
 */
import type { QoS } from '../config/settings.js';
import { field } from '../config/spec.js';
import type { ConnectorError } from '../errors.js';
import { type InflightStore, MAX_PACKET_IDS } from './inflight-store.js';
import { silentTwice } from './publish-errors.js';

/**
 * The acknowledgement timeout is watched in this many ticks: a message counts as silent once it has waited at least
 * the timeout and at most a quarter more, without a clock read per message (a tick number is stored instead).
 */
export const WATCH_TICKS = 4;

const ACK_NAMES: Readonly<Record<QoS, string>> = { 0: 'the write', 1: 'PUBACK', 2: 'PUBREC and PUBCOMP' };

export interface WatchOptions {
  readonly qos: QoS;
  /** How long a QoS 1/2 message may wait for its acknowledgement on a live connection; unset: no limit. */
  readonly ackTimeoutMs?: number;
}

export interface WatchHandlers {
  /** Messages went silent on this connection for the first time (`description`: how many, at which QoS, since when). */
  silent(description: string): void;
  /** A message went silent again after being sent again. */
  failed(error: ConnectorError): void;
}

export class AckWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  /** The connection (its number) watched; 0: none is up. */
  private watching = 0;
  /** The connection whose silence was reported: the caller is told once per connection. */
  private reportedOn = 0;
  /** The tick each message was last written at. */
  private readonly wroteAt = new Float64Array(MAX_PACKET_IDS + 1);
  /** 1 once a message has been reported silent: silent again, it fails the sync. */
  private readonly silenced = new Uint8Array(MAX_PACKET_IDS + 1);

  constructor(
    private readonly store: InflightStore,
    private readonly options: WatchOptions,
    private readonly handlers: WatchHandlers,
  ) {}

  /** Starts ticking, if there is a timeout to watch (not at QoS 0, which has no acknowledgements). */
  start(): void {
    const timeoutMs = this.options.ackTimeoutMs;
    if (this.timer || timeoutMs === undefined || this.options.qos === 0) return;
    this.timer = setInterval(() => this.check(timeoutMs), timeoutMs / WATCH_TICKS);
    // The watch matters only while something else (the connection) keeps the process alive.
    this.timer.unref();
  }

  /** Stops for good. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Watches the messages written on connection `connection` (a number above 0; 0: none, while reconnecting). */
  watch(connection: number): void {
    this.watching = connection;
  }

  /** Message `id` was written (PUBLISH or PUBREL) on the watched connection now, or PUBREC came for it. */
  wrote(id: number): void {
    this.wroteAt[id] = this.tick;
  }

  /** Message `id` is acknowledged or refused: a later message with its id starts with a clean record. */
  forget(id: number): void {
    this.silenced[id] = 0;
  }

  /**
   * One tick. Messages written on the watched connection more than `WATCH_TICKS` ticks ago and still unanswered are
   * silent: the first time, the caller is told; a message that is silent a second time fails the sync.
   */
  private check(timeoutMs: number): void {
    this.tick++;
    const { store, watching } = this;
    if (store.count === 0 || watching === 0 || this.reportedOn === watching) return;
    const silent: number[] = [];
    let repeated = false;
    for (const id of store.oldestFirst()) {
      if (store.writtenOn(id) !== watching || this.tick - (this.wroteAt[id] as number) <= WATCH_TICKS) continue;
      silent.push(id);
      if (this.silenced[id] === 1) repeated = true;
    }
    const first = silent[0];
    if (first === undefined) return;
    const { qos } = this.options;
    const description =
      `${silent.length} message(s) at QoS ${qos} without ${ACK_NAMES[qos]} for ${timeoutMs / 1000} s ` +
      `(${field('ack_timeout_seconds')}), the oldest on topic ${JSON.stringify(store.targetOf(first).topic)}`;
    if (repeated) {
      this.handlers.failed(silentTwice(description, qos));
      return;
    }
    for (const id of silent) this.silenced[id] = 1;
    this.reportedOn = watching;
    this.handlers.silent(description);
  }
}
