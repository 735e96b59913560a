/**
 * A truncation on its own, over routes built from real settings and catalogs and a fake broker's retained messages
 * (test/support/fake-retained.ts, installed in place of `RetainedScan.open`): which retained messages it takes as
 * stale when it prepares, which of them the sync's own writes save, and what `cleanup` then clears, keeps and says.
 * The clearing itself is a recording function, as the write command's pacing is to the truncation.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { toSettings } from '../../../src/config/settings.js';
import { ConfigError, TransientError } from '../../../src/errors.js';
import type { LogLevel } from '../../../src/log.js';
import { type StreamRoute, routeStreams } from '../../../src/sync/routes.js';
import { Truncation, type TruncationSettings } from '../../../src/sync/truncation.js';
import { FakeRetained } from '../../support/fake-retained.js';
import { configuredStream } from '../../support/messages.js';

const DEVICES = streamKey(undefined, 'devices');
const SENSORS = streamKey(undefined, 'sensors');
/** The territory of the stream devices under the pattern fleet/{stream}, as the logs list it. */
const WHERE = '"fleet/devices/+" and "fleet/devices"';
/** The generation marker of the stream devices (generation-marker.ts). */
const MARKER = 'airbyte/destination-mqtt/generation/fleet%2Fdevices%2F%2B';

const overwrite = (name = 'devices', overrides: Partial<ConfiguredStream> = {}): ConfiguredStream =>
  configuredStream(name, { mode: 'overwrite', ...overrides });

/** A refresh that truncates: minimum generation == generation. */
const refresh = (overrides: Partial<ConfiguredStream> = {}): ConfiguredStream =>
  configuredStream('devices', {
    mode: 'append_dedup',
    generationId: 3,
    minimumGenerationId: 3,
    syncId: 77,
    ...overrides,
  });

interface LogLine {
  readonly level: LogLevel;
  readonly message: string;
}

interface Prepared {
  readonly truncation: Truncation | undefined;
  readonly settings: TruncationSettings;
  readonly routes: ReadonlyMap<string, StreamRoute>;
  readonly logs: LogLine[];
}

async function prepare(
  broker: FakeRetained,
  streams: readonly ConfiguredStream[] = [overwrite()],
  config: Record<string, unknown> = {},
): Promise<Prepared> {
  const all = toSettings({ broker_host: 'localhost', topic_pattern: 'fleet/{stream}', ...config });
  const settings: TruncationSettings = {
    broker: all.broker,
    messages: all.messages,
    overwriteCleanup: all.sync.overwriteCleanup,
  };
  const routes = routeStreams(streams, all.messages.topicPattern, { retain: all.messages.retain });
  const logs: LogLine[] = [];
  const truncation = await Truncation.prepare(settings, routes, (level, message) => logs.push({ level, message }));
  return { truncation, settings, routes, logs };
}

/** The prepared truncation, which must exist. */
function truncationOf(prepared: Prepared): Truncation {
  assert.ok(prepared.truncation, 'a truncation');
  return prepared.truncation;
}

interface Cleared {
  readonly route: StreamRoute;
  readonly topics: readonly string[];
}

/** Runs the cleanup; every stream is reported complete and nothing rejected unless said otherwise. */
async function cleanup(
  prepared: Prepared,
  options: { completed?: readonly string[]; rejected?: Readonly<Record<string, number>> } = {},
): Promise<Cleared[]> {
  const cleared: Cleared[] = [];
  await truncationOf(prepared).cleanup(
    new Set(options.completed ?? prepared.routes.keys()),
    (key) => options.rejected?.[key] ?? 0,
    (route, topics) => {
      cleared.push({ route, topics });
      return Promise.resolve();
    },
  );
  return cleared;
}

/** The topics cleared, over every stream. */
function topicsOf(cleared: readonly Cleared[]): string[] {
  return cleared.flatMap(({ topics }) => topics);
}

function messagesAt(logs: readonly LogLine[], level: LogLevel): string[] {
  return logs.filter((line) => line.level === level).map((line) => line.message);
}

/** Old retained keys of the stream devices, 1 to n. */
function oldKeys(n: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`fleet/devices/${i + 1}`, '{"v":"old"}']));
}

describe('Truncation', () => {
  afterEach(() => mock.restoreAll());

  describe('prepare', () => {
    it('reads nothing and returns undefined when no stream is truncated', async () => {
      const broker = new FakeRetained().install().put(oldKeys(2));
      const prepared = await prepare(broker, [
        configuredStream('devices', { mode: 'append_dedup', generationId: 4, minimumGenerationId: 0 }),
        configuredStream('sensors', { generationId: 4, minimumGenerationId: 3 }),
      ]);
      assert.equal(prepared.truncation, undefined);
      assert.equal(broker.opened.length, 0);
      assert.deepEqual(prepared.logs, []);
    });

    it('reads nothing for a truncated stream without a territory of its own', async () => {
      const broker = new FakeRetained().install();
      // An append stream under {key} alone: its key filter "+" is every topic of that depth, not the stream's.
      const prepared = await prepare(
        broker,
        [configuredStream('devices', { generationId: 2, minimumGenerationId: 2 })],
        {
          topic_pattern: '{key}',
        },
      );
      assert.equal(prepared.routes.get(DEVICES)?.truncate, true);
      assert.equal(prepared.truncation, undefined);
      assert.equal(broker.opened.length, 0);
    });

    it("reads every truncated stream's territory over one scan connection, then closes it", async () => {
      const broker = new FakeRetained()
        .install()
        .put({ ...oldKeys(2), 'fleet/devices': 'plain', 'fleet/other/1': 'x' });
      const prepared = await prepare(broker, [overwrite(), overwrite('sensors'), configuredStream('logs')], {
        topic_test: 'ops/probe',
      });
      assert.deepEqual(broker.opened, [{ broker: prepared.settings.broker, testTopic: 'ops/probe' }]);
      assert.deepEqual(broker.calls, [
        'scan fleet/devices/+',
        'scan fleet/devices',
        'scan fleet/sensors/+',
        'scan fleet/sensors',
        'close',
      ]);
      assert.deepEqual(prepared.logs, [
        {
          level: 'INFO',
          message:
            `Stream "devices": 3 retained message(s) under ${WHERE}, 3 of them from earlier syncs or attempts: ` +
            'cleared when the stream completes unless this sync writes them.',
        },
        {
          level: 'WARN',
          message:
            'Stream "sensors": found no retained keys under "fleet/sensors/+" and "fleet/sensors". ' +
            "That is right for a stream's first sync; otherwise the broker withholds them from this client " +
            '(Mosquitto grants any subscription and silently delivers nothing the ACL does not let it read): ' +
            'give the connector read permission on that filter, or stale keys will never be cleared.',
        },
      ]);
    });

    it('fails as the scan connection fails to open when a truncated stream retains its messages', async () => {
      const broker = new FakeRetained().install();
      const failure = new TransientError('no broker');
      broker.openError = failure;
      await assert.rejects(
        prepare(broker, [
          configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
          overwrite('sensors'),
        ]),
        (err) => err === failure,
      );
    });

    it('only warns when the scan connection fails to open and no truncated stream retains its messages', async () => {
      const broker = new FakeRetained().install();
      broker.openError = new TransientError('no broker');
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
        configuredStream('sensors', { namespace: 'fleet', generationId: 2, minimumGenerationId: 2 }),
        // Retained, but not truncated: nothing of it is read.
        configuredStream('logs', { mode: 'append_dedup' }),
      ]);
      assert.equal(prepared.truncation, undefined);
      assert.deepEqual(prepared.logs, [
        {
          level: 'WARN',
          message:
            'Retained messages that earlier syncs left for stream(s) "devices", "fleet.sensors" cannot be read, ' +
            'so they are not cleared by this truncation ' +
            "(the streams' own messages are not retained, so nothing of this sync is at stake): " +
            'the connection that reads them failed: no broker',
        },
      ]);
    });

    it('fails as the broker refuses to let a retained stream be read, and closes the scan connection', async () => {
      const broker = new FakeRetained().install();
      const refusal = new ConfigError('refused');
      broker.refused.set('fleet/devices', refusal);
      await assert.rejects(prepare(broker), (err) => err === refusal);
      assert.deepEqual(broker.calls, ['scan fleet/devices/+', 'scan fleet/devices', 'close']);
    });

    it('only warns when the broker refuses to let a stream be read whose own messages are not retained', async () => {
      const broker = new FakeRetained().install().put({ ...oldKeys(1), 'fleet/sensors/1': '{}' });
      broker.refused.set('fleet/devices', new ConfigError('refused'));
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
        overwrite('sensors'),
      ]);
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [
        'Retained messages that earlier syncs left for stream(s) "devices" cannot be read, ' +
          'so they are not cleared by this truncation ' +
          "(the streams' own messages are not retained, so nothing of this sync is at stake): refused",
      ]);
      // The stream is left out: nothing tracked, kept, cleared or said for it; the other stream goes on.
      const truncation = truncationOf(prepared);
      assert.equal(truncation.tracks(DEVICES), false);
      const cleared = await cleanup(prepared);
      assert.deepEqual(
        cleared.map(({ route, topics }) => [route.name, topics]),
        [['sensors', ['fleet/sensors/1']]],
      );
      assert.equal(
        prepared.logs.filter((line) => line.message.includes('Stream "devices"')).length,
        0,
        'nothing said of the stream left out',
      );
    });

    it('says when a stream whose messages are not retained finds nothing retained in its territory', async () => {
      const broker = new FakeRetained().install();
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
      ]);
      assert.deepEqual(prepared.logs, [
        {
          level: 'INFO',
          message:
            'Stream "devices" is truncated; its messages are not retained ' +
            `(append without "Retain messages" (message_retained)), and nothing is retained under ${WHERE}.`,
        },
      ]);
    });

    it('says what an earlier sync retained for a stream whose messages are not retained, to be cleared', async () => {
      const broker = new FakeRetained().install().put(oldKeys(2));
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
      ]);
      assert.deepEqual(prepared.logs, [
        {
          level: 'INFO',
          message:
            `Stream "devices": 2 retained message(s) under ${WHERE}, 2 of them from earlier syncs or attempts: ` +
            'cleared when the stream completes ' +
            '(its own messages are not retained: append without "Retain messages" (message_retained)).',
        },
      ]);
    });
  });

  describe('which retained messages are stale', () => {
    it('takes every retained message of an overwrite without generations, whatever generation it says', async () => {
      const broker = new FakeRetained().install().put({
        'fleet/devices/1': { payload: '{}', generation: 0 },
        'fleet/devices/2': { payload: '{}', generation: 5 },
        'fleet/devices/3': '{}',
      });
      const prepared = await prepare(broker, [overwrite()], { protocol_version: '5' });
      assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/1', 'fleet/devices/2', 'fleet/devices/3']);
      assert.equal(broker.count(`publish ${MARKER}`), 0, 'no generation marker');
    });

    for (const [label, config] of [
      ['MQTT 5', { protocol_version: '5' }],
      ['airbyte_v2 on MQTT 3.1.1', { message_format: 'airbyte_v2' }],
    ] as const) {
      it(`${label}: a truncating refresh takes generations below the minimum: minimum - 1, not minimum`, async () => {
        const broker = new FakeRetained().install().put({
          'fleet/devices/1': { payload: '{}', generation: 2 },
          'fleet/devices/2': { payload: '{}', generation: 3 },
          'fleet/devices/3': { payload: '{}', generation: 4 },
          'fleet/devices/4': '{}',
        });
        const prepared = await prepare(broker, [refresh({ resumable: true })], config);
        assert.deepEqual(messagesAt(prepared.logs, 'INFO'), [
          `Stream "devices": 4 retained message(s) under ${WHERE}, 2 of them of a generation below 3: ` +
            'cleared when the stream completes unless this sync writes them.',
        ]);
        assert.equal(broker.count(`publish ${MARKER}`), 0, 'the messages say their generation: no marker');
        assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/1', 'fleet/devices/4']);
        assert.deepEqual(messagesAt(prepared.logs, 'WARN'), []);
      });
    }

    it('MQTT 3.1.1: a full refresh that cannot resume takes them all, with no marker', async () => {
      // A key an earlier airbyte_v2 sync wrote says generation 3; this attempt's generation is new all the same.
      const broker = new FakeRetained().install().put({
        'fleet/devices/1': { payload: '{}', generation: 3 },
        'fleet/devices/2': '{}',
      });
      // A marker of this generation, which only a resumable or incremental stream would heed.
      broker.put({ [MARKER]: JSON.stringify({ generation_id: 3, sync_id: 77 }) });
      const prepared = await prepare(broker, [refresh({ syncMode: 'full_refresh', resumable: false })]);
      assert.equal(broker.count(`publish ${MARKER}`), 0);
      assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/1', 'fleet/devices/2']);
    });

    for (const [label, stream] of [
      ['an incremental stream', refresh({ syncMode: 'incremental' })],
      ['a resumable full refresh', refresh({ syncMode: 'full_refresh', resumable: true })],
    ] as const) {
      it(`MQTT 3.1.1: the first attempt of ${label} leaves a marker and takes them all`, async () => {
        const broker = new FakeRetained().install().put(oldKeys(2));
        broker.put({ [MARKER]: JSON.stringify({ generation_id: 2, sync_id: 70 }) });
        const prepared = await prepare(broker, [stream]);
        assert.equal(broker.count(`publish ${MARKER}`), 1);
        assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/1', 'fleet/devices/2']);
      });

      it(`MQTT 3.1.1: a later attempt of ${label} keeps them all, and says why`, async () => {
        const broker = new FakeRetained().install().put(oldKeys(3));
        broker.put({ [MARKER]: JSON.stringify({ generation_id: 3, sync_id: 77 }) });
        const prepared = await prepare(broker, [stream]);
        truncationOf(prepared).written(DEVICES, 'fleet/devices/3');
        assert.deepEqual(await cleanup(prepared), []);
        assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [
          'Stream "devices": kept 2 retained key(s) of earlier generations or attempts: ' +
            'an earlier attempt of sync 77 already published keys of generation 3, ' +
            'and MQTT 3.1.1 messages cannot carry their generation, so those keys cannot be told from stale ones; ' +
            'use MQTT 5 (or the airbyte_v2 message format, which carries it) ' +
            'for refreshes to clear stale keys whatever the attempt.',
        ]);
        assert.equal(broker.count('close'), 1, 'no scan connection opened to clear');
      });
    }
  });

  describe('written and tracks', () => {
    it('tracks the streams whose messages are retained, and no other', async () => {
      const broker = new FakeRetained().install().put(oldKeys(1));
      const prepared = await prepare(broker, [
        overwrite(),
        configuredStream('sensors', { generationId: 2, minimumGenerationId: 2 }),
        configuredStream('logs', { mode: 'append_dedup' }),
      ]);
      const truncation = truncationOf(prepared);
      assert.equal(truncation.tracks(DEVICES), true);
      assert.equal(truncation.tracks(SENSORS), false);
      assert.equal(truncation.tracks(streamKey(undefined, 'logs')), false);
    });

    it("saves the topics a retained stream writes, old and new, and clears the rest of the stream's own", async () => {
      const broker = new FakeRetained().install().put({ ...oldKeys(3), 'fleet/sensors/1': '{}' });
      const prepared = await prepare(broker, [overwrite(), overwrite('sensors')]);
      const truncation = truncationOf(prepared);
      truncation.written(DEVICES, 'fleet/devices/2');
      truncation.written(DEVICES, 'fleet/devices/9');
      truncation.written(streamKey(undefined, 'unknown'), 'fleet/devices/3');
      // The sync's own writes are on the broker when it cleans up.
      broker.put({ 'fleet/devices/2': '{"v":"new"}', 'fleet/devices/9': '{"v":"new"}' });
      const cleared = await cleanup(prepared);
      assert.deepEqual(
        cleared.map(({ route, topics }) => [route, topics]),
        [
          [prepared.routes.get(DEVICES), ['fleet/devices/1', 'fleet/devices/3']],
          [prepared.routes.get(SENSORS), ['fleet/sensors/1']],
        ],
      );
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [], 'a new key this sync wrote is not one found unseen');
    });

    it('saves nothing for a stream whose messages are not retained: its writes keep no retained message', async () => {
      const broker = new FakeRetained().install().put(oldKeys(2));
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
      ]);
      truncationOf(prepared).written(DEVICES, 'fleet/devices/1');
      assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/1', 'fleet/devices/2']);
    });
  });

  describe('cleanup', () => {
    it('keeps the stale keys of a stream not reported complete, and says how to clear them', async () => {
      const broker = new FakeRetained().install().put({ ...oldKeys(2), 'fleet/sensors/1': '{}' });
      const prepared = await prepare(broker, [overwrite(), overwrite('sensors')]);
      const cleared = await cleanup(prepared, { completed: [SENSORS] });
      assert.deepEqual(topicsOf(cleared), ['fleet/sensors/1']);
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [
        'Stream "devices": kept 2 stale retained key(s), because the platform did not report the stream complete ' +
          '(its source failed, or the platform never reports completion: ' +
          'then set "Overwrite cleanup" (overwrite_cleanup) to end_of_input).',
      ]);
    });

    it('with overwrite_cleanup end_of_input clears without the completion report', async () => {
      const broker = new FakeRetained().install().put(oldKeys(2));
      const prepared = await prepare(broker, [overwrite()], { overwrite_cleanup: 'end_of_input' });
      assert.deepEqual(topicsOf(await cleanup(prepared, { completed: [] })), ['fleet/devices/1', 'fleet/devices/2']);
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), []);
    });

    it('keeps the stale keys of a stream with rejected records, whose keys may be among them', async () => {
      const broker = new FakeRetained().install().put({ ...oldKeys(2), 'fleet/sensors/1': '{}' });
      const prepared = await prepare(broker, [overwrite(), overwrite('sensors')], {
        overwrite_cleanup: 'end_of_input',
      });
      const cleared = await cleanup(prepared, { completed: [], rejected: { [DEVICES]: 3 } });
      assert.deepEqual(topicsOf(cleared), ['fleet/sensors/1']);
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [
        'Stream "devices": kept 2 stale retained key(s), ' +
          'because 3 record(s) of the stream were rejected and their keys may be among them.',
      ]);
    });

    it('opens no scan connection when nothing is stale, and says so', async () => {
      const broker = new FakeRetained().install().put(oldKeys(1));
      const prepared = await prepare(broker);
      truncationOf(prepared).written(DEVICES, 'fleet/devices/1');
      assert.deepEqual(await cleanup(prepared), []);
      assert.equal(broker.opened.length, 1);
      assert.deepEqual(messagesAt(prepared.logs, 'INFO').slice(1), [
        'Stream "devices": no stale retained keys to clear.',
      ]);
    });

    it('says nothing is stale for a retained stream that found nothing', async () => {
      const broker = new FakeRetained().install();
      const prepared = await prepare(broker);
      assert.deepEqual(await cleanup(prepared), []);
      assert.deepEqual(messagesAt(prepared.logs, 'INFO'), ['Stream "devices": no stale retained keys to clear.']);
    });

    it('reads the territory again over one scan connection for every stream it clears, and closes it', async () => {
      const broker = new FakeRetained().install().put({ ...oldKeys(1), 'fleet/sensors/1': '{}' });
      const prepared = await prepare(broker, [overwrite(), overwrite('sensors')], { topic_test: 'ops/probe' });
      broker.calls.length = 0;
      await cleanup(prepared);
      assert.equal(broker.opened.length, 2);
      assert.deepEqual(broker.opened[1], { broker: prepared.settings.broker, testTopic: 'ops/probe' });
      assert.deepEqual(broker.calls, [
        'scan fleet/devices/+',
        'scan fleet/devices',
        'scan fleet/sensors/+',
        'scan fleet/sensors',
        'close',
      ]);
      assert.deepEqual(messagesAt(prepared.logs, 'INFO').slice(2), [
        `Stream "devices": clearing 1 stale retained key(s) under ${WHERE}.`,
        'Stream "sensors": clearing 1 stale retained key(s) under "fleet/sensors/+" and "fleet/sensors".',
      ]);
    });

    it('clears only stale keys still there, and keeps and counts those another client wrote meanwhile', async () => {
      const broker = new FakeRetained().install().put(oldKeys(3));
      const prepared = await prepare(broker);
      // Meanwhile: key 1 is cleared by someone else, keys x and y appear.
      broker.held.delete('fleet/devices/1');
      broker.put({ 'fleet/devices/x': '{}', 'fleet/devices': 'plain' });
      assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/2', 'fleet/devices/3']);
      assert.deepEqual(messagesAt(prepared.logs, 'INFO').slice(1), [
        `Stream "devices": clearing 2 stale retained key(s) under ${WHERE}.`,
      ]);
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [
        `Stream "devices": kept 2 retained key(s) under ${WHERE} ` +
          'that were not there when the sync started: another client wrote them meanwhile, ' +
          'or the broker delivered them only after the end marker when the keys were first read ' +
          '(aedes does; Mosquitto does not).',
      ]);
    });

    it('on the second read passes over the current generation, and counts new keys of an older one', async () => {
      const broker = new FakeRetained().install().put({
        'fleet/devices/1': { payload: '{}', generation: 2 },
        'fleet/devices/2': { payload: '{}', generation: 3 },
      });
      const prepared = await prepare(broker, [refresh()], { protocol_version: '5' });
      broker.put({ 'fleet/devices/3': { payload: '{}', generation: 3 } });
      assert.deepEqual(topicsOf(await cleanup(prepared)), ['fleet/devices/1']);
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [], 'generation 3 is not stale, found then or later');
      broker.put({ 'fleet/devices/4': { payload: '{}', generation: 2 } });
      await cleanup(prepared);
      assert.match(messagesAt(prepared.logs, 'WARN').join('\n'), /kept 1 retained key\(s\) under .* not there when/);
    });

    it('only warns when the second read fails for a stream whose own messages are not retained', async () => {
      const broker = new FakeRetained().install().put({ ...oldKeys(1), 'fleet/sensors/1': '{}' });
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
        overwrite('sensors'),
      ]);
      broker.refused.set('fleet/devices/+', new ConfigError('refused now'));
      const cleared = await cleanup(prepared);
      assert.deepEqual(
        cleared.map(({ route, topics }) => [route.name, topics]),
        [['sensors', ['fleet/sensors/1']]],
        'the other stream is still cleared',
      );
      assert.deepEqual(messagesAt(prepared.logs, 'WARN'), [
        'Retained messages that earlier syncs left for stream(s) "devices" cannot be read, ' +
          'so they are not cleared by this truncation ' +
          "(the streams' own messages are not retained, so nothing of this sync is at stake): refused now",
      ]);
    });

    it('only warns when the scan connection cannot be opened again for a stream whose messages are not retained', async () => {
      const broker = new FakeRetained().install().put(oldKeys(1));
      const prepared = await prepare(broker, [
        configuredStream('devices', { generationId: 2, minimumGenerationId: 2 }),
      ]);
      broker.openError = new TransientError('no broker');
      assert.deepEqual(await cleanup(prepared), []);
      assert.match(messagesAt(prepared.logs, 'WARN').join('\n'), /"devices" cannot be read.*: .*no broker/);
    });

    it('fails when the second read fails for a retained stream', async () => {
      const broker = new FakeRetained().install().put(oldKeys(1));
      const prepared = await prepare(broker);
      const refusal = new ConfigError('refused now');
      broker.refused.set('fleet/devices/+', refusal);
      await assert.rejects(cleanup(prepared), (err) => err === refusal);
      assert.equal(broker.count('close'), 2, 'both scan connections closed');
    });

    it('closes the scan connection when clearing fails, and fails with it', async () => {
      const broker = new FakeRetained().install().put(oldKeys(1));
      const prepared = await prepare(broker);
      const failure = new TransientError('lost');
      await assert.rejects(
        truncationOf(prepared).cleanup(
          new Set([DEVICES]),
          () => 0,
          () => Promise.reject(failure),
        ),
        (err) => err === failure,
      );
      assert.equal(broker.count('close'), 2);
    });
  });
});
