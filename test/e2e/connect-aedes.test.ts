/**
 * Transports and protocol versions against aedes: MQTT 3.1 and 3.1.1 over TCP, MQTT over WebSocket (ws:// and wss://
 * through a real HTTP(S) server), and the errors for a wrong WebSocket path and an MQTT 5 connection aedes refuses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { runCheck, runWrite } from '../support/connector.js';
import { catalogOf, recordLine } from '../support/messages.js';
import { syncThreeRecords } from '../support/scenario.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

function checkStatus(result: Awaited<ReturnType<typeof runCheck>>): { status: string; message: string } {
  assert.equal(result.code, 0, result.stdout);
  return result.ofType('CONNECTION_STATUS')[0]?.connectionStatus as { status: string; message: string };
}

describe('aedes over TCP and WebSocket', () => {
  const broker = withAedes({}, { path: '/mqtt' });
  let subscriber: Subscriber;
  const protocols: string[] = [];
  before(async () => {
    broker.aedes.on('client', (client) =>
      protocols.push(`${client.id}:${(client as unknown as { version: number }).version}`),
    );
    subscriber = await subscribe(broker.url, '#');
  });
  after(() => subscriber?.close());

  for (const [version, wire] of [
    ['3.1', 3],
    ['3.1.1', 4],
  ] as const) {
    it(`publishes with MQTT ${version}`, async () => {
      await syncThreeRecords(
        { broker_host: '127.0.0.1', broker_port: broker.port, protocol_version: version, client: `v-${version}` },
        subscriber,
        `aedes-${version}`,
      );
      assert.ok(protocols.includes(`v-${version}:${wire}`), `aedes saw ${protocols.join(', ')}`);
    });
  }

  it('publishes over WebSocket with transport and websocket_path', async () => {
    await syncThreeRecords(
      { broker_host: '127.0.0.1', broker_port: broker.wsPort, transport: 'websocket', websocket_path: '/mqtt' },
      subscriber,
      'ws',
    );
  });

  it('publishes over WebSocket given as a ws:// URL with a path, at QoS 2', async () => {
    await syncThreeRecords(
      { broker_url: `ws://127.0.0.1:${broker.wsPort}/mqtt`, message_qos: 'EXACTLY_ONCE' },
      subscriber,
      'ws-url',
    );
  });

  it('sends many PUBLISH packets per WebSocket frame', async () => {
    const records = 2000;
    const input = Array.from({ length: records }, (_, i) => recordLine({ name: 's' }, { i })).join('\n');
    const before = broker.wsFrames.length;
    const result = await runWrite(
      {
        broker_url: `ws://127.0.0.1:${broker.wsPort}/mqtt`,
        topic_pattern: 'frames/{stream}',
        message_qos: 'AT_MOST_ONCE',
      },
      catalogOf([{ name: 's' }]),
      `${input}\n`,
    );
    assert.equal(result.code, 0, result.stdout);
    const frames = broker.wsFrames[before] ?? 0;
    // CONNECT and DISCONNECT take a frame each; 2,000 messages went out in far fewer frames than messages.
    assert.ok(frames >= 3 && frames < records / 10, `${frames} frames for ${records} messages`);
  });

  it('says so when the WebSocket path is wrong', async () => {
    const { status, message } = checkStatus(
      await runCheck({ broker_url: `ws://127.0.0.1:${broker.wsPort}/wrong`, topic_pattern: 't' }),
    );
    assert.equal(status, 'FAILED');
    assert.match(
      message,
      /WebSocket handshake with ws:\/\/127\.0\.0\.1:\d+\/wrong was refused with HTTP 400; check "WebSocket path" \(websocket_path, now "\/wrong"\)/,
    );
  });

  it('says so when the broker does not speak the configured protocol version', async () => {
    const { status, message } = checkStatus(
      await runCheck({ broker_host: '127.0.0.1', broker_port: broker.port, topic_pattern: 't', protocol_version: '5' }),
    );
    assert.equal(status, 'FAILED');
    assert.match(message, /does not accept MQTT 5; set "MQTT protocol version" \(protocol_version\)/);
  });
});

describe('aedes over secure WebSocket', { skip: opensslSkipReason() }, () => {
  let certs: TestCertificates;
  const broker = withAedes(() => {
    certs = generateCertificates();
    return [
      {},
      { path: '/mqtt', tls: { cert: certs.serverCert, key: certs.serverKey } },
      { cert: certs.serverCert, key: certs.serverKey, ALPNProtocols: ['x-amzn-mqtt-ca'] },
    ];
  });
  let subscriber: Subscriber;
  before(async () => {
    subscriber = await subscribe(broker.url, '#');
  });
  after(() => subscriber?.close());

  it('publishes over wss:// with a private CA and reports the TLS session', async () => {
    await syncThreeRecords(
      { broker_url: `wss://localhost:${broker.wsPort}/mqtt`, tls_ca_certificate: certs.caCert },
      subscriber,
      'wss',
    );
    const { status, message } = checkStatus(
      await runCheck({
        broker_url: `wss://localhost:${broker.wsPort}/mqtt`,
        tls_ca_certificate: certs.caCert,
        topic_pattern: 't',
      }),
    );
    assert.equal(status, 'SUCCEEDED', message);
    assert.match(
      message,
      /Connected to wss:\/\/localhost:\d+\/mqtt over TLSv1\.3 \(broker certificate CN=localhost, issued by CN=destination-mqtt Test CA\)/,
    );
  });

  it('offers the configured ALPN protocol (as AWS IoT on port 443 requires)', async () => {
    await syncThreeRecords(
      {
        broker_url: `mqtts://localhost:${broker.tlsPort}`,
        tls_ca_certificate: certs.caCert,
        tls_alpn_protocols: ['x-amzn-mqtt-ca'],
      },
      subscriber,
      'alpn',
    );
    assert.equal(broker.alpn.at(-1), 'x-amzn-mqtt-ca');
    const { status } = checkStatus(
      await runCheck({
        broker_url: `mqtts://localhost:${broker.tlsPort}`,
        tls_ca_certificate: certs.caCert,
        tls_alpn_protocols: ['h2'],
        topic_pattern: 't',
        connect_timeout: 5,
      }),
    );
    assert.equal(status, 'FAILED', 'a server that requires another ALPN protocol refuses the handshake');
  });

  it('verifies the certificate against tls_server_name when connecting by IP address', async () => {
    await syncThreeRecords(
      {
        broker_url: `wss://127.0.0.1:${broker.wsPort}/mqtt`,
        tls_ca_certificate: certs.caCert,
        tls_server_name: 'localhost',
      },
      subscriber,
      'sni',
    );
  });

  it('fails with an unknown CA over wss:// too', async () => {
    const { status, message } = checkStatus(
      await runCheck({ broker_url: `wss://localhost:${broker.wsPort}/mqtt`, topic_pattern: 't' }),
    );
    assert.equal(status, 'FAILED');
    assert.match(message, /signed by an unknown certificate authority/);
  });
});
