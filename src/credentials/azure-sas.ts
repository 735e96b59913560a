/**
 * Azure IoT Hub device credentials: the MQTT identity a hub expects of a device, and the SAS token (shared access
 * signature) that is its password. The hub closes a connection when its token expires, so a token is made for a
 * lifetime and made again before that ends (credential.ts decides when).
 *
 * The recipe, from IoT Hub's documentation on security tokens:
 *   resource  = encodeURIComponent(`${hub}/devices/${device}`)
 *   signature = base64(HMAC-SHA256(key = base64-decoded device key, message = `${resource}\n${expiry}`))
 *   token     = `SharedAccessSignature sr=${resource}&sig=${encodeURIComponent(signature)}&se=${expiry}`
 */
import { createHmac } from 'node:crypto';
import { CredentialConfigError, type FieldName, fieldKeyName } from './errors.js';

/** The MQTT API version the user name announces; the hub's MQTT documentation uses this one. */
export const IOT_HUB_API_VERSION = '2021-04-12';

export interface SasTokenInput {
  /** `myhub.azure-devices.net`. */
  readonly hubHostname: string;
  readonly deviceId: string;
  /** The device's symmetric key as the portal shows it: base64. */
  readonly deviceKey: string;
  /** When the token stops working, in whole seconds since the Unix epoch. */
  readonly expiresAtSeconds: number;
}

/**
 * The hub's host name as it goes into the user name and the signed resource. Lower-cased: a DNS name is the same name
 * in any case, and the hub's own description of the resource asks for lower case, so lower case can only match.
 * The device ID is left alone: IoT Hub device IDs are case-sensitive.
 */
function hubName(hubHostname: string): string {
  return hubHostname.toLowerCase();
}

/** The MQTT client ID and user name a device connects with; the SAS token is the password. */
export function iotHubIdentity(hubHostname: string, deviceId: string): { clientId: string; username: string } {
  return { clientId: deviceId, username: `${hubName(hubHostname)}/${deviceId}/?api-version=${IOT_HUB_API_VERSION}` };
}

/** Standard base64 (the alphabet with `+` and `/`), padded or not; the portal shows keys this way. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/**
 * Why a device key cannot sign, or undefined when it can. Node's decoder skips characters outside the alphabet
 * instead of failing, so a key pasted with a stray character would sign with other bytes and the hub would only say
 * "not authorised"; checking the text first turns that into a message naming the field. Never shows the key.
 */
export function deviceKeyProblem(deviceKey: string, field: FieldName = fieldKeyName): string | undefined {
  const key = deviceKey.trim();
  if (key === '') return `${field('auth_method.device_key')} is empty; copy the device's primary or secondary key.`;
  if (!BASE64.test(key)) {
    return (
      `${field('auth_method.device_key')} is not base64 text; copy the device's primary or secondary key ` +
      'exactly as the Azure portal shows it (letters, digits, +, / and = only).'
    );
  }
  return undefined;
}

/** The token that is the device's MQTT password until `expiresAtSeconds`. Throws for a key that is not base64. */
export function iotHubSasToken(input: SasTokenInput, field: FieldName = fieldKeyName): string {
  const problem = deviceKeyProblem(input.deviceKey, field);
  if (problem) throw new CredentialConfigError(problem, ['auth_method.device_key']);
  if (!Number.isSafeInteger(input.expiresAtSeconds) || input.expiresAtSeconds <= 0) {
    // A programming error, not the user's: the expiry is computed, never typed.
    throw new RangeError(`A SAS token expiry must be whole seconds since the epoch, not ${input.expiresAtSeconds}`);
  }
  const resource = encodeURIComponent(`${hubName(input.hubHostname)}/devices/${input.deviceId}`);
  const key = Buffer.from(input.deviceKey.trim(), 'base64');
  const signature = createHmac('sha256', key).update(`${resource}\n${input.expiresAtSeconds}`).digest('base64');
  return `SharedAccessSignature sr=${resource}&sig=${encodeURIComponent(signature)}&se=${input.expiresAtSeconds}`;
}
