/**
 * A broker's retained messages without a broker, for unit tests of what reads them through a RetainedScan (the
 * truncation, the generation marker). A scan delivers the messages held under its filter, with the generation a real
 * scan would read from them, in the order they were put; the test plays the broker's permissions: a filter it
 * refuses, one it silently withholds (as Mosquitto does without read permission), a topic whose publishes it
 * acknowledges and drops, a connection that cannot be opened.
 */
import { mock } from 'node:test';
import type { BrokerSettings } from '../../src/config/settings.js';
import { type RetainedMessage, RetainedScan, type ScanResult } from '../../src/mqtt/retained-scan.js';

export interface HeldMessage {
  readonly payload: string;
  /** What the scan reports as the message's generation (an MQTT 5 property or an airbyte_v2 payload says it). */
  readonly generation?: number;
}

/** Whether `topic` matches the MQTT filter `filter` (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (const [i, level] of filterLevels.entries()) {
    if (level === '#') return true;
    if (i >= topicLevels.length || (level !== '+' && level !== topicLevels[i])) return false;
  }
  return filterLevels.length === topicLevels.length;
}

export class FakeRetained {
  /** The retained messages by topic. */
  readonly held = new Map<string, HeldMessage>();
  /** What the scans were asked, in order: `scan <filter>`, `publish <topic>`, `close`. */
  readonly calls: string[] = [];
  /** The arguments of every `RetainedScan.open` while installed. */
  readonly opened: { readonly broker: BrokerSettings; readonly testTopic: string | undefined }[] = [];
  /** Filters whose scan fails with the error given. */
  readonly refused = new Map<string, Error>();
  /** Filters under which a scan delivers nothing. */
  readonly withheld = new Set<string>();
  /** Topics whose retained publishes are acknowledged and dropped. */
  readonly dropped = new Set<string>();
  /** Messages every scan delivers after the ones under its filter, whatever the filter. */
  readonly strays: RetainedMessage[] = [];
  /** What `RetainedScan.open` fails with, when set. */
  openError: Error | undefined;

  /** Holds each message given (a string is a payload without a generation). */
  put(messages: Readonly<Record<string, string | HeldMessage>>): this {
    for (const [topic, message] of Object.entries(messages)) {
      this.held.set(topic, typeof message === 'string' ? { payload: message } : message);
    }
    return this;
  }

  /** A scan over these messages. */
  scan(): RetainedScan {
    return new FakeScan(this) as unknown as RetainedScan;
  }

  /** Makes `RetainedScan.open` hand out scans over these messages, until the test restores its mocks. */
  install(): this {
    mock.method(
      RetainedScan,
      'open',
      (broker: BrokerSettings, testTopic: string | undefined): Promise<RetainedScan> => {
        this.opened.push({ broker, testTopic });
        return this.openError ? Promise.reject(this.openError) : Promise.resolve(this.scan());
      },
    );
    return this;
  }

  /** How many times the calls include `call`. */
  count(call: string): number {
    return this.calls.filter((c) => c === call).length;
  }
}

class FakeScan {
  constructor(private readonly broker: FakeRetained) {}

  async scan(filter: string, found: (message: RetainedMessage) => void): Promise<ScanResult> {
    const { broker } = this;
    broker.calls.push(`scan ${filter}`);
    await Promise.resolve();
    const refusal = broker.refused.get(filter);
    if (refusal) throw refusal;
    let messages = 0;
    if (!broker.withheld.has(filter)) {
      for (const [topic, { payload, generation }] of broker.held) {
        if (!topicMatches(filter, topic) || payload === '') continue;
        messages++;
        found({ topic, generation, payload: Buffer.from(payload) });
      }
    }
    for (const stray of broker.strays) {
      messages++;
      found(stray);
    }
    return { messages };
  }

  async publishRetained(topic: string, payload: string): Promise<void> {
    this.broker.calls.push(`publish ${topic}`);
    await Promise.resolve();
    if (this.broker.dropped.has(topic)) return;
    if (payload === '') this.broker.held.delete(topic);
    else this.broker.held.set(topic, { payload });
  }

  async close(): Promise<void> {
    this.broker.calls.push('close');
    await Promise.resolve();
  }
}
