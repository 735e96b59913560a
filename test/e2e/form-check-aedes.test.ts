/**
 * `check` on configurations exactly as the Airbyte form saves them (every default filled in, test/support/form.ts),
 * for every way of naming the broker: a host, and a URL of each scheme, over TCP, TLS, WebSocket and secure WebSocket,
 * against real listeners. A newcomer who types a URL must not be told to remove a field the form filled in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectorSpec } from '../../src/config/spec.js';
import { type EmbeddedBroker, startAedes } from '../support/aedes.js';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { checkStatus, runCheck } from '../support/connector.js';
import { savedConfiguration } from '../support/form.js';

const skip = opensslSkipReason();
const spec = connectorSpec() as unknown as { connectionSpecification: Record<string, unknown> };

describe('check on configurations as the form saves them', { skip }, () => {
  let certs: TestCertificates;
  let plain: EmbeddedBroker;
  let secureWebSocket: EmbeddedBroker;
  before(async () => {
    certs = generateCertificates();
    const tls = { cert: certs.serverCert, key: certs.serverKey };
    plain = await startAedes({}, { path: '/mqtt' }, tls);
    secureWebSocket = await startAedes({}, { path: '/mqtt', tls });
  });
  after(async () => {
    await plain?.close();
    await secureWebSocket?.close();
  });

  const forms = (): [string, Record<string, unknown>][] => [
    ['broker_host', { broker_host: '127.0.0.1', broker_port: plain.port }],
    ['broker_host with TLS', { broker_host: 'localhost', broker_port: plain.tlsPort, use_tls: true }],
    ['broker_host over WebSocket', { broker_host: '127.0.0.1', broker_port: plain.wsPort, transport: 'websocket' }],
    ...['tcp', 'mqtt'].map((scheme): [string, Record<string, unknown>] => [
      `${scheme}://`,
      { broker_url: `${scheme}://127.0.0.1:${plain.port}` },
    ]),
    ...['ssl', 'tls', 'mqtts', 'tcps'].map((scheme): [string, Record<string, unknown>] => [
      `${scheme}://`,
      { broker_url: `${scheme}://localhost:${plain.tlsPort}` },
    ]),
    ['ws://', { broker_url: `ws://127.0.0.1:${plain.wsPort}/mqtt` }],
    ['ws:// without a path (the form saves websocket_path /mqtt)', { broker_url: `ws://127.0.0.1:${plain.wsPort}` }],
    ['wss://', { broker_url: `wss://localhost:${secureWebSocket.wsPort}/mqtt` }],
  ];

  it('succeeds for every way of naming the broker', async () => {
    for (const [name, form] of forms()) {
      const usesTls = form.use_tls === true || /^(ssl|tls|mqtts|tcps|wss):/.test(String(form.broker_url));
      const input: Record<string, unknown> = {
        ...form,
        topic_pattern: 'airbyte/{namespace}/{stream}',
        ...(usesTls ? { tls_ca_certificate: certs.caCert } : {}),
      };
      const saved = savedConfiguration(spec, input);
      // What the form filled in that the user did not type: these must not get in the way.
      assert.equal(saved.transport, input.transport ?? 'tcp', name);
      const { status, message } = checkStatus(await runCheck(saved));
      assert.equal(status, 'SUCCEEDED', `${name}: ${message}`);
    }
  });
});
