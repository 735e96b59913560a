/**
 * The connector as users run it: package.json's `bin`, dist/bundle/main/main.cjs (src/launcher.ts running the bundle
 * scripts/bundle.mjs builds, from its code cache), which the Docker entrypoint starts too. The rest of the end-to-end
 * suite runs it by its path (test/support/connector.ts); these tests run it through a symlink as npm installs a bin,
 * and from a copy without node_modules, against aedes: spec, check (refused, TCP with a test message, WebSocket, TLS)
 * and a small write.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { type AirbyteLine, PROJECT_ROOT, parseLines } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { freePort } from '../support/mosquitto.js';

const BIN = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> })
  .bin['destination-mqtt'] as string;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly messages: AirbyteLine[];
}

let dir: string;
let installed: string;
const broker = withAedes({}, { path: '/mqtt' });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'shipped-entry-'));
  // As npm links a package's bin into node_modules/.bin: a symlink started through its #! line.
  installed = join(dir, 'destination-mqtt');
  symlinkSync(join(PROJECT_ROOT, BIN), installed);
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, contents: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(contents));
  return path;
}

async function run(
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; entry?: string } = {},
): Promise<Run> {
  // The #! line asks env for `node`: the one running these tests.
  const env = {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
    ...options.env,
  };
  const child = spawn(options.entry ?? installed, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr, messages: parseLines(stdout) };
}

function connectionStatus(result: Run): { status: string; message: string } {
  assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
  const statuses = result.messages.filter((m) => m.type === 'CONNECTION_STATUS');
  assert.equal(statuses.length, 1, result.stdout);
  return statuses[0]?.connectionStatus as { status: string; message: string };
}

const config = (settings: Record<string, unknown>): string =>
  file(`config-${Math.random().toString(36).slice(2)}.json`, {
    broker_host: '127.0.0.1',
    topic_pattern: 'shipped/{stream}',
    connect_timeout: 10,
    ...settings,
  });

describe('the shipped entry point', () => {
  it('is the bundle launcher, and the Docker entrypoint starts the same file', () => {
    assert.equal(BIN, 'dist/bundle/main/main.cjs');
    assert.match(
      readFileSync(join(PROJECT_ROOT, 'docker-entrypoint.sh'), 'utf8'),
      /exec node \$heap_flag "\$here\/dist\/bundle\/main\/main\.cjs" "\$@"/,
    );
  });

  it('prints spec.json for spec', async () => {
    const result = await run(['spec']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.messages.length, 1);
    assert.deepEqual(result.messages[0]?.spec, JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')));
  });

  it('runs from the code cache built with it', async () => {
    const result = await run(['spec'], { env: { DESTINATION_MQTT_CODE_CACHE_OUT: join(dir, 'cache-out') } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^code cache used$/m);
  });

  it('reports a refused connection as FAILED', async () => {
    const { status, message } = connectionStatus(
      await run(['check', '--config', config({ broker_port: await freePort() })]),
    );
    assert.equal(status, 'FAILED');
    assert.match(message, /^Nothing accepts connections at mqtt:\/\/127\.0\.0\.1:\d+/);
  });

  it('checks a broker over TCP and publishes the test message', async () => {
    const { status, message } = connectionStatus(
      await run(['check', '--config', config({ broker_port: broker.port, topic_test: 'shipped/check' })]),
    );
    assert.equal(status, 'SUCCEEDED', message);
    assert.match(
      message,
      /without TLS .* Test message on "shipped\/check" at QoS 1 accepted\. It came back to a subscription on the topic/,
    );
    assert.ok(broker.received.some((packet) => packet.topic === 'shipped/check'));
  });

  it('checks a broker over WebSocket', async () => {
    const { status, message } = connectionStatus(
      await run([
        'check',
        '--config',
        config({ broker_port: broker.wsPort, transport: 'websocket', websocket_path: '/mqtt' }),
      ]),
    );
    assert.equal(status, 'SUCCEEDED', message);
    assert.match(message, /^Connected to ws:\/\/127\.0\.0\.1:\d+\/mqtt without TLS/);
  });

  it('needs nothing from node_modules: the bundle holds all it loads, WebSocket included', async () => {
    // What the Docker image ships of the connector, copied where no node_modules can be found.
    const copy = join(dir, 'package');
    cpSync(join(PROJECT_ROOT, dirname(BIN)), join(copy, dirname(BIN)), { recursive: true });
    cpSync(join(PROJECT_ROOT, 'spec.json'), join(copy, 'spec.json'));
    const options = { entry: join(copy, BIN), env: { NODE_PATH: '' } };
    const spec = await run(['spec'], options);
    assert.equal(spec.messages[0]?.type, 'SPEC', `${spec.stdout}${spec.stderr}`);
    const { status, message } = connectionStatus(
      await run(
        [
          'check',
          '--config',
          config({
            broker_port: broker.wsPort,
            transport: 'websocket',
            websocket_path: '/mqtt',
            topic_test: 'shipped/ws',
          }),
        ],
        options,
      ),
    );
    assert.equal(status, 'SUCCEEDED', message);
    assert.match(
      message,
      /^Connected to ws:\/\/127\.0\.0\.1:\d+\/mqtt without TLS .* Test message on "shipped\/ws" at QoS 1 accepted\. It came back to a subscription on the topic/,
    );
  });

  it('publishes a small sync and echoes its state once acknowledged', async () => {
    const users = { name: 'users' };
    const before = broker.received.length;
    const input = [
      recordLine(users, { id: 1 }),
      recordLine(users, { id: 2 }),
      recordLine(users, { id: 3 }),
      streamStateLine(users, 3),
    ].join('\n');
    const result = await run(
      [
        'write',
        '--config',
        config({ broker_port: broker.port }),
        '--catalog',
        file('catalog.json', catalogOf([users])),
      ],
      {
        input: `${input}\n`,
      },
    );
    assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
    const published = broker.received.slice(before).filter((packet) => packet.topic === 'shipped/users');
    // The record's data, whatever envelope surrounds it.
    assert.deepEqual(
      published.map((packet) => /\{"id":(\d)\}/.exec(packet.payload.toString())?.[1]),
      ['1', '2', '3'],
    );
    const states = result.messages
      .filter((m) => m.type === 'STATE')
      .map((m) => m.state as { destinationStats: { recordCount: number } });
    assert.equal(states.length, 1, result.stdout);
    assert.equal(states[0]?.destinationStats.recordCount, 3);
  });
});

describe('the shipped entry point over TLS', { skip: opensslSkipReason() }, () => {
  let certs: TestCertificates;
  const tlsBroker = withAedes(() => {
    certs = generateCertificates();
    return [{}, undefined, { cert: certs.serverCert, key: certs.serverKey }];
  });

  it('checks a broker over TLS with a private CA', async () => {
    const { status, message } = connectionStatus(
      await run([
        'check',
        '--config',
        config({
          broker_host: 'localhost',
          broker_port: tlsBroker.tlsPort,
          use_tls: true,
          tls_ca_certificate: certs.caCert,
        }),
      ]),
    );
    assert.equal(status, 'SUCCEEDED', message);
    assert.match(message, /^Connected to mqtts:\/\/localhost:\d+ over TLSv1\.3 \(broker certificate CN=localhost/);
  });
});
