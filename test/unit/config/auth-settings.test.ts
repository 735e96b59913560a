/**
 * How `auth_method` becomes the method the connector signs in with, and what each method asks of the rest of the
 * configuration. Configurations are built as the Airbyte form saves them (test/support/form.ts: every spec default
 * filled in, a picked variant with its own defaults); `authMethodOf` is called with the context brokerSettings would
 * hand it, so that each rule is seen on its own, and through `toSettings` where the schema's complaints join in.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AuthContext, type AuthMethod, authMethodOf, describeAuth } from '../../../src/config/auth-settings.js';
import type { Config } from '../../../src/config/config-values.js';
import { toSettings } from '../../../src/config/settings.js';
import { connectorSpec } from '../../../src/config/spec.js';
import { ConfigError } from '../../../src/errors.js';
import { savedConfiguration, savedVariant } from '../../support/form.js';

const spec = connectorSpec() as unknown as { connectionSpecification: Record<string, unknown> };

/** The broker as brokerSettings describes it to the sign-in checks: a TLS connection over TCP, nobody signed in. */
const CONTEXT: AuthContext = {
  host: 'broker.example.com',
  transport: 'tcp',
  useTls: true,
  mqttVersion: '3.1.1',
  username: undefined,
  password: undefined,
  clientId: undefined,
  connections: 1,
  connectTimeoutMs: 30_000,
};

/** A device key as the Azure portal shows it: base64. */
const DEVICE_KEY = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=';
const AZURE = { hub_hostname: 'hub.azure-devices.net', device_id: 'sensor-7', device_key: DEVICE_KEY };
const OAUTH2 = {
  token_url: 'https://login.example.com/tenant/oauth2/v2.0/token',
  client_id: 'connector-app',
  client_secret: 'client-secret-9f2e',
};
const AWS = {
  region: 'eu-west-1',
  access_key_id: 'AKIAEXAMPLEKEY42',
  secret_access_key: 'aws-secret-access-key-4c1d',
};
const AWS_ENDPOINT = 'abc123-ats.iot.eu-west-1.amazonaws.com';
/** The AWS method's broker: wss://, as it must be. */
const WSS: Partial<AuthContext> = { host: AWS_ENDPOINT, transport: 'websocket', useTls: true };

/** What the form saves once the user has filled in `input`. */
function saved(input: Record<string, unknown> = {}): Config {
  return savedConfiguration(spec, { broker_host: 'broker.example.com', topic_pattern: 'airbyte/{stream}', ...input });
}

/** What the form saves once the user has picked the `auth_method` variant `type` and filled in its `fields`. */
function withAuth(type: string, fields: Record<string, unknown>, input: Record<string, unknown> = {}): Config {
  return saved({ ...input, auth_method: savedVariant(spec, 'auth_method', type, fields) });
}

function read(config: Config, context: Partial<AuthContext> = {}, earlier: readonly string[] = []) {
  const problems = [...earlier];
  const method = authMethodOf(config, problems, { ...CONTEXT, ...context });
  return { method, problems: problems.slice(earlier.length) };
}

/** The default spec.json declares for a field of one `auth_method` variant. */
function variantDefault(type: string, key: string): unknown {
  const auth = connectorSpec().connectionSpecification.properties.auth_method;
  const variant = auth?.oneOf?.find((v) => v.properties?.auth_type?.const === type);
  const value = variant?.properties?.[key]?.default;
  assert.notEqual(value, undefined, `spec.json declares a default for auth_method.${key} of ${type}`);
  return value;
}

/** `method`, which must be of the kind `type`, as that kind. */
function narrowed<T extends AuthMethod['authType']>(method: AuthMethod, type: T): Extract<AuthMethod, { authType: T }> {
  assert.equal(method.authType, type);
  return method as Extract<AuthMethod, { authType: T }>;
}

function configError(config: Config): ConfigError {
  try {
    toSettings(config);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('auth_method: user name and password', () => {
  it('keeps a configuration saved before auth_method existed: Username and Password at the top level sign in', () => {
    const old: Config = { broker_host: 'h', topic_pattern: 't', username: 'airbyte', password: 's3cr3t-pa55' };
    const { method, problems } = read(old, { username: 'airbyte', password: 's3cr3t-pa55' });
    assert.deepEqual(method, { authType: 'password', username: 'airbyte', password: 's3cr3t-pa55' });
    assert.deepEqual(problems, []);
    assert.deepEqual(toSettings(old).broker.auth, method);
  });

  it('is what the form saves unless the user picks another method', () => {
    const config = saved({ username: 'airbyte', password: 's3cr3t-pa55' });
    assert.deepEqual(config.auth_method, { auth_type: 'password' });
    assert.deepEqual(toSettings(config).broker.auth, {
      authType: 'password',
      username: 'airbyte',
      password: 's3cr3t-pa55',
    });
    assert.deepEqual(toSettings(saved()).broker.auth, {
      authType: 'password',
      username: undefined,
      password: undefined,
    });
  });

  it('is what an auth_method without a method, or that is no object, means', () => {
    for (const auth_method of [{}, { auth_type: '' }, 'azure_iot_hub_sas', ['password'], null]) {
      const { method, problems } = read(saved({ auth_method }), { username: 'u', password: 'p' });
      assert.deepEqual(method, { authType: 'password', username: 'u', password: 'p' }, JSON.stringify(auth_method));
      assert.deepEqual(problems, []);
    }
  });

  it('is what a method the connector does not know falls back to, which the schema refuses by its field', () => {
    const config = saved({ auth_method: { auth_type: 'kerberos' } });
    assert.equal(read(config).method.authType, 'password');
    assert.match(
      configError(config).message,
      /"Authentication" \(auth_method\) must have auth_type set to one of password, azure_iot_hub_sas, oauth2_client_credentials, aws_sigv4_websocket/,
    );
  });

  it('asks nothing of the client ID, the protocol version, the transport or the number of connections', () => {
    const { problems } = read(saved(), {
      username: 'u',
      password: 'p',
      clientId: 'any',
      connections: 8,
      mqttVersion: '3.1',
      transport: 'tcp',
      useTls: false,
    });
    assert.deepEqual(problems, []);
  });
});

describe('auth_method: Azure IoT Hub SAS', () => {
  it('reads the device and its key, with the token lifetime the form saves from spec.json', () => {
    const config = withAuth('azure_iot_hub_sas', AZURE);
    const lifetime = variantDefault('azure_iot_hub_sas', 'token_ttl_seconds');
    assert.equal((config.auth_method as Config).token_ttl_seconds, lifetime);
    const { method, problems } = read(config);
    assert.deepEqual(method, {
      authType: 'azure_iot_hub_sas',
      hubHostname: 'hub.azure-devices.net',
      deviceId: 'sensor-7',
      deviceKey: DEVICE_KEY,
      tokenTtlSeconds: lifetime,
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(toSettings(config).broker.auth, method);
  });

  it("takes spec.json's token lifetime when a configuration has none, and the one given otherwise", () => {
    const handWritten = saved({ auth_method: { auth_type: 'azure_iot_hub_sas', ...AZURE } });
    assert.equal(
      narrowed(read(handWritten).method, 'azure_iot_hub_sas').tokenTtlSeconds,
      variantDefault('azure_iot_hub_sas', 'token_ttl_seconds'),
    );
    const given = read(withAuth('azure_iot_hub_sas', { ...AZURE, token_ttl_seconds: 60 })).method;
    assert.equal(narrowed(given, 'azure_iot_hub_sas').tokenTtlSeconds, 60);
  });

  it('leaves a field that is missing empty, for the checks to report', () => {
    const { method } = read(saved({ auth_method: { auth_type: 'azure_iot_hub_sas' } }));
    assert.deepEqual(method, {
      authType: 'azure_iot_hub_sas',
      hubHostname: '',
      deviceId: '',
      deviceKey: '',
      tokenTtlSeconds: variantDefault('azure_iot_hub_sas', 'token_ttl_seconds'),
    });
  });

  it('refuses a device key that is empty or not base64, naming auth_method.device_key', () => {
    assert.deepEqual(read(withAuth('azure_iot_hub_sas', { ...AZURE, device_key: '' })).problems, [
      `"Device key" (auth_method.device_key) is empty; copy the device's primary or secondary key.`,
    ]);
    const { problems } = read(withAuth('azure_iot_hub_sas', { ...AZURE, device_key: 'not-base64-key!' }));
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^"Device key" \(auth_method\.device_key\) is not base64 text/);
  });

  it('refuses a token lifetime under 3 seconds, naming auth_method.token_ttl_seconds', () => {
    assert.deepEqual(read(withAuth('azure_iot_hub_sas', { ...AZURE, token_ttl_seconds: 2 })).problems, [
      '"Token lifetime (seconds)" (auth_method.token_ttl_seconds) must be at least 3 seconds.',
    ]);
    assert.deepEqual(read(withAuth('azure_iot_hub_sas', { ...AZURE, token_ttl_seconds: 3 })).problems, []);
  });

  it('connects with the device ID as client ID: refuses another, accepts the same one or none', () => {
    const config = withAuth('azure_iot_hub_sas', AZURE);
    assert.deepEqual(read(config, { clientId: 'airbyte-producer' }).problems, [
      '"Authentication" (auth_method) is azure_iot_hub_sas, which connects with the device ID as client ID: leave ' +
        '"Client ID" (client) empty or set it to "Device ID" (auth_method.device_id)',
    ]);
    assert.deepEqual(read(config, { clientId: 'sensor-7' }).problems, []);
    assert.deepEqual(read(config, { clientId: undefined }).problems, []);
  });

  it('allows one connection, as IoT Hub allows one per device', () => {
    const config = withAuth('azure_iot_hub_sas', AZURE);
    assert.deepEqual(read(config, { connections: 2 }).problems, [
      '"Authentication" (auth_method) is azure_iot_hub_sas: IoT Hub allows one connection per device, so ' +
        '"Parallel connections" (connections) must be 1 (a second connection would take the first one over)',
    ]);
    assert.deepEqual(read(config, { connections: 1 }).problems, []);
  });
});

describe('auth_method: OAuth2 client credentials', () => {
  it('sends the token as the password by default, as the form saves it from spec.json', () => {
    const config = withAuth('oauth2_client_credentials', OAUTH2);
    assert.equal(
      (config.auth_method as Config).send_token_as,
      variantDefault('oauth2_client_credentials', 'send_token_as'),
    );
    const { method, problems } = read(config);
    assert.deepEqual(method, {
      authType: 'oauth2_client_credentials',
      tokenUrl: OAUTH2.token_url,
      clientId: 'connector-app',
      clientSecret: 'client-secret-9f2e',
      sendTokenAs: 'password',
      timeoutMs: 30_000,
    });
    assert.deepEqual(problems, []);
    const handWritten = read(saved({ auth_method: { auth_type: 'oauth2_client_credentials', ...OAUTH2 } })).method;
    assert.equal(narrowed(handWritten, 'oauth2_client_credentials').sendTokenAs, 'password');
  });

  it('passes the scope, the user name and the connect timeout on, and leaves out what is empty', () => {
    const config = withAuth('oauth2_client_credentials', { ...OAUTH2, scope: 'api://mqtt/.default' });
    const full = narrowed(
      read(config, { username: 'device-7', connectTimeoutMs: 5_000 }).method,
      'oauth2_client_credentials',
    );
    assert.equal(full.scope, 'api://mqtt/.default');
    assert.equal(full.username, 'device-7');
    assert.equal(full.timeoutMs, 5_000);
    const empty = read(
      withAuth('oauth2_client_credentials', { ...OAUTH2, scope: '', authentication_method: '' }),
    ).method;
    for (const key of ['scope', 'username', 'authenticationMethod']) assert.ok(!(key in empty), key);
  });

  it('takes the user name, but refuses a password: the token is the password', () => {
    const config = withAuth('oauth2_client_credentials', OAUTH2);
    assert.deepEqual(read(config, { username: 'device-7' }).problems, []);
    assert.deepEqual(read(config, { username: 'device-7', password: 'p' }).problems, [
      '"Authentication" (auth_method) is oauth2_client_credentials, whose token is the password: leave ' +
        '"Password" (password) empty',
    ]);
  });

  it('sends the token with MQTT 5 enhanced authentication when asked, with the method the broker expects', () => {
    const config = withAuth('oauth2_client_credentials', {
      ...OAUTH2,
      send_token_as: 'mqtt5_enhanced_auth',
      authentication_method: 'OAUTH2-JWT',
    });
    const { method: read5, problems } = read(config, { mqttVersion: '5' });
    const method = narrowed(read5, 'oauth2_client_credentials');
    assert.equal(method.sendTokenAs, 'mqtt5_enhanced_auth');
    assert.equal(method.authenticationMethod, 'OAUTH2-JWT');
    assert.deepEqual(problems, []);
  });

  it('refuses enhanced authentication without MQTT 5, or without an authentication method, naming the fields', () => {
    const enhanced = { ...OAUTH2, send_token_as: 'mqtt5_enhanced_auth', authentication_method: 'OAUTH2-JWT' };
    for (const mqttVersion of ['3.1', '3.1.1'] as const) {
      assert.deepEqual(read(withAuth('oauth2_client_credentials', enhanced), { mqttVersion }).problems, [
        '"Send the token as" (auth_method.send_token_as) is mqtt5_enhanced_auth, which needs MQTT 5: set ' +
          '"MQTT protocol version" (protocol_version) to 5',
      ]);
    }
    const { problems } = read(withAuth('oauth2_client_credentials', { ...enhanced, authentication_method: '' }), {
      mqttVersion: '5',
    });
    assert.equal(problems.length, 1);
    assert.match(
      problems[0] ?? '',
      /^"Authentication method \(MQTT 5\)" \(auth_method\.authentication_method\) is needed/,
    );
    assert.deepEqual(
      read(withAuth('oauth2_client_credentials', OAUTH2), { mqttVersion: '3.1' }).problems,
      [],
      'the token as the password needs no MQTT 5',
    );
  });

  it('refuses a token URL it cannot use, naming auth_method.token_url and never quoting it', () => {
    for (const token_url of [
      'login.example.com/token',
      'ftp://login.example.com/token',
      'http://login.example.com/token',
      'https://connector-app:url-secret-31@login.example.com/token',
    ]) {
      const { problems } = read(withAuth('oauth2_client_credentials', { ...OAUTH2, token_url }));
      assert.equal(problems.length, 1, token_url);
      assert.match(problems[0] ?? '', /^"Token URL" \(auth_method\.token_url\) (is not a URL|must)/, token_url);
      assert.doesNotMatch(problems[0] ?? '', /url-secret-31/);
    }
  });
});

describe('auth_method: AWS IoT Core over WebSocket (SigV4)', () => {
  it('signs for the broker host, with the session token only when one is given', () => {
    const { method, problems } = read(withAuth('aws_sigv4_websocket', AWS), WSS);
    assert.deepEqual(method, {
      authType: 'aws_sigv4_websocket',
      endpoint: AWS_ENDPOINT,
      region: 'eu-west-1',
      accessKeyId: 'AKIAEXAMPLEKEY42',
      secretAccessKey: 'aws-secret-access-key-4c1d',
    });
    assert.deepEqual(problems, []);
    const temporary = read(withAuth('aws_sigv4_websocket', { ...AWS, session_token: 'session-token-77e' }), WSS).method;
    assert.equal(narrowed(temporary, 'aws_sigv4_websocket').sessionToken, 'session-token-77e');
    const empty = read(withAuth('aws_sigv4_websocket', { ...AWS, session_token: '' }), WSS).method;
    assert.ok(!('sessionToken' in empty));
  });

  it('needs a wss:// broker: refuses TCP, with or without TLS, and WebSocket without TLS', () => {
    for (const where of [
      { transport: 'tcp', useTls: true },
      { transport: 'tcp', useTls: false },
      { transport: 'websocket', useTls: false },
    ] as const) {
      assert.deepEqual(
        read(withAuth('aws_sigv4_websocket', AWS), { ...WSS, ...where }).problems,
        [
          '"Authentication" (auth_method) is aws_sigv4_websocket, which signs a WebSocket URL: the broker must be ' +
            'wss:// ("Broker URL" (broker_url) wss://<endpoint>/mqtt, or "Transport" (transport) websocket with ' +
            '"Use TLS" (use_tls))',
        ],
        JSON.stringify(where),
      );
    }
  });

  it('refuses a region or a broker host it cannot sign for, naming the field', () => {
    assert.deepEqual(read(withAuth('aws_sigv4_websocket', { ...AWS, region: 'Ireland' }), WSS).problems, [
      '"AWS region" (auth_method.region) must be an AWS region code such as "eu-west-1".',
    ]);
    assert.deepEqual(read(withAuth('aws_sigv4_websocket', AWS), { ...WSS, host: 'iot_endpoint' }).problems, [
      `"MQTT broker host" (broker_host) must be the AWS IoT endpoint's host name alone (no scheme, no path).`,
    ]);
  });
});

describe('auth_method: methods that sign in by themselves', () => {
  it('refuse a Username or a Password beside them, each on its own', () => {
    const methods = [
      ['azure_iot_hub_sas', withAuth('azure_iot_hub_sas', AZURE), {}],
      ['aws_sigv4_websocket', withAuth('aws_sigv4_websocket', AWS), WSS],
    ] as const;
    for (const [type, config, where] of methods) {
      for (const credentials of [{ username: 'u' }, { password: 'p' }, { username: 'u', password: 'p' }]) {
        assert.deepEqual(
          read(config, { ...where, ...credentials }).problems,
          [
            `"Authentication" (auth_method) is ${type}, which signs in by itself: leave "Username" (username) and ` +
              '"Password" (password) empty',
          ],
          `${type} ${JSON.stringify(credentials)}`,
        );
      }
    }
  });
});

describe('auth_method: problems the schema already reported', () => {
  it('are not told twice, while the fields it did not complain about are still checked', () => {
    const missingKey = `"Device key" (auth_method.device_key) is required`;
    const config = saved({ auth_method: { auth_type: 'azure_iot_hub_sas', hub_hostname: 'h', device_id: 'd' } });
    assert.deepEqual(read(config, {}, [missingKey]).problems, [], 'no "is empty" after "is required"');
    assert.match(read(config).problems.join('\n'), /\(auth_method\.device_key\) is empty/);
    // The schema's complaint about the lifetime hides neither the key that is not base64 nor the user name.
    const twice = read(
      saved({
        auth_method: { auth_type: 'azure_iot_hub_sas', ...AZURE, device_key: 'not base64!', token_ttl_seconds: 2 },
      }),
      { username: 'u' },
      ['"Token lifetime (seconds)" (auth_method.token_ttl_seconds) must be at least 3'],
    ).problems;
    assert.equal(twice.length, 2, twice.join('\n'));
    assert.match(twice[0] ?? '', /^"Device key" \(auth_method\.device_key\) is not base64 text/);
    assert.match(twice[1] ?? '', /which signs in by itself/);
    // Through toSettings: the schema's word for the lifetime, the key's problem beside it, each once.
    const message = configError(
      withAuth('azure_iot_hub_sas', { ...AZURE, device_key: 'not base64!', token_ttl_seconds: 2 }),
    ).message;
    assert.equal(message.match(/auth_method\.token_ttl_seconds/g)?.length, 1, message);
    assert.match(message, /"Device key" \(auth_method\.device_key\) is not base64 text/);
    assert.doesNotMatch(message, /\.[.;]/, 'each problem ends its phrase once, the list once');
  });

  it('about other fields hide nothing', () => {
    const { problems } = read(withAuth('azure_iot_hub_sas', { ...AZURE, device_key: '' }), {}, [
      '"Topic pattern" (topic_pattern) is invalid: it contains the wildcard #',
      'set either "Broker URL" (broker_url) or "MQTT broker host" (broker_host)',
    ]);
    assert.match(problems.join('\n'), /\(auth_method\.device_key\) is empty/);
  });
});

describe('auth_method: secrets', () => {
  const SECRETS = [DEVICE_KEY, 'client-secret-9f2e', 'AKIAEXAMPLEKEY42', 'aws-secret-access-key-4c1d', 'tok-77e'];
  /** Configurations with everything wrong that can be, each with its broker, every secret field set. */
  const WRONG: readonly [Config, Partial<AuthContext>][] = [
    [
      withAuth('azure_iot_hub_sas', { ...AZURE, device_key: `${DEVICE_KEY}!`, token_ttl_seconds: 1 }),
      { username: 'u', password: 'p', clientId: 'other', connections: 3 },
    ],
    [
      withAuth('oauth2_client_credentials', {
        ...OAUTH2,
        token_url: 'http://client-secret-9f2e@login.example.com/token',
        send_token_as: 'mqtt5_enhanced_auth',
      }),
      { password: 'p' },
    ],
    [
      withAuth('aws_sigv4_websocket', { ...AWS, region: 'AKIAEXAMPLEKEY42', session_token: 'tok-77e' }),
      { host: 'aws-secret-access-key-4c1d/mqtt', transport: 'tcp', useTls: false, username: 'u' },
    ],
  ];

  it('are never quoted in a problem, whatever the method and whatever is wrong', () => {
    for (const [config, context] of WRONG) {
      const { problems } = read(config, context);
      assert.ok(problems.length >= 2, problems.join('\n'));
      for (const secret of SECRETS)
        assert.ok(!problems.join('\n').includes(secret), `${secret} in ${problems.join('\n')}`);
    }
  });

  it('are never quoted in the configuration error', () => {
    for (const [config] of WRONG) {
      const { message } = configError({ ...config, username: 'u', password: 'p', client: 'other', connections: 3 });
      for (const secret of SECRETS) assert.ok(!message.includes(secret), `${secret} in ${message}`);
    }
  });
});

describe('describeAuth', () => {
  it('names each method with its public fields, never a secret', () => {
    const described = (config: Config, context: Partial<AuthContext> = {}): Record<string, unknown> =>
      describeAuth(read(config, context).method);
    assert.deepEqual(described(saved(), { username: 'u', password: 's3cr3t-pa55' }), { authType: 'password' });
    assert.deepEqual(described(withAuth('azure_iot_hub_sas', AZURE)), {
      authType: 'azure_iot_hub_sas',
      hubHostname: 'hub.azure-devices.net',
      deviceId: 'sensor-7',
      tokenTtlSeconds: variantDefault('azure_iot_hub_sas', 'token_ttl_seconds'),
    });
    assert.deepEqual(
      described(
        withAuth('oauth2_client_credentials', {
          ...OAUTH2,
          scope: 's',
          send_token_as: 'mqtt5_enhanced_auth',
          authentication_method: 'OAUTH2-JWT',
        }),
      ),
      {
        authType: 'oauth2_client_credentials',
        tokenUrl: OAUTH2.token_url,
        clientId: 'connector-app',
        scope: 's',
        sendTokenAs: 'mqtt5_enhanced_auth',
        authenticationMethod: 'OAUTH2-JWT',
      },
    );
    assert.deepEqual(described(withAuth('aws_sigv4_websocket', AWS), WSS), {
      authType: 'aws_sigv4_websocket',
      region: 'eu-west-1',
      temporaryCredentials: false,
    });
    assert.deepEqual(described(withAuth('aws_sigv4_websocket', { ...AWS, session_token: 'tok-77e' }), WSS), {
      authType: 'aws_sigv4_websocket',
      region: 'eu-west-1',
      temporaryCredentials: true,
    });
  });
});
