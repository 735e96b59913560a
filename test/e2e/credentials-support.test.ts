/**
 * The test support for credentials that expire, exercised over real sockets so that later tests of the whole
 * connector can rely on it: the token endpoint over HTTP(S) with src/credentials/oauth2.ts as its client, aedes closing
 * connections whose SAS token or bearer token expires (MQTT.js as the client), and the MQTT 5 broker that speaks
 * enhanced authentication and re-authentication.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type IDisconnectPacket } from 'mqtt-packet';
import { iotHubIdentity, iotHubSasToken } from '../../src/credentials/azure-sas.js';
import { CredentialConfigError, CredentialUnavailableError } from '../../src/credentials/errors.js';
import { type ClientCredentialsRequest, fetchClientCredentialsToken } from '../../src/credentials/oauth2.js';
import { type EmbeddedBroker, startAedes } from '../support/aedes.js';
import { type TestCertificates, generateCertificates, opensslSkipReason } from '../support/certs.js';
import { type ExpiringAuth, bearerAuth, sasAuth } from '../support/expiring-auth.js';
import { freePort } from '../support/mosquitto.js';
import { REASON, type Mqtt5AuthBroker, startMqtt5AuthBroker } from '../support/mqtt5-auth-broker.js';
import { type TokenEndpoint, startTokenEndpoint, withTokenEndpoint } from '../support/token-endpoint.js';

const SECRET = 'pa$$ word+/=';

/**
 * Connects with MQTT.js, never reconnecting; resolves once connected, rejects with the refusal. Errors after that
 * are ignored: the tests watch for the close or DISCONNECT they cause.
 */
function connect(url: string, options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
  return new Promise<MqttClient>((resolve, reject) => {
    const settle = (err?: Error) => {
      client.off('connect', onConnect);
      client.off('error', settle);
      client.off('close', onClose);
      client.on('error', () => undefined);
      if (err) {
        client.end(true);
        reject(err);
      } else resolve(client);
    };
    const onConnect = () => settle();
    const onClose = () => settle(new Error('closed before CONNACK'));
    client.on('connect', onConnect);
    client.on('error', settle);
    client.on('close', onClose);
  });
}

/** Resolves when MQTT.js reports the connection closed; rejects after `timeoutMs`. */
function closed(client: MqttClient, timeoutMs = 10_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the connection was not closed within ${timeoutMs} ms`)),
      timeoutMs,
    );
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves with the DISCONNECT the broker sends; rejects after `timeoutMs`. */
function disconnected(client: MqttClient, timeoutMs = 10_000): Promise<IDisconnectPacket> {
  return new Promise<IDisconnectPacket>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no DISCONNECT within ${timeoutMs} ms`)), timeoutMs);
    client.once('disconnect', (packet) => {
      clearTimeout(timer);
      resolve(packet);
    });
  });
}

/** The error an MQTT.js connect is refused with, which carries the CONNACK code as `code`. */
async function refusal(url: string, options: IClientOptions): Promise<{ code?: unknown }> {
  try {
    const client = await connect(url, options);
    client.end(true);
  } catch (err) {
    return err as { code?: unknown };
  }
  assert.fail('the broker accepted the connection');
}

describe('token endpoint over HTTP, with the connector as client', () => {
  const endpoint = withTokenEndpoint({ clientSecret: SECRET, expiresInSeconds: 4, scopes: ['mqtt'] });
  const ask = (overrides: Partial<ClientCredentialsRequest> = {}) =>
    fetchClientCredentialsToken({
      tokenUrl: endpoint.url,
      clientId: endpoint.clientId,
      clientSecret: SECRET,
      scope: 'mqtt',
      timeoutMs: 2_000,
      ...overrides,
    });

  it('grants a token to the client it knows, checked by Basic authentication and the form', async () => {
    endpoint.mode = 'grant';
    const before = endpoint.issued.length;
    const token = await ask();
    assert.equal(token.expiresInSeconds, 4);
    const issued = endpoint.issued[before];
    assert.equal(issued?.token, token.accessToken);
    assert.equal(issued.scope, 'mqtt');
    assert.match(token.accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT-shaped token');
    const request = endpoint.requests.at(-1);
    assert.equal(request?.clientAuthentication, 'basic');
    assert.equal(request.contentType, 'application/x-www-form-urlencoded');
    assert.deepEqual(request.form, { grant_type: 'client_credentials', scope: 'mqtt' });
  });

  it('says a token is valid until its expires_in has passed, and not after', async () => {
    endpoint.mode = 'grant';
    const { accessToken } = await ask();
    const issued = endpoint.issued.at(-1);
    assert.ok(issued?.expiresAt !== undefined);
    assert.equal(issued.expiresAt - issued.issuedAt, 4_000);
    assert.equal(endpoint.isValid(accessToken, issued.expiresAt - 1), true);
    assert.equal(endpoint.validUntil(accessToken, issued.issuedAt), issued.expiresAt);
    assert.equal(endpoint.isValid(accessToken, issued.expiresAt), false);
    assert.equal(endpoint.isValid('forged', issued.issuedAt), false);
  });

  it('refuses a wrong secret and a scope it does not grant, naming the fields', async () => {
    endpoint.mode = 'grant';
    await assert.rejects(
      ask({ clientSecret: 'wrong' }),
      (err: unknown) => err instanceof CredentialConfigError && err.fieldKeys.includes('auth_method.client_secret'),
    );
    await assert.rejects(
      ask({ scope: 'admin' }),
      (err: unknown) => err instanceof CredentialConfigError && err.fieldKeys[0] === 'auth_method.scope',
    );
  });

  it('refuses every client when told to, and fails with 500 when told to', async () => {
    endpoint.mode = 'refuse';
    await assert.rejects(
      ask(),
      (err: unknown) => err instanceof CredentialConfigError && /invalid_client/.test(err.message),
    );
    endpoint.mode = 'fail';
    await assert.rejects(
      ask(),
      (err: unknown) => err instanceof CredentialUnavailableError && /HTTP 500/.test(err.message),
    );
  });

  it('echoes the secret in its error when told to, and the connector masks it', async () => {
    endpoint.mode = 'echo-secret';
    const err = await ask().then(
      () => assert.fail('a token was granted'),
      (e: unknown) => e as CredentialConfigError,
    );
    assert.ok(err instanceof CredentialConfigError);
    assert.match(err.message, /with secret "\*+" and header "Basic \*+" is unknown/);
    for (const form of [SECRET, encodeURIComponent(SECRET), 'pa%24%24+word']) {
      assert.ok(!err.message.includes(form), err.message);
    }
    assert.ok(!err.message.includes('request_body') && !err.message.includes('grant_type'), err.message);
  });

  it('answers with a page too long for a token when told to, and the connector stops reading it', async () => {
    endpoint.mode = 'oversized';
    await assert.rejects(
      ask(),
      (err: unknown) =>
        err instanceof CredentialConfigError &&
        /without an access token \(not a JSON object\)/.test(err.message) &&
        err.internalMessage === 'HTTP 200, answer too long',
    );
  });

  it('hangs when told to, and the connector gives up at its deadline', async () => {
    endpoint.mode = 'hang';
    const started = Date.now();
    await assert.rejects(
      ask({ timeoutMs: 300 }),
      (err: unknown) => err instanceof CredentialUnavailableError && /within 0\.3 s/.test(err.message),
    );
    assert.ok(Date.now() - started < 2_000, 'the deadline, not the default socket timeout, ended the request');
  });

  it('cannot be reached once closed: a passing problem', async () => {
    const port = await freePort();
    await assert.rejects(
      ask({ tokenUrl: `http://127.0.0.1:${port}/oauth2/token` }),
      (err: unknown) => err instanceof CredentialUnavailableError && /ECONNREFUSED/.test(err.message),
    );
  });
});

describe('token endpoint over HTTPS, trusted through the ca option', { skip: opensslSkipReason() }, () => {
  let certs: TestCertificates;
  let endpoint: TokenEndpoint;
  before(async () => {
    certs = generateCertificates();
    endpoint = await startTokenEndpoint({ tls: { cert: certs.serverCert, key: certs.serverKey }, tokenKind: 'opaque' });
  });
  after(() => endpoint?.close());

  it('grants a token when the private authority is given, and names the URL when it is not', async () => {
    const request = {
      tokenUrl: endpoint.url,
      clientId: endpoint.clientId,
      clientSecret: endpoint.clientSecret,
      timeoutMs: 2_000,
    };
    assert.match(endpoint.url, /^https:\/\/127\.0\.0\.1:\d+\//);
    const token = await fetchClientCredentialsToken({ ...request, ca: certs.caCert });
    assert.equal(token.accessToken, endpoint.issued[0]?.token);
    await assert.rejects(
      fetchClientCredentialsToken(request),
      (err: unknown) =>
        err instanceof CredentialConfigError &&
        err.fieldKeys[0] === 'auth_method.token_url' &&
        /not trusted/.test(err.message),
    );
  });
});

describe('aedes closing connections whose SAS token expires', () => {
  const device = {
    hubHostname: 'test-hub.azure-devices.net',
    deviceId: 'dev-1',
    deviceKey: 'c2VjcmV0LWRldmljZS1rZXktMzItYnl0ZXMtbG9uZyE=',
  };
  let auth: ExpiringAuth;
  let broker: EmbeddedBroker;
  before(async () => {
    auth = sasAuth(device);
    broker = await startAedes({ authenticate: auth.authenticate });
  });
  after(async () => {
    auth?.close();
    await broker?.close();
  });
  const sasOptions = (expiresAtSeconds: number, deviceKey = device.deviceKey): IClientOptions => ({
    protocolVersion: 4,
    ...iotHubIdentity(device.hubHostname, device.deviceId),
    password: iotHubSasToken({ ...device, deviceKey, expiresAtSeconds }),
  });

  it('accepts a valid token and closes the connection when it expires; a new token connects again', async () => {
    const se = Math.ceil(Date.now() / 1000) + 2;
    const client = await connect(broker.url, sasOptions(se));
    const closing = closed(client);
    const expired = await auth.waitFor('expired', 1, 10_000);
    await closing;
    assert.equal(expired.clientId, device.deviceId);
    assert.ok(expired.at >= se * 1000, `closed at ${expired.at}, before se ${se * 1000}`);
    assert.ok(expired.at < se * 1000 + 2_000, 'closed promptly at expiry');
    client.end(true);
    // What a planned reconnect does: a fresh token, a new connection.
    const again = await connect(broker.url, sasOptions(Math.ceil(Date.now() / 1000) + 60));
    assert.equal(auth.accepted.length, 2);
    await again.endAsync();
  });

  it('refuses a token signed with another key (4) and one already expired (5)', async () => {
    const refusedBefore = auth.refused.length;
    const otherKey = Buffer.from('another-device-key-of-32-bytes!!').toString('base64');
    const wrong = await refusal(broker.url, sasOptions(Math.ceil(Date.now() / 1000) + 60, otherKey));
    assert.equal(wrong.code, 4);
    const stale = await refusal(broker.url, sasOptions(Math.floor(Date.now() / 1000) - 1));
    assert.equal(stale.code, 5);
    const reasons = auth.refused.slice(refusedBefore).map((event) => event.reason);
    assert.equal(reasons.length, 2);
    assert.equal(reasons[0], 'the signature is wrong');
    assert.match(reasons[1] ?? '', /^the token expired at se=\d+$/);
  });
});

describe('aedes closing connections whose bearer token expires', () => {
  const endpoint = withTokenEndpoint({ expiresInSeconds: 2 });
  let auth: ExpiringAuth;
  let broker: EmbeddedBroker;
  before(async () => {
    auth = bearerAuth(endpoint);
    broker = await startAedes({ authenticate: auth.authenticate });
  });
  after(async () => {
    auth?.close();
    await broker?.close();
  });

  it('accepts a token of the endpoint as password, closes at its expiry, refuses it afterwards', async () => {
    const { accessToken } = await fetchClientCredentialsToken({
      tokenUrl: endpoint.url,
      clientId: endpoint.clientId,
      clientSecret: endpoint.clientSecret,
      timeoutMs: 2_000,
    });
    const options = { protocolVersion: 4 as const, clientId: 'bearer', username: 'connector', password: accessToken };
    const client = await connect(broker.url, options);
    const closing = closed(client);
    const expired = await auth.waitFor('expired', 1, 10_000);
    await closing;
    const expiresAt = endpoint.issued[0]?.expiresAt ?? 0;
    assert.ok(expired.at >= expiresAt, `closed at ${expired.at}, before the token's expiry ${expiresAt}`);
    client.end(true);
    assert.equal((await refusal(broker.url, options)).code, 5);
    assert.equal((await refusal(broker.url, { ...options, password: 'not-a-token' })).code, 4);
  });
});

describe('MQTT 5 broker with enhanced authentication and re-authentication', () => {
  const endpoint = withTokenEndpoint({ expiresInSeconds: 2 });
  let broker: Mqtt5AuthBroker;
  before(async () => {
    broker = await startMqtt5AuthBroker({ validUntil: (token, now) => endpoint.validUntil(token, now) });
  });
  after(() => broker?.close());

  const token = async () =>
    (
      await fetchClientCredentialsToken({
        tokenUrl: endpoint.url,
        clientId: endpoint.clientId,
        clientSecret: endpoint.clientSecret,
        timeoutMs: 2_000,
      })
    ).accessToken;
  const enhanced = (data: string, method = 'OAUTH2-JWT'): IClientOptions => ({
    protocolVersion: 5,
    clientId: `c-${Math.random().toString(36).slice(2)}`,
    properties: { authenticationMethod: method, authenticationData: Buffer.from(data) },
  });
  /** Sends AUTH 0x19 with a token on the client's connection, as a re-authenticating client does. */
  const reauthenticate = (client: MqttClient, data: string, method = 'OAUTH2-JWT') =>
    client.stream.write(
      mqttPacket.generate(
        {
          cmd: 'auth',
          reasonCode: REASON.reauthenticate,
          properties: { authenticationMethod: method, authenticationData: Buffer.from(data) },
        },
        { protocolVersion: 5 },
      ),
    );

  it('accepts a token in CONNECT, acknowledges QoS 1, re-authenticates, and disconnects 0x87 at the new expiry', async () => {
    const first = await token();
    const client = await connect(broker.url, enhanced(first));
    assert.equal(broker.connects.at(-1)?.reasonCode, REASON.success);
    await client.publishAsync('devices/1', 'hello', { qos: 1 });
    assert.deepEqual(
      broker.published.map((p) => [p.topic, p.payload.toString(), p.qos]),
      [['devices/1', 'hello', 1]],
    );
    const second = await token();
    const reauths = broker.reauths.length;
    reauthenticate(client, second);
    await broker.waitFor('reauths', reauths + 1);
    assert.equal(broker.reauths.at(-1)?.reasonCode, REASON.success);
    const disconnect = disconnected(client);
    await broker.waitFor('expiries', 1, 10_000);
    const packet = await disconnect;
    assert.equal(packet.reasonCode, REASON.notAuthorized);
    const expiry = broker.expiries[0]?.at ?? 0;
    const [firstIssued, secondIssued] = [endpoint.issued.at(-2), endpoint.issued.at(-1)];
    assert.ok(expiry >= (secondIssued?.expiresAt ?? Infinity), 'the connection lived until the second token expired');
    assert.ok(expiry > (firstIssued?.expiresAt ?? Infinity), "not at the first token's expiry");
    client.end(true);
  });

  it('disconnects with 0x87 a re-authentication with an invalid token, with 0x82 one with another method', async () => {
    for (const [data, method, reason] of [
      ['forged', 'OAUTH2-JWT', REASON.notAuthorized],
      [undefined, 'CUSTOM-JWT', REASON.protocolError],
    ] as const) {
      const client = await connect(broker.url, enhanced(await token()));
      const disconnect = disconnected(client);
      reauthenticate(client, data ?? (await token()), method);
      const packet = await disconnect;
      assert.equal(packet.reasonCode, reason);
      assert.equal(broker.reauths.at(-1)?.reasonCode, reason);
      client.end(true);
    }
  });

  it('refuses CONNECT with an unknown token (0x87) and with another or no method (0x8C)', async () => {
    assert.equal((await refusal(broker.url, enhanced('forged'))).code, REASON.notAuthorized);
    assert.equal(
      (await refusal(broker.url, enhanced(await token(), 'SCRAM-SHA-1'))).code,
      REASON.badAuthenticationMethod,
    );
    assert.equal((await refusal(broker.url, { protocolVersion: 5 })).code, REASON.badAuthenticationMethod);
  });
});
