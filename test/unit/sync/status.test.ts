import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { streamKey } from '../../../src/airbyte/catalog.js';
import { ConfigError, InterruptedError, TransientError } from '../../../src/errors.js';
import { NO_COUNTS, type StreamCounts, type SyncIdentity, statusDocument, syncIdOf } from '../../../src/sync/status.js';
import { Redactor } from '../../../src/text/redaction.js';
import { configuredStream } from '../../support/messages.js';

const STARTED = new Date('2024-05-01T12:00:00.000Z');
const ENDED = new Date('2024-05-01T12:01:02.345Z');

const USERS = configuredStream('users', { generationId: 3, minimumGenerationId: 3, syncId: 77, mode: 'overwrite' });
const ORDERS = configuredStream('orders', { namespace: 'shop', generationId: 1, syncId: 77 });
const EMPTY = configuredStream('empty', { namespace: 'shop' });

const SYNC: SyncIdentity = { syncId: 77, startedAt: STARTED, clientId: 'airbyte-1', streams: [USERS, ORDERS, EMPTY] };

const COUNTS = new Map<string, StreamCounts>([
  [streamKey(undefined, 'users'), { records: 10, rejected: 1, bytes: 1000 }],
  [streamKey('shop', 'orders'), { records: 5, rejected: 2, bytes: 250 }],
]);
const counts = (key: string): StreamCounts => COUNTS.get(key) ?? NO_COUNTS;
const keep = (text: string): string => text;

type Document = Record<string, unknown> & { streams: Record<string, unknown>[] };

function parse(text: string): Document {
  const document = JSON.parse(text) as Document;
  assert.ok(Array.isArray(document.streams));
  return document;
}

describe('statusDocument', () => {
  it('says "running" first, then who and since when, and each stream of the catalog without counts', () => {
    const text = statusDocument('running', SYNC);
    const document = parse(text);
    assert.deepEqual(Object.keys(document), ['status', 'sync_id', 'connector', 'client_id', 'started_at', 'streams']);
    assert.ok(text.startsWith('{"status":"running",'), 'the status is the first thing a reader of the topic sees');
    assert.equal(document.sync_id, 77);
    assert.equal(document.connector, 'destination-mqtt');
    assert.equal(document.client_id, 'airbyte-1');
    assert.equal(document.started_at, '2024-05-01T12:00:00.000Z');
    assert.deepEqual(document.streams, [
      {
        namespace: null,
        name: 'users',
        destination_sync_mode: 'overwrite',
        generation_id: 3,
        minimum_generation_id: 3,
      },
      {
        namespace: 'shop',
        name: 'orders',
        destination_sync_mode: 'append',
        generation_id: 1,
        minimum_generation_id: 0,
      },
      { namespace: 'shop', name: 'empty', destination_sync_mode: 'append', generation_id: 0, minimum_generation_id: 0 },
    ]);
  });

  it('makes the Last Will ("interrupted") the same shape as "running": no end, no counts', () => {
    const document = parse(statusDocument('interrupted', { ...SYNC, syncId: null }));
    assert.equal(document.status, 'interrupted');
    assert.equal(document.sync_id, null, 'a platform that sent no sync id: null, not left out');
    assert.deepEqual(Object.keys(document), ['status', 'sync_id', 'connector', 'client_id', 'started_at', 'streams']);
    for (const stream of document.streams) assert.equal('records' in stream, false);
  });

  it('ends with the end time, the duration, totals summed over the streams, and per-stream counts', () => {
    const asked: string[] = [];
    const document = parse(
      statusDocument('succeeded', SYNC, {
        at: ENDED,
        counts: (key) => {
          asked.push(key);
          return counts(key);
        },
        redact: keep,
      }),
    );
    assert.deepEqual(Object.keys(document), [
      'status',
      'sync_id',
      'connector',
      'client_id',
      'started_at',
      'ended_at',
      'duration_ms',
      'records',
      'rejected',
      'bytes',
      'streams',
    ]);
    assert.equal(document.status, 'succeeded');
    assert.equal(document.ended_at, '2024-05-01T12:01:02.345Z');
    assert.equal(document.duration_ms, 62_345);
    assert.equal(document.records, 15);
    assert.equal(document.rejected, 3);
    assert.equal(document.bytes, 1250);
    assert.deepEqual(asked, [streamKey(undefined, 'users'), streamKey('shop', 'orders'), streamKey('shop', 'empty')]);
    assert.deepEqual(
      document.streams.map((stream) => [stream.name, stream.records, stream.rejected, stream.bytes]),
      [
        ['users', 10, 1, 1000],
        ['orders', 5, 2, 250],
        ['empty', 0, 0, 0],
      ],
    );
    assert.equal('failure' in document, false, 'a success has no failure');
  });

  it("reports a failure's type and its message with every secret masked", () => {
    const secret = 's3cr3t-Pa55';
    const redactor = new Redactor();
    redactor.add([secret]);
    const error = new TransientError(`Connecting as airbyte:${secret}@broker failed`);
    const text = statusDocument('failed', SYNC, { at: ENDED, counts, error, redact: (t) => redactor.text(t) });
    assert.equal(text.includes(secret), false, 'the secret never reaches the broker');
    const document = parse(text);
    assert.deepEqual(document.failure, {
      type: 'transient_error',
      message: 'Connecting as airbyte:**********@broker failed',
    });
    const keys = Object.keys(document);
    assert.equal(keys.indexOf('failure'), keys.indexOf('streams') - 1, 'the failure comes before the streams');
    assert.equal(document.records, 15, 'a failed sync says how far it got');
  });

  it('gives each kind of failure its own type', () => {
    for (const [error, type] of [
      [new ConfigError('bad'), 'config_error'],
      [new InterruptedError('stopped'), 'transient_error'],
    ] as const) {
      const document = parse(statusDocument('failed', SYNC, { at: ENDED, counts, error, redact: keep }));
      assert.deepEqual(document.failure, { type, message: error.message });
    }
  });
});

describe('syncIdOf', () => {
  it("is the first stream's sync id the platform gave, or null when none has one", () => {
    const plain = configuredStream;
    assert.equal(syncIdOf([plain('a'), plain('b', { syncId: 42 }), plain('c', { syncId: 43 })]), 42);
    assert.equal(syncIdOf([plain('a', { syncId: 0 })]), 0, 'job 0 is a sync id, not none');
    assert.equal(syncIdOf([plain('a'), plain('b')]), null);
    assert.equal(syncIdOf([]), null);
  });
});
