/**
 * A LOG line at a steady interval (30 s at most) while a sync runs, so that whoever watches a long sync sees it move,
 * and sees it stall: records received, acknowledged, in flight, states emitted and the acknowledgement rate.
 */
import type { Log } from '../log.js';
import type { LedgerCounts } from './summary.js';

const MAX_PROGRESS_INTERVAL_MS = 30_000;

/** The interval from LOG_PROGRESS_SECONDS: 1 to 30 seconds, 30 when unset or invalid. */
export function progressIntervalMs(value: string | undefined): number {
  const seconds = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(seconds)) return MAX_PROGRESS_INTERVAL_MS;
  return Math.round(Math.min(Math.max(seconds, 1), MAX_PROGRESS_INTERVAL_MS / 1000) * 1000);
}

/** How far reading the input got, so that a long line arriving shows as progress before it is a record. */
interface InputPosition {
  readonly bytesRead: number;
  readonly pendingLineNumber: number;
  readonly pendingLineBytes: number;
}

interface ProgressSample {
  readonly received: number;
  readonly acknowledged: number;
  readonly statesEmitted: number;
  readonly connected: boolean;
  readonly input?: InputPosition | undefined;
}

function inputMessage(input: InputPosition | undefined): string {
  if (!input) return '';
  const pending =
    input.pendingLineBytes === 0
      ? ''
      : `, line ${input.pendingLineNumber} arriving (${input.pendingLineBytes} bytes so far)`;
  return `; ${input.bytesRead} input byte(s) read${pending}`;
}

export function progressMessage(now: ProgressSample, acknowledgedBefore: number, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? Math.round(((now.acknowledged - acknowledgedBefore) * 1000) / elapsedMs) : 0;
  return (
    `Progress: ${now.received} record(s) received, ${now.acknowledged} acknowledged, ` +
    `${now.received - now.acknowledged} in flight, ` +
    `${now.statesEmitted} state(s) emitted; ${rate} record(s)/s acknowledged ` +
    `over the last ${(elapsedMs / 1000).toFixed(1)} s` +
    `${inputMessage(now.input)}${now.connected ? '' : '; reconnecting to the broker'}.`
  );
}

/** Where a sync's progress is read from: the ledger's counts, the connections, the input. */
export interface ProgressSources {
  readonly ledger: Pick<LedgerCounts, 'recordsReceived' | 'recordsAcknowledged' | 'statesEmitted'>;
  readonly connected: () => boolean;
  readonly input: () => InputPosition | undefined;
}

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private lastAcknowledged = 0;
  private readonly intervalMs: number;

  /** Reports every LOG_PROGRESS_SECONDS (progressIntervalMs) to `log`. */
  constructor(
    private readonly sources: ProgressSources,
    private readonly log: Log,
  ) {
    this.intervalMs = progressIntervalMs(process.env.LOG_PROGRESS_SECONDS);
  }

  private sample(): ProgressSample {
    const { ledger } = this.sources;
    return {
      received: ledger.recordsReceived,
      acknowledged: ledger.recordsAcknowledged,
      statesEmitted: ledger.statesEmitted,
      connected: this.sources.connected(),
      input: this.sources.input(),
    };
  }

  start(): void {
    this.lastAt = Date.now();
    this.timer = setInterval(() => this.report(), this.intervalMs);
    // Progress alone must never keep the process alive.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private report(): void {
    const now = this.sample();
    const at = Date.now();
    this.log('INFO', progressMessage(now, this.lastAcknowledged, at - this.lastAt));
    this.lastAt = at;
    this.lastAcknowledged = now.acknowledged;
  }
}
