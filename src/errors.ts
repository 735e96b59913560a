/**
 * Every failure the connector reports is one of these classes, so the TRACE message that ends a failed sync always
 * carries the Airbyte failure_type that tells the user (or the platform's retry logic) what to do about it.
 */
type FailureType = 'config_error' | 'system_error' | 'transient_error';

export abstract class ConnectorError extends Error {
  abstract readonly failureType: FailureType;

  /**
   * @param message shown to the user: what went wrong and what to change. Never holds a secret or a payload.
   * @param internalMessage for maintainers (the underlying library error, codes); equally free of secrets.
   */
  constructor(
    message: string,
    readonly internalMessage?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The user must change the configuration or the catalog: credentials, TLS, topic pattern, limits. */
export class ConfigError extends ConnectorError {
  readonly failureType = 'config_error' as const;
}

/**
 * The broker itself refused the connection (credentials, authorisation, client ID, ban) or announced limits the
 * configuration exceeds. Unlike a network failure this will not go away by reconnecting.
 */
export class BrokerRefusedError extends ConfigError {}

/** The broker went away, refused for a while or did not answer in time; retrying later may succeed. */
export class TransientError extends ConnectorError {
  readonly failureType = 'transient_error' as const;
}

/** A fault in the connector or in what the platform sent it (input that breaks the protocol). */
export class SystemError extends ConnectorError {
  readonly failureType = 'system_error' as const;
}

/** Input on stdin that breaks the Airbyte protocol. Names the line, never echoes it (it may hold personal data). */
export class InputError extends SystemError {
  constructor(
    readonly lineNumber: number,
    detail: string,
  ) {
    super(`Input line ${lineNumber}: ${detail}`);
  }
}

/** The sync was stopped from outside (SIGTERM, SIGINT) before its input was complete. */
export class InterruptedError extends TransientError {}

/**
 * The broker closed the connection without answering an MQTT 3.1 or 5 CONNECT: most likely it does not speak that
 * version, which trying 3.1.1 can confirm (and then the error becomes a configuration error).
 */
export class ProtocolVersionSuspectedError extends TransientError {}

export function asConnectorError(err: unknown): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new SystemError('The connector failed unexpectedly; this is a bug, please report it.', detail, { cause: err });
}
