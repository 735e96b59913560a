/** The command line itself: spec, help, usage errors. Stdout carries Airbyte messages only. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT_ROOT, runConnector } from '../support/connector.js';

describe('command line', () => {
  it('spec prints spec.json as one SPEC message', async () => {
    const result = await runConnector(['spec']);
    assert.equal(result.code, 0);
    assert.equal(result.messages.length, 1);
    assert.deepEqual(result.messages[0], {
      type: 'SPEC',
      spec: JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')) as unknown,
    });
  });

  for (const command of [[], ['spec'], ['check'], ['write']]) {
    it(`${['destination-mqtt', ...command].join(' ')} --help explains itself on stderr and keeps stdout clean`, async () => {
      const result = await runConnector([...command, '--help']);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /Usage: destination-mqtt/);
      if (command[0] === 'write') assert.match(result.stderr, /--catalog <file>/);
      if (command[0] === 'check') assert.match(result.stderr, /--config <file>/);
    });
  }

  it('reports a usage error as a TRACE and exits non-zero', async () => {
    const missing = await runConnector(['write', '--config', 'x.json']);
    assert.equal(missing.code, 2);
    assert.match(String(missing.traceError().message), /required option '--catalog <file>' not specified/);
    const unknown = await runConnector(['read']);
    assert.equal(unknown.code, 2);
    assert.match(String(unknown.traceError().message), /unknown command 'read'/);
  });

  it('reports a missing or malformed configuration file as a config error', async () => {
    const result = await runConnector(['check', '--config', '/nonexistent/config.json']);
    assert.equal(result.code, 0);
    assert.match(
      JSON.stringify(result.messages),
      /FAILED.*Cannot read the configuration file \/nonexistent\/config\.json: ENOENT/,
    );
  });
});
