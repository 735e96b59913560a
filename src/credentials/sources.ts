/**
 * One credential source per `auth_method.auth_type`, each making a Credential (credential.ts) on demand: the static
 * user name and password, an Azure IoT Hub SAS token valid for `token_ttl_seconds` from now, an OAuth2 access token
 * fetched from the token endpoint, or an AWS SigV4-presigned WebSocket URL. The clock and the HTTP exchange are
 * parameters, so that tests control both.
 */
import { deviceKeyProblem, iotHubIdentity, iotHubSasToken } from './azure-sas.js';
import type { Credential, CredentialSource } from './credential.js';
import { CredentialConfigError, type FieldName, fieldKeyName } from './errors.js';
import type { HttpPost } from './http-post.js';
import { fetchClientCredentialsToken, tokenUrlProblem } from './oauth2.js';
import { IOT_MAX_CONNECTION_SECONDS, iotPresignProblem, presignedIotWebSocketUrl } from './sigv4.js';

/** The shortest SAS token lifetime: spec.json's minimum for `token_ttl_seconds`, checked here too. */
export const MIN_SAS_TTL_SECONDS = 3;

export interface PasswordMethod {
  readonly authType: 'password';
  readonly username?: string;
  readonly password?: string;
}

export interface AzureSasMethod {
  readonly authType: 'azure_iot_hub_sas';
  readonly hubHostname: string;
  readonly deviceId: string;
  readonly deviceKey: string;
  readonly tokenTtlSeconds: number;
}

export interface OAuth2Method {
  readonly authType: 'oauth2_client_credentials';
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope?: string;
  /** Where the token goes: the MQTT password, or MQTT 5 enhanced authentication data. */
  readonly sendTokenAs: 'password' | 'mqtt5_enhanced_auth';
  /** The MQTT 5 authentication method, such as `OAUTH2-JWT` (Azure Event Grid); needed for `mqtt5_enhanced_auth`. */
  readonly authenticationMethod?: string;
  /**
   * The MQTT user name to send with the token. MQTT 3.1.1 allows no password without a user name, and brokers that
   * take a token as the password ignore the name or match it against the token's claims; by default the client ID.
   */
  readonly username?: string;
  readonly timeoutMs: number;
  /** Certificate authorities to trust for the token endpoint, PEM. */
  readonly ca?: string;
}

export interface AwsSigV4Method {
  readonly authType: 'aws_sigv4_websocket';
  /** The AWS IoT data endpoint (the broker host). */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export type AuthMethod = PasswordMethod | AzureSasMethod | OAuth2Method | AwsSigV4Method;

function ttlProblem(method: AzureSasMethod, field: FieldName): string | undefined {
  return method.tokenTtlSeconds >= MIN_SAS_TTL_SECONDS
    ? undefined
    : `${field('auth_method.token_ttl_seconds')} must be at least ${MIN_SAS_TTL_SECONDS} seconds.`;
}

function authenticationMethodProblem(method: OAuth2Method, field: FieldName): string | undefined {
  return method.sendTokenAs === 'mqtt5_enhanced_auth' && !method.authenticationMethod?.trim()
    ? `${field('auth_method.authentication_method')} is needed to send the token with MQTT 5 enhanced ` +
        'authentication (for Azure Event Grid: OAUTH2-JWT, or CUSTOM-JWT for tokens of another provider).'
    : undefined;
}

export interface SourceOptions {
  /** The clock, ms since the epoch. */
  readonly now?: () => number;
  /** How messages name fields; by default their keys. */
  readonly field?: FieldName;
  /** The HTTP exchange of token requests; tests replace it. */
  readonly post?: HttpPost;
}

export function passwordSource(method: PasswordMethod, options: SourceOptions = {}): CredentialSource {
  const now = options.now ?? Date.now;
  return {
    issue: () =>
      Promise.resolve({
        ...(method.username !== undefined ? { username: method.username } : {}),
        ...(method.password !== undefined ? { password: method.password } : {}),
        issuedAt: now(),
        expiresAt: undefined,
      }),
  };
}

export function azureSasSource(method: AzureSasMethod, options: SourceOptions = {}): CredentialSource {
  const now = options.now ?? Date.now;
  const field = options.field ?? fieldKeyName;
  return {
    // Made inside the executor, so that a problem becomes a rejection like any source's.
    issue: () =>
      new Promise<Credential>((resolve) => {
        const problem = ttlProblem(method, field);
        if (problem) throw new CredentialConfigError(problem, ['auth_method.token_ttl_seconds']);
        const issuedAt = now();
        // Rounded up to whole seconds, so the token lives at least as long as asked.
        const expiresAtSeconds = Math.ceil((issuedAt + method.tokenTtlSeconds * 1000) / 1000);
        resolve({
          ...iotHubIdentity(method.hubHostname, method.deviceId),
          password: iotHubSasToken({ ...method, expiresAtSeconds }, field),
          issuedAt,
          expiresAt: expiresAtSeconds * 1000,
        });
      }),
  };
}

export function oauth2Source(method: OAuth2Method, options: SourceOptions = {}): CredentialSource {
  const now = options.now ?? Date.now;
  const field = options.field ?? fieldKeyName;
  return {
    issue: async () => {
      const problem = authenticationMethodProblem(method, field);
      if (problem) throw new CredentialConfigError(problem, ['auth_method.authentication_method']);
      // Taken before asking: the provider starts the token's lifetime when it answers, so the expiry reckoned from
      // here is never later than the real one.
      const issuedAt = now();
      const token = await fetchClientCredentialsToken(
        {
          tokenUrl: method.tokenUrl,
          clientId: method.clientId,
          clientSecret: method.clientSecret,
          scope: method.scope,
          timeoutMs: method.timeoutMs,
          ca: method.ca,
        },
        { field, post: options.post },
      );
      const expiresAt =
        token.expiresInSeconds === undefined ? undefined : issuedAt + Math.floor(token.expiresInSeconds * 1000);
      if (method.sendTokenAs === 'mqtt5_enhanced_auth') {
        return {
          ...(method.username !== undefined ? { username: method.username } : {}),
          authenticationMethod: method.authenticationMethod?.trim() ?? '',
          authenticationData: Buffer.from(token.accessToken, 'utf8'),
          issuedAt,
          expiresAt,
        };
      }
      return { username: method.username ?? method.clientId, password: token.accessToken, issuedAt, expiresAt };
    },
  };
}

export function awsSigV4Source(method: AwsSigV4Method, options: SourceOptions = {}): CredentialSource {
  const now = options.now ?? Date.now;
  const field = options.field ?? fieldKeyName;
  return {
    issue: () =>
      new Promise<Credential>((resolve) => {
        const issuedAt = now();
        const url = presignedIotWebSocketUrl({ ...method, now: new Date(issuedAt) }, field);
        // The URL only opens the connection; what ends is the connection, which AWS IoT closes after 24 h.
        resolve({ url, issuedAt, expiresAt: issuedAt + IOT_MAX_CONNECTION_SECONDS * 1000 });
      }),
  };
}

/** The source for a configured `auth_method`. */
export function credentialSource(method: AuthMethod, options: SourceOptions = {}): CredentialSource {
  switch (method.authType) {
    case 'password':
      return passwordSource(method, options);
    case 'azure_iot_hub_sas':
      return azureSasSource(method, options);
    case 'oauth2_client_credentials':
      return oauth2Source(method, options);
    case 'aws_sigv4_websocket':
      return awsSigV4Source(method, options);
  }
}

/**
 * Every problem with a configured `auth_method` that can be seen without asking anyone, as messages: for checking the
 * configuration up front, with the other problems of the configuration.
 */
export function credentialProblems(method: AuthMethod, field: FieldName = fieldKeyName): string[] {
  const problems: (string | undefined)[] = [];
  switch (method.authType) {
    case 'password':
      break;
    case 'azure_iot_hub_sas':
      problems.push(deviceKeyProblem(method.deviceKey, field), ttlProblem(method, field));
      break;
    case 'oauth2_client_credentials':
      problems.push(tokenUrlProblem(method.tokenUrl, field), authenticationMethodProblem(method, field));
      break;
    case 'aws_sigv4_websocket':
      problems.push(iotPresignProblem(method, field)?.message);
      break;
  }
  return problems.filter((problem): problem is string => problem !== undefined);
}
