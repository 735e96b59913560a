import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCatalog, streamKey } from '../../../src/airbyte/catalog.js';
import { ConfigError, type ConnectorError, SystemError } from '../../../src/errors.js';
import { type StreamRoute, routeStreams } from '../../../src/sync/routes.js';

function route(routes: ReadonlyMap<string, StreamRoute>, namespace: string | undefined, name: string): StreamRoute {
  const found = routes.get(streamKey(namespace, name));
  assert.ok(found, `a route for ${namespace ?? ''}.${name}`);
  return found;
}

async function failsAsync<T extends ConnectorError>(
  kind: new (...args: never[]) => T,
  run: () => Promise<unknown>,
): Promise<T> {
  try {
    await run();
  } catch (err) {
    assert.ok(err instanceof kind, `expected a ${kind.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected a ${kind.name}`);
}

describe('readCatalog', () => {
  let dir = '';
  let files = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'catalog-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function catalogFile(content: unknown): string {
    const path = join(dir, `catalog-${++files}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  }

  function entry(
    name: string,
    extra: Record<string, unknown> = {},
    streamExtra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return {
      stream: { name, json_schema: {}, supported_sync_modes: ['full_refresh', 'incremental'], ...streamExtra },
      sync_mode: 'incremental',
      ...extra,
    };
  }

  it('reads name, namespace, keys, cursor, mode and generations', async () => {
    const [users] = await readCatalog(
      catalogFile({
        streams: [
          entry(
            'users',
            {
              primary_key: [['id'], ['org', 'id']],
              cursor_field: ['updated_at'],
              destination_sync_mode: 'append_dedup',
              generation_id: 4,
              minimum_generation_id: 4,
              sync_id: 99,
            },
            { namespace: 'crm' },
          ),
        ],
      }),
    );
    assert.deepEqual(users, {
      name: 'users',
      namespace: 'crm',
      primaryKey: [['id'], ['org', 'id']],
      cursorField: ['updated_at'],
      mode: 'append_dedup',
      syncMode: 'incremental',
      resumable: false,
      generationId: 4,
      minimumGenerationId: 4,
      syncId: 99,
    });
  });

  it('reads how the source reads each stream, and whether it can resume it, as the platform decides generations by them', async () => {
    const streams = await readCatalog(
      catalogFile({
        streams: [
          entry('a', { sync_mode: 'full_refresh' }),
          entry('b', { sync_mode: 'full_refresh' }, { is_resumable: true }),
          entry('c', {}, { is_resumable: false }),
          entry('d', { sync_mode: undefined }, { is_resumable: 'yes' }),
        ],
      }),
    );
    assert.deepEqual(
      streams.map((s) => [s.name, s.syncMode, s.resumable]),
      [
        ['a', 'full_refresh', false],
        ['b', 'full_refresh', true],
        ['c', 'incremental', false],
        // The protocol's default sync mode is full_refresh, and only a true is_resumable resumes.
        ['d', 'full_refresh', false],
      ],
    );
  });

  it('takes a missing or null destination_sync_mode as append', async () => {
    const streams = await readCatalog(
      catalogFile({ streams: [entry('a'), entry('b', { destination_sync_mode: null })] }),
    );
    assert.deepEqual(
      streams.map((s) => s.mode),
      ['append', 'append'],
    );
  });

  it('accepts each mode the spec declares', async () => {
    const modes = ['append', 'append_dedup', 'overwrite'];
    const streams = await readCatalog(
      catalogFile({ streams: modes.map((mode) => entry(mode, { destination_sync_mode: mode })) }),
    );
    assert.deepEqual(
      streams.map((s) => s.mode),
      modes,
    );
  });

  for (const mode of ['update', 'soft_delete', 'delete', 'APPEND', '', 7]) {
    it(`refuses the sync mode ${JSON.stringify(mode)}, naming the stream and the mode`, async () => {
      const path = catalogFile({
        streams: [entry('fine'), entry('users', { destination_sync_mode: mode }, { namespace: 'crm' })],
      });
      const err = await failsAsync(ConfigError, () => readCatalog(path));
      assert.equal(err.failureType, 'config_error');
      assert.ok(err.message.includes('Stream "crm.users"'), err.message);
      assert.ok(err.message.includes(`sync mode ${JSON.stringify(mode)}`), err.message);
      assert.match(err.message, /supports append, append_dedup, overwrite/);
    });
  }

  it('takes missing generations as 0 and a missing sync_id as undefined', async () => {
    const [users] = await readCatalog(catalogFile({ streams: [entry('users')] }));
    assert.equal(users?.generationId, 0);
    assert.equal(users?.minimumGenerationId, 0);
    assert.equal(users?.syncId, undefined);
  });

  it('accepts a merge refresh (minimum 0) and a truncating one (minimum equal to the generation)', async () => {
    const streams = await readCatalog(
      catalogFile({
        streams: [
          entry('merge', { generation_id: 3, minimum_generation_id: 0 }),
          entry('truncate', { generation_id: 3, minimum_generation_id: 3 }),
        ],
      }),
    );
    assert.deepEqual(
      streams.map((s) => [s.generationId, s.minimumGenerationId]),
      [
        [3, 0],
        [3, 3],
      ],
    );
  });

  for (const [minimum, generation] of [
    [1, 2],
    [1, 5],
    [4, 5],
    [3, 2],
  ] as const) {
    it(`refuses minimum_generation_id ${minimum} with generation_id ${generation}, naming the stream`, async () => {
      const path = catalogFile({
        streams: [entry('users', { generation_id: generation, minimum_generation_id: minimum }, { namespace: 'crm' })],
      });
      const err = await failsAsync(ConfigError, () => readCatalog(path));
      assert.ok(err.message.includes('Stream "crm.users"'), err.message);
      assert.ok(err.message.includes(`minimum_generation_id ${minimum} and generation_id ${generation}`), err.message);
    });
  }

  it('falls back to the source-defined primary key, and reads an empty namespace as none', async () => {
    const [users] = await readCatalog(
      catalogFile({ streams: [entry('users', {}, { namespace: '', source_defined_primary_key: [['id']] })] }),
    );
    assert.deepEqual(users?.primaryKey, [['id']]);
    assert.equal(users?.namespace, undefined);
  });

  it('refuses a primary key that is not a list of paths, naming the stream', async () => {
    const err = await failsAsync(SystemError, () =>
      readCatalog(catalogFile({ streams: [entry('users', { primary_key: ['id'] })] })),
    );
    assert.match(err.message, /stream "users" a primary key that is not a list of field paths/);
  });

  it('refuses an unreadable file, invalid JSON, a catalog without streams and a stream without a name', async () => {
    const missing = await failsAsync(ConfigError, () => readCatalog(join(dir, 'absent.json')));
    assert.match(missing.message, /Cannot read the catalog file .*absent\.json: ENOENT/);
    const invalid = await failsAsync(SystemError, () => readCatalog(catalogFile('{"streams": [')));
    assert.match(invalid.message, /not valid JSON/);
    const noStreams = await failsAsync(SystemError, () => readCatalog(catalogFile({})));
    assert.match(noStreams.message, /no "streams" list/);
    const noName = await failsAsync(SystemError, () =>
      readCatalog(catalogFile({ streams: [entry('ok'), { stream: { namespace: 'x' } }] })),
    );
    assert.match(noName.message, /streams\[1\]\.stream\.name/);
  });

  it('gives streams that route as the catalog says', async () => {
    const streams = await readCatalog(
      catalogFile({
        streams: [
          entry('users', { primary_key: [['id']], destination_sync_mode: 'overwrite' }, { namespace: 'crm' }),
          entry('events', { generation_id: 2, minimum_generation_id: 2 }),
        ],
      }),
    );
    const routes = routeStreams(streams, 'airbyte/{namespace}/{stream}');
    const users = route(routes, 'crm', 'users');
    assert.deepEqual(
      [users.keyed, users.retained, users.truncate, users.topicName],
      [true, true, true, 'airbyte/crm/users/+'],
    );
    const events = route(routes, undefined, 'events');
    assert.deepEqual(
      [events.keyed, events.retained, events.truncate, events.topicName],
      [false, false, true, 'airbyte/events'],
    );
  });
});
