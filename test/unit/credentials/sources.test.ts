import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { iotHubSasToken } from '../../../src/credentials/azure-sas.js';
import { renewAt } from '../../../src/credentials/credential.js';
import { CredentialConfigError } from '../../../src/credentials/errors.js';
import type { HttpPost } from '../../../src/credentials/http-post.js';
import {
  type AuthMethod,
  type OAuth2Method,
  credentialProblems,
  credentialSource,
} from '../../../src/credentials/sources.js';
import { presignedIotWebSocketUrl } from '../../../src/credentials/sigv4.js';

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 250);
const clock = () => T0;
const KEY = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=';

/** A token endpoint answering each request with `answers` in turn, counting the requests. */
function tokenEndpoint(...answers: { access_token: string; expires_in?: number }[]) {
  let requests = 0;
  const post: HttpPost = () => {
    const answer = answers[Math.min(requests++, answers.length - 1)];
    return Promise.resolve({ status: 200, body: JSON.stringify(answer) });
  };
  return { post, requests: () => requests };
}

const OAUTH2: OAuth2Method = {
  authType: 'oauth2_client_credentials',
  tokenUrl: 'https://idp.example.com/token',
  clientId: 'connector',
  clientSecret: 'shh',
  sendTokenAs: 'password',
  timeoutMs: 1_000,
};

describe('credential sources', () => {
  it('password: the configured user name and password, never expiring', async () => {
    const credential = await credentialSource(
      { authType: 'password', username: 'u', password: 'p' },
      { now: clock },
    ).issue();
    assert.deepEqual(credential, { username: 'u', password: 'p', issuedAt: T0, expiresAt: undefined });
    assert.equal(renewAt(credential, T0), undefined);
    const anonymous = await credentialSource({ authType: 'password' }, { now: clock }).issue();
    assert.deepEqual(anonymous, { issuedAt: T0, expiresAt: undefined });
  });

  it('Azure SAS: the device identity and a token expiring token_ttl_seconds from now, rounded up to a second', async () => {
    const method: AuthMethod = {
      authType: 'azure_iot_hub_sas',
      hubHostname: 'hub.azure-devices.net',
      deviceId: 'dev',
      deviceKey: KEY,
      tokenTtlSeconds: 4,
    };
    const credential = await credentialSource(method, { now: clock }).issue();
    const se = Math.ceil((T0 + 4_000) / 1000);
    assert.deepEqual(credential, {
      clientId: 'dev',
      username: 'hub.azure-devices.net/dev/?api-version=2021-04-12',
      password: iotHubSasToken({
        hubHostname: 'hub.azure-devices.net',
        deviceId: 'dev',
        deviceKey: KEY,
        expiresAtSeconds: se,
      }),
      issuedAt: T0,
      expiresAt: se * 1000,
    });
    assert.ok((credential.expiresAt ?? 0) - T0 >= 4_000, 'the token lives at least as long as asked');
  });

  it('Azure SAS: a lifetime under 3 s and a key that is not base64 reject with configuration errors', async () => {
    const method = {
      authType: 'azure_iot_hub_sas',
      hubHostname: 'hub.azure-devices.net',
      deviceId: 'dev',
      deviceKey: KEY,
      tokenTtlSeconds: 2,
    } as const;
    await assert.rejects(
      credentialSource(method).issue(),
      (err: unknown) => err instanceof CredentialConfigError && err.fieldKeys[0] === 'auth_method.token_ttl_seconds',
    );
    await assert.rejects(
      credentialSource({ ...method, tokenTtlSeconds: 3, deviceKey: 'no key!' }).issue(),
      (err: unknown) => err instanceof CredentialConfigError && err.fieldKeys[0] === 'auth_method.device_key',
    );
  });

  it('OAuth2 as password: the token as password, the client ID as user name, expiry from before the request', async () => {
    const endpoint = tokenEndpoint({ access_token: 'tok-1', expires_in: 4 });
    // The endpoint takes 700 ms to answer on this clock; the 4 s count from before the request.
    let now = T0;
    const slow: HttpPost = (...args) => {
      now += 700;
      return endpoint.post(...args);
    };
    const credential = await credentialSource(OAUTH2, { now: () => now, post: slow }).issue();
    assert.deepEqual(credential, { username: 'connector', password: 'tok-1', issuedAt: T0, expiresAt: T0 + 4_000 });
    const named = await credentialSource(
      { ...OAUTH2, username: 'device-7' },
      { now: clock, post: endpoint.post },
    ).issue();
    assert.equal(named.username, 'device-7');
  });

  it('OAuth2 with MQTT 5 enhanced authentication: the method and the token as authentication data', async () => {
    const endpoint = tokenEndpoint({ access_token: 'eyJ.jwt.sig' });
    const credential = await credentialSource(
      { ...OAUTH2, sendTokenAs: 'mqtt5_enhanced_auth', authenticationMethod: 'OAUTH2-JWT' },
      { now: clock, post: endpoint.post },
    ).issue();
    assert.deepEqual(credential, {
      authenticationMethod: 'OAUTH2-JWT',
      authenticationData: Buffer.from('eyJ.jwt.sig'),
      issuedAt: T0,
      expiresAt: undefined,
    });
  });

  it('OAuth2: each issue fetches a new token', async () => {
    const endpoint = tokenEndpoint({ access_token: 'a', expires_in: 60 }, { access_token: 'b', expires_in: 60 });
    const source = credentialSource(OAUTH2, { now: clock, post: endpoint.post });
    assert.equal((await source.issue()).password, 'a');
    assert.equal((await source.issue()).password, 'b');
    assert.equal(endpoint.requests(), 2);
  });

  it('OAuth2: enhanced authentication without a method is refused before asking for a token', async () => {
    const endpoint = tokenEndpoint({ access_token: 'a' });
    await assert.rejects(
      credentialSource(
        { ...OAUTH2, sendTokenAs: 'mqtt5_enhanced_auth', authenticationMethod: ' ' },
        { post: endpoint.post },
      ).issue(),
      (err: unknown) =>
        err instanceof CredentialConfigError && err.fieldKeys[0] === 'auth_method.authentication_method',
    );
    assert.equal(endpoint.requests(), 0);
  });

  it('AWS SigV4: a URL presigned now, for a connection AWS IoT ends after 24 h', async () => {
    const method = {
      authType: 'aws_sigv4_websocket',
      endpoint: 'abc-ats.iot.eu-west-1.amazonaws.com',
      region: 'eu-west-1',
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'session',
    } as const;
    const credential = await credentialSource(method, { now: clock }).issue();
    assert.deepEqual(credential, {
      url: presignedIotWebSocketUrl({ ...method, now: new Date(T0) }),
      issuedAt: T0,
      expiresAt: T0 + 86_400_000,
    });
    assert.match(credential.url ?? '', /X-Amz-Date=20250102T030405Z/);
  });
});

describe('credentialProblems', () => {
  it('lists what can be seen without asking anyone, with fields named as the caller asks', () => {
    const field = (key: string) => `[${key}]`;
    assert.deepEqual(credentialProblems({ authType: 'password' }, field), []);
    assert.deepEqual(
      credentialProblems(
        { authType: 'azure_iot_hub_sas', hubHostname: 'h', deviceId: 'd', deviceKey: '***', tokenTtlSeconds: 1 },
        field,
      ).map((problem) => problem.slice(0, problem.indexOf(']') + 1)),
      ['[auth_method.device_key]', '[auth_method.token_ttl_seconds]'],
    );
    assert.equal(
      credentialProblems({ ...OAUTH2, tokenUrl: 'http://idp.example.com/t', sendTokenAs: 'mqtt5_enhanced_auth' }, field)
        .length,
      2,
    );
    assert.deepEqual(credentialProblems(OAUTH2, field), []);
    assert.deepEqual(
      credentialProblems(
        {
          authType: 'aws_sigv4_websocket',
          endpoint: 'h.example.com',
          region: 'Mars',
          accessKeyId: 'a',
          secretAccessKey: 's',
        },
        field,
      ),
      ['[auth_method.region] must be an AWS region code such as "eu-west-1".'],
    );
  });
});
