/**
 * A drop-in for Airbyte installations that still have the Java connector: the same definition id at a higher, major
 * version with a breaking-change entry, a changelog that continues from the Java versions, egress allowed however the
 * user names the broker, and a configuration saved by the Java connector syncing on Mosquitto as documented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { PROJECT_ROOT, runCheck, runWrite } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

const JAVA_DEFINITION_ID = 'f3802bc4-5406-4752-9e8d-01e504ca8194';
const JAVA_VERSIONS = ['0.1.3', '0.1.2', '0.1.1'];

interface Metadata {
  readonly definitionId: string;
  readonly dockerImageTag: string;
  readonly allowedHosts: { readonly hosts: readonly string[] };
  readonly releases?: {
    readonly breakingChanges?: Readonly<Record<string, { readonly message: string; readonly upgradeDeadline: string }>>;
  };
}

const metadata = (parse(readFileSync(join(PROJECT_ROOT, 'metadata.yaml'), 'utf8')) as { data: Metadata }).data;
const docs = readFileSync(join(PROJECT_ROOT, 'docs/mqtt.md'), 'utf8');

function versionParts(version: string): number[] {
  return version.split('.').map(Number);
}

function newer(a: string, b: string): boolean {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
}

/**
 * What the platform does with `allowedHosts` (airbyte-platform's ConfigReplacer): every `${key}` filled from the
 * configuration, an entry left unfilled dropped, and each value reduced to its host: scheme, user information and path
 * removed. For schemes java.net.URL does not know (mqtt, ws, ...) the port stays.
 */
function resolveAllowedHosts(hosts: readonly string[], config: Record<string, unknown>): string[] {
  const sanitize = (value: string): string => {
    const withoutScheme = value.includes('://') ? (value.split('://')[1] as string) : value;
    const authority = withoutScheme.split('/')[0] as string;
    return authority.includes('@') ? (authority.split('@')[1] as string) : authority;
  };
  return hosts
    .map((host) =>
      host.replace(/\$\{([^}]+)\}/g, (placeholder, key: string) => {
        // A nested field by its dotted path, as the platform reads `${tunnel_method.tunnel_host}`.
        let value: unknown = config;
        for (const part of key.split('.'))
          value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
        return typeof value === 'string' || typeof value === 'number' ? sanitize(String(value)) : placeholder;
      }),
    )
    .filter((host) => !host.includes('${'));
}

describe('drop-in for the Java connector', () => {
  it('uses the Java definition id at a major version above 0.1.3, with a breaking-change entry for it', () => {
    assert.equal(metadata.definitionId, JAVA_DEFINITION_ID);
    assert.ok(newer(metadata.dockerImageTag, '0.1.3'), metadata.dockerImageTag);
    const [major] = versionParts(metadata.dockerImageTag);
    assert.ok((major ?? 0) >= 1, 'topics and client IDs change for existing connections: a major version');
    const entry = metadata.releases?.breakingChanges?.[`${major}.0.0`];
    assert.ok(entry, `releases.breakingChanges has ${major}.0.0`);
    assert.match(entry.upgradeDeadline, /^\d{4}-\d{2}-\d{2}$/);
    assert.match(entry.message, /airbyte\/\/users/);
    assert.match(entry.message, /Client ID/);
    const migrations = readFileSync(join(PROJECT_ROOT, 'docs/mqtt-migrations.md'), 'utf8');
    assert.ok(migrations.includes(`\n## Upgrading to ${major}.0.0\n`), 'the default migration page has the section');
  });

  it('continues the changelog from the Java versions, newest first', () => {
    const versions = [...docs.slice(docs.indexOf('\n## Changelog\n')).matchAll(/^\| (\d+\.\d+\.\d+) \|/gm)].map(
      (m) => m[1] as string,
    );
    assert.deepEqual(versions, [metadata.dockerImageTag, ...JAVA_VERSIONS]);
  });

  it('allows egress to the broker however the user names it', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ broker_host: 'broker.example.com', broker_port: 8883, use_tls: true }, 'broker.example.com'],
      [{ broker_url: 'mqtts://broker.example.com' }, 'broker.example.com'],
      [{ broker_url: 'mqtt://airbyte@broker.example.com:1884' }, 'broker.example.com:1884'],
      [{ broker_url: 'wss://iot.example.com:443/mqtt' }, 'iot.example.com:443'],
      [{ broker_url: 'tcp://10.0.0.7:1883' }, '10.0.0.7:1883'],
    ];
    for (const [config, expected] of cases) {
      const resolved = resolveAllowedHosts(metadata.allowedHosts.hosts, config);
      assert.deepEqual(resolved, [expected], JSON.stringify(config));
    }
  });

  it('allows egress to the bastion, the proxy and the token endpoint the connector goes through', () => {
    const broker = { broker_host: 'mqtt.internal' };
    const cases: [Record<string, unknown>, string[]][] = [
      [{ ...broker, tunnel_method: { tunnel_method: 'NO_TUNNEL' } }, ['mqtt.internal']],
      [
        { ...broker, tunnel_method: { tunnel_method: 'SSH_KEY_AUTH', tunnel_host: 'bastion.example.com' } },
        ['mqtt.internal', 'bastion.example.com'],
      ],
      [{ ...broker, proxy_url: 'socks5h://proxy.corp:1080' }, ['mqtt.internal', 'proxy.corp:1080']],
      [
        {
          ...broker,
          auth_method: { auth_type: 'oauth2_client_credentials', token_url: 'https://login.example.com/t' },
        },
        ['mqtt.internal', 'login.example.com'],
      ],
    ];
    for (const [config, expected] of cases) {
      assert.deepEqual(resolveAllowedHosts(metadata.allowedHosts.hosts, config), expected, JSON.stringify(config));
    }
  });
});

describe('a configuration saved by the Java connector, on Mosquitto', { skip: mosquittoSkipReason() }, () => {
  const broker = withMosquitto();
  let subscriber: Subscriber;

  before(async () => {
    subscriber = await subscribe(broker.url, 'java/#');
  });
  after(() => subscriber?.close());

  it('checks and syncs unchanged, with its client ID and test topic, and no empty level for a missing namespace', async () => {
    const javaConfig = {
      broker_host: '127.0.0.1',
      broker_port: broker.port,
      use_tls: false,
      username: 'airbyte',
      password: 'java-era-password',
      topic_pattern: 'java/{namespace}/{stream}',
      topic_test: 'java/check',
      client: 'java-era-client',
      publisher_sync: false,
      connect_timeout: 30,
      automatic_reconnect: true,
      clean_session: true,
      message_retained: false,
      message_qos: 'AT_LEAST_ONCE',
    };
    const before = subscriber.messages.length;
    const checked = await runCheck(javaConfig);
    assert.match(
      String((checked.ofType('CONNECTION_STATUS')[0]?.connectionStatus as { status: string }).status),
      /SUCCEEDED/,
      checked.stdout,
    );
    const streams = [{ name: 'users', namespace: 'crm' }, { name: 'orders' }];
    const input = [
      recordLine(streams[0] ?? { name: '' }, { id: 1 }),
      recordLine(streams[1] ?? { name: '' }, { id: 2 }),
      streamStateLine({ name: 'orders' }, 2),
    ].join('\n');
    const result = await runWrite(javaConfig, catalogOf(streams), input);
    assert.equal(result.code, 0, result.stdout);
    const topics = (await subscriber.waitFor(before + 3)).slice(before).map((d) => d.topic);
    // The test message of check, then the records: "java//orders" under the Java connector.
    assert.deepEqual(topics, ['java/check', 'java/crm/users', 'java/orders']);
    assert.match(broker.log(), /as java-era-client/);
    assert.equal(result.states().length, 1);
  });
});
