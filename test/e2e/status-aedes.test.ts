/**
 * `StatusTopic` against an in-process aedes broker: each document goes retained at QoS 1 over a connection of its own
 * (client ID `<client>-status`), in the order made; the Will is the "interrupted" document; "running" again after a
 * loss is said only while the sync runs; the final document goes once; and a status that cannot be published is a
 * warning, never an error of the sync.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toSettings } from '../../src/config/settings.js';
import { ConfigError, InterruptedError } from '../../src/errors.js';
import { NO_COUNTS, StatusTopic } from '../../src/sync/status.js';
import { startAedes, withAedes } from '../support/aedes.js';
import { configuredStream } from '../support/messages.js';

interface Published {
  readonly clientId: string;
  readonly topic: string;
  readonly status: string;
  readonly qos: number;
  readonly retain: boolean;
  readonly failure?: { readonly type: string };
}

const broker = withAedes();
const keep = (text: string): string => text;
const STREAMS = [configuredStream('users', { syncId: 12 })];

function brokerSettings(port: number, clientId: string): ReturnType<typeof toSettings>['broker'] {
  return toSettings({
    broker_host: '127.0.0.1',
    broker_port: port,
    client_id: clientId,
    topic_pattern: '{stream}',
    protocol_version: '3.1.1',
    connect_timeout_seconds: 2,
  }).broker;
}

describe('StatusTopic against aedes', () => {
  it('publishes running, then the outcome, retained at QoS 1 from <client>-status, and only once', async () => {
    const seen: Published[] = [];
    const onPublish = (
      packet: { topic: string; payload: Buffer | string; qos: number; retain: boolean },
      client: { id: string } | null,
    ): void => {
      if (!client || packet.topic !== 'st1/status') return;
      const document = JSON.parse(packet.payload.toString()) as { status: string; failure?: { type: string } };
      seen.push({ clientId: client.id, topic: packet.topic, qos: packet.qos, retain: packet.retain, ...document });
    };
    broker.aedes.on('publish', onPublish);
    try {
      const logs: string[] = [];
      const status = await StatusTopic.open(brokerSettings(broker.port, 'feeder'), 'st1/status', STREAMS, (l, m) =>
        logs.push(`${l} ${m}`),
      );
      assert.ok(status);
      assert.equal(status.will.topic, 'st1/status');
      assert.equal((JSON.parse(status.will.payload) as { status: string }).status, 'interrupted');
      status.running();
      await status.finish(new InterruptedError('stopped by SIGTERM'), () => undefined, keep);
      await status.finish(undefined, () => NO_COUNTS, keep);
      status.running();
      await status.finish(new ConfigError('late'), () => NO_COUNTS, keep);
      assert.deepEqual(
        seen.map((s) => [s.clientId, s.status, s.qos, s.retain, s.failure?.type]),
        [
          ['feeder-status', 'running', 1, true, undefined],
          ['feeder-status', 'running', 1, true, undefined],
          ['feeder-status', 'interrupted', 1, true, 'transient_error'],
        ],
      );
      assert.deepEqual(logs, []);
    } finally {
      broker.aedes.removeListener('publish', onPublish);
    }
  });

  it('opens nothing without a status topic', async () => {
    assert.equal(
      await StatusTopic.open(brokerSettings(broker.port, 'x'), undefined, STREAMS, () => undefined),
      undefined,
    );
  });

  it('says "failed" or "succeeded" at the end', async () => {
    const outcomes: string[] = [];
    const onPublish = (packet: { topic: string; payload: Buffer | string }): void => {
      if (packet.topic === 'st2/status') outcomes.push((JSON.parse(packet.payload.toString()) as Published).status);
    };
    broker.aedes.on('publish', onPublish);
    try {
      for (const error of [new ConfigError('bad'), undefined]) {
        const status = await StatusTopic.open(
          brokerSettings(broker.port, 'f2'),
          'st2/status',
          STREAMS,
          () => undefined,
        );
        await status?.finish(error, () => undefined, keep);
      }
      assert.deepEqual(outcomes, ['running', 'failed', 'running', 'succeeded']);
    } finally {
      broker.aedes.removeListener('publish', onPublish);
    }
  });

  it('warns, and never throws, when the final status cannot be published', async () => {
    const logs: string[] = [];
    const gone = await startAedes();
    const status = await StatusTopic.open(brokerSettings(gone.port, 'f3'), 'st3/status', STREAMS, (l, m) =>
      logs.push(`${l} ${m}`),
    );
    assert.ok(status);
    // The broker goes away: later documents cannot be published.
    await gone.close();
    status.running();
    await status.finish(undefined, () => undefined, keep);
    assert.equal(logs.length, 2);
    assert.match(logs[0] ?? '', /^WARN Could not publish the status "running" again to "st3\/status": /);
    assert.match(logs[1] ?? '', /^WARN Could not publish the status "succeeded" to "st3\/status": /);
  });
});
