import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBrokerUrl } from '../../../src/config/broker-url.js';
import { toSettings } from '../../../src/config/settings.js';
import { ConfigError } from '../../../src/errors.js';

function address(url: string) {
  const parsed = parseBrokerUrl(url);
  assert.ok(!(parsed instanceof Error), parsed instanceof Error ? parsed.message : '');
  return parsed;
}

describe('parseBrokerUrl', () => {
  it('understands every scheme other MQTT tools use, with their default ports', () => {
    const cases: [string, boolean, string, number][] = [
      ['tcp://h', false, 'tcp', 1883],
      ['mqtt://h', false, 'tcp', 1883],
      ['ssl://h', true, 'tcp', 8883],
      ['tls://h', true, 'tcp', 8883],
      ['mqtts://h', true, 'tcp', 8883],
      ['tcps://h', true, 'tcp', 8883],
      ['ws://h', false, 'websocket', 80],
      ['wss://h', true, 'websocket', 443],
      ['MQTTS://h:1234', true, 'tcp', 1234],
    ];
    for (const [url, useTls, transport, port] of cases) {
      const parsed = address(url);
      assert.deepEqual(
        [parsed.useTls, parsed.transport, parsed.port, parsed.host],
        [useTls, transport, port, 'h'],
        url,
      );
    }
  });

  it('decodes percent-encoded credentials', () => {
    const parsed = address('mqtt://us%40er:p%3Ass%2Fw%40rd@broker.example.com:1884');
    assert.equal(parsed.username, 'us@er');
    assert.equal(parsed.password, 'p:ss/w@rd');
    assert.equal(parsed.host, 'broker.example.com');
    assert.equal(parsed.port, 1884);
    assert.equal(address('mqtt://h').username, undefined);
  });

  it('keeps a WebSocket path only when one is written', () => {
    assert.equal(address('wss://h:8084/mqtt').path, '/mqtt');
    assert.equal(address('ws://h/').path, '/');
    assert.equal(address('ws://h:8083').path, undefined);
    assert.equal(address('mqtt://h/').path, undefined);
  });

  it('handles IPv6 literals', () => {
    assert.equal(address('mqtt://[::1]:1883').host, '::1');
  });

  it('explains what is wrong, never quoting the password', () => {
    const messages = ['http://h', 'h:1883', 'mqtt://', 'mqtt://h/path', 'mqtt://h?x=1', 'mqtt://u:%zz@h'].map((url) => {
      const parsed = parseBrokerUrl(url);
      assert.ok(parsed instanceof Error, url);
      return parsed.message;
    });
    assert.match(messages[0] ?? '', /must start with one of tcp:\/\/, mqtt:\/\/, ssl:\/\//);
    assert.match(messages[1] ?? '', /must start with/);
    assert.match(messages[2] ?? '', /not a valid URL|names no host/);
    assert.match(messages[3] ?? '', /a path only applies to ws:\/\/ and wss:\/\/ URLs, not mqtt:\/\//);
    assert.match(messages[4] ?? '', /query/);
    assert.match(messages[5] ?? '', /password is not correctly percent-encoded/);
    assert.doesNotMatch(messages.join(' '), /%zz/);
  });
});

describe('settings from a broker URL', () => {
  const base = { topic_pattern: 't' };
  it('takes host, port, TLS, transport, path and user name from the URL', () => {
    const s = toSettings({ ...base, broker_url: 'wss://bob@broker.example.com:8084/ws', password: 'secret' });
    assert.deepEqual(
      [
        s.broker.host,
        s.broker.port,
        s.broker.transport,
        s.broker.websocketPath,
        s.broker.username,
        s.broker.password,
        s.broker.tls !== undefined,
      ],
      ['broker.example.com', 8084, 'websocket', '/ws', 'bob', 'secret', true],
    );
    assert.ok(s.secrets.includes('secret'));
    assert.equal(toSettings({ ...base, broker_url: 'ws://h' }).broker.websocketPath, '/mqtt');
    assert.equal(
      toSettings({ ...base, broker_url: 'ws://h', websocket_path: '/custom' }).broker.websocketPath,
      '/custom',
    );
  });

  it('rejects broker_url together with broker_host or broker_port, naming both', () => {
    assert.throws(
      () => toSettings({ ...base, broker_url: 'mqtt://h', broker_host: 'h', broker_port: 1883 }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /set either "Broker URL" \(broker_url\) or broker_host, not both/);
        assert.match(err.message, /set either "Broker URL" \(broker_url\) or broker_port, not both/);
        return true;
      },
    );
  });

  it('rejects contradictions between the URL and other keys', () => {
    assert.throws(() => toSettings({ ...base, broker_url: 'mqtt://h', use_tls: true }), /names a plain connection/);
    assert.throws(
      () => toSettings({ ...base, broker_url: 'mqtt://h', transport: 'websocket' }),
      /"Transport" \(transport\) is websocket but "Broker URL" \(broker_url\) names tcp/,
    );
    assert.throws(
      () => toSettings({ ...base, broker_url: 'gopher://h' }),
      /"Broker URL" \(broker_url\) is invalid: it must start with/,
    );
  });

  it('refuses a password in the URL, which the platform would keep in clear, pointing to the password field', () => {
    for (const config of [
      { ...base, broker_url: 'mqtt://bob:hunter2-long@h' },
      { ...base, broker_url: 'mqtts://bob:hunter2-long@h:8883', password: 'other' },
      { ...base, broker_url: 'ws://:hunter2-long@h/mqtt', username: 'bob' },
    ]) {
      assert.throws(
        () => toSettings(config),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(
            err.message,
            /"Broker URL" \(broker_url\) carries a password, .* enter it in "Password" \(password\), which is kept secret/,
          );
          assert.doesNotMatch(err.message, /hunter2/);
          return true;
        },
      );
    }
  });

  it('defaults ports by transport and TLS when given host and flags', () => {
    const port = (extra: Record<string, unknown>): number =>
      toSettings({ ...base, broker_host: 'h', ...extra }).broker.port;
    assert.equal(port({}), 1883);
    assert.equal(port({ use_tls: true }), 8883);
    assert.equal(port({ transport: 'websocket' }), 80);
    assert.equal(port({ transport: 'websocket', use_tls: true }), 443);
  });

  it('rejects TLS settings on a plain connection and MQTT 5 options on MQTT 3.1.1', () => {
    assert.throws(
      () => toSettings({ ...base, broker_host: 'h', tls_server_name: 'x' }),
      /TLS settings \(tls_\*\) are given but the connection does not use TLS/,
    );
    assert.throws(() => toSettings({ ...base, broker_host: 'h', message_expiry_seconds: 60 }), /needs MQTT 5/);
  });
});
