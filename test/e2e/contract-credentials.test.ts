/**
 * Credentials the platform and MQTT can carry, on Mosquitto: no password in the broker URL (a field the platform does
 * not keep secret), user names, passwords and client IDs within MQTT's 65,535 bytes, a password only with a user name,
 * each refused as a FAILED check and a config_error in write that name the field; and a port where nothing listens
 * told apart from a broker that closes the connection without accepting it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine } from '../support/messages.js';
import { findExecutable, freePort, mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const USER = 'airbyte';
const PASSWORD = 'pa55:word/with@special%chars';
const STREAM = { name: 'users' };

function passwordFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'passwd-'));
  const file = join(dir, 'passwd');
  execFileSync(findExecutable('mosquitto_passwd') ?? 'mosquitto_passwd', ['-c', '-b', file, USER, PASSWORD]);
  return readFileSync(file, 'utf8');
}

describe('credentials', { skip }, () => {
  const broker = withMosquitto(() => ({
    config: 'per_listener_settings true',
    portCount: 3,
    files: { passwd: passwordFile() },
    listeners: ([p0, p1, p2], dir) =>
      [
        `listener ${p0} 127.0.0.1\nallow_anonymous true`,
        `listener ${p1} 127.0.0.1\nallow_anonymous false\npassword_file ${dir}/passwd`,
        `listener ${p2} 127.0.0.1\nallow_anonymous true\nmax_connections 1`,
      ].join('\n'),
  }));
  let open: number;
  let secured: number;
  let full: number;
  let holder: Subscriber;
  const base = { topic_pattern: 'creds/{stream}', connect_timeout: 5 };

  before(async () => {
    [open, secured, full] = broker.ports as [number, number, number];
    // Takes the one connection the third listener allows, so that it accepts the next one and closes it at once.
    holder = await subscribe(`mqtt://127.0.0.1:${full}`, 'nothing');
  });
  after(() => holder?.close());

  /** check FAILED with `pattern`, and write a config_error with it, neither showing `hidden`. */
  async function refused(config: Record<string, unknown>, pattern: RegExp, hidden?: string): Promise<void> {
    const checked = await runCheck(config);
    const { status: outcome, message } = status(checked);
    assert.equal(outcome, 'FAILED', message);
    assert.match(message, pattern);
    const written = await runWrite(config, catalogOf([STREAM]), `${recordLine(STREAM, { id: 1 })}\n`);
    assert.equal(written.code, 1);
    assert.equal(written.traceError().failure_type, 'config_error');
    assert.match(String(written.traceError().message), pattern);
    if (hidden)
      assert.ok(
        !(checked.stdout + checked.stderr + written.stdout + written.stderr).includes(hidden),
        'the password is not shown',
      );
  }

  it('refuses a password in the broker URL, pointing to the password field; a user name there is fine', async () => {
    const url = `mqtt://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${secured}`;
    await refused(
      { ...base, broker_url: url },
      /"Broker URL" \(broker_url\) carries a password, .*enter it in "Password" \(password\), which is kept secret/,
      'pa55',
    );
    const { status: outcome, message } = status(
      await runCheck({ ...base, broker_url: `mqtt://${USER}@127.0.0.1:${secured}`, password: PASSWORD }),
    );
    assert.equal(outcome, 'SUCCEEDED', message);
  });

  it('refuses a user name, password or client ID longer than MQTT allows, naming the field, and accepts the longest allowed', async () => {
    const tooLong = 'x'.repeat(65_536);
    const broker = { ...base, broker_host: '127.0.0.1', broker_port: open };
    await refused(
      { ...broker, username: tooLong },
      /"Username" \(username\) is 65536 bytes long in UTF-8; MQTT allows at most 65535/,
    );
    await refused(
      { ...broker, username: USER, password: `${tooLong}-secret` },
      /"Password" \(password\) is 65543 bytes long in UTF-8; MQTT allows at most 65535/,
      tooLong,
    );
    await refused(
      { ...broker, client: tooLong },
      /"Client ID" \(client\) is 65536 bytes long in UTF-8; MQTT allows at most 65535/,
    );
    // Mosquitto takes the longest user name and password MQTT can carry.
    const longest = 'y'.repeat(65_535);
    const { status: outcome, message } = status(await runCheck({ ...broker, username: longest, password: longest }));
    assert.equal(outcome, 'SUCCEEDED', message.slice(0, 300));
  });

  it('refuses a password without a user name, saying so and what MQTT 5 allows, even where nothing listens', async () => {
    const pattern =
      /"Password" \(password\) is set without a "Username" \(username\): MQTT 3\.1 and 3\.1\.1 allow a password only with a user name, and MQTT 5, which allows it alone/;
    await refused({ ...base, broker_host: '127.0.0.1', broker_port: secured, password: PASSWORD }, pattern, PASSWORD);
    await refused(
      { ...base, broker_host: '127.0.0.1', broker_port: secured, password: PASSWORD, protocol_version: '5' },
      pattern,
      PASSWORD,
    );
    await refused(
      { ...base, broker_host: '127.0.0.1', broker_port: await freePort(), password: PASSWORD },
      pattern,
      PASSWORD,
    );
  });

  it('tells a port where nothing listens from a broker that closes the connection without accepting it', async () => {
    const nothing = status(await runCheck({ ...base, broker_host: '127.0.0.1', broker_port: await freePort() }));
    assert.equal(nothing.status, 'FAILED');
    assert.match(nothing.message, /^Nothing accepts connections at mqtt:\/\/127\.0\.0\.1:\d+/);
    const closed = status(await runCheck({ ...base, broker_host: '127.0.0.1', broker_port: full }));
    assert.equal(closed.status, 'FAILED');
    assert.match(
      closed.message,
      /^The broker at mqtt:\/\/127\.0\.0\.1:\d+ closed the connection (before|without) accepting it/,
    );
  });
});
