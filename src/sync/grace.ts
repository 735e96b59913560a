/**
 * The grace period of a sync stopped from outside. SIGTERM (the platform cancelling a job, `docker stop`) or SIGINT:
 * read no more input, send the open batches, and give the broker `shutdown_grace_seconds` to acknowledge what was
 * sent, each acknowledgement still releasing its states; then stop with an InterruptedError. A second signal, or the
 * grace period running out, stops at once.
 */
import { type ConnectorError, InterruptedError } from '../errors.js';
import type { Log } from '../log.js';
import type { Channels } from './channels.js';
import { type LedgerCounts, interruptedMessage } from './summary.js';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** What the grace period acts on. */
export interface GraceSteps {
  readonly channels: Channels;
  readonly ledger: LedgerCounts;
  /** Reads no more input. */
  readonly pauseInput: () => void;
  /** Sends whatever waits to be sent (open batches). */
  readonly flush: () => void;
  /** Ends the sync with `error` at once, dropping the connections. */
  readonly stopNow: (error: ConnectorError) => void;
  /** Ends the sync with `error` once everything sent is acknowledged, closing the connections gracefully. */
  readonly stopDrained: (error: ConnectorError) => void;
  readonly log: Log;
}

export class GracePeriod {
  private signal: string | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly listener = (signal: NodeJS.Signals): void => this.received(signal);

  constructor(
    private readonly graceMs: number,
    private readonly steps: GraceSteps,
  ) {}

  /** The signal the sync was stopped by, if any. */
  get interruptedBy(): string | undefined {
    return this.signal;
  }

  /** Listens for SIGTERM and SIGINT until `stopListening`. */
  listen(): void {
    for (const signal of SIGNALS) process.on(signal, this.listener);
  }

  stopListening(): void {
    for (const signal of SIGNALS) process.off(signal, this.listener);
  }

  /** The sync has ended (or is ending) for another reason: signals change nothing any more. */
  end(): void {
    this.ended = true;
  }

  /** A signal arrived (public for tests, which cannot send themselves one safely). */
  received(signal: string): void {
    if (this.ended) return;
    const { channels, ledger } = this.steps;
    const interrupted = (): ConnectorError => new InterruptedError(interruptedMessage(signal, ledger));
    if (this.signal) {
      clearTimeout(this.timer);
      this.steps.stopNow(interrupted());
      return;
    }
    this.signal = signal;
    this.steps.pauseInput();
    // The open batches first: the grace period waits for them too, and the count below includes them.
    this.steps.flush();
    this.steps.log(
      'WARN',
      `Received ${signal}: reading no more input; waiting up to ${this.graceMs / 1000} s for the broker to ` +
        `acknowledge ${channels.unacknowledged} message(s) in flight.`,
    );
    const timer = setTimeout(() => this.steps.stopNow(interrupted()), this.graceMs);
    this.timer = timer;
    channels.drain().then(
      () => {
        clearTimeout(timer);
        this.steps.stopDrained(interrupted());
      },
      () => clearTimeout(timer),
    );
  }
}
