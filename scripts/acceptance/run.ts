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
import { DECLARED_SYNC_MODES as DECLARED } from '../../src/airbyte/catalog.js';
import { backwardCompatibilityProblems } from './backward-compatibility.js';
import { specProblems } from './spec-rules.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const readJson = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(ROOT, path), 'utf8')) as Record<string, unknown>;

/**
 * The specs of earlier versions, by version, for the backward-compatibility test. The acceptance tests read the
 * previous version's spec from the registry; this connector's previous version is the archived Java connector, so its
 * spec is kept here as data. 0.1.3: airbytehq/airbyte, airbyte-integrations/connectors/destination-mqtt/src/main/
 * resources/spec.json as the connector was archived (commit 5abef07191eb0965fc051900c306d96c5331e6f2), byte for byte.
 * Its typical configuration is the one that connector's own acceptance test (MqttDestinationAcceptanceTest.getConfig)
 * ran with; the broker's address and the client id, which that test took from its container and a random UUID, are
 * fixed stand-ins.
 */
const PREVIOUS_VERSIONS: Record<string, { spec_path: string; typical_config: Record<string, unknown> }> = {
  '0.1.3': {
    spec_path: 'integration_tests/previous_spec_0.1.3.json',
    typical_config: {
      broker_host: '172.17.0.2',
      broker_port: 1883,
      use_tls: false,
      topic_pattern: 'test/integration/{namespace}/{stream}/test.topic',
      client_id: '0b9f7a52-3c1e-4d8a-9f61-2e7c5d4b8a10',
      publisher_sync: true,
      connect_timeout: 30,
      automatic_reconnect: true,
      clean_session: true,
      message_retained: false,
      message_qos: 'EXACTLY_ONCE',
    },
  },
};
/** What `previous_connector_version: latest`, the default, means: the newest version before this one. */
const LATEST_PREVIOUS_VERSION = '0.1.3';

interface Config {
  acceptance_tests: {
    spec?: {
      tests: {
        spec_path: string;
        config_path?: string;
        backward_compatibility_tests_config?: { previous_connector_version?: string; disable_for_version?: string };
      }[];
    };
    connection?: { tests: { config_path: string; status: 'succeed' | 'failed' }[] };
  };
}

const config = parse(readFileSync(join(ROOT, 'acceptance-test-config.yml'), 'utf8')) as Config;
let passed = 0;
let failed = 0;
let skipped = 0;
function report(name: string, problems: string[]): void {
  if (problems.length === 0) {
    passed++;
    console.log(`PASS ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}\n${problems.map((p) => `     ${p}`).join('\n')}`);
  }
}
/** A test declared not to apply, with what it would have found, so that the declaration stays justified and visible. */
function skip(name: string, reason: string, findings: string[]): void {
  skipped++;
  const found =
    findings.length > 0
      ? `     it would have found:\n${findings.map((p) => `     ${p}`).join('\n')}`
      : '     it would have found nothing';
  console.log(`SKIP ${name} (${reason})\n${found}`);
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
  report(
    `spec: output equals ${test.spec_path}`,
    JSON.stringify(spec) === JSON.stringify(expected) ? [] : ['the spec printed differs from the file'],
  );
  report(
    'spec: follows the connection specification rules',
    specProblems((spec?.connectionSpecification ?? {}) as Record<string, unknown>),
  );
  const declares: unknown[] = Array.isArray(spec?.supported_destination_sync_modes)
    ? spec.supported_destination_sync_modes
    : [];
  // Every mode declared must be one the connector gives a meaning (catalog.ts), and every such mode declared.
  report(`spec: declares exactly the sync modes the connector implements (${DECLARED.join(', ')})`, [
    ...declares
      .filter((mode) => !(DECLARED as readonly unknown[]).includes(mode))
      .map((mode) => `declares ${JSON.stringify(mode)}, which it should not`),
    ...DECLARED.filter((mode) => !declares.includes(mode)).map((mode) => `does not declare "${mode}"`),
  ]);

  const compatibility = test.backward_compatibility_tests_config ?? {};
  const requested = compatibility.previous_connector_version ?? 'latest';
  const version = requested === 'latest' ? LATEST_PREVIOUS_VERSION : requested;
  const previous = PREVIOUS_VERSIONS[version];
  const name = `spec: backward compatibility with ${version}`;
  if (!previous) {
    report(name, [`no spec of version ${version} is stored (known: ${Object.keys(PREVIOUS_VERSIONS).join(', ')})`]);
    continue;
  }
  const findings = backwardCompatibilityProblems(readJson(previous.spec_path), spec ?? {}, {
    previousVersion: version,
    typicalConfigs: [
      { name: `the configuration ${version}'s own acceptance test ran with`, config: previous.typical_config },
    ],
  });
  if (compatibility.disable_for_version === version) skip(name, 'declared breaking release', findings);
  else report(name, findings);
}

for (const test of config.acceptance_tests.connection?.tests ?? []) {
  const settings = readJson(test.config_path);
  const broker = test.status === 'succeed' ? await startAedes() : undefined;
  try {
    const target = broker ? { ...settings, broker_host: '127.0.0.1', broker_port: broker.port } : settings;
    const result = await runReported(`connection: ${test.config_path}`, () => runCheck(target));
    if (!result) continue;
    const status =
      (result.ofType('CONNECTION_STATUS')[0]?.connectionStatus as { status?: string; message?: string } | undefined) ??
      {};
    const want = test.status === 'succeed' ? 'SUCCEEDED' : 'FAILED';
    const problems =
      status.status === want && result.code === 0
        ? []
        : [
            `expected ${want} with exit 0, got ${status.status ?? 'no status'} (exit ${result.code}): ` +
              `${status.message ?? result.stdout}`,
          ];
    report(`connection: ${test.config_path} is ${test.status === 'succeed' ? 'accepted' : 'refused'}`, problems);
  } finally {
    await broker?.close();
  }
}

console.log(`acceptance: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
