/**
 * `npm run acceptance`: the connector acceptance tests' suites for destinations (spec, connection), as declared in
 * acceptance-test-config.yml, run against the built connector without Docker. For a connection expected to succeed an
 * MQTT broker is started and the configuration pointed at it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startAedes } from '../../test/support/aedes.js';
import { type RunResult, runCheck, runConnector } from '../../test/support/connector.js';
import { SYNC_MODES } from '../../src/airbyte/catalog.js';
import { specProblems } from './spec-rules.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(join(ROOT, path), 'utf8')) as Record<string, unknown>;

interface Config {
  acceptance_tests: {
    spec?: { tests: { spec_path: string; config_path?: string }[] };
    connection?: { tests: { config_path: string; status: 'succeed' | 'failed' }[] };
  };
}

const config = parse(readFileSync(join(ROOT, 'acceptance-test-config.yml'), 'utf8')) as Config;
let passed = 0;
let failed = 0;
function report(name: string, problems: string[]): void {
  if (problems.length === 0) {
    passed++;
    console.log(`PASS ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}\n${problems.map((p) => `     ${p}`).join('\n')}`);
  }
}

/**
 * Runs the connector, whose every stdout line the runner checks against the Airbyte protocol (test/support): a line it
 * refuses, like a run that does not end, fails `name` here instead of ending the whole run.
 */
async function runReported(name: string, run: () => Promise<RunResult>): Promise<RunResult | undefined> {
  const check = `${name}: ends, printing only Airbyte messages a destination may print`;
  try {
    const result = await run();
    report(check, []);
    return result;
  } catch (err) {
    report(check, [(err as Error).message]);
    return undefined;
  }
}

for (const test of config.acceptance_tests.spec?.tests ?? []) {
  const result = await runReported('spec', () => runConnector(['spec']));
  if (!result) continue;
  const spec = result.ofType('SPEC')[0]?.spec as Record<string, unknown> | undefined;
  const expected = readJson(test.spec_path);
  report(`spec: output equals ${test.spec_path}`, JSON.stringify(spec) === JSON.stringify(expected) ? [] : ['the spec printed differs from the file']);
  report('spec: follows the connection specification rules', specProblems((spec?.connectionSpecification ?? {}) as Record<string, unknown>));
  const declares = spec?.supported_destination_sync_modes;
  // Every mode declared must be one the connector gives a meaning (catalog.ts), and every such mode declared.
  report(
    `spec: declares exactly the sync modes the connector implements (${SYNC_MODES.join(', ')})`,
    JSON.stringify(declares) === JSON.stringify(SYNC_MODES) ? [] : [`supported_destination_sync_modes is ${JSON.stringify(declares)}`],
  );
}

for (const test of config.acceptance_tests.connection?.tests ?? []) {
  const settings = readJson(test.config_path);
  const broker = test.status === 'succeed' ? await startAedes() : undefined;
  try {
    const target = broker ? { ...settings, broker_host: '127.0.0.1', broker_port: broker.port } : settings;
    const result = await runReported(`connection: ${test.config_path}`, () => runCheck(target));
    if (!result) continue;
    const status = (result.ofType('CONNECTION_STATUS')[0]?.connectionStatus as { status?: string; message?: string } | undefined) ?? {};
    const want = test.status === 'succeed' ? 'SUCCEEDED' : 'FAILED';
    const problems =
      status.status === want && result.code === 0
        ? []
        : [`expected ${want} with exit 0, got ${status.status ?? 'no status'} (exit ${result.code}): ${status.message ?? result.stdout}`];
    report(`connection: ${test.config_path} is ${test.status === 'succeed' ? 'accepted' : 'refused'}`, problems);
  } finally {
    await broker?.close();
  }
}

console.log(`acceptance: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
