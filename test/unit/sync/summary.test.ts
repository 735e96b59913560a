/**
 * What a sync tells whoever watches it, as exact texts: the per-stream totals at the end (real routes, fake channels
 * that say what the broker reported and how often credentials were renewed), the line a sync starts publishing with,
 * and how far a sync got when it completed, stopped early or was interrupted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import type { Channels } from '../../../src/sync/channels.js';
import { type StreamRoute, routeStreams } from '../../../src/sync/routes.js';
import {
  type LedgerCounts,
  Summary,
  completeMessage,
  interruptedMessage,
  publishingMessage,
  stoppingMessage,
} from '../../../src/sync/summary.js';
import { configuredStream } from '../../support/messages.js';

const USERS = streamKey(undefined, 'users');
const DEVICES = streamKey('fleet', 'devices');

function settingsOf(config: Record<string, unknown> = {}): Settings {
  return toSettings({ broker_host: 'localhost', topic_pattern: 't/{stream}', ...config });
}

/** Channels as the summary asks them: the first one's window, the client IDs, no-subscriber counts, renewals. */
class FakeChannels {
  /** Topics (or stream filters) the summary asked about, in order. */
  readonly asked: string[] = [];

  constructor(
    private readonly options: {
      readonly window?: number;
      readonly clientIds?: string;
      readonly unheard?: Readonly<Record<string, number>>;
      readonly renewalLine?: string;
    } = {},
  ) {}

  get all(): readonly { readonly window: number }[] {
    return [{ window: this.options.window ?? 1000 }, { window: 1 }];
  }

  get clientIds(): string {
    return this.options.clientIds ?? 'client ID "one"';
  }

  get renewalLine(): string | undefined {
    return this.options.renewalLine;
  }

  noSubscribers(group: string): number {
    this.asked.push(group);
    return this.options.unheard?.[group] ?? 0;
  }

  get channels(): Channels {
    return this as unknown as Channels;
  }
}

function routesOf(
  streams: readonly ConfiguredStream[],
  pattern = 't/{stream}',
  retain = false,
): ReadonlyMap<string, StreamRoute> {
  return routeStreams(streams, pattern, { retain });
}

const TWO_STREAMS = [configuredStream('users'), configuredStream('devices', { namespace: 'fleet' })];

const LEDGER: LedgerCounts = { recordsReceived: 12, recordsAcknowledged: 9, statesEmitted: 3, statesHeld: 2 };

describe('Summary counts', () => {
  it('counts records, payload bytes and rejected records per stream', () => {
    const summary = new Summary();
    summary.received(USERS);
    summary.received(USERS);
    summary.received(DEVICES);
    summary.published(USERS, 100, false);
    summary.published(USERS, 0, true);
    summary.published(USERS, 23, false);
    summary.published(DEVICES, 7, false);
    summary.rejected(DEVICES);
    summary.rejected(DEVICES);
    assert.deepEqual(summary.countsOf(USERS), { records: 2, rejected: 0, bytes: 123 });
    assert.deepEqual(summary.countsOf(DEVICES), { records: 1, rejected: 2, bytes: 7 });
    assert.equal(summary.rejectedOf(USERS), 0);
    assert.equal(summary.rejectedOf(DEVICES), 2);
  });

  it('gives zeros for a stream it has not seen', () => {
    const summary = new Summary();
    summary.received(USERS);
    assert.deepEqual(summary.countsOf(DEVICES), { records: 0, rejected: 0, bytes: 0 });
    assert.equal(summary.rejectedOf(DEVICES), 0);
  });

  it('counts a rejected record of a stream it has not otherwise seen', () => {
    const summary = new Summary();
    summary.rejected(DEVICES);
    assert.equal(summary.rejectedOf(DEVICES), 1);
    assert.deepEqual(summary.countsOf(DEVICES), { records: 0, rejected: 1, bytes: 0 });
  });
});

describe('Summary.streamLines', () => {
  it('gives one line per stream with its records, payload bytes and topic, in the order of the routes', () => {
    const summary = new Summary();
    summary.received(DEVICES);
    summary.published(DEVICES, 40, false);
    summary.received(USERS);
    summary.received(USERS);
    summary.published(USERS, 120, false);
    summary.published(USERS, 3, false);
    const channels = new FakeChannels();
    assert.deepEqual(summary.streamLines(routesOf(TWO_STREAMS), channels.channels, settingsOf()), [
      'Stream "users": 2 record(s), 123 payload bytes, published to "t/users".',
      'Stream "fleet.devices": 1 record(s), 40 payload bytes, published to "t/devices".',
    ]);
    assert.deepEqual(channels.asked, ['t/users', 't/devices'], 'the broker reports no subscribers per topic');
  });

  it('leaves out streams without records, even when they had rejected records counted', () => {
    const summary = new Summary();
    summary.received(USERS);
    summary.published(USERS, 5, false);
    summary.rejected(DEVICES);
    summary.published(DEVICES, 9, false);
    assert.deepEqual(summary.streamLines(routesOf(TWO_STREAMS), new FakeChannels().channels, settingsOf()), [
      'Stream "users": 1 record(s), 5 payload bytes, published to "t/users".',
    ]);
  });

  it('gives no lines at all when no stream had records and no credential was renewed', () => {
    assert.deepEqual(new Summary().streamLines(routesOf(TWO_STREAMS), new FakeChannels().channels, settingsOf()), []);
  });

  it('says "retained" for a stream whose messages are retained, and names the filter of a keyed stream', () => {
    const summary = new Summary();
    summary.received(USERS);
    summary.published(USERS, 10, false);
    const routes = routesOf([configuredStream('users', { mode: 'append_dedup' })], 't/{stream}/{key}');
    assert.deepEqual(summary.streamLines(routes, new FakeChannels().channels, settingsOf()), [
      'Stream "users": 1 record(s), 10 payload bytes, published retained to "t/users/+".',
    ]);
  });

  it('adds the deletes, the rejected records (skipped) and what the broker said of subscribers, in that order', () => {
    const summary = new Summary();
    for (let i = 0; i < 5; i++) summary.received(USERS);
    summary.published(USERS, 30, false);
    summary.published(USERS, 0, true);
    summary.published(USERS, 0, true);
    summary.rejected(USERS);
    const channels = new FakeChannels({ unheard: { 't/users': 4 } });
    const settings = settingsOf({ rejected_records: 'skip' });
    assert.deepEqual(summary.streamLines(routesOf([configuredStream('users')]), channels.channels, settings), [
      'Stream "users": 5 record(s), 30 payload bytes, published to "t/users"; 2 of them deletes (empty retained ' +
        'messages); 1 rejected (skipped); the broker reported no matching subscribers for 4 of them.',
    ]);
  });

  it('says rejected records were reported on the dead letter topic when rejected_records is dead_letter', () => {
    const summary = new Summary();
    summary.received(USERS);
    summary.received(USERS);
    summary.rejected(USERS);
    summary.rejected(USERS);
    const settings = settingsOf({ rejected_records: 'dead_letter', dead_letter_topic: 'dead/{stream}' });
    assert.deepEqual(
      summary.streamLines(routesOf([configuredStream('users')]), new FakeChannels().channels, settings),
      [
        'Stream "users": 2 record(s), 0 payload bytes, published to "t/users"; 2 rejected (reported on the dead letter ' +
          'topic).',
      ],
    );
  });

  it('gives only the subscribers part when that is all the broker said', () => {
    const summary = new Summary();
    summary.received(USERS);
    summary.published(USERS, 8, false);
    const channels = new FakeChannels({ unheard: { 't/users': 1 } });
    assert.deepEqual(summary.streamLines(routesOf([configuredStream('users')]), channels.channels, settingsOf()), [
      'Stream "users": 1 record(s), 8 payload bytes, published to "t/users"; the broker reported no matching ' +
        'subscribers for 1 of them.',
    ]);
  });

  it('ends with how often the credentials were renewed, when they were', () => {
    const summary = new Summary();
    summary.received(USERS);
    const renewed = 'Credentials renewed 3 time(s): 3 by reconnecting.';
    const channels = new FakeChannels({ renewalLine: renewed });
    assert.deepEqual(summary.streamLines(routesOf([configuredStream('users')]), channels.channels, settingsOf()), [
      'Stream "users": 1 record(s), 0 payload bytes, published to "t/users".',
      renewed,
    ]);
    assert.deepEqual(new Summary().streamLines(routesOf([]), channels.channels, settingsOf()), [renewed]);
  });
});

describe('publishingMessage', () => {
  it('says how many streams, where, at which QoS and how many messages may be in flight', () => {
    assert.equal(
      publishingMessage(settingsOf(), 2, new FakeChannels({ window: 1000 }).channels),
      'Publishing 2 stream(s) to mqtt://localhost:1883 at QoS 1 (at least once), up to 1000 message(s) in flight.',
    );
  });

  it('names each QoS in words', () => {
    const channels = new FakeChannels({ window: 20 }).channels;
    assert.match(
      publishingMessage(settingsOf({ message_qos: 'AT_MOST_ONCE' }), 1, channels),
      / at QoS 0 \(at most once\), up to 20 message\(s\) in flight\.$/,
    );
    assert.match(
      publishingMessage(settingsOf({ message_qos: 'EXACTLY_ONCE' }), 1, channels),
      / at QoS 2 \(exactly once\), up to 20 message\(s\) in flight\.$/,
    );
  });

  it('says "retained" when every message is retained, and the TLS scheme and port of the broker', () => {
    assert.equal(
      publishingMessage(
        settingsOf({ message_retained: true, use_tls: true, broker_port: 8884 }),
        1,
        new FakeChannels({ window: 5 }).channels,
      ),
      'Publishing 1 stream(s) to mqtts://localhost:8884 at QoS 1 (at least once), retained, up to 5 message(s) in ' +
        'flight.',
    );
  });

  it('names the connections and their client IDs when there are several, and the window as per connection', () => {
    const channels = new FakeChannels({ window: 100, clientIds: 'client IDs "a-1" to "a-3"' }).channels;
    assert.equal(
      publishingMessage(settingsOf({ connections: 3, client: 'a' }), 4, channels),
      'Publishing 4 stream(s) to mqtt://localhost:1883 over 3 connections (client IDs "a-1" to "a-3") at QoS 1 ' +
        '(at least once), up to 100 message(s) in flight on each.',
    );
  });

  it('gives the rate limits, each alone or both together', () => {
    const channels = new FakeChannels({ window: 10 }).channels;
    const start =
      'Publishing 1 stream(s) to mqtt://localhost:1883 at QoS 1 (at least once), up to 10 message(s) in flight';
    assert.equal(
      publishingMessage(settingsOf({ max_messages_per_second: 50 }), 1, channels),
      `${start}, at most 50 message(s) per second.`,
    );
    assert.equal(
      publishingMessage(settingsOf({ max_bytes_per_second: 4096 }), 1, channels),
      `${start}, at most 4096 payload byte(s) per second.`,
    );
    assert.equal(
      publishingMessage(settingsOf({ max_messages_per_second: 50, max_bytes_per_second: 4096 }), 1, channels),
      `${start}, at most 50 message(s) and 4096 payload byte(s) per second.`,
    );
  });
});

describe('the end of a sync', () => {
  it('says a complete sync acknowledged every record it received, and from how many input lines', () => {
    assert.equal(completeMessage(LEDGER, 40), 'Sync complete: 9 record(s) acknowledged from 40 input line(s).');
  });

  it('says a stopped sync got so far and withheld the states whose records were not all acknowledged', () => {
    assert.equal(
      stoppingMessage(LEDGER, 40),
      'Stopping after 40 input line(s): 9 of 12 record(s) acknowledged; 2 state message(s) withheld because the ' +
        'records before them were not all acknowledged.',
    );
  });

  it('says an interrupted sync was stopped by the signal, how far it got, and where the next one resumes', () => {
    assert.equal(
      interruptedMessage('SIGTERM', LEDGER),
      'The sync was interrupted by SIGTERM before its input was complete: 9 of 12 record(s) acknowledged by the ' +
        'broker, 3 state message(s) emitted, 2 withheld. The next sync resumes from the last state emitted.',
    );
  });
});
