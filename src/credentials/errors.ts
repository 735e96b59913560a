/**
 * Failures of obtaining a credential that expires. A configuration problem names the fields to fix by their keys
 * (`auth_method.client_secret`), never by display titles: titles live in spec.json, and the caller passes a `FieldName`
 * that turns a key into the words its messages use. Without one, messages show the keys themselves.
 */
import { ConfigError, TransientError } from '../errors.js';

/** Keys of the configuration fields a credential problem can point at. */
export type CredentialField =
  | 'broker_host'
  | 'auth_method.hub_hostname'
  | 'auth_method.device_id'
  | 'auth_method.device_key'
  | 'auth_method.token_ttl_seconds'
  | 'auth_method.token_url'
  | 'auth_method.client_id'
  | 'auth_method.client_secret'
  | 'auth_method.scope'
  | 'auth_method.authentication_method'
  | 'auth_method.region'
  | 'auth_method.access_key_id'
  | 'auth_method.secret_access_key'
  | 'auth_method.session_token';

/** How messages name a field: for example `"Client secret" (auth_method.client_secret)`, from the spec's titles. */
export type FieldName = (key: CredentialField) => string;

/** Names each field by its key, for callers that have no titles at hand (and for tests). */
export const fieldKeyName: FieldName = (key) => key;

/** The configuration is wrong; `fieldKeys` lists the fields to look at, the likeliest first. */
export class CredentialConfigError extends ConfigError {
  constructor(
    message: string,
    readonly fieldKeys: readonly CredentialField[],
    internalMessage?: string,
    options?: { cause?: unknown },
  ) {
    super(message, internalMessage, options);
  }
}

/** The identity provider could not be reached or failed; the same request may succeed later. */
export class CredentialUnavailableError extends TransientError {}
