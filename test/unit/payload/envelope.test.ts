import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildEnvelope } from '../../../src/payload/envelope.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('buildEnvelope', () => {
  it('has the four envelope fields and is valid JSON', () => {
    const json = buildEnvelope({ streamJson: '"users"', emittedAtJson: '1700000000000', dataJson: '{"id":1}' });
    const envelope = JSON.parse(json) as Record<string, unknown>;
    assert.deepEqual(Object.keys(envelope), ['_airbyte_ab_id', '_airbyte_stream', '_airbyte_emitted_at', '_airbyte_data']);
    assert.match(String(envelope._airbyte_ab_id), UUID_V4);
    assert.equal(envelope._airbyte_stream, 'users');
    assert.equal(envelope._airbyte_emitted_at, 1700000000000);
    assert.deepEqual(envelope._airbyte_data, { id: 1 });
  });

  it('passes the data through byte for byte, so big integers and long decimals stay exact', () => {
    const dataJson = '{"big":9007199254740993,"dec":0.10000000000000000000000001,"neg":-1.5e-400,"s":"a\\"}"}';
    const json = buildEnvelope({ streamJson: '"s"', emittedAtJson: '1', dataJson }, 'fixed-id');
    assert.equal(json, `{"_airbyte_ab_id":"fixed-id","_airbyte_stream":"s","_airbyte_emitted_at":1,"_airbyte_data":${dataJson}}`);
  });

  it('gives every envelope its own id', () => {
    const parts = { streamJson: '"s"', emittedAtJson: '1', dataJson: '{}' };
    const ids = new Set(Array.from({ length: 1000 }, () => (JSON.parse(buildEnvelope(parts)) as { _airbyte_ab_id: string })._airbyte_ab_id));
    assert.equal(ids.size, 1000);
  });
});
