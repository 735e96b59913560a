/**
 * The status topic against Mosquitto: "running" when a sync starts, "succeeded" with per-stream counts at its end,
 * "failed" with the failure (and no Will overwriting it), "interrupted" with counts after SIGTERM, and "interrupted"
 * from the broker itself, as the publishing connections' Last Will, after SIGKILL.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWrite, startWrite } from '../support/connector.js';
import { recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const ORDERS = { name: 'orders', namespace: 'shop' };
const USERS = { name: 'users' };
const PASSWORD = 'status-secret-9431';

interface Status {
  readonly status: string;
  readonly sync_id: number | null;
  readonly started_at: string;
  readonly ended_at?: string;
  readonly duration_ms?: number;
  readonly records?: number;
  readonly rejected?: number;
  readonly failure?: { readonly type: string; readonly message: string };
  readonly streams: readonly {
    readonly namespace: string | null;
    readonly name: string;
    readonly destination_sync_mode: string;
    readonly generation_id: number;
    readonly records?: number;
    readonly rejected?: number;
    readonly bytes?: number;
  }[];
}

function catalog(): Record<string, unknown> {
  const stream = (id: { name: string; namespace?: string }) => ({
    stream: { ...id, json_schema: { type: 'object' }, supported_sync_modes: ['full_refresh', 'incremental'] },
    sync_mode: 'incremental',
    destination_sync_mode: 'append',
    sync_id: 4711,
    generation_id: 3,
    minimum_generation_id: 0,
  });
  return { streams: [stream(ORDERS), stream(USERS)] };
}

const lines = (...parts: string[]): string => `${parts.join('\n')}\n`;

/** The status documents `subscriber` has seen so far. */
const statuses = (subscriber: Subscriber): Status[] =>
  subscriber.messages.filter((m) => m.topic.includes('/status')).map((m) => JSON.parse(m.payload) as Status);

describe('the status topic against Mosquitto', { skip }, () => {
  const mosquitto = withMosquitto();
  let n = 0;
  const root = (): string => `status${++n}`;
  const config = (topicRoot: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: mosquitto.port,
    username: 'dashboard-feeder',
    password: PASSWORD,
    topic_pattern: `${topicRoot}/data/{stream}/{field:site}`,
    status_topic: `${topicRoot}/status`,
    client: `status-${topicRoot}`,
    ...extra,
  });

  /** Waits until the broker has handled everything before now: a message of our own comes back after it. */
  async function settled(subscriber: Subscriber, topicRoot: string): Promise<void> {
    const before = subscriber.messages.length;
    await subscriber.client.publishAsync(`${topicRoot}/sentinel`, 'x', { qos: 1 });
    await subscriber.waitFor(before + 1);
  }

  it('says running, then succeeded with per-stream counts, kept retained for a dashboard that connects later', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const result = await runWrite(
        config(topicRoot, { rejected_records: 'skip' }),
        catalog(),
        lines(
          recordLine(ORDERS, { site: 'a', n: 1 }),
          recordLine(ORDERS, { n: 2 }),
          recordLine(ORDERS, { site: 'b', n: 3 }),
          recordLine(USERS, { site: 'a', name: 'x' }),
          streamStateLine(ORDERS, 3),
        ),
      );
      assert.equal(result.code, 0, result.stdout);
      await settled(subscriber, topicRoot);
      assert.deepEqual(
        statuses(subscriber).map((s) => s.status),
        ['running', 'succeeded'],
      );
      const later = await subscribe(mosquitto.url, `${topicRoot}/status`);
      const [retained] = await later.waitFor(1);
      await later.close();
      assert.equal(retained?.retain, true);
      const done = JSON.parse(retained?.payload ?? '') as Status;
      assert.equal(done.status, 'succeeded');
      assert.equal(done.sync_id, 4711);
      assert.equal(done.records, 4);
      assert.equal(done.rejected, 1);
      assert.ok((done.duration_ms ?? -1) >= 0);
      assert.equal(done.started_at, statuses(subscriber)[0]?.started_at);
      const [orders, users] = done.streams;
      assert.deepEqual(
        { ...orders, bytes: undefined },
        {
          namespace: 'shop',
          name: 'orders',
          destination_sync_mode: 'append',
          generation_id: 3,
          minimum_generation_id: 0,
          records: 3,
          rejected: 1,
          bytes: undefined,
        },
      );
      const published = subscriber.messages.filter((m) => m.topic.startsWith(`${topicRoot}/data/orders/`));
      assert.equal(
        orders?.bytes,
        published.reduce((sum, m) => sum + m.raw.length, 0),
      );
      assert.equal(users?.records, 1);
      assert.equal(users?.namespace, null);
    } finally {
      await subscriber.close();
    }
  });

  it('says with MQTT 5 that each status document is JSON, as a dashboard may dispatch on it', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/status`, { protocolVersion: 5 });
    try {
      const result = await runWrite(
        config(topicRoot, { protocol_version: '5' }),
        catalog(),
        lines(recordLine(ORDERS, { site: 'a', n: 1 }), streamStateLine(ORDERS, 1)),
      );
      assert.equal(result.code, 0, result.stdout);
      const documents = await subscriber.waitFor(2);
      assert.deepEqual(
        documents.map((d) => [(JSON.parse(d.payload) as Status).status, d.properties?.contentType]),
        [
          ['running', 'application/json'],
          ['succeeded', 'application/json'],
        ],
      );
    } finally {
      await subscriber.close();
    }
  });

  it('says failed with the failure type and a message without secrets, and no Will overwrites it', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const result = await runWrite(
        config(topicRoot, { connections: 3, max_message_bytes: 400 }),
        catalog(),
        lines(recordLine(ORDERS, { site: 'a' }), recordLine(ORDERS, { site: PASSWORD, pad: 'x'.repeat(600) })),
      );
      assert.equal(result.code, 1, result.stdout);
      await settled(subscriber, topicRoot);
      const seen = statuses(subscriber);
      assert.deepEqual(
        seen.map((s) => s.status),
        ['running', 'failed'],
      );
      const failed = seen[1] as Status;
      assert.equal(failed.failure?.type, 'config_error');
      assert.match(
        failed.failure?.message ?? '',
        /^Input line 2: .* makes a \d+-byte MQTT message, larger than the 400 bytes/,
      );
      assert.equal(failed.records, 2);
      assert.doesNotMatch(JSON.stringify(seen), new RegExp(PASSWORD));
    } finally {
      await subscriber.close();
    }
  });

  it('says interrupted with the counts so far after SIGTERM', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/#`);
    try {
      const running = startWrite(config(topicRoot), catalog(), { onSpawn: () => undefined });
      running.child.stdin?.write(lines(recordLine(ORDERS, { site: 'a' }), streamStateLine(ORDERS, 1)));
      await running.waitForLine(/"STATE"/);
      running.child.kill('SIGTERM');
      const result = await running.result;
      assert.equal(result.code, 1, result.stdout);
      await settled(subscriber, topicRoot);
      const last = statuses(subscriber).at(-1);
      assert.equal(last?.status, 'interrupted');
      assert.equal(last?.failure?.type, 'transient_error');
      assert.match(last?.failure?.message ?? '', /interrupted by SIGTERM/);
      assert.equal(last?.records, 1);
    } finally {
      await subscriber.close();
    }
  });

  it('is set to interrupted by the broker, from the Last Will, when the connector is killed', async () => {
    const topicRoot = root();
    const subscriber = await subscribe(mosquitto.url, `${topicRoot}/status`);
    try {
      const running = startWrite(config(topicRoot, { connections: 2 }), catalog(), { onSpawn: () => undefined });
      running.child.stdin?.write(lines(recordLine(ORDERS, { site: 'a' }), streamStateLine(ORDERS, 1)));
      await running.waitForLine(/"STATE"/);
      assert.equal(statuses(subscriber)[0]?.status, 'running');
      running.child.kill('SIGKILL');
      await running.result;
      // Both publishing connections leave the Will.
      await subscriber.waitFor(2);
      const will = statuses(subscriber).at(-1);
      assert.equal(will?.status, 'interrupted');
      assert.equal(will?.sync_id, 4711);
      assert.equal(will?.started_at, statuses(subscriber)[0]?.started_at);
      const later = await subscribe(mosquitto.url, `${topicRoot}/status`);
      const [retained] = await later.waitFor(1);
      await later.close();
      assert.equal((JSON.parse(retained?.payload ?? '') as Status).status, 'interrupted');
    } finally {
      await subscriber.close();
    }
  });
});
