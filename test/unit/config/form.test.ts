/**
 * The configuration form as the Airbyte platform renders and saves it (test/support/form.ts restates its rules):
 * what a newcomer sees before any click, and that whatever the form saves, defaults included, is a configuration
 * the connector accepts for every way of naming the broker.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toSettings } from '../../../src/config/settings.js';
import { connectorSpec } from '../../../src/config/spec.js';
import { PROJECT_ROOT } from '../../support/connector.js';
import { formCards, savedConfiguration, visibleFields } from '../../support/form.js';

const spec = connectorSpec() as unknown as { connectionSpecification: Record<string, unknown> };

/** Every way the form lets a user name the broker: a host, or a URL of each scheme, with and without port and path. */
const BROKER_FORMS: readonly Record<string, unknown>[] = [
  { broker_host: 'broker.example.com' },
  { broker_host: 'broker.example.com', broker_port: 8883, use_tls: true },
  { broker_host: 'broker.example.com', transport: 'websocket' },
  { broker_host: 'broker.example.com', broker_port: 8084, use_tls: true, transport: 'websocket', websocket_path: '/' },
  ...['tcp', 'mqtt', 'ssl', 'tls', 'mqtts', 'tcps'].flatMap((scheme) => [
    { broker_url: `${scheme}://broker.example.com` },
    { broker_url: `${scheme}://broker.example.com:1999` },
  ]),
  ...['ws', 'wss'].flatMap((scheme) => [
    { broker_url: `${scheme}://broker.example.com` },
    { broker_url: `${scheme}://broker.example.com:8084/mqtt` },
    { broker_url: `${scheme}://airbyte@broker.example.com:443/` },
  ]),
];

describe('the form a newcomer fills in', () => {
  it('shows where the broker goes, how to sign in and reach it, and the topic pattern before any click, and nothing else', () => {
    assert.deepEqual(visibleFields(spec), [
      'broker_url',
      'broker_host',
      'broker_port',
      'username',
      'password',
      'auth_method',
      'tunnel_method',
      'topic_pattern',
    ]);
  });

  it('opens the Broker, tunnel and Topics cards, keeps TLS and Session closed, and puts every other field under a closed section', () => {
    const cards = formCards(spec);
    assert.deepEqual(
      cards.map((card) => [card.title, card.open]),
      [
        ['Broker', true],
        ['TLS', false],
        ['SSH tunnel and proxy', true],
        ['Topics and messages', true],
        ['Batches, compression and status', false],
        ['Session and delivery', false],
      ],
    );
    const broker = cards[0];
    assert.deepEqual(
      broker?.sections.map((section) => section.open),
      [true, false],
    );
    assert.ok(broker?.sections[1]?.fields.includes('use_tls'));
  });

  it("is the README's first steps in Airbyte, field for field and in order", () => {
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n### In Airbyte\n');
    assert.ok(start > 0, 'the README has a section "In Airbyte" under the quick start');
    const section = readme.slice(start, readme.indexOf('\n## ', start));
    const named = [...section.matchAll(/\(`([a-z_]+)`\)/g)].map((m) => m[1]);
    assert.deepEqual(named, visibleFields(spec));
  });
});

describe('configurations as the form saves them', () => {
  it('fill in every default the spec declares', () => {
    const saved = savedConfiguration(spec, {
      broker_url: 'wss://broker.example.com:8084/mqtt',
      topic_pattern: 'airbyte/{stream}',
    });
    assert.equal(saved.transport, 'tcp');
    assert.equal(saved.use_tls, false);
    assert.equal(saved.websocket_path, '/mqtt');
    assert.equal(saved.broker_url, 'wss://broker.example.com:8084/mqtt');
  });

  for (const broker of BROKER_FORMS) {
    it(`are accepted with the broker as ${JSON.stringify(broker)}`, () => {
      for (const credentials of [{}, { username: 'airbyte', password: 'secret-pass' }]) {
        const saved = savedConfiguration(spec, {
          ...broker,
          ...credentials,
          topic_pattern: 'airbyte/{namespace}/{stream}',
        });
        const settings = toSettings(saved);
        const url = typeof broker.broker_url === 'string' ? new URL(broker.broker_url) : undefined;
        if (url) {
          // The URL decides, whatever transport and TLS the form saved by default.
          assert.equal(settings.broker.transport, url.protocol.startsWith('ws') ? 'websocket' : 'tcp');
          assert.equal(settings.broker.tls !== undefined, /^(ssl|tls|mqtts|tcps|wss):$/.test(url.protocol));
        }
      }
    });
  }

  it('still refuses a transport the user chose that contradicts the URL', () => {
    const saved = savedConfiguration(spec, {
      broker_url: 'mqtts://broker.example.com',
      transport: 'websocket',
      topic_pattern: 't',
    });
    assert.throws(
      () => toSettings(saved),
      /"Transport" \(transport\) is websocket but "Broker URL" \(broker_url\) names tcp/,
    );
  });
});
