import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type StreamRoute, routeStreams } from '../../../src/sync/routes.js';
import { KeySpread as BaseSpread } from '../../../src/sync/key-spread.js';
import { isScalar, keyValues } from '../../../src/payload/key-values.js';

function route(topic: string, primaryKey: string[][] = []): StreamRoute {
  const stream = {
    name: topic,
    namespace: undefined,
    primaryKey,
    cursorField: [],
    mode: 'append' as const,
    syncMode: 'full_refresh' as const,
    resumable: false,
    generationId: 0,
    minimumGenerationId: 0,
    syncId: undefined,
  };
  return routeStreams([stream], '{stream}').get(`\u0000${topic}`) as StreamRoute;
}

/** Routes by the record's data, as the sync does: its key values read once, an unusable key as none. */
class Spread extends BaseSpread {
  override indexFor(route: StreamRoute, data: string | readonly string[] | undefined): number {
    if (typeof data !== 'string') return super.indexFor(route, data);
    const key = keyValues(data, route.primaryKey);
    return super.indexFor(route, key.length > 0 && key.every(isScalar) ? key.map((value) => value.json) : undefined);
  }
}

describe('KeySpread', () => {
  it('sends everything over the one connection there is', () => {
    const spread = new Spread(1);
    assert.equal(spread.indexFor(route('a', [['id']]), '{"id":7}'), 0);
  });

  it('keeps every record of one key on one connection, whatever else the record holds', () => {
    const spread = new Spread(8);
    const users = route('crm/users', [['id'], ['region', 'code']]);
    const first = spread.indexFor(users, '{"id":42,"region":{"code":"eu"},"name":"a"}');
    for (const data of [
      '{"name":"b","region":{"code":"eu"},"id":42}',
      '{ "id" : 42 , "region" : { "code" : "eu" }, "extra": [1,2,3] }',
    ]) {
      assert.equal(spread.indexFor(users, data), first, data);
    }
  });

  it("keeps every record of a stream without a key on its topic's connection", () => {
    const spread = new Spread(16);
    const events = route('events');
    const chosen = new Set(Array.from({ length: 100 }, (_, i) => spread.indexFor(events, `{"n":${i}}`)));
    assert.equal(chosen.size, 1);
  });

  it('spreads keys evenly over the connections', () => {
    for (const connections of [2, 4, 8, 16]) {
      const spread = new Spread(connections);
      const counts = new Array<number>(connections).fill(0);
      const keys = 20_000;
      for (let id = 0; id < keys; id++) {
        const index = spread.indexFor(route('t', [['id']]), `{"id":${id}}`);
        assert.ok(index >= 0 && index < connections);
        counts[index] = (counts[index] ?? 0) + 1;
      }
      const mean = keys / connections;
      for (const count of counts)
        assert.ok(Math.abs(count - mean) < mean * 0.15, `${connections} connections: ${counts.join(', ')}`);
    }
  });

  it('spreads streams without a key over the connections by topic', () => {
    const spread = new Spread(4);
    const used = new Set(Array.from({ length: 40 }, (_, i) => spread.indexFor(route(`stream-${i}`), '{}')));
    assert.equal(used.size, 4);
  });

  it('reads each key field exactly as the source wrote it, so that only equal keys share a connection', () => {
    const keyed = route('t', [['id'], ['a', 'b']]);
    assert.deepEqual(
      keyValues('{"id":12345678901234567890,"a":{"b":"x\\"y"}}', keyed.primaryKey).map((value) => value.json),
      ['12345678901234567890', '"x\\"y"'],
    );
    assert.equal(keyValues('{"a":{}}', keyed.primaryKey)[0]?.kind, 'missing');
    const spread = new Spread(1 << 16);
    assert.notEqual(spread.indexFor(keyed, ['1', '23']), spread.indexFor(keyed, ['12', '3']));
  });
});
