import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  IOT_HUB_API_VERSION,
  deviceKeyProblem,
  iotHubIdentity,
  iotHubSasToken,
} from '../../../src/credentials/azure-sas.js';
import { CredentialConfigError } from '../../../src/credentials/errors.js';

/** 32 bytes, `ABCDEFGHIJKLMNOPQRSTUVWXYZ012345`, as base64: the shape of an IoT Hub device key. */
const KEY = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=';
const HUB = 'contoso-hub.azure-devices.net';

/** The documented recipe, written out again here with node:crypto, independently of the module's code. */
function recipe(hub: string, device: string, key: string, expiry: number): string {
  const resource = encodeURIComponent(`${hub}/devices/${device}`);
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${resource}\n${expiry}`).digest('base64');
  return `SharedAccessSignature sr=${resource}&sig=${encodeURIComponent(sig)}&se=${expiry}`;
}

describe('Azure IoT Hub SAS token', () => {
  it('matches a token derived once with OpenSSL and pinned here', () => {
    // Derived outside Node, so that a mistake shared by the module and the recipe above cannot hide:
    //   printf 'contoso-hub.azure-devices.net%%2Fdevices%%2Fdev-01\n1700000002' |
    //     openssl dgst -sha256 -mac HMAC \
    //       -macopt hexkey:4142434445464748494a4b4c4d4e4f505152535455565758595a303132333435 -binary | base64
    //   → PxmpG+IWDDvQEiWB3J10eGmdG9PIQBA4zaVbNiY59lY=   (OpenSSL 3.0; the hex key is KEY decoded)
    // The expiry was picked so that the signature holds a `+`, which must reach the token as %2B.
    assert.equal(
      iotHubSasToken({ hubHostname: HUB, deviceId: 'dev-01', deviceKey: KEY, expiresAtSeconds: 1_700_000_002 }),
      'SharedAccessSignature sr=contoso-hub.azure-devices.net%2Fdevices%2Fdev-01' +
        '&sig=PxmpG%2BIWDDvQEiWB3J10eGmdG9PIQBA4zaVbNiY59lY%3D&se=1700000002',
    );
  });

  it('matches the documented recipe for devices whose IDs need encoding', () => {
    for (const deviceId of ['dev-01', 'sensor:7@hall', 'a b+c', 'ünï']) {
      for (const expiry of [1, 1_700_000_000, 4_102_444_800]) {
        assert.equal(
          iotHubSasToken({ hubHostname: HUB, deviceId, deviceKey: KEY, expiresAtSeconds: expiry }),
          recipe(HUB, deviceId, KEY, expiry),
          `device ${deviceId}, expiry ${expiry}`,
        );
      }
    }
  });

  it('signs for the hub name in lower case, as DNS names are the same in any case', () => {
    const token = iotHubSasToken({
      hubHostname: 'Contoso-Hub.Azure-Devices.NET',
      deviceId: 'Dev-01',
      deviceKey: KEY,
      expiresAtSeconds: 1_700_000_000,
    });
    assert.equal(token, recipe(HUB, 'Dev-01', KEY, 1_700_000_000));
  });

  it('accepts a key without padding or with surrounding white space, as pasted', () => {
    const expected = recipe(HUB, 'd', KEY, 10);
    for (const deviceKey of [KEY.replace(/=+$/, ''), ` ${KEY}\n`]) {
      assert.equal(iotHubSasToken({ hubHostname: HUB, deviceId: 'd', deviceKey, expiresAtSeconds: 10 }), expected);
    }
  });

  it('refuses a key that is not base64, naming the field and never the key', () => {
    for (const deviceKey of ['not base64!', 'QUJD-REVG', 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=x', '']) {
      assert.throws(
        () => iotHubSasToken({ hubHostname: HUB, deviceId: 'd', deviceKey, expiresAtSeconds: 10 }),
        (err: unknown) => {
          assert.ok(err instanceof CredentialConfigError);
          assert.equal(err.failureType, 'config_error');
          assert.deepEqual(err.fieldKeys, ['auth_method.device_key']);
          assert.match(err.message, /auth_method\.device_key/);
          if (deviceKey !== '') assert.ok(!err.message.includes(deviceKey), err.message);
          return true;
        },
        JSON.stringify(deviceKey),
      );
    }
  });

  it('names the field as the caller asks', () => {
    const problem = deviceKeyProblem('%%%', (key) => `"Device key" (${key})`);
    assert.match(problem ?? '', /^"Device key" \(auth_method\.device_key\) is not base64/);
    assert.equal(deviceKeyProblem(KEY), undefined);
  });

  it('refuses an expiry that is not whole seconds since the epoch', () => {
    for (const expiresAtSeconds of [0, -5, 1.5, Number.NaN]) {
      assert.throws(
        () => iotHubSasToken({ hubHostname: HUB, deviceId: 'd', deviceKey: KEY, expiresAtSeconds }),
        RangeError,
      );
    }
  });
});

describe('Azure IoT Hub identity', () => {
  it('is the device ID as client ID and the hub, device and API version as user name', () => {
    assert.deepEqual(iotHubIdentity('Contoso-Hub.azure-devices.net', 'dev-01'), {
      clientId: 'dev-01',
      username: `contoso-hub.azure-devices.net/dev-01/?api-version=${IOT_HUB_API_VERSION}`,
    });
    assert.equal(IOT_HUB_API_VERSION, '2021-04-12');
  });
});
