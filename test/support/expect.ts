/** Assertions shared by the end-to-end tests: what arrived on the broker against what was sent. */
import assert from 'node:assert/strict';
import type { Delivery } from './subscriber.js';

export interface Envelope {
  _airbyte_ab_id: string;
  _airbyte_stream: string;
  _airbyte_emitted_at: number;
  _airbyte_data: unknown;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Parses an envelope and checks its shape; `_airbyte_data` is returned as the raw JSON text it was published as. */
export function envelopeOf(payload: string): Envelope & { dataJson: string } {
  const envelope = JSON.parse(payload) as Envelope;
  assert.deepEqual(Object.keys(envelope), [
    '_airbyte_ab_id',
    '_airbyte_stream',
    '_airbyte_emitted_at',
    '_airbyte_data',
  ]);
  assert.match(envelope._airbyte_ab_id, UUID_V4);
  const marker = '"_airbyte_data":';
  const dataJson = payload.slice(payload.indexOf(marker) + marker.length, -1);
  return { ...envelope, dataJson };
}

/** Every expected (topic, stream, data text) arrived exactly once per topic, in order per topic, with unique ids. */
export function assertDelivered(
  deliveries: readonly Delivery[],
  expected: readonly { topic: string; stream: string; dataJson: string; emittedAt?: number }[],
): void {
  assert.equal(deliveries.length, expected.length, `expected ${expected.length} messages, got ${deliveries.length}`);
  const ids = new Set<string>();
  const byTopic = (list: readonly { topic: string }[], topic: string): number[] =>
    list.flatMap((item, index) => (item.topic === topic ? [index] : []));
  for (const topic of new Set(expected.map((e) => e.topic))) {
    const got = byTopic(deliveries, topic).map((i) => deliveries[i] as Delivery);
    const want = byTopic(expected, topic).map((i) => expected[i] as (typeof expected)[number]);
    assert.equal(got.length, want.length, `topic ${topic}: expected ${want.length} messages, got ${got.length}`);
    got.forEach((delivery, i) => {
      const envelope = envelopeOf(delivery.payload);
      const w = want[i] as (typeof want)[number];
      assert.equal(envelope._airbyte_stream, w.stream);
      assert.equal(envelope.dataJson, w.dataJson, `topic ${topic} message ${i}: data differs`);
      if (w.emittedAt !== undefined) assert.equal(envelope._airbyte_emitted_at, w.emittedAt);
      ids.add(envelope._airbyte_ab_id);
    });
  }
  assert.equal(ids.size, expected.length, 'every record must have its own _airbyte_ab_id');
}
