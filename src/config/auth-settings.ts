/**
 * How the connector signs in (`auth_method`): today's user name and password, or a method that makes a credential for
 * each connection and renews it before it expires (credentials/). The checks here are the ones that need the rest of
 * the configuration: where the broker is, the protocol version, the client ID and the number of connections; what a
 * method's own fields need is credentials/sources.ts's `credentialProblems`.
 */
import type { AuthMethod } from '../credentials/sources.js';
import { credentialProblems } from '../credentials/sources.js';
import { type Config, integerOf, isConfig, stringOf } from './config-values.js';
import { field, specDefault } from './spec.js';

export type { AuthMethod };

/** What the checks need to know of the rest of the broker settings. */
export interface AuthContext {
  readonly host: string;
  readonly transport: 'tcp' | 'websocket';
  readonly useTls: boolean;
  readonly mqttVersion: '3.1' | '3.1.1' | '5';
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly clientId: string | undefined;
  readonly connections: number;
  readonly connectTimeoutMs: number;
}

/** The configured `auth_method`, `password` when absent (configurations made before it existed); problems are added. */
export function authMethodOf(config: Config, problems: string[], context: AuthContext): AuthMethod {
  const auth = isConfig(config.auth_method) ? config.auth_method : {};
  const type = stringOf(auth, 'auth_type') ?? 'password';
  const text = (key: string): string => stringOf(auth, key) ?? '';
  const method = ((): AuthMethod => {
    switch (type) {
      case 'azure_iot_hub_sas':
        return {
          authType: type,
          hubHostname: text('hub_hostname'),
          deviceId: text('device_id'),
          deviceKey: text('device_key'),
          tokenTtlSeconds: integerOf(auth, 'token_ttl_seconds') ?? variantDefault(),
        };
      case 'oauth2_client_credentials':
        return {
          authType: type,
          tokenUrl: text('token_url'),
          clientId: text('client_id'),
          clientSecret: text('client_secret'),
          ...(stringOf(auth, 'scope') ? { scope: text('scope') } : {}),
          sendTokenAs: stringOf(auth, 'send_token_as') === 'mqtt5_enhanced_auth' ? 'mqtt5_enhanced_auth' : 'password',
          ...(stringOf(auth, 'authentication_method') ? { authenticationMethod: text('authentication_method') } : {}),
          ...(context.username !== undefined ? { username: context.username } : {}),
          timeoutMs: context.connectTimeoutMs,
        };
      case 'aws_sigv4_websocket':
        return {
          authType: type,
          endpoint: context.host,
          region: text('region'),
          accessKeyId: text('access_key_id'),
          secretAccessKey: text('secret_access_key'),
          ...(stringOf(auth, 'session_token') ? { sessionToken: text('session_token') } : {}),
        };
      default:
        return { authType: 'password', username: context.username, password: context.password };
    }
  })();
  // Fields the schema already complained about would only be reported twice; the others' problems are still told.
  const reported = new Set(problems.map(fieldOf));
  problems.push(...credentialProblems(method, field).filter((problem) => !reported.has(fieldOf(problem))));
  problems.push(...contextProblems(method, context));
  return method;
}

/** The key of the field a problem begins with, as `field` names it: `"Device key" (auth_method.device_key) is ...`. */
function fieldOf(problem: string): string | undefined {
  return /^"[^"]*" \(([\w.]+)\)/.exec(problem)?.[1];
}

/** `token_ttl_seconds`'s default, declared in spec.json's Azure variant. */
function variantDefault(): number {
  return specDefault.nested('auth_method', 'azure_iot_hub_sas', 'token_ttl_seconds');
}

/** What a method needs of the other settings: its own user name, client ID, protocol version or transport. */
function contextProblems(method: AuthMethod, context: AuthContext): string[] {
  const problems: string[] = [];
  const chosen = `${field('auth_method')} is ${method.authType}`;
  const makesPassword = method.authType !== 'password' && method.authType !== 'oauth2_client_credentials';
  if (makesPassword && (context.username !== undefined || context.password !== undefined)) {
    problems.push(`${chosen}, which signs in by itself: leave ${field('username')} and ${field('password')} empty`);
  }
  if (method.authType === 'oauth2_client_credentials' && context.password !== undefined) {
    problems.push(`${chosen}, whose token is the password: leave ${field('password')} empty`);
  }
  if (method.authType === 'azure_iot_hub_sas') {
    // IoT Hub takes the device ID as the client ID, and a second connection of one device takes the first one over.
    if (context.clientId !== undefined && context.clientId !== method.deviceId) {
      problems.push(
        `${chosen}, which connects with the device ID as client ID: leave ${field('client')} empty or set it to ` +
          `${field('auth_method.device_id')}`,
      );
    }
    if (context.connections > 1) {
      problems.push(
        `${chosen}: IoT Hub allows one connection per device, so ${field('connections')} must be 1 ` +
          '(a second connection would take the first one over)',
      );
    }
  }
  if (
    method.authType === 'oauth2_client_credentials' &&
    method.sendTokenAs === 'mqtt5_enhanced_auth' &&
    context.mqttVersion !== '5'
  ) {
    problems.push(
      `${field('auth_method.send_token_as')} is mqtt5_enhanced_auth, which needs MQTT 5: set ` +
        `${field('protocol_version')} to 5`,
    );
  }
  if (method.authType === 'aws_sigv4_websocket' && (context.transport !== 'websocket' || !context.useTls)) {
    problems.push(
      `${chosen}, which signs a WebSocket URL: the broker must be wss:// (${field('broker_url')} ` +
        `wss://<endpoint>/mqtt, or ${field('transport')} websocket with ${field('use_tls')})`,
    );
  }
  return problems;
}

/** For the effective configuration line: the method and its public fields, never a secret. */
export function describeAuth(method: AuthMethod): Record<string, unknown> {
  switch (method.authType) {
    case 'password':
      return { authType: method.authType };
    case 'azure_iot_hub_sas':
      return {
        authType: method.authType,
        hubHostname: method.hubHostname,
        deviceId: method.deviceId,
        tokenTtlSeconds: method.tokenTtlSeconds,
      };
    case 'oauth2_client_credentials':
      return {
        authType: method.authType,
        tokenUrl: method.tokenUrl,
        clientId: method.clientId,
        scope: method.scope,
        sendTokenAs: method.sendTokenAs,
        authenticationMethod: method.authenticationMethod,
      };
    case 'aws_sigv4_websocket':
      return {
        authType: method.authType,
        region: method.region,
        temporaryCredentials: method.sessionToken !== undefined,
      };
  }
}
