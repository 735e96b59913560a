import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { specProblems } from '../../scripts/acceptance/spec-rules.js';
import { PROJECT_ROOT } from '../support/connector.js';

const spec = JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')) as {
  connectionSpecification: Record<string, unknown>;
};

describe('connection specification rules', () => {
  it('spec.json follows them, and integration_tests/spec.json is the same spec', () => {
    assert.deepEqual(specProblems(spec.connectionSpecification), []);
    assert.deepEqual(JSON.parse(readFileSync(join(PROJECT_ROOT, 'integration_tests/spec.json'), 'utf8')), spec);
  });

  it('catches each kind of violation', () => {
    const bad = {
      type: 'object',
      additionalProperties: false,
      groups: [{ id: 'g' }],
      properties: {
        api_token: { type: 'string' },
        mode: { type: ['string', 'integer'], enum: ['a', 'a'], order: 1, group: 'g' },
        other: { type: 'string', order: 1, group: 'g' },
        stray: { type: 'string', group: 'missing' },
        nested: { type: 'object', properties: { inner: { type: 'string', group: 'g' } }, anyOf: [] },
        choice: { oneOf: [{ properties: { kind: { const: 'a' } } }, { properties: { other: { type: 'string' } } }] },
      },
    };
    const problems = specProblems(bad).join('\n');
    assert.match(problems, /\$ sets additionalProperties to false/);
    assert.match(problems, /\$\.api_token looks secret but lacks airbyte_secret/);
    assert.match(problems, /\$\.mode has type \["string","integer"\]/);
    assert.match(problems, /\$\.mode has duplicate enum values/);
    assert.match(problems, /\$\.other repeats order 1 in group "g"/);
    assert.match(problems, /\$\.stray names group "missing"/);
    assert.match(problems, /\$\.nested uses anyOf/);
    assert.match(problems, /\$\.nested\.inner has a group, but only top-level properties may/);
    assert.match(problems, /\$\.choice\.oneOf variants share no property with a const/);
  });
});
