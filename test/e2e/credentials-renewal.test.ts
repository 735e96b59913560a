/**
 * Credentials that expire during a sync, end to end: brokers that check Azure IoT Hub SAS tokens and OAuth2 access
 * tokens and close a connection whose credential expired (aedes with an authenticate hook), a token endpoint of the
 * tests' own, and an MQTT 5 broker that renews tokens by re-authentication. Tokens live 4 s through syncs of about
 * 10 s (held there by a rate limit): nothing fails, every state is echoed, no connection is closed for expiry, and
 * the renewals are counted. Refusals are told apart: a client secret the endpoint refuses and a token the broker
 * refuses are configuration errors naming the fields, an endpoint that cannot be reached is transient.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { checkStatus, logMessages, runCheck, runWrite } from '../support/connector.js';
import { type EmbeddedBroker, startAedes } from '../support/aedes.js';
import { type ExpiringAuth, bearerAuth, bearerChecker, expiringAuth, sasAuth } from '../support/expiring-auth.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { freePort } from '../support/mosquitto.js';
import { type Mqtt5AuthBroker, REASON, startMqtt5AuthBroker } from '../support/mqtt5-auth-broker.js';
import { type TokenEndpoint, startTokenEndpoint } from '../support/token-endpoint.js';

const READINGS = { name: 'readings' };
const RECORDS = 50;
/** 50 records at 5 per second: a sync of about 10 s, through two and a half lifetimes of a 4 s token. */
const PACE = { max_messages_per_second: 5 };
const TOKEN_SECONDS = 4;

function input(): string {
  const out: string[] = [];
  for (let i = 1; i <= RECORDS; i++) {
    out.push(recordLine(READINGS, { id: i }));
    if (i % 5 === 0) out.push(streamStateLine(READINGS, i));
  }
  return `${out.join('\n')}\n`;
}

const cursors = (states: Record<string, unknown>[]): unknown[] =>
  states.map((state) => (state.stream as { stream_state: { cursor: unknown } }).stream_state.cursor);
const everyState = Array.from({ length: RECORDS / 5 }, (_, i) => (i + 1) * 5);

/** The number of renewals the sync's last log lines report. */
function renewals(result: Awaited<ReturnType<typeof runWrite>>): { total: number; line: string } {
  const line = logMessages(result, /^Credentials renewed/)[0] ?? '';
  return { total: Number(/renewed (\d+) time/.exec(line)?.[1] ?? 0), line };
}

describe('an Azure IoT Hub SAS token renewed through a sync', () => {
  const device = {
    hubHostname: 'testhub.azure-devices.net',
    deviceId: 'sensor-7',
    deviceKey: randomBytes(32).toString('base64'),
  };
  let auth: ExpiringAuth;
  let broker: EmbeddedBroker;
  before(async () => {
    auth = sasAuth(device);
    broker = await startAedes({ authenticate: auth.authenticate });
  });
  after(async () => {
    auth.close();
    await broker.close();
  });

  it('signs every connection in with a fresh token and renews it before the hub closes the connection', async () => {
    const result = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: `devices/${device.deviceId}/messages/events/`,
        auth_method: { auth_type: 'azure_iot_hub_sas', ...hubFields(device), token_ttl_seconds: TOKEN_SECONDS },
        ...PACE,
      },
      catalogOf([READINGS]),
      input(),
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(cursors(result.states()), everyState);
    assert.equal(broker.received.filter((p) => p.topic.startsWith('devices/')).length, RECORDS);
    assert.deepEqual(auth.expired, [], 'no connection outlived its token');
    assert.deepEqual(auth.refused, []);
    const { total, line } = renewals(result);
    assert.ok(total >= 2, line || result.stdout);
    assert.match(line, /by reconnecting/);
    // The first connection and one per renewal, each with the device ID as client ID.
    assert.equal(auth.accepted.length, total + 1);
    assert.ok(auth.accepted.every((event) => event.clientId === device.deviceId));
    assert.doesNotMatch(result.stdout, new RegExp(device.deviceKey.slice(0, 20).replace(/[+/]/g, '.')));
  });
});

describe('an Azure IoT Hub SAS token renewed at QoS 2', () => {
  const device = {
    hubHostname: 'testhub.azure-devices.net',
    deviceId: 'sensor-8',
    deviceKey: randomBytes(32).toString('base64'),
  };
  let auth: ExpiringAuth;
  let broker: EmbeddedBroker;
  before(async () => {
    auth = sasAuth(device);
    broker = await startAedes({ authenticate: auth.authenticate });
  });
  after(async () => {
    auth.close();
    await broker.close();
  });

  it('sends nothing twice across the planned reconnects', async () => {
    const result = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        message_qos: 'EXACTLY_ONCE',
        topic_pattern: `devices/${device.deviceId}/messages/events/`,
        auth_method: { auth_type: 'azure_iot_hub_sas', ...hubFields(device), token_ttl_seconds: TOKEN_SECONDS },
        ...PACE,
      },
      catalogOf([READINGS]),
      input(),
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(cursors(result.states()), everyState);
    assert.ok(renewals(result).total >= 2, result.stdout);
    const ids = broker.received.map(
      (p) => (JSON.parse(p.payload.toString()) as { _airbyte_data: { id: number } })._airbyte_data.id,
    );
    assert.deepEqual(
      ids,
      Array.from({ length: RECORDS }, (_, i) => i + 1),
      'each record once, in order',
    );
  });
});

describe('a broker that closes the connection before the token says it expires', () => {
  let endpoint: TokenEndpoint;
  let auth: ExpiringAuth;
  let broker: EmbeddedBroker;
  before(async () => {
    // Tokens said to live an hour, which the broker holds to 3 s: the connector never sees a renewal due.
    endpoint = await startTokenEndpoint({ expiresInSeconds: 3600 });
    const bearer = bearerChecker(endpoint);
    auth = expiringAuth((client, now) => {
      const checked = bearer(client, now);
      return 'validUntil' in checked ? { validUntil: Math.min(checked.validUntil, now + 3000) } : checked;
    });
    broker = await startAedes({ authenticate: auth.authenticate });
  });
  after(async () => {
    auth.close();
    await broker.close();
    await endpoint.close();
  });

  it('is a reconnect like any other: the sync goes on and every state is echoed', async () => {
    const result = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 'early/{stream}',
        verify_delivery: false,
        auth_method: {
          auth_type: 'oauth2_client_credentials',
          token_url: endpoint.url,
          client_id: endpoint.clientId,
          client_secret: endpoint.clientSecret,
        },
        ...PACE,
      },
      catalogOf([READINGS]),
      input(),
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(cursors(result.states()), everyState);
    assert.ok(auth.expired.length >= 2, `${auth.expired.length} closed at expiry`);
    assert.ok(logMessages(result, /^Reconnected after/).length >= 2, result.stdout);
    const ids = new Set(broker.received.filter((p) => p.topic === 'early/readings').map((p) => p.payload.toString()));
    assert.equal(ids.size, RECORDS);
  });
});

function hubFields(device: { hubHostname: string; deviceId: string; deviceKey: string }): Record<string, string> {
  return { hub_hostname: device.hubHostname, device_id: device.deviceId, device_key: device.deviceKey };
}

describe('an OAuth2 client-credentials token, as the password, renewed through a sync', () => {
  let endpoint: TokenEndpoint;
  let auth: ExpiringAuth;
  let broker: EmbeddedBroker;
  before(async () => {
    endpoint = await startTokenEndpoint({ expiresInSeconds: TOKEN_SECONDS });
    auth = bearerAuth(endpoint);
    broker = await startAedes({ authenticate: auth.authenticate });
  });
  after(async () => {
    auth.close();
    await broker.close();
    await endpoint.close();
  });

  const oauth2 = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    auth_type: 'oauth2_client_credentials',
    token_url: endpoint.url,
    client_id: endpoint.clientId,
    client_secret: endpoint.clientSecret,
    ...extra,
  });

  it('fetches a token, uses it until shortly before it expires, and never meets a closed connection', async () => {
    const issuedBefore = endpoint.issued.length;
    const result = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        username: 'airbyte',
        topic_pattern: 'plant/{stream}',
        auth_method: oauth2(),
        ...PACE,
      },
      catalogOf([READINGS]),
      input(),
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(cursors(result.states()), everyState);
    assert.equal(broker.received.filter((p) => p.topic === 'plant/readings').length, RECORDS);
    assert.deepEqual(auth.expired, []);
    const { total, line } = renewals(result);
    assert.ok(total >= 2, line || result.stdout);
    // One token per lifetime, shared by the publishing and the verifying connection: not one per connection.
    const issued = endpoint.issued.length - issuedBefore;
    assert.ok(issued >= total + 1 && issued <= total + 2, `${issued} tokens for ${total} renewals`);
    for (const token of endpoint.issued.slice(issuedBefore)) assert.ok(!result.stdout.includes(token.token));
    assert.ok(!result.stdout.includes(endpoint.clientSecret));
  });

  it('is a configuration error naming the client secret when the endpoint refuses it, without showing it', async () => {
    const status = checkStatus(
      await runCheck({
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 't',
        auth_method: oauth2({ client_secret: 'wrong-secret-31415' }),
      }),
    );
    assert.equal(status.status, 'FAILED');
    assert.match(status.message, /"OAuth2 client secret" \(auth_method\.client_secret\)/);
    assert.doesNotMatch(status.message, /wrong-secret-31415/);
  });

  it("never prints the secret an endpoint echoes back in its answer, in check's report or a sync's output", async () => {
    endpoint.mode = 'echo-secret';
    try {
      const config = {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        username: 'airbyte',
        topic_pattern: 't',
        auth_method: oauth2(),
      };
      const check = await runCheck(config);
      const status = checkStatus(check);
      assert.equal(status.status, 'FAILED');
      assert.match(status.message, /auth_method\.client_secret/);
      const write = await runWrite(config, catalogOf([READINGS]), input(), { timeoutMs: 60_000 });
      assert.notEqual(write.code, 0);
      for (const output of [check.stdout, check.stderr, write.stdout, write.stderr]) {
        assert.ok(!output.includes(endpoint.clientSecret), output);
        // Basic authentication sends it base64-encoded; an echo of the header must not give it away either.
        const basic = Buffer.from(`${endpoint.clientId}:${endpoint.clientSecret}`).toString('base64');
        assert.ok(!output.includes(basic), output);
      }
    } finally {
      endpoint.mode = 'grant';
    }
  });

  it('is a configuration error naming the token fields when the broker refuses the token', async () => {
    const other = await startTokenEndpoint({ expiresInSeconds: 60 });
    try {
      const status = checkStatus(
        await runCheck({
          broker_host: '127.0.0.1',
          broker_port: broker.port,
          topic_pattern: 't',
          auth_method: {
            ...oauth2(),
            token_url: other.url,
            client_id: other.clientId,
            client_secret: other.clientSecret,
          },
        }),
      );
      assert.equal(status.status, 'FAILED');
      assert.match(status.message, /refused the credentials; check the access token .*"OAuth2 client ID"/);
    } finally {
      await other.close();
    }
  });

  it('is a transient error when the token endpoint cannot be reached', async () => {
    const closed = await freePort();
    const result = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 't',
        connect_timeout: 5,
        auth_method: oauth2({ token_url: `http://127.0.0.1:${closed}/token` }),
      },
      catalogOf([READINGS]),
      input(),
    );
    assert.equal(result.code, 1);
    assert.equal(result.traceError().failure_type, 'transient_error', result.stdout);
  });
});

describe('an OAuth2 token renewed by MQTT 5 re-authentication', () => {
  let endpoint: TokenEndpoint;
  let broker: Mqtt5AuthBroker;
  before(async () => {
    endpoint = await startTokenEndpoint({ expiresInSeconds: TOKEN_SECONDS });
    broker = await startMqtt5AuthBroker({ validUntil: (token, now) => endpoint.validUntil(token, now) });
  });
  after(async () => {
    await broker.close();
    await endpoint.close();
  });

  it('sends each new token on the open connection, which never closes', async () => {
    const result = await runWrite(
      {
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        protocol_version: '5',
        topic_pattern: 'grid/{stream}',
        auth_method: {
          auth_type: 'oauth2_client_credentials',
          token_url: endpoint.url,
          client_id: endpoint.clientId,
          client_secret: endpoint.clientSecret,
          send_token_as: 'mqtt5_enhanced_auth',
          authentication_method: 'OAUTH2-JWT',
        },
        ...PACE,
      },
      catalogOf([READINGS]),
      input(),
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(cursors(result.states()), everyState);
    assert.equal(broker.published.length, RECORDS);
    assert.equal(broker.connects.length, 1, 'one connection for the whole sync');
    assert.deepEqual(broker.expiries, []);
    assert.ok(broker.reauths.length >= 2, `${broker.reauths.length} re-authentications`);
    assert.ok(broker.reauths.every((event) => event.reasonCode === REASON.success));
    const { total, line } = renewals(result);
    assert.equal(total, broker.reauths.length);
    assert.match(line, /by MQTT 5 re-authentication/);
  });
});
