/**
 * The broker part of the settings, called directly on configurations as the Airbyte form saves them
 * (test/support/form.ts), for what settings.test.ts and broker-url.test.ts leave out: the lists of problems and
 * warnings it adds to, a broker URL beside the other broker keys, TLS and its warning, the client ID under Azure IoT
 * Hub, what the sign-in checks and the way to the broker are handed, and the URL password kept out of messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BrokerSettings, brokerSettings, urlPassword } from '../../../src/config/broker-settings.js';
import type { Config } from '../../../src/config/config-values.js';
import { toSettings } from '../../../src/config/settings.js';
import { connectorSpec } from '../../../src/config/spec.js';
import { savedConfiguration, savedVariant } from '../../support/form.js';

const spec = connectorSpec() as unknown as { connectionSpecification: Record<string, unknown> };

const DEVICE_KEY = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=';
const OAUTH2 = { token_url: 'https://login.example.com/token', client_id: 'app', client_secret: 'client-secret-9f2' };

/** What the form saves once the user has filled in `input`. */
function saved(input: Record<string, unknown>): Config {
  return savedConfiguration(spec, { topic_pattern: 'airbyte/{stream}', ...input });
}

function authMethod(type: string, fields: Record<string, unknown>): Record<string, unknown> {
  return savedVariant(spec, 'auth_method', type, fields);
}

function broker(config: Config, connections = 1): { broker: BrokerSettings; problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  return { broker: brokerSettings(config, problems, warnings, connections), problems, warnings };
}

describe('brokerSettings', () => {
  it('adds its problems and warnings after those already in the lists, and throws none of them', () => {
    const problems = ['earlier problem'];
    const warnings = ['earlier warning'];
    brokerSettings(
      saved({ broker_url: 'mqtts://bob@broker.example.com', username: 'alice', tls_insecure_skip_verify: true }),
      problems,
      warnings,
      1,
    );
    assert.equal(problems.length, 2);
    assert.equal(problems[0], 'earlier problem');
    assert.match(problems[1] ?? '', /user name/);
    assert.equal(warnings.length, 2);
    assert.equal(warnings[0], 'earlier warning');
  });

  it('takes the user name from the broker URL or from Username, and refuses two different ones', () => {
    const same = broker(saved({ broker_url: 'mqtt://bob@broker.example.com', username: 'bob' }));
    assert.equal(same.broker.username, 'bob');
    assert.deepEqual(same.problems, []);
    assert.deepEqual(broker(saved({ broker_url: 'mqtt://bob@broker.example.com', username: 'alice' })).problems, [
      'give the user name either in "Broker URL" (broker_url) or in "Username" (username), not both (they differ)',
    ]);
  });

  it('accepts a transport and TLS the user chose that agree with the broker URL', () => {
    for (const input of [
      { broker_url: 'wss://broker.example.com/mqtt', transport: 'websocket', use_tls: true },
      { broker_url: 'ws://broker.example.com/mqtt', transport: 'websocket' },
      { broker_url: 'mqtts://broker.example.com', transport: 'tcp', use_tls: true },
    ]) {
      assert.deepEqual(broker(saved(input)).problems, [], JSON.stringify(input));
    }
  });

  it('names a transport that is no string by its JSON when it contradicts the URL', () => {
    assert.deepEqual(broker(saved({ broker_url: 'ws://broker.example.com', transport: 7 })).problems, [
      '"Transport" (transport) is 7 but "Broker URL" (broker_url) names websocket; remove transport or change the URL',
    ]);
  });

  it('reports a broker URL that does not parse once, and has no address to connect to', () => {
    const { broker: settings, problems } = broker(
      saved({ broker_url: 'gopher://broker.example.com', broker_host: 'other', transport: 'websocket' }),
    );
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /^"Broker URL" \(broker_url\) is invalid: it must start with one of tcp:\/\//);
    assert.equal(settings.host, '');
    assert.equal(settings.port, 0);
    assert.equal(settings.transport, 'websocket', 'the keys tell what they can');
  });

  it('leaves an empty broker host to the schema, beside a broker URL or without one', () => {
    assert.deepEqual(broker(saved({ broker_url: 'mqtt://broker.example.com', broker_host: '' })).problems, []);
    assert.deepEqual(broker(saved({ broker_host: '' })).problems, []);
    assert.throws(
      () => toSettings(saved({ broker_host: '' })),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /"MQTT broker host" \(broker_host\) must not be empty/);
        assert.doesNotMatch(err.message, /set either/);
        return true;
      },
    );
  });

  it('uses no TLS on a plain connection, whatever tls_insecure_skip_verify says, and warns nothing', () => {
    const plain = broker(saved({ broker_url: 'mqtt://broker.example.com', tls_insecure_skip_verify: true }));
    assert.equal(plain.broker.tls, undefined);
    assert.deepEqual(plain.problems, [], 'turning verification off is no TLS setting of its own');
    assert.deepEqual(plain.warnings, []);
  });

  it('refuses TLS settings beside a plain broker URL', () => {
    assert.deepEqual(broker(saved({ broker_url: 'ws://broker.example.com', tls_server_name: 'b' })).problems, [
      'TLS settings (tls_*) are given but the connection does not use TLS; turn on "Use TLS" (use_tls) or use a TLS URL',
    ]);
  });

  it("verifies the broker's certificate on a TLS connection, and warns when told not to", () => {
    const verified = broker(saved({ broker_url: 'mqtts://broker.example.com', tls_server_name: 'mqtt.example.com' }));
    assert.equal(verified.broker.tls?.rejectUnauthorized, true);
    assert.equal(verified.broker.tls?.servername, 'mqtt.example.com');
    assert.deepEqual(verified.warnings, []);
    const unverified = broker(
      saved({ broker_host: 'broker.example.com', use_tls: true, tls_insecure_skip_verify: true }),
    );
    assert.equal(unverified.broker.tls?.rejectUnauthorized, false);
    assert.deepEqual(unverified.warnings, [
      "TLS certificate verification is off (tls_insecure_skip_verify): the broker's identity is not checked.",
    ]);
    assert.deepEqual(unverified.problems, []);
  });

  it('reads automatic reconnect turned off', () => {
    assert.equal(broker(saved({ broker_host: 'h', automatic_reconnect: false })).broker.automaticReconnect, false);
  });
});

describe('brokerSettings: the client ID under Azure IoT Hub', () => {
  it('is the device ID when no client ID is set, and the client ID when it is the same', () => {
    const azure = authMethod('azure_iot_hub_sas', {
      hub_hostname: 'hub.azure-devices.net',
      device_id: 'sensor-7',
      device_key: DEVICE_KEY,
    });
    const unset = broker(saved({ broker_url: 'mqtts://hub.azure-devices.net', auth_method: azure }));
    assert.equal(unset.broker.clientId, 'sensor-7');
    assert.deepEqual(unset.problems, []);
    const set = broker(saved({ broker_url: 'mqtts://hub.azure-devices.net', auth_method: azure, client: 'sensor-7' }));
    assert.equal(set.broker.clientId, 'sensor-7');
    assert.deepEqual(set.problems, []);
  });
});

describe('brokerSettings: what the sign-in checks are handed', () => {
  it('the protocol version: enhanced authentication is accepted with MQTT 5 and refused without', () => {
    const auth_method = authMethod('oauth2_client_credentials', {
      ...OAUTH2,
      send_token_as: 'mqtt5_enhanced_auth',
      authentication_method: 'OAUTH2-JWT',
    });
    const input = { broker_url: 'mqtts://ns.westeurope-1.ts.eventgrid.azure.net', auth_method };
    assert.deepEqual(broker(saved({ ...input, protocol_version: '5' })).problems, []);
    assert.match(broker(saved(input)).problems.join('\n'), /\(auth_method\.send_token_as\) is mqtt5_enhanced_auth/);
  });

  it('the broker host and transport: AWS signs for the host of the broker URL, over wss:// only', () => {
    const auth_method = authMethod('aws_sigv4_websocket', {
      region: 'eu-west-1',
      access_key_id: 'AKIAEXAMPLE',
      secret_access_key: 'secret-access-key',
    });
    const host = 'abc123-ats.iot.eu-west-1.amazonaws.com';
    const wss = broker(saved({ broker_url: `wss://${host}/mqtt`, auth_method }));
    assert.deepEqual(wss.problems, []);
    assert.ok(wss.broker.auth.authType === 'aws_sigv4_websocket');
    assert.equal(wss.broker.auth.endpoint, host);
    const keys = broker(saved({ broker_host: host, transport: 'websocket', use_tls: true, auth_method }));
    assert.deepEqual(keys.problems, []);
    assert.match(
      broker(saved({ broker_url: `mqtts://${host}`, auth_method })).problems.join('\n'),
      /\(auth_method\) is aws_sigv4_websocket, which signs a WebSocket URL/,
    );
  });

  it('the user name of the broker URL, the client ID, the number of connections and the connect timeout', () => {
    const oauth2 = broker(
      saved({
        broker_url: 'mqtts://device-7@broker.example.com',
        auth_method: authMethod('oauth2_client_credentials', OAUTH2),
        connect_timeout: 0,
      }),
    ).broker.auth;
    assert.ok(oauth2.authType === 'oauth2_client_credentials');
    assert.equal(oauth2.username, 'device-7');
    assert.equal(oauth2.timeoutMs, 3_600_000, "the Java connector's 0 (no limit) as an hour");
    const azure = authMethod('azure_iot_hub_sas', {
      hub_hostname: 'hub.azure-devices.net',
      device_id: 'sensor-7',
      device_key: DEVICE_KEY,
    });
    const input = { broker_url: 'mqtts://hub.azure-devices.net', auth_method: azure };
    assert.match(broker(saved(input), 2).problems.join('\n'), /"Parallel connections" \(connections\) must be 1/);
    assert.match(broker(saved({ ...input, client_id: 'other' })).problems.join('\n'), /device ID as client ID/);
  });
});

describe('brokerSettings: the way to the broker', () => {
  it('is given the connect timeout, 0 read as an hour', () => {
    const tunnel = savedVariant(spec, 'tunnel_method', 'SSH_KEY_AUTH', {
      tunnel_host: 'bastion.example.com',
      tunnel_user: 'airbyte',
      ssh_key: 'key',
    });
    for (const [connect_timeout, ms] of [
      [12, 12_000],
      [0, 3_600_000],
    ] as const) {
      const { reach } = broker(
        saved({ broker_host: 'broker.internal', tunnel_method: tunnel, connect_timeout }),
      ).broker;
      assert.ok(reach.kind === 'ssh');
      assert.equal(reach.tunnel.connectTimeoutMs, ms);
    }
  });
});

describe('urlPassword', () => {
  it('finds the password a broker URL carries, percent-decoded, so that messages can mask it', () => {
    assert.equal(urlPassword({ broker_url: 'mqtt://bob:p%40ss-w0rd@broker.example.com' }), 'p@ss-w0rd');
    assert.equal(urlPassword({ broker_url: 'wss://:token-only@broker.example.com/mqtt' }), 'token-only');
  });

  it('finds none without a URL, in a URL without one, or in a URL that does not parse', () => {
    for (const config of [
      {},
      { broker_url: '' },
      { broker_url: 'mqtt://bob@broker.example.com' },
      { broker_url: 'gopher://bob:secret@broker.example.com' },
    ]) {
      assert.equal(urlPassword(config), undefined, JSON.stringify(config));
    }
  });
});
