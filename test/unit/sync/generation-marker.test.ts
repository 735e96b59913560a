/**
 * The generation marker on its own: where it lives (`markerTopic`), and what `claimGeneration` concludes from the
 * marker an earlier attempt left, over a fake scan of retained messages (test/support/fake-retained.ts) that plays
 * the broker, its permissions included.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfiguredStream, streamKey } from '../../../src/airbyte/catalog.js';
import { type MessageSettings, toSettings } from '../../../src/config/settings.js';
import { claimGeneration, markerTopic } from '../../../src/sync/generation-marker.js';
import { type StreamRoute, routeStreams } from '../../../src/sync/routes.js';
import { FakeRetained } from '../../support/fake-retained.js';
import { configuredStream } from '../../support/messages.js';

const MARKER = 'airbyte/destination-mqtt/generation/airbyte%2Fdevices%2F%2B';

function messagesOf(config: Record<string, unknown> = {}): MessageSettings {
  return toSettings({ broker_host: 'localhost', topic_pattern: 'airbyte/{stream}', ...config }).messages;
}

/** The route of an incremental deduped stream `fleet.devices` that a refresh truncates at generation 3, job 77. */
function routeOf(overrides: Partial<ConfiguredStream> = {}, messages = messagesOf()): StreamRoute {
  const stream = configuredStream('devices', {
    namespace: 'fleet',
    mode: 'append_dedup',
    syncMode: 'incremental',
    generationId: 3,
    minimumGenerationId: 3,
    syncId: 77,
    ...overrides,
  });
  const route = routeStreams([stream], messages.topicPattern, { escaping: messages.topicEscaping }).get(
    streamKey(stream.namespace, stream.name),
  );
  assert.ok(route);
  return route;
}

function marker(generation: unknown, syncId: unknown = 70): string {
  return JSON.stringify({
    stream: 'devices',
    namespace: 'fleet',
    filter: 'airbyte/devices/+',
    generation_id: generation,
    sync_id: syncId,
  });
}

describe('markerTopic', () => {
  it("holds the stream's key filter, percent-encoded, one level under the connector's default base", () => {
    const route = routeOf();
    assert.deepEqual(route.territory, ['airbyte/devices/+', 'airbyte/devices']);
    assert.equal(markerTopic(messagesOf(), route), MARKER);
  });

  it('goes under the test topic when one is set', () => {
    assert.equal(
      markerTopic(messagesOf({ topic_test: 'ops/probe' }), routeOf()),
      'ops/probe/generation/airbyte%2Fdevices%2F%2B',
    );
  });

  it('escapes the level as topic_value_escaping says', () => {
    const route = { territory: ['crm.v1/users/+'], topicName: 'crm.v1/users/+' };
    assert.equal(markerTopic(messagesOf(), route), 'airbyte/destination-mqtt/generation/crm.v1%2Fusers%2F%2B');
    assert.equal(
      markerTopic(messagesOf({ topic_value_escaping: 'strict' }), route),
      'airbyte/destination-mqtt/generation/crm%2Ev1%2Fusers%2F%2B',
    );
  });

  it('uses the topic name when the route has no territory, and _ for a filter that cannot be a level', () => {
    const messages = messagesOf();
    assert.equal(
      markerTopic(messages, { territory: [], topicName: 'airbyte/devices' }),
      'airbyte/destination-mqtt/generation/airbyte%2Fdevices',
    );
    assert.equal(
      markerTopic(messages, { territory: ['bad\uD800/+'], topicName: 'bad/+' }),
      'airbyte/destination-mqtt/generation/_',
    );
  });
});

describe('claimGeneration', () => {
  it('on a first attempt finds no marker, leaves its own and reads it back: nothing written yet', async () => {
    const broker = new FakeRetained();
    const result = await claimGeneration(broker.scan(), messagesOf(), routeOf());
    assert.deepEqual(result, { wrote: false });
    assert.deepEqual(broker.calls, [`scan ${MARKER}`, `publish ${MARKER}`, `scan ${MARKER}`]);
    assert.deepEqual(JSON.parse(broker.held.get(MARKER)?.payload ?? ''), {
      stream: 'devices',
      namespace: 'fleet',
      filter: 'airbyte/devices/+',
      generation_id: 3,
      sync_id: 77,
    });
  });

  it("names the stream's key filter, and null for a namespace or a sync id the catalog does not have", async () => {
    const broker = new FakeRetained();
    // A Clear of an incremental append stream: its topic is the plain one, its key filter comes first in its territory.
    const route = routeOf({ mode: 'append', namespace: undefined, syncId: undefined });
    assert.equal(route.topicName, 'airbyte/devices');
    await claimGeneration(broker.scan(), messagesOf(), route);
    assert.deepEqual(JSON.parse(broker.held.get(MARKER)?.payload ?? ''), {
      stream: 'devices',
      namespace: null,
      filter: 'airbyte/devices/+',
      generation_id: 3,
      sync_id: null,
    });
  });

  it('names the topic name for a route without territory', async () => {
    const broker = new FakeRetained();
    await claimGeneration(broker.scan(), messagesOf(), { ...routeOf({ mode: 'append' }), territory: [] });
    const topic = 'airbyte/destination-mqtt/generation/airbyte%2Fdevices';
    assert.equal((JSON.parse(broker.held.get(topic)?.payload ?? '') as { filter: string }).filter, 'airbyte/devices');
  });

  it('takes a marker of an older generation to mean no attempt of this one wrote keys, and replaces it', async () => {
    const broker = new FakeRetained().put({ [MARKER]: marker(2) });
    assert.deepEqual(await claimGeneration(broker.scan(), messagesOf(), routeOf()), { wrote: false });
    assert.equal((JSON.parse(broker.held.get(MARKER)?.payload ?? '') as { generation_id: number }).generation_id, 3);
  });

  it('takes a marker of this generation to mean an earlier attempt wrote keys, naming its sync', async () => {
    const broker = new FakeRetained().put({ [MARKER]: marker(3, 77) });
    assert.deepEqual(await claimGeneration(broker.scan(), messagesOf(), routeOf()), {
      wrote: true,
      why: 'an earlier attempt of sync 77 already published keys of generation 3',
    });
  });

  it('takes a marker of a later generation the same way, and names no sync when the marker has none', async () => {
    const broker = new FakeRetained().put({ [MARKER]: marker(4, null) });
    assert.deepEqual(await claimGeneration(broker.scan(), messagesOf(), routeOf()), {
      wrote: true,
      why: 'an earlier attempt already published keys of generation 4',
    });
    broker.put({ [MARKER]: marker(3, '77') });
    assert.deepEqual(await claimGeneration(broker.scan(), messagesOf(), routeOf()), {
      wrote: true,
      why: 'an earlier attempt already published keys of generation 3',
    });
  });

  it('takes a payload that is no marker for none: not JSON, or a generation that is not a safe integer', async () => {
    for (const payload of ['not json', '{}', 'null', marker('3'), marker(2.5), marker(2 ** 53), marker(null)]) {
      const broker = new FakeRetained().put({ [MARKER]: payload });
      assert.deepEqual(await claimGeneration(broker.scan(), messagesOf(), routeOf()), { wrote: false }, payload);
    }
  });

  it('reads only the marker topic from what the scan delivers', async () => {
    const broker = new FakeRetained();
    broker.strays.push({ topic: `${MARKER}/other`, generation: undefined, payload: Buffer.from(marker(3)) });
    assert.deepEqual(await claimGeneration(broker.scan(), messagesOf(), routeOf()), { wrote: false });
  });

  it('cannot tell a first attempt from a later one when the marker it leaves cannot be read back', async () => {
    const why =
      `the connector cannot read back the marker it keeps at "${MARKER}" ` +
      'to tell a first attempt of generation 3 from a later one (give it read and write permission there)';
    const withheld = new FakeRetained();
    withheld.withheld.add(MARKER);
    assert.deepEqual(await claimGeneration(withheld.scan(), messagesOf(), routeOf()), { wrote: true, why });
    // The broker acknowledges the marker and drops it: what is read back is an older generation's.
    const dropped = new FakeRetained().put({ [MARKER]: marker(2) });
    dropped.dropped.add(MARKER);
    assert.deepEqual(await claimGeneration(dropped.scan(), messagesOf(), routeOf()), { wrote: true, why });
  });

  it('fails as the scan fails', async () => {
    const broker = new FakeRetained();
    const refusal = new Error('refused');
    broker.refused.set(MARKER, refusal);
    await assert.rejects(claimGeneration(broker.scan(), messagesOf(), routeOf()), (err) => err === refusal);
    assert.equal(broker.count(`publish ${MARKER}`), 0, 'nothing published before the marker was read');
  });
});
