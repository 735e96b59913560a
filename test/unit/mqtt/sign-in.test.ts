/**
 * How a credential goes into MQTT.js's CONNECT options, and that every connection of the process shares one credential
 * per configured method: an identity provider sees one token request per lifetime, not one per connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Credential } from '../../../src/credentials/credential.js';
import type { AuthMethod } from '../../../src/credentials/sources.js';
import { currentCredential, renewalTime, renewedCredential, signInOptions } from '../../../src/mqtt/sign-in.js';

/** A credential that never expires, with the parts given. */
const made = (parts: Partial<Credential>): Credential => ({ issuedAt: 0, expiresAt: undefined, ...parts });

describe('signInOptions', () => {
  it('puts a user name and password where MQTT.js sends them', () => {
    assert.deepEqual(signInOptions(made({ username: 'u', password: 'p' })), { username: 'u', password: 'p' });
    assert.deepEqual(signInOptions(made({})), {});
  });

  it('puts MQTT 5 enhanced authentication in the CONNECT properties, data only when there is some', () => {
    const data = Buffer.from('jwt');
    assert.deepEqual(signInOptions(made({ authenticationMethod: 'OAUTH2-JWT', authenticationData: data })), {
      properties: { authenticationMethod: 'OAUTH2-JWT', authenticationData: data },
    });
    assert.deepEqual(signInOptions(made({ authenticationMethod: 'OAUTH2-JWT' })), {
      properties: { authenticationMethod: 'OAUTH2-JWT' },
    });
  });

  it("takes a presigned URL's path and query, where the signature is", () => {
    const credential = made({ url: 'wss://a.iot.eu-west-1.amazonaws.com/mqtt?X-Amz-Signature=abc&x=1' });
    assert.deepEqual(signInOptions(credential), { path: '/mqtt?X-Amz-Signature=abc&x=1' });
  });
});

describe('the credential a method signs in with', () => {
  const password = (): AuthMethod => ({ authType: 'password', username: 'u', password: 'p' });

  it('is one credential for every connection of the same method', async () => {
    const method = password();
    const first = await currentCredential(method);
    assert.equal(await currentCredential(method), first);
    assert.equal(first.username, 'u');
    assert.equal(first.password, 'p');
  });

  it('is kept apart per method, and made anew when renewed', async () => {
    const one = password();
    const other = password();
    assert.notEqual(await currentCredential(one), await currentCredential(other));
    const before = await currentCredential(one);
    const renewed = await renewedCredential(one);
    assert.notEqual(renewed, before);
    assert.equal(await currentCredential(one), renewed);
  });

  it('is due for renewal only when it expires', () => {
    assert.equal(renewalTime(made({ username: 'u' }), 0), undefined);
    const due = renewalTime(made({ expiresAt: 3_600_000 }), 0);
    assert.ok(due !== undefined && due > 0 && due < 3_600_000, String(due));
  });
});
