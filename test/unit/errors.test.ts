/**
 * The error classes: each failure the connector reports carries the Airbyte failure_type that decides what the
 * platform and the user do next, and anything else thrown becomes a system error that keeps its cause for maintainers
 * without showing its text to the user.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialConfigError, CredentialUnavailableError } from '../../src/credentials/errors.js';
import {
  BrokerRefusedError,
  ConfigError,
  ConnectorError,
  InputError,
  InterruptedError,
  ProtocolVersionSuspectedError,
  SystemError,
  TransientError,
  asConnectorError,
} from '../../src/errors.js';

describe('connector errors', () => {
  it('carry the failure type their kind means, and their own class name', () => {
    const cases: [ConnectorError, string, string][] = [
      [new ConfigError('m'), 'config_error', 'ConfigError'],
      [new BrokerRefusedError('m'), 'config_error', 'BrokerRefusedError'],
      [new TransientError('m'), 'transient_error', 'TransientError'],
      [new InterruptedError('m'), 'transient_error', 'InterruptedError'],
      [new ProtocolVersionSuspectedError('m'), 'transient_error', 'ProtocolVersionSuspectedError'],
      [new SystemError('m'), 'system_error', 'SystemError'],
      [new InputError(7, 'm'), 'system_error', 'InputError'],
      [new CredentialConfigError('m', ['auth_method.client_secret']), 'config_error', 'CredentialConfigError'],
      [new CredentialUnavailableError('m'), 'transient_error', 'CredentialUnavailableError'],
    ];
    for (const [error, failureType, name] of cases) {
      assert.equal(error.failureType, failureType, name);
      assert.equal(error.name, name);
      assert.ok(error instanceof ConnectorError);
    }
  });

  it('keep the message for the user apart from the one for maintainers', () => {
    const cause = new Error('ECONNRESET');
    const error = new TransientError('The broker went away.', 'read ECONNRESET', { cause });
    assert.equal(error.message, 'The broker went away.');
    assert.equal(error.internalMessage, 'read ECONNRESET');
    assert.equal(error.cause, cause);
  });

  it('name the input line, not its text', () => {
    const error = new InputError(42, 'not JSON');
    assert.equal(error.message, 'Input line 42: not JSON');
    assert.equal(error.lineNumber, 42);
  });

  it('list the fields a credential problem points at, likeliest first', () => {
    const error = new CredentialConfigError('refused', ['auth_method.client_secret', 'auth_method.client_id']);
    assert.deepEqual(error.fieldKeys, ['auth_method.client_secret', 'auth_method.client_id']);
  });
});

describe('asConnectorError', () => {
  it('passes a connector error through as it is', () => {
    const error = new ConfigError('m');
    assert.equal(asConnectorError(error), error);
  });

  it('makes anything else a system error that says it is a bug, keeping the original for maintainers', () => {
    const original = new RangeError('Invalid array length');
    const error = asConnectorError(original);
    assert.ok(error instanceof SystemError);
    assert.equal(error.message, 'The connector failed unexpectedly; this is a bug, please report it.');
    assert.equal(error.internalMessage, 'RangeError: Invalid array length');
    assert.equal(error.cause, original);
    const thrown = asConnectorError('a string');
    assert.equal(thrown.internalMessage, 'a string');
  });
});
