/**
 * What a failed connect tells the user: each CONNACK refusal, socket error, TLS failure, WebSocket handshake status
 * and timeout, turned into the error class that fixes its Airbyte failure_type (and, for BrokerRefusedError, stops
 * reconnecting) and a text naming the field to change. The errors are built as MQTT.js, ws and Node report them (an
 * Error with a `code`); the broker settings are plain objects, one per sign-in method.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BrokerSettings } from '../../../src/config/settings.js';
import type { TlsOptions } from '../../../src/config/tls.js';
import type { AuthMethod } from '../../../src/credentials/sources.js';
import type { ConnectorError } from '../../../src/errors.js';
import {
  closedWithoutAccepting,
  describeConnectError,
  limitsRefusal,
  timedOut,
  tlsNotEstablished,
} from '../../../src/mqtt/connect-errors.js';

const PASSWORD = 'pw-Hunter2-secret';
const DEVICE_KEY = 'c2VjcmV0LWRldmljZS1rZXktMTIzNDU2Nzg5MA==';
const CLIENT_SECRET = 'oauth-client-secret-77';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'FwoGZXIvYXdzEXAMPLEsessiontoken';
const SECRETS = [PASSWORD, DEVICE_KEY, CLIENT_SECRET, AWS_SECRET, SESSION_TOKEN];

const METHODS: Readonly<Record<AuthMethod['authType'], AuthMethod>> = {
  password: { authType: 'password', username: 'ingest', password: PASSWORD },
  azure_iot_hub_sas: {
    authType: 'azure_iot_hub_sas',
    hubHostname: 'hub.azure-devices.net',
    deviceId: 'dev-1',
    deviceKey: DEVICE_KEY,
    tokenTtlSeconds: 3600,
  },
  oauth2_client_credentials: {
    authType: 'oauth2_client_credentials',
    tokenUrl: 'https://login.example.com/oauth2/token',
    clientId: 'connector',
    clientSecret: CLIENT_SECRET,
    scope: 'mqtt.publish',
    sendTokenAs: 'password',
    timeoutMs: 5000,
  },
  aws_sigv4_websocket: {
    authType: 'aws_sigv4_websocket',
    endpoint: 'abc-ats.iot.eu-west-1.amazonaws.com',
    region: 'eu-west-1',
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: AWS_SECRET,
    sessionToken: SESSION_TOKEN,
  },
};

const TLS: TlsOptions = {
  ca: undefined,
  cert: undefined,
  key: undefined,
  rejectUnauthorized: true,
  servername: undefined,
  ALPNProtocols: undefined,
};

function broker(overrides: Partial<BrokerSettings> = {}): BrokerSettings {
  return {
    transport: 'tcp',
    host: 'broker.example.com',
    port: 1883,
    websocketPath: '/mqtt',
    mqttVersion: '3.1.1',
    username: 'ingest',
    password: PASSWORD,
    connectTimeoutMs: 5000,
    tls: undefined,
    clientId: 'airbyte-1',
    cleanSession: true,
    sessionExpirySeconds: 0,
    automaticReconnect: true,
    reconnectTimeoutMs: 1000,
    auth: METHODS.password,
    reach: { kind: 'direct' },
    ...overrides,
  };
}

/** The broker settings a sign-in method comes with: only the password method has a user name of its own here. */
function brokerSigningInWith(authType: AuthMethod['authType']): BrokerSettings {
  return authType === 'password'
    ? broker()
    : broker({ auth: METHODS[authType], username: undefined, password: undefined });
}

/** An error as MQTT.js, ws and Node report one: an Error with a `code` (a reason code, or Node's error code). */
function failure(code: string | number | undefined, message: string): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

type ErrorClass = 'BrokerRefusedError' | 'ConfigError' | 'TransientError' | 'ProtocolVersionSuspectedError';

const FAILURE_TYPES: Readonly<Record<ErrorClass, string>> = {
  BrokerRefusedError: 'config_error',
  ConfigError: 'config_error',
  TransientError: 'transient_error',
  ProtocolVersionSuspectedError: 'transient_error',
};

/** `error` is exactly of class `kind` (its name is its constructor's), with that class's failure type and `text`. */
function assertError(error: ConnectorError | undefined, kind: ErrorClass, text: RegExp | string): void {
  assert.ok(error, 'an error');
  assert.equal(error.name, kind);
  assert.equal(error.failureType, FAILURE_TYPES[kind]);
  if (typeof text === 'string') assert.equal(error.message, text);
  else assert.match(error.message, text);
}

const PASSWORD_FIELDS = '"Username" (username) and "Password" (password)';

describe('describeConnectError and CONNACK refusals', () => {
  const cases: [number, string, ErrorClass, string][] = [
    [
      1,
      'Unacceptable protocol version',
      'BrokerRefusedError',
      'The broker does not accept MQTT 3.1.1; set "MQTT protocol version" (protocol_version) to a version it supports.',
    ],
    [
      2,
      'Identifier rejected',
      'BrokerRefusedError',
      'The broker rejected the client ID "airbyte-1"; set a different "Client ID" (client).',
    ],
    [
      3,
      'Server unavailable',
      'TransientError',
      'The broker answered that the MQTT service is unavailable; try again later.',
    ],
    [
      4,
      'Bad username or password',
      'BrokerRefusedError',
      `The broker refused the credentials; check ${PASSWORD_FIELDS}.`,
    ],
    [
      5,
      'Not authorized',
      'BrokerRefusedError',
      `The broker does not authorise user "ingest" to connect; check ${PASSWORD_FIELDS}, the client certificate and ` +
        "the broker's access rules.",
    ],
    [
      0x84,
      'Unsupported Protocol Version',
      'BrokerRefusedError',
      'The broker does not accept MQTT 3.1.1; set "MQTT protocol version" (protocol_version) to a version it supports.',
    ],
    [
      0x85,
      'Client Identifier not valid',
      'BrokerRefusedError',
      'The broker rejected the client ID "airbyte-1"; set a different "Client ID" (client).',
    ],
    [
      0x86,
      'Bad User Name or Password',
      'BrokerRefusedError',
      `The broker refused the credentials; check ${PASSWORD_FIELDS}.`,
    ],
    [
      0x87,
      'Not authorized',
      'BrokerRefusedError',
      `The broker does not authorise user "ingest" to connect; check ${PASSWORD_FIELDS}, the client certificate and ` +
        "the broker's access rules.",
    ],
    [0x88, 'Server unavailable', 'TransientError', 'The broker answered that it is unavailable; try again later.'],
    [0x89, 'Server busy', 'TransientError', 'The broker answered that it is busy; try again later.'],
    [0x8a, 'Banned', 'BrokerRefusedError', 'The broker has banned this client.'],
    [
      0x8c,
      'Bad authentication method',
      'BrokerRefusedError',
      'The broker does not accept the authentication method; check "Authentication method (MQTT 5)" ' +
        '(auth_method.authentication_method).',
    ],
    [
      0x9f,
      'Connection rate exceeded',
      'TransientError',
      'The broker refused: connection rate exceeded; try again later.',
    ],
  ];
  for (const [code, name, kind, text] of cases) {
    it(`turns reason code 0x${code.toString(16)} (${name}) into a ${kind}`, () => {
      const error = describeConnectError(failure(code, `Connection refused: ${name}`), broker());
      assertError(error, kind, text);
      assert.equal(error.internalMessage, `Connection refused: ${name} (${code})`, "the library's words, and the code");
    });
  }

  it('names the protocol version configured when the broker refuses it', () => {
    for (const version of ['3.1', '5'] as const) {
      const error = describeConnectError(
        failure(0x84, 'Unsupported Protocol Version'),
        broker({ mqttVersion: version }),
      );
      assert.match(error.message, new RegExp(`^The broker does not accept MQTT ${version.replace('.', '\\.')};`));
    }
  });

  const credentialFields: [AuthMethod['authType'], string][] = [
    ['password', PASSWORD_FIELDS],
    [
      'azure_iot_hub_sas',
      '"Device ID" (auth_method.device_id) and "Device key" (auth_method.device_key) (the SAS token made from them)',
    ],
    [
      'oauth2_client_credentials',
      'the access token the token endpoint gave for "OAuth2 client ID" (auth_method.client_id): its "Scope" ' +
        "(auth_method.scope), and the broker's trust in the identity provider",
    ],
    [
      'aws_sigv4_websocket',
      '"Access key ID" (auth_method.access_key_id), "Secret access key" (auth_method.secret_access_key) and ' +
        '"AWS region" (auth_method.region) (the signed WebSocket URL)',
    ],
  ];
  for (const [authType, fields] of credentialFields) {
    it(`names the fields ${authType} signs in with when the broker refuses the credentials (0x04, 0x86)`, () => {
      for (const code of [4, 0x86]) {
        const error = describeConnectError(failure(code, 'Bad username or password'), brokerSigningInWith(authType));
        assertError(error, 'BrokerRefusedError', `The broker refused the credentials; check ${fields}.`);
      }
    });

    it(`names the fields ${authType} signs in with when the broker does not authorise the client (0x05, 0x87)`, () => {
      for (const code of [5, 0x87]) {
        const settings = brokerSigningInWith(authType);
        const error = describeConnectError(failure(code, 'Not authorized'), settings);
        const who = settings.username === undefined ? 'this client' : 'user "ingest"';
        assertError(
          error,
          'BrokerRefusedError',
          `The broker does not authorise ${who} to connect; check ${fields}, the client certificate and the ` +
            "broker's access rules.",
        );
      }
    });
  }

  it('says "this client" when no user name is configured', () => {
    const error = describeConnectError(failure(5, 'Not authorized'), broker({ username: undefined }));
    assert.match(error.message, /^The broker does not authorise this client to connect;/);
    assert.equal(
      describeConnectError(failure(5, 'Not authorized'), broker({ username: '' })).message.includes('user ""'),
      false,
      'an empty user name is none',
    );
  });

  it('treats a reason code it does not know as a transient failure and keeps its text', () => {
    const error = describeConnectError(failure(0x80, 'Connection refused: Unspecified error'), broker());
    assertError(
      error,
      'TransientError',
      'Could not connect to the broker at mqtt://broker.example.com:1883: Connection refused: Unspecified error',
    );
    assert.equal(error.internalMessage, 'Connection refused: Unspecified error (128)');
  });

  it('takes only a number for a reason code: a string code that reads like one is not a CONNACK refusal', () => {
    const error = describeConnectError(failure('5', 'refused'), broker());
    assertError(error, 'TransientError', 'Could not connect to the broker at mqtt://broker.example.com:1883: refused');
    assert.equal(error.internalMessage, 'refused (5)');
  });
});

describe('describeConnectError and socket errors', () => {
  it('tells that nothing listens at the address when the connection is refused, as a transient error', () => {
    const error = describeConnectError(failure('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:1883'), broker());
    assertError(
      error,
      'TransientError',
      "Nothing accepts connections at mqtt://broker.example.com:1883: check the broker's host and port, and that it " +
        'is running.',
    );
    assert.equal(error.internalMessage, 'connect ECONNREFUSED 10.0.0.5:1883 (ECONNREFUSED)');
  });

  for (const code of ['ENOTFOUND', 'EAI_AGAIN']) {
    it(`names the host that could not be resolved (${code}) as a configuration error`, () => {
      const error = describeConnectError(failure(code, `getaddrinfo ${code} broker.example.com`), broker());
      assertError(
        error,
        'ConfigError',
        'The broker host "broker.example.com" could not be resolved; check the host name.',
      );
      assert.equal(error.internalMessage, `getaddrinfo ${code} broker.example.com (${code})`);
    });
  }

  it('says the connect timeout in seconds when MQTT.js gives up waiting for the CONNACK', () => {
    const error = describeConnectError(failure(undefined, 'connack timeout'), broker({ connectTimeoutMs: 2500 }));
    assertError(
      error,
      'TransientError',
      'The broker at mqtt://broker.example.com:1883 did not accept the connection within 2.5 s; check the host, the ' +
        'port and the TLS setting, or raise "Connect timeout" (connect_timeout).',
    );
    assert.equal(error.internalMessage, 'connack timeout', 'no code, no parentheses');
  });

  it('names the WebSocket path and the HTTP status when the handshake is refused', () => {
    const settings = broker({ transport: 'websocket', port: 443, tls: TLS, websocketPath: '/ws' });
    const error = describeConnectError(failure(undefined, 'Unexpected server response: 404'), settings);
    assertError(
      error,
      'ConfigError',
      'The WebSocket handshake with wss://broker.example.com:443/ws was refused with HTTP 404; check ' +
        '"WebSocket path" (websocket_path, now "/ws") and that the port serves MQTT over WebSocket.',
    );
  });

  it('reports anything else as a transient failure with the library text', () => {
    const error = describeConnectError(failure('EHOSTUNREACH', 'connect EHOSTUNREACH 10.0.0.5:1883'), broker());
    assertError(
      error,
      'TransientError',
      'Could not connect to the broker at mqtt://broker.example.com:1883: connect EHOSTUNREACH 10.0.0.5:1883',
    );
    assert.equal(error.internalMessage, 'connect EHOSTUNREACH 10.0.0.5:1883 (EHOSTUNREACH)');
  });

  it('copes with what is not an Error: a string, null, an object with a code of another type', () => {
    const text = describeConnectError('socket hang up', broker());
    assertError(
      text,
      'TransientError',
      'Could not connect to the broker at mqtt://broker.example.com:1883: socket hang up',
    );
    assert.equal(text.internalMessage, 'socket hang up');
    const nothing = describeConnectError(null, broker());
    assert.equal(nothing.message, 'Could not connect to the broker at mqtt://broker.example.com:1883: null');
    assert.equal(nothing.internalMessage, 'null');
    const withObjectCode = describeConnectError(Object.assign(new Error('odd'), { code: { nested: 1 } }), broker());
    assert.equal(withObjectCode.internalMessage, 'odd', 'only a string or number code is shown');
  });
});

describe('describeConnectError and connections closed before the CONNACK', () => {
  for (const code of ['ECONNRESET', 'EPIPE']) {
    it(`says the TLS handshake did not complete when TLS was not established (${code})`, () => {
      const error = describeConnectError(failure(code, `write ${code}`), broker({ tls: TLS, port: 8883 }));
      assertError(
        error,
        'ConfigError',
        'The TLS handshake with mqtts://broker.example.com:8883 did not complete: the broker closed the connection. ' +
          'If this port does not speak TLS, turn off "Use TLS" (use_tls) or use the broker\'s TLS port.',
      );
      assert.equal(error.internalMessage, `write ${code} (${code})`);
    });

    it(`after an established TLS session or without TLS, suspects the protocol version unless it is 3.1.1 (${code})`, () => {
      for (const settings of [broker({ tls: TLS, port: 8883 }), broker()]) {
        const established = settings.tls !== undefined;
        const plain = describeConnectError(failure(code, 'reset'), settings, established);
        assertError(plain, 'TransientError', /closed the connection without accepting it\. If it expects TLS/);
        for (const version of ['3.1', '5'] as const) {
          const suspected = describeConnectError(failure(code, 'reset'), { ...settings, mqttVersion: version }, true);
          assertError(suspected, 'ProtocolVersionSuspectedError', /most likely it does not speak MQTT/i);
        }
      }
    });
  }
});

describe('closedWithoutAccepting, tlsNotEstablished and timedOut', () => {
  it('suspects an MQTT 3.1 or 5 CONNECT the broker does not speak, and suggests 3.1.1', () => {
    for (const version of ['3.1', '5'] as const) {
      const error = closedWithoutAccepting(broker({ mqttVersion: version }), 'closed');
      assertError(
        error,
        'ProtocolVersionSuspectedError',
        `The broker at mqtt://broker.example.com:1883 closed the connection without answering the MQTT ${version} ` +
          `CONNECT. Most likely it does not speak MQTT ${version} (NATS accepts only 3.1.1, RabbitMQ 3.x only 3.1 ` +
          'and 3.1.1): set "MQTT protocol version" (protocol_version) to 3.1.1. Otherwise, if it expects TLS, turn ' +
          'on "Use TLS" (use_tls); if it requires a client certificate, set one.',
      );
      assert.equal(error.internalMessage, 'closed');
    }
  });

  it('after a 3.1.1 CONNECT, points to TLS, a client certificate or the broker log, as a transient error', () => {
    const error = closedWithoutAccepting(broker());
    assertError(
      error,
      'TransientError',
      'The broker at mqtt://broker.example.com:1883 closed the connection without accepting it. If it expects TLS, ' +
        'turn on "Use TLS" (use_tls); if it requires a client certificate, set one; otherwise check its logs.',
    );
    assert.equal(error.internalMessage, undefined);
  });

  it('without details keeps no internal message', () => {
    assert.equal(tlsNotEstablished(broker({ tls: TLS })).internalMessage, undefined);
    assert.equal(timedOut(broker()).internalMessage, undefined);
    assertError(timedOut(broker({ connectTimeoutMs: 30_000 })), 'TransientError', /within 30 s;/);
  });
});

describe('describeConnectError and TLS failures', () => {
  it('names the host name the certificate was checked against: the TLS server name when set', () => {
    const error = describeConnectError(
      failure('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"),
      broker({ tls: TLS }),
    );
    assertError(
      error,
      'ConfigError',
      'The broker\'s TLS certificate does not match the host name "broker.example.com"; connect by the name the ' +
        'certificate carries, or set "TLS server name" (tls_server_name).',
    );
    const named = describeConnectError(
      failure('ERR_TLS_CERT_ALTNAME_INVALID', 'mismatch'),
      broker({ tls: { ...TLS, servername: 'mqtt.internal' } }),
    );
    assert.match(named.message, /does not match the host name "mqtt\.internal";/);
  });

  const cases: [string[], string][] = [
    [['CERT_HAS_EXPIRED'], "The broker's TLS certificate has expired."],
    [
      ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'],
      'The broker requires a client certificate; set "Client certificate" (tls_client_certificate) and ' +
        '"Client key" (tls_client_key).',
    ],
    [
      [
        'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
        'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
        'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
      ],
      'The broker rejected the client certificate: it does not trust the authority that signed it, or the ' +
        'certificate is invalid.',
    ],
    [
      ['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG'],
      'TLS was used against mqtts://broker.example.com:8883, which does not speak TLS; turn off "Use TLS" (use_tls) ' +
        "or use the broker's TLS port.",
    ],
    [
      [
        'DEPTH_ZERO_SELF_SIGNED_CERT',
        'SELF_SIGNED_CERT_IN_CHAIN',
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
        'UNABLE_TO_GET_ISSUER_CERT',
      ],
      'The broker\'s TLS certificate is signed by an unknown certificate authority; set "CA certificate" ' +
        '(tls_ca_certificate) to the authority that signed it.',
    ],
  ];
  for (const [codes, text] of cases) {
    it(`reports ${codes.join(', ')} as a configuration error saying what to set`, () => {
      for (const code of codes) {
        const error = describeConnectError(
          failure(code, `tls failure ${code}`),
          broker({ tls: TLS, port: 8883 }),
          true,
        );
        assertError(error, 'ConfigError', text);
        assert.equal(error.internalMessage, `tls failure ${code} (${code})`);
      }
    });
  }

  it('takes a socket closed during the handshake for TLS against a plain port, before looking at ECONNRESET', () => {
    const error = describeConnectError(
      failure('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'),
      broker({ tls: TLS, port: 1883 }),
    );
    assertError(
      error,
      'ConfigError',
      'The TLS handshake with mqtts://broker.example.com:1883 failed: the port probably does not speak TLS; turn ' +
        'off "Use TLS" (use_tls) or use the broker\'s TLS port.',
    );
  });

  it('leaves a TLS code it does not know to the generic transient error', () => {
    const error = describeConnectError(failure('ERR_SSL_SOMETHING_NEW', 'ssl oddity'), broker({ tls: TLS }), true);
    assertError(
      error,
      'TransientError',
      /^Could not connect to the broker at mqtts:\/\/broker\.example\.com:1883: ssl oddity$/,
    );
  });
});

describe('connect errors and secrets', () => {
  it('never puts a password, key, client secret or session token in what it says, whatever the sign-in method', () => {
    const errors: [unknown, boolean][] = [
      ...[1, 2, 3, 4, 5, 0x80, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x9f].map((code): [unknown, boolean] => [
        failure(code, 'Connection refused'),
        false,
      ]),
      ...[
        'ECONNREFUSED',
        'ENOTFOUND',
        'EAI_AGAIN',
        'ECONNRESET',
        'EPIPE',
        'ERR_TLS_CERT_ALTNAME_INVALID',
        'CERT_HAS_EXPIRED',
        'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
        'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
        'ERR_SSL_WRONG_VERSION_NUMBER',
        'SELF_SIGNED_CERT_IN_CHAIN',
      ].flatMap((code): [unknown, boolean][] => [
        [failure(code, `failed: ${code}`), false],
        [failure(code, `failed: ${code}`), true],
      ]),
      [failure(undefined, 'connack timeout'), false],
      [failure(undefined, 'Unexpected server response: 401'), false],
      [failure(undefined, 'Client network socket disconnected before secure TLS connection was established'), false],
    ];
    for (const authType of Object.keys(METHODS) as AuthMethod['authType'][]) {
      for (const version of ['3.1', '3.1.1', '5'] as const) {
        for (const tls of [undefined, TLS]) {
          const settings = { ...brokerSigningInWith(authType), mqttVersion: version, tls };
          const said = [
            ...errors.map(([err, established]) => describeConnectError(err, settings, established)),
            timedOut(settings),
            tlsNotEstablished(settings),
            closedWithoutAccepting(settings),
          ];
          for (const error of said) {
            for (const secret of SECRETS) {
              assert.equal(error.message.includes(secret), false, `${authType}: ${error.message}`);
              assert.equal(error.internalMessage?.includes(secret) ?? false, false, `${authType}: internal message`);
            }
          }
        }
      }
    }
  });
});

describe('limitsRefusal', () => {
  it('allows what the broker did not limit, or limited to what is sent', () => {
    assert.equal(limitsRefusal({ qos: 2, retain: true }, {}), undefined);
    assert.equal(limitsRefusal({ qos: 1, retain: false }, { maximumQoS: 1, retainAvailable: false }), undefined);
    assert.equal(limitsRefusal({ qos: 0, retain: true }, { maximumQoS: 0, retainAvailable: true }), undefined);
  });

  it('refuses a QoS above the maximum the broker announced, naming the field', () => {
    assertError(
      limitsRefusal({ qos: 2, retain: false }, { maximumQoS: 1 }),
      'BrokerRefusedError',
      "The broker's limits rule out this configuration: the broker accepts messages up to QoS 1 only; lower " +
        '"Message QoS" (message_qos).',
    );
    assertError(limitsRefusal({ qos: 1, retain: false }, { maximumQoS: 0 }), 'BrokerRefusedError', /up to QoS 0 only/);
  });

  it('refuses retained messages to a broker without retain, and lists both problems together', () => {
    assertError(
      limitsRefusal({ qos: 0, retain: true }, { retainAvailable: false }),
      'BrokerRefusedError',
      "The broker's limits rule out this configuration: the broker does not support retained messages; turn off " +
        '"Retain messages" (message_retained).',
    );
    const both = limitsRefusal({ qos: 2, retain: true }, { maximumQoS: 1, retainAvailable: false });
    assertError(
      both,
      'BrokerRefusedError',
      /: the broker accepts messages up to QoS 1 only; lower .*; the broker does not support retained messages; .*\.$/,
    );
    assert.equal(both?.internalMessage, undefined);
  });
});
