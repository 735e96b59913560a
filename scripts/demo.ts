/**
 * `npm run demo`: a complete sync on this machine, no broker needed. Starts an embedded MQTT broker, runs the
 * connector's `write` on integration_tests/messages.jsonl, and shows what arrived on which topic and which states came
 * back.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAedes } from '../test/support/aedes.js';
import { parseProtocolLine } from '../test/support/airbyte-protocol.js';
import { subscribe } from '../test/support/subscriber.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = join(root, 'dist/src/main.js');
const input = join(root, 'integration_tests/messages.jsonl');

const broker = await startAedes();
const subscriber = await subscribe(broker.url, '#');
const dir = mkdtempSync(join(tmpdir(), 'destination-mqtt-demo-'));
const configPath = join(dir, 'config.json');
const sample = JSON.parse(readFileSync(join(root, 'integration_tests/sample_config.json'), 'utf8')) as Record<
  string,
  unknown
>;
writeFileSync(configPath, JSON.stringify({ ...sample, broker_host: '127.0.0.1', broker_port: broker.port }));

console.log(`Embedded MQTT broker listening on ${broker.url}`);
console.log(
  `Running: destination-mqtt write --config ${configPath} --catalog integration_tests/configured_catalog.json ` +
    '< integration_tests/messages.jsonl\n',
);

const child = spawn(
  process.execPath,
  [main, 'write', '--config', configPath, '--catalog', join(root, 'integration_tests/configured_catalog.json')],
  {
    stdio: ['pipe', 'pipe', 'inherit'],
  },
);
child.stdin?.end(readFileSync(input));
let stdout = '';
child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

const records = readFileSync(input, 'utf8')
  .split('\n')
  .filter((line) => line.includes('"type":"RECORD"')).length;
await subscriber.waitFor(records, 5000).catch((err: Error) => console.error(err.message));

console.log('Messages that arrived on the broker:');
for (const message of subscriber.messages) {
  console.log(`  ${message.topic.padEnd(26)} ${message.payload}`);
}
console.log('\nWhat the connector printed (Airbyte messages on stdout):');
let invalid = 0;
stdout.split('\n').forEach((line, index) => {
  if (line === '') return;
  let message;
  try {
    message = parseProtocolLine(line, index + 1);
  } catch (err) {
    invalid++;
    console.log(`  INVALID ${(err as Error).message}`);
    return;
  }
  // Shown as printed: parsing would round the big cursor that the connector kept exact.
  console.log(
    `  ${message.type.padEnd(6)} ${message.type === 'LOG' ? (message.log as { message: string }).message : line}`,
  );
});
console.log(`\nConnector exit code: ${code}; ${subscriber.messages.length} of ${records} records arrived.`);
if (invalid > 0) console.log(`${invalid} line(s) the Airbyte protocol refuses.`);

await subscriber.close();
await broker.close();
process.exitCode = code === 0 && subscriber.messages.length === records && invalid === 0 ? 0 : 1;
