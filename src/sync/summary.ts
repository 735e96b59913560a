/**
 * What a sync tells whoever watches it: what it is about to do, per-stream totals at the end, and how far it got when
 * it stops early. The counts of records and states are the ledger's (checkpoints.ts); the per-stream totals are kept
 * here, as records pass.
 */
import { describeStream } from '../airbyte/catalog.js';
import { brokerAddress } from '../config/broker-url.js';
import type { Settings } from '../config/settings.js';
import type { Channels } from './channels.js';
import type { StreamRoute } from './routes.js';

const QOS_NAMES = ['0 (at most once)', '1 (at least once)', '2 (exactly once)'];

/** What the ledger knows of the sync so far. */
export interface LedgerCounts {
  readonly recordsReceived: number;
  readonly recordsAcknowledged: number;
  readonly statesEmitted: number;
  readonly statesHeld: number;
}

interface StreamTotals {
  records: number;
  bytes: number;
  tombstones: number;
  rejected: number;
}

/** Per-stream totals, by stream key. */
export class Summary {
  private readonly totals = new Map<string, StreamTotals>();

  private of(key: string): StreamTotals {
    let totals = this.totals.get(key);
    if (!totals) {
      totals = { records: 0, bytes: 0, tombstones: 0, rejected: 0 };
      this.totals.set(key, totals);
    }
    return totals;
  }

  received(key: string): void {
    this.of(key).records++;
  }

  published(key: string, bytes: number, tombstone: boolean): void {
    const totals = this.of(key);
    totals.bytes += bytes;
    if (tombstone) totals.tombstones++;
  }

  rejected(key: string): void {
    this.of(key).rejected++;
  }

  /** Records, rejected records and payload bytes of the stream so far. */
  countsOf(key: string): { readonly records: number; readonly rejected: number; readonly bytes: number } {
    const totals = this.totals.get(key);
    return { records: totals?.records ?? 0, rejected: totals?.rejected ?? 0, bytes: totals?.bytes ?? 0 };
  }

  /** Records of the stream that were rejected (skipped or reported). */
  rejectedOf(key: string): number {
    return this.totals.get(key)?.rejected ?? 0;
  }

  /**
   * One INFO line per stream that had records: counts, payload bytes, the topic, what the broker said; and how often
   * the connections renewed their credentials, if they did.
   */
  streamLines(routes: ReadonlyMap<string, StreamRoute>, channels: Channels, settings: Settings): string[] {
    const lines: string[] = [];
    for (const [key, route] of routes) {
      const totals = this.totals.get(key);
      if (!totals || totals.records === 0) continue;
      const unheard = channels.noSubscribers(route.topicName);
      const handled = settings.sync.rejectedRecords === 'skip' ? 'skipped' : 'reported on the dead letter topic';
      const extras = [
        totals.tombstones > 0 ? `${totals.tombstones} of them deletes (empty retained messages)` : '',
        totals.rejected > 0 ? `${totals.rejected} rejected (${handled})` : '',
        unheard ? `the broker reported no matching subscribers for ${unheard} of them` : '',
      ].filter(Boolean);
      lines.push(
        `Stream ${describeStream(route.namespace, route.name)}: ${totals.records} record(s), ${totals.bytes} payload ` +
          `bytes, published ${route.retained ? 'retained ' : ''}to "${route.topicName}"` +
          `${extras.length > 0 ? `; ${extras.join('; ')}` : ''}.`,
      );
    }
    const renewed = channels.renewalLine;
    if (renewed) lines.push(renewed);
    return lines;
  }
}

/** The line a sync starts publishing with: where, how, how fast. */
export function publishingMessage(settings: Settings, streams: number, channels: Channels): string {
  const { messages, sync } = settings;
  const several = sync.connections > 1;
  const over = several ? ` over ${sync.connections} connections (${channels.clientIds})` : '';
  const limits = [
    sync.maxMessagesPerSecond === undefined ? '' : `${sync.maxMessagesPerSecond} message(s)`,
    sync.maxBytesPerSecond === undefined ? '' : `${sync.maxBytesPerSecond} payload byte(s)`,
  ].filter(Boolean);
  return (
    `Publishing ${streams} stream(s) to ${brokerAddress(settings.broker)}${over} at QoS ${QOS_NAMES[messages.qos]}` +
    `${messages.retain ? ', retained' : ''}, up to ${channels.all[0]?.window} message(s) in flight` +
    `${several ? ' on each' : ''}${limits.length > 0 ? `, at most ${limits.join(' and ')} per second` : ''}.`
  );
}

export function completeMessage(ledger: LedgerCounts, lines: number): string {
  return `Sync complete: ${ledger.recordsAcknowledged} record(s) acknowledged from ${lines} input line(s).`;
}

/** Why a stopped sync emitted no more states. */
export function stoppingMessage(ledger: LedgerCounts, lines: number): string {
  return (
    `Stopping after ${lines} input line(s): ${ledger.recordsAcknowledged} of ${ledger.recordsReceived} record(s) ` +
    `acknowledged; ${ledger.statesHeld} state message(s) withheld because the records before them were not all ` +
    'acknowledged.'
  );
}

/** The error of a sync stopped by a signal, with how far it got. */
export function interruptedMessage(signal: string, ledger: LedgerCounts): string {
  return (
    `The sync was interrupted by ${signal} before its input was complete: ${ledger.recordsAcknowledged} of ` +
    `${ledger.recordsReceived} record(s) acknowledged by the broker, ${ledger.statesEmitted} state message(s) ` +
    `emitted, ${ledger.statesHeld} withheld. The next sync resumes from the last state emitted.`
  );
}
