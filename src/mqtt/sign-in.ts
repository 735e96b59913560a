/**
 * The credential each connection signs in with, made by the configured `auth_method` (credentials/), and how it goes
 * into the CONNECT: user name and password (a static pair, an IoT Hub SAS token, an OAuth2 token), MQTT 5 enhanced
 * authentication (an OAuth2 token for Azure Event Grid), or the WebSocket URL itself (AWS SigV4).
 *
 * One credential serves every connection of the process until it is due for renewal (credential.ts `renewAt`): the
 * publishing connections, the status and the side connections all ask here, and an identity provider sees one token
 * request per lifetime, not one per connection.
 */
import type { IClientOptions } from 'mqtt';
import type { AuthMethod } from '../config/auth-settings.js';
import { field } from '../config/spec.js';
import { type Credential, SharedCredential, renewAt } from '../credentials/credential.js';
import { credentialSource } from '../credentials/sources.js';

const shared = new WeakMap<AuthMethod, SharedCredential>();

function sharedFor(auth: AuthMethod): SharedCredential {
  let credential = shared.get(auth);
  if (!credential) {
    credential = new SharedCredential(credentialSource(auth, { field }));
    shared.set(auth, credential);
  }
  return credential;
}

/** The credential to connect with now: the one in use, or a new one when it is due. */
export function currentCredential(auth: AuthMethod): Promise<Credential> {
  return sharedFor(auth).issue();
}

/** A new credential, whatever the one in use: the broker refused or is about to refuse it. */
export function renewedCredential(auth: AuthMethod): Promise<Credential> {
  return sharedFor(auth).renew();
}

/** When a connection signed in with `credential` should renew it; undefined for one that does not expire. */
export function renewalTime(credential: Credential, now = Date.now()): number | undefined {
  return renewAt(credential, now);
}

/**
 * The parts of MQTT.js's options `credential` sets: who signs in, with what, and where (a presigned URL's path). Not the
 * client ID: the settings already make it the one a method needs (IoT Hub's device ID), and side connections add to it.
 */
export function signInOptions(credential: Credential): Partial<IClientOptions> {
  const enhanced =
    credential.authenticationMethod !== undefined
      ? {
          properties: {
            authenticationMethod: credential.authenticationMethod,
            ...(credential.authenticationData ? { authenticationData: credential.authenticationData } : {}),
          },
        }
      : {};
  const url = credential.url === undefined ? undefined : new URL(credential.url);
  return {
    ...(credential.username !== undefined ? { username: credential.username } : {}),
    ...(credential.password !== undefined ? { password: credential.password } : {}),
    ...enhanced,
    ...(url ? { path: `${url.pathname}${url.search}` } : {}),
  };
}
