/**
 * Connecting to Mosquitto the ways users do: plain, with a password file, over TLS with a private CA, with client
 * certificates (also with an encrypted key), and over MQTT 5 with the broker announcing limits. Each success writes
 * records and checks them on the broker side; each failure checks the message a user would read.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { type RunResult, runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { findExecutable, mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { startProxy } from '../support/proxy.js';
import { syncThreeRecords } from '../support/scenario.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason() ?? opensslSkipReason();
const USER = 'airbyte';
const PASSWORD = 'pa55:word/with@special%chars';

function failed(result: RunResult, pattern: RegExp): void {
  const { status: outcome, message } = status(result);
  assert.equal(outcome, 'FAILED', message);
  assert.match(message, pattern);
}

function passwordFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'passwd-'));
  const file = join(dir, 'passwd');
  execFileSync(findExecutable('mosquitto_passwd') ?? 'mosquitto_passwd', ['-c', '-b', file, USER, PASSWORD]);
  return readFileSync(file, 'utf8');
}

describe('connecting to Mosquitto', { skip }, () => {
  let certs: TestCertificates;
  const broker = withMosquitto(() => {
    certs = generateCertificates();
    const tls = (dir: string): string => `cafile ${dir}/ca.crt\ncertfile ${dir}/server.crt\nkeyfile ${dir}/server.key`;
    return {
      config: 'per_listener_settings true',
      portCount: 4,
      files: {
        passwd: passwordFile(),
        'ca.crt': certs.caCert,
        'server.crt': certs.serverCert,
        'server.key': certs.serverKey,
      },
      listeners: ([p0, p1, p2, p3], dir) =>
        [
          `listener ${p0} 127.0.0.1\nallow_anonymous true`,
          `listener ${p1} 127.0.0.1\nallow_anonymous false\npassword_file ${dir}/passwd`,
          `listener ${p2} 127.0.0.1\nallow_anonymous true\n${tls(dir)}`,
          `listener ${p3} 127.0.0.1\nallow_anonymous true\n${tls(dir)}\nrequire_certificate true`,
        ].join('\n'),
    };
  });
  let subscriber: Subscriber;
  let plain: number;
  let secured: number;
  let tlsPort: number;
  let mtls: number;

  before(async () => {
    [plain, secured, tlsPort, mtls] = broker.ports as [number, number, number, number];
    subscriber = await subscribe(broker.url, '#');
  });
  after(() => subscriber?.close());

  it('publishes over a plain connection given as a broker URL', async () => {
    await syncThreeRecords({ broker_url: `tcp://127.0.0.1:${plain}` }, subscriber, 'url-plain');
  });

  it('publishes with the MQTT 3.1 protocol', async () => {
    const { result } = await syncThreeRecords(
      { broker_host: '127.0.0.1', broker_port: plain, protocol_version: '3.1' },
      subscriber,
      'v31',
    );
    assert.match(broker.log(), /New client connected .* as airbyte-.* \(p1,/);
    assert.equal(result.ofType('TRACE').length, 0);
  });

  it('authenticates with a password file, also with the user name in the URL', async () => {
    await syncThreeRecords(
      { broker_host: '127.0.0.1', broker_port: secured, username: USER, password: PASSWORD },
      subscriber,
      'passwd',
    );
    await syncThreeRecords(
      { broker_url: `mqtt://${USER}@127.0.0.1:${secured}`, password: PASSWORD },
      subscriber,
      'passwd-url',
    );
  });

  it('reports refused credentials and missing authorisation without printing the password', async () => {
    const wrong = await runCheck({
      broker_host: '127.0.0.1',
      broker_port: secured,
      topic_pattern: 't',
      username: USER,
      password: 'not-the-password',
    });
    failed(
      wrong,
      /refused the credentials; check "Username" \(username\) and "Password"|does not authorise user "airbyte"/,
    );
    assert.doesNotMatch(wrong.stdout + wrong.stderr, /not-the-password/);
    failed(
      await runCheck({ broker_host: '127.0.0.1', broker_port: secured, topic_pattern: 't' }),
      /does not authorise this client|refused the credentials; check "Username" \(username\) and "Password"/,
    );
    // write fails the same way, as a config_error the user can act on.
    const write = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: secured,
        topic_pattern: 't/{stream}',
        username: USER,
        password: 'not-the-password',
      },
      catalogOf([{ name: 's' }]),
      `${recordLine({ name: 's' }, { a: 1 })}\n`,
    );
    assert.equal(write.code, 1);
    assert.equal(write.traceError().failure_type, 'config_error');
    assert.match(
      String(write.traceError().message),
      /refused the credentials; check "Username" \(username\) and "Password"|does not authorise user "airbyte"/,
    );
    assert.doesNotMatch(write.stdout + write.stderr, /not-the-password/);
    assert.equal(write.states().length, 0);
  });

  it('connects over TLS with a pasted CA (literal \\n too) and reports the TLS session in check', async () => {
    const pasted = certs.caCert.replace(/\n/g, '\\n');
    await syncThreeRecords(
      { broker_host: 'localhost', broker_port: tlsPort, use_tls: true, tls_ca_certificate: pasted },
      subscriber,
      'tls',
    );
    const { status: outcome, message } = status(
      await runCheck({
        broker_url: `mqtts://localhost:${tlsPort}`,
        topic_pattern: 't',
        tls_ca_certificate: certs.path('ca.crt'),
        topic_test: 'tls/check',
      }),
    );
    assert.equal(outcome, 'SUCCEEDED', message);
    assert.match(
      message,
      /Connected to mqtts:\/\/localhost:\d+ over TLSv1\.[23] \(broker certificate CN=localhost, issued by CN=destination-mqtt Test CA\) with MQTT 3\.1\.1/,
    );
    assert.match(message, /Test message on "tls\/check" at QoS 1 accepted/);
  });

  it('fails with a plain message for an unknown CA, a host name mismatch, and TLS against a plain port and back', async () => {
    failed(
      await runCheck({ broker_host: 'localhost', broker_port: tlsPort, use_tls: true, topic_pattern: 't' }),
      /signed by an unknown certificate authority/,
    );
    failed(
      await runCheck({
        broker_host: 'localhost',
        broker_port: tlsPort,
        use_tls: true,
        topic_pattern: 't',
        tls_ca_certificate: certs.otherCaCert,
        tls_ca_only: true,
      }),
      /signed by an unknown certificate authority/,
    );
    failed(
      await runCheck({
        broker_host: '127.0.0.1',
        broker_port: tlsPort,
        use_tls: true,
        topic_pattern: 't',
        tls_ca_certificate: certs.caCert,
        tls_server_name: 'broker.example.com',
      }),
      /does not match the host name "broker\.example\.com"/,
    );
    failed(
      await runCheck({
        broker_host: 'localhost',
        broker_port: plain,
        use_tls: true,
        topic_pattern: 't',
        tls_ca_certificate: certs.caCert,
        connect_timeout: 5,
      }),
      /does not speak TLS/,
    );
    failed(
      await runCheck({ broker_host: 'localhost', broker_port: tlsPort, topic_pattern: 't', connect_timeout: 3 }),
      /If it expects TLS, turn on "Use TLS"|did not accept the connection/,
    );
  });

  it('skips verification when asked, with a warning', async () => {
    const result = await runCheck({
      broker_host: '127.0.0.1',
      broker_port: tlsPort,
      use_tls: true,
      topic_pattern: 't',
      tls_insecure_skip_verify: true,
    });
    assert.equal(status(result).status, 'SUCCEEDED');
    assert.match(result.stdout, /"level":"WARN","message":"TLS certificate verification is off/);
  });

  it('presents a client certificate (files, and an encrypted key with its passphrase)', async () => {
    const base = {
      broker_host: 'localhost',
      broker_port: mtls,
      use_tls: true,
      tls_ca_certificate: certs.path('ca.crt'),
    };
    await syncThreeRecords(
      { ...base, tls_client_certificate: certs.path('client.crt'), tls_client_key: certs.path('client.key') },
      subscriber,
      'mtls',
    );
    await syncThreeRecords(
      {
        ...base,
        tls_client_certificate: certs.clientCert,
        tls_client_key: certs.clientKeyEncrypted,
        tls_client_key_passphrase: certs.clientKeyPassphrase,
      },
      subscriber,
      'mtls-encrypted',
    );
  });

  it('says when the broker requires a client certificate or rejects the one given', async () => {
    const base = {
      broker_host: 'localhost',
      broker_port: mtls,
      use_tls: true,
      topic_pattern: 't',
      tls_ca_certificate: certs.caCert,
      connect_timeout: 5,
    };
    failed(
      await runCheck(base),
      /requires a client certificate|closed the connection without accepting it.*client certificate/,
    );
    failed(
      await runCheck({
        ...base,
        tls_client_certificate: certs.untrustedClientCert,
        tls_client_key: certs.untrustedClientKey,
      }),
      /rejected the client certificate|client certificate/,
    );
  });

  it('rejects unusable TLS material before connecting, naming the field', async () => {
    const base = {
      broker_host: 'localhost',
      broker_port: mtls,
      use_tls: true,
      topic_pattern: 't',
      tls_ca_certificate: certs.caCert,
    };
    failed(
      await runCheck({
        ...base,
        tls_client_certificate: certs.clientCert,
        tls_client_key: certs.clientKeyEncrypted,
        tls_client_key_passphrase: 'wrong',
      }),
      /"Client key passphrase" \(tls_client_key_passphrase\) does not decrypt the client key/,
    );
    failed(
      await runCheck({ ...base, tls_client_certificate: certs.clientCert, tls_client_key: certs.clientKeyEncrypted }),
      /\(tls_client_key\) is encrypted; set "Client key passphrase"/,
    );
    failed(
      await runCheck({
        ...base,
        tls_client_certificate: certs.expiredClientCert,
        tls_client_key: certs.path('expired.key'),
      }),
      /"Client certificate" \(tls_client_certificate\) expired on/,
    );
    failed(
      await runCheck({ ...base, tls_client_certificate: certs.clientCert, tls_client_key: certs.untrustedClientKey }),
      /\(tls_client_key\) does not belong to "Client certificate"/,
    );
    failed(
      await runCheck({ ...base, tls_ca_certificate: 'missing/ca.pem' }),
      // The field is secret, so the path given in it is masked like any value of a secret field.
      /"CA certificate" \(tls_ca_certificate\) is not PEM text, and the file \S*\*{10} cannot be read \(ENOENT\)/,
    );
    failed(
      await runCheck({
        ...base,
        tls_ca_certificate: '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----',
      }),
      /holds a certificate that cannot be parsed/,
    );
  });
});

describe('MQTT 5 against Mosquitto with announced limits', { skip }, () => {
  const broker = withMosquitto({
    config: 'max_packet_size 2048\nretain_available false',
    files: { acl: 'topic deny denied/#\ntopic readwrite #\n' },
    listeners: ([p], dir) => `listener ${p} 127.0.0.1\nallow_anonymous true\nmax_qos 1\nacl_file ${dir}/acl`,
  });
  let subscriber: Subscriber;
  before(async () => {
    subscriber = await subscribe(broker.url, '#', { protocolVersion: 5 });
  });
  after(() => subscriber?.close());

  const v5 = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: broker.port,
    protocol_version: '5',
    ...overrides,
  });

  it('sends content type, payload format and Airbyte user properties with every message', async () => {
    const { deliveries } = await syncThreeRecords(v5({ message_expiry_seconds: 3600 }), subscriber, 'v5');
    for (const [i, delivery] of deliveries.entries()) {
      assert.equal(delivery.properties?.contentType, 'application/json');
      assert.equal(delivery.properties?.payloadFormatIndicator, true);
      const { airbyte_record_id: id, ...rest } = { ...delivery.properties?.userProperties };
      assert.deepEqual(rest, {
        airbyte_stream: 'readings',
        airbyte_namespace: 'plant',
        airbyte_emitted_at: String(1_700_000_000_000 + i),
      });
      // The record id, the same one the envelope carries.
      assert.equal(id, (JSON.parse(delivery.payload) as { _airbyte_ab_id: string })._airbyte_ab_id);
      assert.ok((delivery.properties?.messageExpiryInterval ?? 0) > 3500);
    }
  });

  it('keeps within the broker Receive Maximum and sends repeated topics as aliases', async () => {
    const proxy = await startProxy(broker.port);
    try {
      // Long enough that repeating it would dwarf the payloads, short enough for the broker's 2048-byte packet limit.
      const topic = `alias/${'long-level/'.repeat(140)}`;
      const records = 300;
      const input = Array.from({ length: records }, (_, i) => recordLine({ name: 's' }, { i })).join('\n');
      const result = await runWrite(
        v5({ broker_port: proxy.port, topic_pattern: `${topic}{stream}`, max_inflight: 5000 }),
        catalogOf([{ name: 's' }]),
        `${input}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /up to 20 message\(s\) in flight/, 'Mosquitto announces a Receive Maximum of 20');
      await subscriber.waitFor(records);
      assert.ok(
        proxy.upstreamBytes < records * topic.length,
        `${proxy.upstreamBytes} bytes sent: the ${topic.length}-byte topic was repeated`,
      );
    } finally {
      await proxy.close();
    }
  });

  it('fails with the reason name when the broker refuses a message', async () => {
    const input = [recordLine({ name: 's' }, { a: 1 }), streamStateLine({ name: 's' }, 'after')].join('\n');
    const result = await runWrite(v5({ topic_pattern: 'denied/{stream}' }), catalogOf([{ name: 's' }]), `${input}\n`);
    assert.equal(result.code, 1, result.stdout);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /The broker refused a message on topic "denied\/s": Not authorized \(reason code 0x87\)/,
    );
    assert.equal(result.states().length, 0);
  });

  it('leaves user properties out when asked', async () => {
    const { deliveries } = await syncThreeRecords(v5({ mqtt5_user_properties: false }), subscriber, 'v5-bare');
    assert.equal(deliveries[0]?.properties?.userProperties, undefined);
    assert.equal(deliveries[0]?.properties?.contentType, 'application/json');
  });

  it('reports the broker limits in check, and refuses a QoS or retain the broker does not offer', async () => {
    const ok = status(await runCheck(v5({ topic_pattern: 't', topic_test: 'v5/check' })));
    assert.equal(ok.status, 'SUCCEEDED', ok.message);
    assert.match(
      ok.message,
      /with MQTT 5 .*Broker limits: maximum QoS 1, retain not available, .*maximum packet size 2048 bytes/,
    );
    failed(
      await runCheck(v5({ topic_pattern: 't', message_qos: 'EXACTLY_ONCE' })),
      /accepts messages up to QoS 1 only; lower "Message QoS"/,
    );
    failed(await runCheck(v5({ topic_pattern: 't', message_retained: true })), /does not support retained messages/);
    const write = await runWrite(
      v5({ topic_pattern: 't/{stream}', message_qos: 'EXACTLY_ONCE' }),
      catalogOf([{ name: 's' }]),
      `${recordLine({ name: 's' }, { a: 1 })}\n`,
    );
    assert.equal(write.code, 1);
    assert.equal(write.traceError().failure_type, 'config_error');
  });

  it('fails before sending a record larger than the maximum packet size, naming stream, line and size', async () => {
    const input = [recordLine({ name: 's' }, { small: 1 }), recordLine({ name: 's' }, { big: 'x'.repeat(3000) })].join(
      '\n',
    );
    const result = await runWrite(v5({ topic_pattern: 'big/{stream}' }), catalogOf([{ name: 's' }]), input);
    assert.equal(result.code, 1, result.stdout);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /^Input line 2: the record of stream "s" makes a 3\d{3}-byte MQTT message, larger than the 2048 bytes the broker accepts/,
    );
    assert.doesNotMatch(broker.log(), /Client airbyte-.* disconnected due to (protocol error|oversize)/);
  });

  it('counts messages the broker accepted with no matching subscribers, per topic', async () => {
    const input = [1, 2].map((i) => recordLine({ name: 'lonely' }, { i })).join('\n');
    // The test subscriber listens on '#'; a subscription-free broker is needed, so use a second connection's view:
    // unsubscribe first, then resubscribe afterwards.
    await subscriber.client.unsubscribeAsync('#');
    try {
      const result = await runWrite(
        v5({ topic_pattern: 'nobody/{stream}' }),
        catalogOf([{ name: 'lonely' }]),
        `${input}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.match(
        result.stdout,
        /Stream \\"lonely\\": 2 record\(s\), \d+ payload bytes, published to \\"nobody\/lonely\\"; the broker reported no matching subscribers for 2 of them/,
      );
    } finally {
      await subscriber.client.subscribeAsync('#', { qos: 2 });
    }
  });
});

describe('Mosquitto over WebSocket', { skip }, () => {
  let certs: TestCertificates;
  const broker = withMosquitto(() => {
    certs = generateCertificates();
    // WebSocket listeners get no bind address: this Mosquitto's libwebsockets backend refuses to start with one.
    return {
      portCount: 3,
      files: { 'ca.crt': certs.caCert, 'server.crt': certs.serverCert, 'server.key': certs.serverKey },
      listeners: ([p0, p1, p2], dir) =>
        [
          `listener ${p0} 127.0.0.1\nallow_anonymous true`,
          `listener ${p1}\nprotocol websockets`,
          `listener ${p2}\nprotocol websockets\ncafile ${dir}/ca.crt\ncertfile ${dir}/server.crt\nkeyfile ${dir}/server.key`,
        ].join('\n'),
    };
  });
  let subscriber: Subscriber;
  before(async () => {
    subscriber = await subscribe(broker.url, '#');
  });
  after(() => subscriber?.close());

  it('publishes over ws:// and wss://', async () => {
    await syncThreeRecords({ broker_url: `ws://127.0.0.1:${broker.ports[1]}/mqtt` }, subscriber, 'mosquitto-ws');
    await syncThreeRecords(
      { broker_url: `wss://localhost:${broker.ports[2]}/mqtt`, tls_ca_certificate: certs.caCert },
      subscriber,
      'mosquitto-wss',
    );
  });
});
