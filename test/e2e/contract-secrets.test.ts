/**
 * Every output line stays a valid Airbyte message whatever the password, on Mosquitto: spec, check and write, on
 * success and failure paths, with secrets drawn from the lines those commands print (keys, enum values, words, digit
 * runs, JSON punctuation, unicode). Each command runs in this process with a captured output, as main.ts runs it;
 * the secrets that corrupted every line before run through the command line too.
 *
 * CONTRACT_SECRETS sets the number of secrets per path (default 150); PROPERTY_SEED replays one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { Output } from '../../src/airbyte/output.js';
import { check } from '../../src/commands/check.js';
import { spec } from '../../src/commands/spec.js';
import { write } from '../../src/commands/write.js';
import { asConnectorError } from '../../src/errors.js';
import { runCheck, runWrite, writeTempJson } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { findExecutable, mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { mulberry32 } from '../support/random.js';
import { assertSameMessages, drawSecret, vocabularyOf } from '../support/secrets.js';

const skip = mosquittoSkipReason();
const CASES = Number(process.env.CONTRACT_SECRETS ?? 150);
const ONLY_SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
const USER = 'airbyte';
const STREAM = { name: 'users', namespace: 'crm' };
const INPUT = [
  recordLine(STREAM, { id: 1, name: 'Ada' }),
  recordLine(STREAM, { id: 2, name: 'Grace' }),
  streamStateLine(STREAM, 2, ',"sourceStats":{"recordCount":2.0},"id":12345678901234567890'),
  recordLine(STREAM, { id: 3, name: 'Édith 東京 😀' }),
  streamStateLine(STREAM, 3),
].join('\n');

function passwordFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'passwd-'));
  const file = join(dir, 'passwd');
  execFileSync(findExecutable('mosquitto_passwd') ?? 'mosquitto_passwd', [
    '-c',
    '-b',
    file,
    USER,
    'the-only-accepted-password',
  ]);
  return readFileSync(file, 'utf8');
}

/** Runs a command in this process as main.ts does (a fatal error becomes one TRACE) and returns the lines printed. */
async function printed(command: (output: Output) => Promise<void> | void): Promise<string[]> {
  const sink = new PassThrough();
  let text = '';
  sink.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const output = new Output(sink, 'INFO');
  try {
    await command(output);
  } catch (err) {
    output.error(asConnectorError(err));
  }
  await output.flush();
  return text.split('\n').filter(Boolean);
}

describe('output under any password', { skip }, () => {
  const broker = withMosquitto(() => ({
    config: 'per_listener_settings true',
    portCount: 2,
    files: { passwd: passwordFile() },
    listeners: ([p0, p1], dir) =>
      [
        `listener ${p0} 127.0.0.1\nallow_anonymous true`,
        `listener ${p1} 127.0.0.1\nallow_anonymous false\npassword_file ${dir}/passwd`,
      ].join('\n'),
  }));
  let open: number;
  let secured: number;
  const catalog = (): string => writeTempJson(catalogOf([STREAM]));

  /** The paths, each a command run with `password`; the anonymous listener accepts any password, the other none. */
  const paths: Readonly<Record<string, (password: string) => Promise<string[]>>> = {
    spec: (password) =>
      printed((output) => {
        output.redact([password]);
        spec(output);
      }),
    'check succeeding': (password) =>
      printed((output) =>
        check(
          writeTempJson({
            broker_host: '127.0.0.1',
            broker_port: open,
            username: USER,
            password,
            topic_pattern: 'secrets/{stream}',
            topic_test: 'secrets/check',
            client: 'secrets-check',
          }),
          output,
        ),
      ),
    'check refused': (password) =>
      printed((output) =>
        check(
          writeTempJson({
            broker_host: '127.0.0.1',
            broker_port: secured,
            username: USER,
            password,
            topic_pattern: 't',
          }),
          output,
        ),
      ),
    'write succeeding': (password) =>
      printed((output) =>
        write(
          writeTempJson({
            broker_host: '127.0.0.1',
            broker_port: open,
            username: USER,
            password,
            topic_pattern: 'secrets/{stream}',
            client: 'secrets-write',
          }),
          catalog(),
          output,
          Readable.from([Buffer.from(INPUT)]),
        ),
      ),
    'write refused': (password) =>
      printed((output) =>
        write(
          writeTempJson({
            broker_host: '127.0.0.1',
            broker_port: secured,
            username: USER,
            password,
            topic_pattern: 's/{stream}',
          }),
          catalog(),
          output,
          Readable.from([Buffer.from(INPUT)]),
        ),
      ),
  };

  before(() => {
    [open, secured] = broker.ports as [number, number];
  });

  it(
    `keeps every line of spec, check and write a valid Airbyte message, for ${CASES} secrets per path from their output`,
    { timeout: 600_000 },
    async () => {
      const baselines = new Map<string, string[]>();
      for (const [name, run] of Object.entries(paths)) baselines.set(name, await run('baseline-password'));
      const all = [...baselines.values()].flat();
      // Each path ends as it should: the statuses and the failure types a user would see.
      assert.match(baselines.get('check succeeding')?.at(-1) ?? '', /"status":"SUCCEEDED"/);
      assert.match(baselines.get('check refused')?.at(-1) ?? '', /"status":"FAILED"/);
      assert.equal(baselines.get('write succeeding')?.filter((line) => line.includes('"type":"STATE"')).length, 2);
      assert.match(baselines.get('write refused')?.at(-1) ?? '', /"failure_type":"config_error"/);
      const vocabulary = vocabularyOf(all);
      const seeds = ONLY_SEED === undefined ? Array.from({ length: CASES }, (_, i) => i + 1) : [ONLY_SEED];
      for (const seed of seeds) {
        const secret = drawSecret(mulberry32(seed), vocabulary, all);
        for (const [name, run] of Object.entries(paths))
          assertSameMessages(await run(secret), baselines.get(name) ?? [], secret, `${name}, seed ${seed}`);
      }
    },
  );

  it('prints valid lines through the command line for the passwords that corrupted them before', async () => {
    const now = String(Date.now());
    const config = { broker_host: '127.0.0.1', username: USER, topic_pattern: 'secrets/{stream}' };
    const baseline = {
      ok: (await runCheck({ ...config, broker_port: open, password: 'baseline-password', client: 'cli' })).stdout,
      refused: (await runCheck({ ...config, broker_port: secured, password: 'baseline-password', client: 'cli' }))
        .stdout,
      failed: (
        await runWrite({ ...config, broker_port: secured, password: 'baseline-password' }, catalogOf([STREAM]), INPUT)
      ).stdout,
    };
    const lines = (stdout: string): string[] => stdout.split('\n').filter(Boolean);
    for (const password of ['type', 'status', 'SUCCEEDED', '","', '":"', now.slice(0, 4), now.slice(0, 7)]) {
      const ok = await runCheck({ ...config, broker_port: open, password, client: 'cli' });
      assertSameMessages(lines(ok.stdout), lines(baseline.ok), password, 'check succeeding');
      const refused = await runCheck({ ...config, broker_port: secured, password, client: 'cli' });
      assertSameMessages(lines(refused.stdout), lines(baseline.refused), password, 'check refused');
      const failed = await runWrite({ ...config, broker_port: secured, password }, catalogOf([STREAM]), INPUT);
      assert.equal(failed.code, 1);
      assertSameMessages(lines(failed.stdout), lines(baseline.failed), password, 'write refused');
      assert.equal(typeof (failed.ofType('TRACE')[0]?.trace as { emitted_at: unknown }).emitted_at, 'number');
    }
  });
});
