/**
 * What went wrong while connecting, in words the user can act on: whatever MQTT.js, ws or Node reported (a CONNACK
 * refusal, a socket error code, a TLS alert, an HTTP status of a WebSocket handshake, a timeout) becomes a typed error
 * that says what to change, with the library's own text kept as its internal message. Each decides its failure type:
 * a refusal that will not change by retrying is a configuration error (`BrokerRefusedError` stops reconnecting), a
 * network failure is transient.
 */
import { brokerAddress } from '../config/broker-url.js';
import type { BrokerSettings, QoS } from '../config/settings.js';
import { field, fieldTitle } from '../config/spec.js';
import {
  BrokerRefusedError,
  ConfigError,
  type ConnectorError,
  ProtocolVersionSuspectedError,
  TransientError,
} from '../errors.js';

/** The error a CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5) that refuses the connection stands for. */
type ConnackRefusal = (broker: BrokerSettings, detail: string) => ConnectorError;

/** The fields that make what the broker checks when it refuses the credentials, by sign-in method. */
function credentialFields(b: BrokerSettings): string {
  switch (b.auth.authType) {
    case 'password':
      return `${field('username')} and ${field('password')}`;
    case 'azure_iot_hub_sas':
      return `${field('auth_method.device_id')} and ${field('auth_method.device_key')} (the SAS token made from them)`;
    case 'oauth2_client_credentials':
      return (
        `the access token the token endpoint gave for ${field('auth_method.client_id')}: its ` +
        `${field('auth_method.scope')}, and the broker's trust in the identity provider`
      );
    case 'aws_sigv4_websocket':
      return (
        `${field('auth_method.access_key_id')}, ${field('auth_method.secret_access_key')} and ` +
        `${field('auth_method.region')} (the signed WebSocket URL)`
      );
  }
}

const badCredentials: ConnackRefusal = (b, detail) =>
  new BrokerRefusedError(`The broker refused the credentials; check ${credentialFields(b)}.`, detail);

const notAuthorized: ConnackRefusal = (b, detail) =>
  new BrokerRefusedError(
    `The broker does not authorise ${b.username ? `user "${b.username}"` : 'this client'} to connect; ` +
      `check ${credentialFields(b)}, the client certificate and the broker's access rules.`,
    detail,
  );

const badAuthenticationMethod: ConnackRefusal = (_b, detail) =>
  new BrokerRefusedError(
    `The broker does not accept the authentication method; check ${field('auth_method.authentication_method')}.`,
    detail,
  );

const badProtocol: ConnackRefusal = (b, detail) =>
  new BrokerRefusedError(
    `The broker does not accept MQTT ${b.mqttVersion}; set ${field('protocol_version')} to a version it supports.`,
    detail,
  );

const badClientId: ConnackRefusal = (b, detail) =>
  new BrokerRefusedError(
    `The broker rejected the client ID "${b.clientId}"; set a different ${field('client')}.`,
    detail,
  );

const CONNACK_REFUSALS: Readonly<Record<number, ConnackRefusal>> = {
  1: badProtocol,
  2: badClientId,
  3: (_b, detail) =>
    new TransientError('The broker answered that the MQTT service is unavailable; try again later.', detail),
  4: badCredentials,
  5: notAuthorized,
  132: badProtocol,
  133: badClientId,
  134: badCredentials,
  135: notAuthorized,
  136: (_b, detail) => new TransientError('The broker answered that it is unavailable; try again later.', detail),
  137: (_b, detail) => new TransientError('The broker answered that it is busy; try again later.', detail),
  138: (_b, detail) => new BrokerRefusedError('The broker has banned this client.', detail),
  140: badAuthenticationMethod,
  159: (_b, detail) => new TransientError('The broker refused: connection rate exceeded; try again later.', detail),
};

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
]);

export function timedOut(broker: BrokerSettings, detail?: string): ConnectorError {
  return new TransientError(
    `The broker at ${brokerAddress(broker)} did not accept the connection ` +
      `within ${broker.connectTimeoutMs / 1000} s; ` +
      `check the host, the port and the TLS setting, or raise ${field('connect_timeout')}.`,
    detail,
  );
}

export function tlsNotEstablished(broker: BrokerSettings, detail?: string): ConnectorError {
  return new ConfigError(
    `The TLS handshake with ${brokerAddress(broker)} did not complete: the broker closed the connection. ` +
      `If this port does not speak TLS, turn off ${field('use_tls')} or use the broker's TLS port.`,
    detail,
  );
}

/**
 * The broker closed the connection before a CONNACK, without a transport error. After a 3.1 or 5 CONNECT that is how
 * brokers that do not speak the version answer (NATS takes only 3.1.1, RabbitMQ 3.x only 3.1 and 3.1.1): that comes
 * first, and `confirmProtocolVersion` can try 3.1.1 to be sure. After a 3.1.1 CONNECT, a TLS port or a missing client
 * certificate is the usual reason.
 */
export function closedWithoutAccepting(broker: BrokerSettings, detail?: string): ConnectorError {
  const address = brokerAddress(broker);
  const version = broker.mqttVersion;
  if (version !== '3.1.1') {
    return new ProtocolVersionSuspectedError(
      `The broker at ${address} closed the connection without answering the MQTT ${version} CONNECT. ` +
        `Most likely it does not speak MQTT ${version} (NATS accepts only 3.1.1, RabbitMQ 3.x only 3.1 and 3.1.1): ` +
        `set ${field('protocol_version')} to 3.1.1. Otherwise, if it expects TLS, turn on ${field('use_tls')}; ` +
        'if it requires a client certificate, set one.',
      detail,
    );
  }
  return new TransientError(
    `The broker at ${address} closed the connection without accepting it. If it expects TLS, turn on ` +
      `${field('use_tls')}; if it requires a client certificate, set one; otherwise check its logs.`,
    detail,
  );
}

/** A failure of the TLS layer, by Node's error code; undefined for any other code. */
function tlsFailure(code: unknown, broker: BrokerSettings, detail: string): ConnectorError | undefined {
  switch (code) {
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return new ConfigError(
        `The broker's TLS certificate does not match the host name "${broker.tls?.servername ?? broker.host}"; ` +
          `connect by the name the certificate carries, or set ${field('tls_server_name')}.`,
        detail,
      );
    case 'CERT_HAS_EXPIRED':
      return new ConfigError("The broker's TLS certificate has expired.", detail);
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
    case 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE':
      return new ConfigError(
        `The broker requires a client certificate; set ${field('tls_client_certificate')} and ` +
          `${field('tls_client_key')}.`,
        detail,
      );
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN':
      return new ConfigError(
        'The broker rejected the client certificate: it does not trust the authority that signed it, ' +
          'or the certificate is invalid.',
        detail,
      );
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return new ConfigError(
        `TLS was used against ${brokerAddress(broker)}, which does not speak TLS; turn off ${field('use_tls')} ` +
          "or use the broker's TLS port.",
        detail,
      );
    default:
      if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
        return new ConfigError(
          "The broker's TLS certificate is signed by an unknown certificate authority; " +
            `set ${field('tls_ca_certificate')} to the authority that signed it.`,
          detail,
        );
      }
      return undefined;
  }
}

/**
 * Turns whatever MQTT.js, ws or Node reported while connecting into an error the user can act on. `tlsEstablished`
 * tells a connection dropped during the TLS handshake (usually TLS against a plain port) from one dropped later.
 */
export function describeConnectError(err: unknown, broker: BrokerSettings, tlsEstablished = false): ConnectorError {
  const address = brokerAddress(broker);
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const detail = `${message}${typeof code === 'string' || typeof code === 'number' ? ` (${code})` : ''}`;
  const refusal = typeof code === 'number' ? CONNACK_REFUSALS[code] : undefined;
  if (refusal) return refusal(broker, detail);
  if (message === 'connack timeout') return timedOut(broker, detail);
  if (code === 'ECONNREFUSED') {
    return new TransientError(
      `Nothing accepts connections at ${address}: check the broker's host and port, and that it is running.`,
      detail,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new ConfigError(`The broker host "${broker.host}" could not be resolved; check the host name.`, detail);
  }
  const tls = tlsFailure(code, broker, detail);
  if (tls) return tls;
  if (/before secure TLS connection was established/.test(message)) {
    return new ConfigError(
      `The TLS handshake with ${address} failed: the port probably does not speak TLS; ` +
        `turn off ${field('use_tls')} or use the broker's TLS port.`,
      detail,
    );
  }
  const http = /Unexpected server response: (\d+)/.exec(message)?.[1];
  if (http) {
    return new ConfigError(
      `The WebSocket handshake with ${address} was refused with HTTP ${http}; check ${fieldTitle('websocket_path')} ` +
        `(websocket_path, now "${broker.websocketPath}") and that the port serves MQTT over WebSocket.`,
      detail,
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    if (broker.tls && !tlsEstablished) return tlsNotEstablished(broker, detail);
    return closedWithoutAccepting(broker, detail);
  }
  return new TransientError(`Could not connect to the broker at ${address}: ${message}`, detail);
}

/** What an MQTT 5 broker announced in its CONNACK; empty for MQTT 3.1.x, which announces nothing. */
export interface BrokerLimits {
  readonly maximumQoS?: number;
  readonly retainAvailable?: boolean;
  readonly receiveMaximum?: number;
  readonly maximumPacketSize?: number;
  readonly topicAliasMaximum?: number;
}

/** What a publishing connection will send, which the broker's announced limits must allow. */
export interface Sends {
  readonly qos: QoS;
  readonly retain: boolean;
}

/** The broker's announced limits rule out what the connection will send: a configuration error saying what. */
export function limitsRefusal(sends: Sends, limits: BrokerLimits): ConnectorError | undefined {
  const problems: string[] = [];
  if (limits.maximumQoS !== undefined && sends.qos > limits.maximumQoS) {
    problems.push(`the broker accepts messages up to QoS ${limits.maximumQoS} only; lower ${field('message_qos')}`);
  }
  if (limits.retainAvailable === false && sends.retain) {
    problems.push(`the broker does not support retained messages; turn off ${field('message_retained')}`);
  }
  return problems.length === 0
    ? undefined
    : new BrokerRefusedError(`The broker's limits rule out this configuration: ${problems.join('; ')}.`);
}
