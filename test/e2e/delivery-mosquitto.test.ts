/**
 * Access rules on a real Mosquitto 2.0: with MQTT 3.1.1 a publish the ACL forbids is acknowledged and dropped, so only
 * delivery verification (a subscription that must see the message come back) tells the user; with MQTT 5 the broker
 * says "Not authorized" (0x87) in PUBACK and PUBREC, and nothing needs verifying.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { logMessages, runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { findExecutable, mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { subscribe } from '../support/subscriber.js';

const skip =
  mosquittoSkipReason() ??
  (findExecutable('mosquitto_passwd') ? undefined : 'mosquitto_passwd is not installed: ACL tests skipped');
const PASSWORD = 'acl-test-password';
const STREAM = { name: 'orders' };
const CATALOG = catalogOf([STREAM]);
/** Records and states: the state after each record, so any state emitted would cover a dropped record. */
const INPUT = [1, 2, 3].flatMap((i) => [recordLine(STREAM, { i }), streamStateLine(STREAM, i)]).join('\n');

const ACL = [
  'user airbyte',
  'topic readwrite open/#',
  'topic write writeonly/#',
  // Nothing on closed/#: Mosquitto acknowledges publishes there and drops them.
  'user watcher',
  'topic read #',
  '',
].join('\n');

/** A Mosquitto password file for the two users, as text (the broker's directory must be readable by its user). */
function passwordFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'passwd-'));
  const file = join(dir, 'passwd');
  const passwd = findExecutable('mosquitto_passwd') as string;
  execFileSync(passwd, ['-c', '-b', file, 'airbyte', PASSWORD]);
  execFileSync(passwd, ['-b', file, 'watcher', PASSWORD]);
  const text = readFileSync(file, 'utf8');
  rmSync(dir, { recursive: true, force: true });
  return text;
}

describe('delivery against Mosquitto access rules', { skip }, () => {
  const mosquitto = withMosquitto(() => ({
    files: { acl: ACL, passwd: passwordFile() },
    listeners: ([port], dir) =>
      `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${dir}/passwd\nacl_file ${dir}/acl`,
  }));
  const config = (topicPattern: string, overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: mosquitto.port,
    username: 'airbyte',
    password: PASSWORD,
    topic_pattern: topicPattern,
    connect_timeout: 3,
    ...overrides,
  });

  it('MQTT 3.1.1: write fails with a config_error naming the ACL before emitting any state', async () => {
    const result = await runWrite(config('closed/{stream}'), CATALOG, INPUT);
    assert.equal(result.code, 1, result.stdout);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /acknowledged the first record of stream "orders" but did not deliver it to a subscription on "closed\/orders" within 3 s .*most likely its ACL does not let user "airbyte" publish there/,
    );
    assert.deepEqual(result.states(), [], 'no state for records the broker dropped');
  });

  it('MQTT 3.1.1 with verify_delivery off: the loss goes unnoticed, as documented', async () => {
    const result = await runWrite(config('closed/{stream}', { verify_delivery: false }), CATALOG, INPUT);
    assert.equal(result.code, 0, result.stdout);
    assert.equal(result.states().length, 3);
  });

  it('MQTT 3.1.1: check fails naming the ACL', async () => {
    const { status: outcome, message } = status(await runCheck(config('t', { topic_test: 'closed/check' })));
    assert.equal(outcome, 'FAILED');
    assert.match(
      message,
      /acknowledged the test message on "closed\/check" but did not deliver it .*ACL does not let user "airbyte" publish there/,
    );
  });

  it('MQTT 3.1.1: a topic the user may publish to and read is verified, and the sync completes', async () => {
    const watcher = await subscribe(mosquitto.url, 'open/#', { username: 'watcher', password: PASSWORD });
    try {
      const result = await runWrite(config('open/{stream}', { protocol_version: '3.1' }), CATALOG, INPUT);
      assert.equal(result.code, 0, result.stdout);
      assert.equal(result.states().length, 3);
      assert.equal(
        (await watcher.waitFor(3)).length,
        3,
        'each record once: the probe is the first record, not an extra message',
      );
      assert.deepEqual(logMessages(result, /cannot be verified/), []);
    } finally {
      await watcher.close();
    }
  });

  it('MQTT 3.1.1: a user who may publish but not read is told to turn verification off, and can', async () => {
    const failed = await runWrite(config('writeonly/{stream}'), CATALOG, INPUT);
    assert.equal(failed.code, 1);
    assert.match(
      String(failed.traceError().message),
      /or it lets the user publish but not read the topic.*turn off "Verify delivery" \(verify_delivery\)/,
    );
    const watcher = await subscribe(mosquitto.url, 'writeonly/#', { username: 'watcher', password: PASSWORD });
    try {
      const result = await runWrite(config('writeonly/{stream}', { verify_delivery: false }), CATALOG, INPUT);
      assert.equal(result.code, 0, result.stdout);
      assert.equal((await watcher.waitFor(3)).length, 3);
    } finally {
      await watcher.close();
    }
  });

  it('MQTT 5 at QoS 1: the PUBACK says Not authorized (0x87), and nothing is verified', async () => {
    const result = await runWrite(config('closed/{stream}', { protocol_version: '5' }), CATALOG, INPUT);
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /refused a message on topic "closed\/orders": Not authorized \(reason code 0x87\)/,
    );
    assert.deepEqual(result.states(), []);
  });

  it('MQTT 5 at QoS 2: a PUBREC that says Not authorized (0x87) fails the record, never counts it as delivered', async () => {
    const result = await runWrite(
      config('closed/{stream}', { protocol_version: '5', message_qos: 'EXACTLY_ONCE' }),
      CATALOG,
      INPUT,
    );
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /refused a message on topic "closed\/orders": Not authorized \(reason code 0x87\)/,
    );
    assert.deepEqual(result.states(), []);
    assert.doesNotMatch(result.stdout, /Sync complete/);
  });
});
