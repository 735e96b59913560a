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
    const documented = [...reference.matchAll(/^\| `([a-z0-9_]+)`(?:, `([a-z0-9_]+)`)? \|/gm)]
      .flatMap((m) => [m[1], m[2]])
      .filter((k): k is string => k !== undefined);
    assert.deepEqual(
      documented.filter((key) => !properties.has(key)),
      [],
    );
    assert.ok(documented.length >= properties.size);
  });

  it('starts with the demo and test commands', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Running it'));
    assert.match(quickStart, /npm ci && npm run demo/);
    assert.match(quickStart, /npm ci && npm test/);
  });
});

describe('docs/mqtt.md', () => {
  const page = readFileSync(join(PROJECT_ROOT, 'docs/mqtt.md'), 'utf8');
  const spec = connectorSpec().connectionSpecification as {
    properties: Record<string, { title?: string; airbyte_hidden?: boolean; default?: unknown }>;
  };

  it('has the sections of an Airbyte connector page', () => {
    for (const heading of [
      '## Prerequisites',
      '## Setup guide',
      '### In the Airbyte UI',
      '### With Docker',
      '## Configuration reference',
      '## Output format',
      '## Delivery guarantees',
      '## Troubleshooting',
      '## Changelog',
    ]) {
      assert.ok(page.includes(`\n${heading}\n`), heading);
    }
  });

  it('lists every visible property with its title and default, and names the hidden ones', () => {
    const rows = new Map(
      [...page.matchAll(/^\| ([^|]+) \| `([a-z0-9_]+)` \| [^|]+ \| ([^|]*) \|/gm)].map((m) => [
        m[2] as string,
        { title: (m[1] as string).trim(), defaultText: (m[3] as string).trim() },
      ]),
    );
    for (const [key, property] of Object.entries(spec.properties)) {
      if (property.airbyte_hidden) {
        assert.ok(page.includes(`\`${key}\``), `hidden key ${key} is named`);
        continue;
      }
      const row = rows.get(key);
      assert.ok(row, `${key} has a row`);
      assert.equal(row.title, property.title, `${key} title`);
      if (property.default !== undefined)
        assert.equal(row.defaultText, `\`${JSON.stringify(property.default)}\``, `${key} default`);
    }
    assert.deepEqual(
      [...rows.keys()].filter((key) => !(key in spec.properties)),
      [],
    );
  });

  it('names the version of package.json in its changelog and Docker examples', () => {
    const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.match(page, new RegExp(`\\| ${version.replace(/\./g, '\\.')} \\|`));
    assert.match(page, new RegExp(`airbyte/destination-mqtt:${version.replace(/\./g, '\\.')}`));
  });
});
