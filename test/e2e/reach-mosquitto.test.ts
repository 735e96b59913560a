/**
 * The whole connector reaching a Mosquitto it cannot see directly: through a SOCKS5 proxy (microsocks), an HTTP
 * CONNECT proxy (tinyproxy) and an SSH tunnel (OpenSSH's sshd), each started here on a free port. 3,000 records arrive
 * whole and in order with every state echoed, the proxy's or sshd's log shows the forward to the broker, `check` names
 * the way it went (the proxy; the bastion and its host key), and it tells a proxy that refuses from a broker that is
 * not there behind it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { checkStatus, logMessages, runCheck, runWrite, startWrite, streamCursors } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { freePort, mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { proxySkipReason, withMicrosocks, withTinyproxy } from '../support/proxies.js';
import { startPasswordServer } from '../support/ssh-password-server.js';
import { countMatches, sshdSkipReason, withSshd } from '../support/sshd.js';
import { subscribe } from '../support/subscriber.js';

const ORDERS = { name: 'orders' };
const RECORDS = 3000;
const lines = (...parts: string[]): string => `${parts.join('\n')}\n`;

function input(): string {
  const out: string[] = [];
  for (let i = 1; i <= RECORDS; i++) {
    out.push(recordLine(ORDERS, { id: i }));
    if (i % 500 === 0) out.push(streamStateLine(ORDERS, i));
  }
  return lines(...out);
}

const skip = mosquittoSkipReason() ?? proxySkipReason('microsocks') ?? proxySkipReason('tinyproxy') ?? sshdSkipReason();

describe('reaching Mosquitto through proxies and an SSH tunnel', { skip }, () => {
  const mosquitto = withMosquitto();
  const socks = withMicrosocks({ auth: { username: 'proxyuser', password: 'proxy-secret-1' } });
  const http = withTinyproxy(() => ({ connectPorts: [mosquitto.port] }));
  const sshd = withSshd();
  let n = 0;
  const root = (): string => `reach${++n}`;
  const base = (topic: string): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: mosquitto.port,
    topic_pattern: topic,
    client: `reach-${topic}`,
  });

  /** Publishes the 3,000 records with `extra` settings and checks they all arrived, in order, every state echoed. */
  async function syncThrough(extra: Record<string, unknown>, connections = 1): Promise<void> {
    const topic = root();
    const subscriber = await subscribe(mosquitto.url, topic);
    try {
      const result = await runWrite({ ...base(topic), connections, ...extra }, catalogOf([ORDERS]), input(), {
        timeoutMs: 60_000,
      });
      assert.equal(result.code, 0, result.stdout);
      assert.equal(result.states().length, RECORDS / 500);
      const delivered = await subscriber.waitFor(RECORDS);
      const ids = delivered.map((d) => (JSON.parse(d.payload) as { _airbyte_data: { id: number } })._airbyte_data.id);
      assert.deepEqual(
        ids.sort((a, b) => a - b),
        Array.from({ length: RECORDS }, (_, i) => i + 1),
      );
      if (connections === 1) {
        assert.deepEqual(
          delivered.map((d) => (JSON.parse(d.payload) as { _airbyte_data: { id: number } })._airbyte_data.id),
          Array.from({ length: RECORDS }, (_, i) => i + 1),
        );
      }
    } finally {
      await subscriber.close();
    }
  }

  it('publishes 3,000 records through a SOCKS5 proxy with a user name and password, which logs the forward', async () => {
    await syncThrough({
      proxy_url: `socks5h://proxyuser@127.0.0.1:${socks.port}`,
      proxy_password: 'proxy-secret-1',
    });
    await socks.waitForLog(new RegExp(`connected to 127\\.0\\.0\\.1:${mosquitto.port}`));
  });

  it('publishes 3,000 records through an HTTP CONNECT proxy, which logs the forward', async () => {
    await syncThrough({ proxy_url: `http://127.0.0.1:${http.port}` });
    await http.waitForLog(new RegExp(`CONNECT 127\\.0\\.0\\.1:${mosquitto.port}`));
  });

  it('publishes 3,000 records over three connections through one SSH connection to the bastion', async () => {
    const from = sshd.log().length;
    await syncThrough(
      {
        tunnel_method: {
          tunnel_method: 'SSH_KEY_AUTH',
          tunnel_host: '127.0.0.1',
          tunnel_port: sshd.port,
          tunnel_user: sshd.user,
          ssh_key: sshd.clientKey.privateKey,
        },
      },
      3,
    );
    const log = sshd.log().slice(from);
    assert.ok(countMatches(log, new RegExp(`target 127\\.0\\.0\\.1 port ${mosquitto.port}`)) >= 3, log);
    assert.equal(countMatches(log, /Accepted publickey/), 1, 'the three MQTT connections share one SSH login');
  });

  it('opens the SSH connection again when the bastion drops it mid-sync, and loses nothing', async () => {
    const topic = root();
    const bastion = await startPasswordServer({ user: 'tunnel', password: 'bastion-secret-7' });
    const subscriber = await subscribe(mosquitto.url, topic);
    const half = (from: number): string => {
      const out: string[] = [];
      for (let i = from; i < from + RECORDS / 2; i++) {
        out.push(recordLine(ORDERS, { id: i }));
        if (i % 500 === 0) out.push(streamStateLine(ORDERS, i));
      }
      return lines(...out);
    };
    try {
      const config = {
        ...base(topic),
        connections: 2,
        tunnel_method: {
          tunnel_method: 'SSH_PASSWORD_AUTH',
          tunnel_host: '127.0.0.1',
          tunnel_port: bastion.port,
          tunnel_user: 'tunnel',
          tunnel_user_password: 'bastion-secret-7',
        },
      };
      const run = startWrite(config, catalogOf([ORDERS]), {
        timeoutMs: 60_000,
        onSpawn: (child) => child.stdin?.write(half(1)),
      });
      await run.waitForLine(/"cursor":1500\b/);
      assert.equal(bastion.logins, 1, 'both MQTT connections share one SSH login');
      // The second half goes in, and the bastion drops the SSH connection under both MQTT connections while they send.
      run.child.stdin?.write(half(RECORDS / 2 + 1));
      await subscriber.waitFor(RECORDS / 2 + 100);
      bastion.dropConnections();
      run.child.stdin?.end();
      const result = await run.result;
      assert.equal(result.code, 0, result.stdout);
      assert.deepEqual(streamCursors(result), [500, 1000, 1500, 2000, 2500, 3000]);
      assert.equal(bastion.logins, 2, 'one new SSH login, shared again by both reconnections');
      assert.ok(
        logMessages(result, /reconnected after \d+ attempt/i).length >= 2,
        'both connections said they reconnected',
      );
      const delivered = await subscriber.waitFor(RECORDS);
      const ids = new Set(
        delivered.map((d) => (JSON.parse(d.payload) as { _airbyte_data: { id: number } })._airbyte_data.id),
      );
      for (let i = 1; i <= RECORDS; i++) assert.ok(ids.has(i), `record ${i} was lost`);
    } finally {
      await subscriber.close();
      await bastion.close();
    }
  });

  it('names the proxy in check, and tells a refused CONNECT from a broker that is not there behind the proxy', async () => {
    const topic = root();
    const through = { proxy_url: `http://127.0.0.1:${http.port}` };
    const ok = checkStatus(await runCheck({ ...base(topic), ...through }));
    assert.equal(ok.status, 'SUCCEEDED', ok.message);
    assert.match(ok.message, new RegExp(`through the proxy http://127\\.0\\.0\\.1:${http.port}`));
    // tinyproxy allows CONNECT to the broker's port only: another port is refused by the proxy itself.
    const elsewhere = await freePort();
    const refused = checkStatus(await runCheck({ ...base(topic), broker_port: elsewhere, ...through }));
    assert.equal(refused.status, 'FAILED');
    assert.match(refused.message, /refused|403/i);
    assert.doesNotMatch(refused.message, /not the broker|could not reach the broker/i);
    // Through SOCKS5 every port may be asked for: a closed one is a broker the proxy could not reach.
    const absent = checkStatus(
      await runCheck({
        ...base(topic),
        broker_port: elsewhere,
        proxy_url: `socks5://proxyuser@127.0.0.1:${socks.port}`,
        proxy_password: 'proxy-secret-1',
      }),
    );
    assert.equal(absent.status, 'FAILED');
    assert.match(absent.message, /proxy .* but not the broker|reached the proxy/i);
    assert.doesNotMatch(absent.message, /proxy-secret-1/);
    const wrong = checkStatus(
      await runCheck({
        ...base(topic),
        proxy_url: `socks5://proxyuser@127.0.0.1:${socks.port}`,
        proxy_password: 'not-the-password',
      }),
    );
    assert.equal(wrong.status, 'FAILED');
    assert.match(wrong.message, /user name and password/i);
    assert.doesNotMatch(wrong.message, /not-the-password/);
  });

  it('names the bastion and its host key in check, and refuses another key once one is pinned', async () => {
    const tunnel = {
      tunnel_method: 'SSH_KEY_AUTH',
      tunnel_host: '127.0.0.1',
      tunnel_port: sshd.port,
      tunnel_user: sshd.user,
      ssh_key: sshd.clientKey.privateKey,
    };
    const fingerprint = /SHA256:[A-Za-z0-9+/]{43}/.exec(
      execFileSync('ssh-keygen', ['-lf', sshd.hostKeyPath], { encoding: 'utf8' }),
    )?.[0];
    assert.ok(fingerprint);
    const ok = checkStatus(await runCheck({ ...base(root()), tunnel_method: tunnel }));
    assert.equal(ok.status, 'SUCCEEDED', ok.message);
    assert.match(ok.message, new RegExp(`through an SSH tunnel via ${sshd.user}@127\\.0\\.0\\.1:${sshd.port}`));
    assert.ok(ok.message.includes(fingerprint), ok.message);
    assert.match(ok.message, /accepted on first use; pin it in "Bastion host key fingerprint"/);
    const pinned = checkStatus(
      await runCheck({
        ...base(root()),
        tunnel_method: { ...tunnel, tunnel_host_key_fingerprint: `SHA256:${'A'.repeat(43)}` },
      }),
    );
    assert.equal(pinned.status, 'FAILED');
    assert.ok(pinned.message.includes(fingerprint), pinned.message);
    assert.doesNotMatch(pinned.message, /BEGIN OPENSSH/);
  });
});
