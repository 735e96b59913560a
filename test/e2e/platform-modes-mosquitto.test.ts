/**
 * The sync modes as the Airbyte platform runs them (test/support/platform.ts says how it shapes catalogs, job by job
 * and attempt by attempt), each on MQTT 3.1.1 and 5 against Mosquitto, judged by the broker's retained set afterwards:
 * what a new subscriber to the stream's topics receives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunResult, logMessages, runWrite } from '../support/connector.js';
import { recordLine, streamStateLine } from '../support/messages.js';
import { type Mosquitto, mosquittoSkipReason, startMosquitto } from '../support/mosquitto.js';
import { type Attempt, PlatformConnection, type UiChoice } from '../support/platform.js';
import { retainedUnder } from '../support/retained.js';

const skip = mosquittoSkipReason();
const STREAM = { name: 'devices', namespace: 'fleet' };

/** One attempt's input: a record per key (its value says which attempt wrote it), a state after each, and COMPLETE unless the source failed. */
function input(attempt: Attempt, keys: readonly string[], label: string, sourceSucceeded = true): string {
  const lines = keys.flatMap((id, i) => [
    recordLine(STREAM, { id, v: label }),
    streamStateLine(STREAM, `${label}-${i}`),
  ]);
  return `${[...lines, ...(sourceSucceeded ? attempt.completeLines : [])].join('\n')}\n`;
}

interface Row {
  readonly name: string;
  readonly choice: UiChoice;
  readonly resumable?: boolean;
  readonly refreshes?: boolean;
  /** Extra configuration: message_retained, a pattern with {key}, overwrite_cleanup. */
  readonly config?: Record<string, unknown>;
  /** Runs the jobs against `write` and returns the last run. */
  readonly run: (
    connection: PlatformConnection,
    write: (attempt: Attempt, keys: string[], label: string, succeeded?: boolean) => Promise<RunResult>,
  ) => Promise<RunResult>;
  /** The keys retained afterwards, with the attempt that wrote each, per protocol version. */
  readonly expect: Readonly<Record<'3.1.1' | '5', Readonly<Record<string, string>>>> | Readonly<Record<string, string>>;
  /** A log line the last run must print (per protocol version when it differs). */
  readonly says?: RegExp | Readonly<Record<'3.1.1' | '5', RegExp | undefined>>;
}

const both = <T>(value: T): Record<'3.1.1' | '5', T> => ({ '3.1.1': value, '5': value });

/** The first job writes a and b and completes: the keyspace that later jobs find. */
async function firstSync(connection: PlatformConnection, write: Parameters<Row['run']>[1]): Promise<void> {
  const result = await write(connection.sync().attempt(), ['a', 'b'], 'job1');
  assert.equal(result.code, 0, result.stdout);
}

const ROWS: readonly Row[] = [
  {
    name: 'Full refresh | Overwrite + Deduped: the next sync replaces the keyspace',
    choice: 'Full refresh | Overwrite + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['b', 'c'], 'job2');
    },
    expect: { b: 'job2', c: 'job2' },
  },
  {
    name: 'Full refresh | Overwrite with message_retained and {key}: retained per key, replaced like a deduped keyspace',
    choice: 'Full refresh | Overwrite',
    config: { message_retained: true, keyed: true },
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['b', 'c'], 'job2');
    },
    expect: { b: 'job2', c: 'job2' },
  },
  {
    name: 'Full refresh | Overwrite, not retained: clears what an earlier Overwrite + Deduped sync retained',
    choice: 'Full refresh | Overwrite',
    config: { keyed: true },
    run: async (connection, write) => {
      // The stream ran as Overwrite + Deduped; then the user switched it to Overwrite, and its old keys are still retained.
      connection.choose('devices', 'Full refresh | Overwrite + Deduped');
      await firstSync(connection, write);
      connection.choose('devices', 'Full refresh | Overwrite');
      return write(connection.sync().attempt(), ['b'], 'job2');
    },
    expect: {},
    says: /its own messages are not retained/,
  },
  {
    name: 'Incremental | Append + Deduped: keys accumulate, the last value of each wins',
    choice: 'Incremental | Append + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['b', 'c'], 'job2');
    },
    expect: { a: 'job1', b: 'job2', c: 'job2' },
  },
  {
    name: 'Incremental | Append: nothing retained',
    choice: 'Incremental | Append',
    config: { keyed: true },
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['c'], 'job2');
    },
    expect: {},
  },
  {
    name: 'a truncating refresh of an incremental deduped stream leaves exactly its generation',
    choice: 'Incremental | Append + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.refresh('devices', 'truncate').attempt(), ['b', 'c'], 'refresh');
    },
    expect: { b: 'refresh', c: 'refresh' },
  },
  {
    name: 'a merge refresh clears nothing',
    choice: 'Incremental | Append + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.refresh('devices', 'merge').attempt(), ['c'], 'refresh');
    },
    expect: { a: 'job1', b: 'job1', c: 'refresh' },
  },
  {
    name: 'a Clear of an Overwrite + Deduped stream leaves no key',
    choice: 'Full refresh | Overwrite + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.clear('devices').attempt(), [], 'clear');
    },
    expect: {},
  },
  {
    name: 'a Clear of a resumable incremental deduped stream leaves no key',
    choice: 'Incremental | Append + Deduped',
    resumable: true,
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.clear('devices').attempt(), [], 'clear');
    },
    expect: {},
  },
  {
    name: 'the second attempt of a non-resumable full refresh (a new generation) leaves exactly its own keys',
    choice: 'Full refresh | Overwrite + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      const job = connection.sync();
      // Attempt 1 writes c and x, then its source fails; x is deleted at the source before attempt 2 reads again.
      assert.equal((await write(job.attempt(), ['c', 'x'], 'attempt1', false)).code, 0);
      return write(job.attempt(), ['c', 'd'], 'attempt2');
    },
    expect: { c: 'attempt2', d: 'attempt2' },
  },
  {
    name: "the second attempt of a resumable full refresh (the same generation) keeps its first attempt's keys",
    choice: 'Full refresh | Overwrite + Deduped',
    resumable: true,
    run: async (connection, write) => {
      await firstSync(connection, write);
      const job = connection.sync();
      assert.equal((await write(job.attempt(), ['c'], 'attempt1', false)).code, 0);
      // Attempt 2 resumes after c from the state attempt 1 emitted.
      return write(job.attempt(), ['d'], 'attempt2');
    },
    // MQTT 5 messages carry their generation: a and b (job 1) are stale. On 3.1.1 nothing tells them from c.
    expect: {
      '5': { c: 'attempt1', d: 'attempt2' },
      '3.1.1': { a: 'job1', b: 'job1', c: 'attempt1', d: 'attempt2' },
    },
    says: {
      '5': undefined,
      '3.1.1':
        /kept 3 retained key\(s\) of earlier generations or attempts: an earlier attempt of sync \d+ already published keys of generation \d+/,
    },
  },
  {
    name: 'a failed source (input ends without COMPLETE) clears nothing',
    choice: 'Full refresh | Overwrite + Deduped',
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['c'], 'job2', false);
    },
    expect: { a: 'job1', b: 'job1', c: 'job2' },
    says: /because the platform did not report the stream complete/,
  },
  {
    name: 'a platform without refreshes sends Overwrite + Deduped as overwrite and never reports completion: kept, with the way out',
    choice: 'Full refresh | Overwrite + Deduped',
    refreshes: false,
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['b', 'c'], 'job2');
    },
    expect: { a: 'job1', b: 'job2', c: 'job2' },
    says: /set "Overwrite cleanup" \(overwrite_cleanup\) to end_of_input/,
  },
  {
    name: 'a platform without refreshes, with overwrite_cleanup end_of_input: the keyspace is replaced',
    choice: 'Full refresh | Overwrite + Deduped',
    refreshes: false,
    config: { overwrite_cleanup: 'end_of_input' },
    run: async (connection, write) => {
      await firstSync(connection, write);
      return write(connection.sync().attempt(), ['b', 'c'], 'job2');
    },
    expect: { b: 'job2', c: 'job2' },
  },
];

describe('sync modes as the platform runs them, judged by the retained set', { skip }, () => {
  let mosquitto: Mosquitto;
  let n = 0;
  before(async () => {
    mosquitto = await startMosquitto();
  });
  after(() => mosquitto?.stop());

  for (const version of ['3.1.1', '5'] as const) {
    for (const row of ROWS) {
      it(`MQTT ${version}: ${row.name}`, async () => {
        const root = `platform${++n}`;
        const { keyed, ...extra } = row.config ?? {};
        const config = {
          broker_host: '127.0.0.1',
          broker_port: mosquitto.port,
          protocol_version: version,
          topic_pattern: keyed === true ? `${root}/{stream}/{key}` : `${root}/{stream}`,
          ...extra,
        };
        const connection = new PlatformConnection(
          [
            {
              ...STREAM,
              primaryKey: [['id']],
              choice: row.choice,
              ...(row.resumable === undefined ? {} : { resumable: row.resumable }),
            },
          ],
          row.refreshes ?? true,
        );
        const write = async (attempt: Attempt, keys: string[], label: string, succeeded = true): Promise<RunResult> => {
          const result = await runWrite(config, attempt.catalog, input(attempt, keys, label, succeeded));
          assert.equal(result.code, 0, `${label}: ${result.stdout}`);
          assert.equal(result.states().length, keys.length, `${label}: every state echoed`);
          return result;
        };
        const last = await row.run(connection, write);
        const retained = await retainedUnder(mosquitto.url, `${root}/#`);
        const found = Object.fromEntries(
          [...retained].map(([topic, entry]) => [
            topic.slice(`${root}/devices/`.length),
            (JSON.parse(entry.payload) as { _airbyte_data: { v: string } })._airbyte_data.v,
          ]),
        );
        const expected =
          '5' in row.expect
            ? (row.expect as Record<'3.1.1' | '5', Record<string, string>>)[version]
            : (row.expect as Record<string, string>);
        assert.deepEqual(found, expected, last.stdout);
        const says = row.says instanceof RegExp ? both(row.says)[version] : row.says?.[version];
        if (says)
          assert.ok(logMessages(last, says).length > 0, `expected a log line matching ${says}:\n${last.stdout}`);
      });
    }
  }
});
