/** The README is the user's manual: its configuration reference must cover every property the spec offers. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connectorSpec } from '../../src/config/spec.js';
import { PROJECT_ROOT } from '../support/connector.js';

describe('README', () => {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const reference = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## Topics\n'));

  it('documents every property of spec.json in its configuration reference', () => {
    const properties = Object.keys(connectorSpec().connectionSpecification.properties);
    const missing = properties.filter((key) => !new RegExp(`^\\| \`${key}\`|, \`${key}\` \\|`, 'm').test(reference));
    assert.deepEqual(missing, []);
  });

  it('documents no property the spec does not have', () => {
    const properties = new Set(Object.keys(connectorSpec().connectionSpecification.properties));
    const documented = [...reference.matchAll(/^\| `([a-z0-9_]+)`(?:, `([a-z0-9_]+)`)? \|/gm)].flatMap((m) => [m[1], m[2]]).filter((k): k is string => k !== undefined);
    assert.deepEqual(documented.filter((key) => !properties.has(key)), []);
    assert.ok(documented.length >= properties.size);
  });

  it('starts with the demo and test commands', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Running it'));
    assert.match(quickStart, /npm ci && npm run demo/);
    assert.match(quickStart, /npm ci && npm test/);
  });
});
