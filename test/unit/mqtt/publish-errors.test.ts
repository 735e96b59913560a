/**
 * The words and failure types of the errors that stop publishing, called directly: the fix an oversized message is
 * offered (turning off the user properties only when that makes it fit), how a message without an input line starts
 * its sentence, and which refusals may pass on a retry. The publisher's tests check that it raises them at the right
 * moment; this checks what they say.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Oversize,
  describeOversize,
  messageRefused,
  messageTooLarge,
  qos2Downgraded,
  silentTwice,
} from '../../../src/mqtt/publish-errors.js';

function oversize(withoutUserProperties: number): Oversize {
  return {
    label: 'the record of stream "users"',
    size: 395,
    limit: { bytes: 256, source: 'the broker accepts (its Maximum Packet Size)' },
    withoutUserProperties,
  };
}

describe('describeOversize', () => {
  it('offers turning off the user properties when that makes the message fit, to the byte', () => {
    assert.equal(
      describeOversize(oversize(256)),
      'the record of stream "users" makes a 395-byte MQTT message, larger than the 256 bytes the broker accepts ' +
        '(its Maximum Packet Size). Turning off "MQTT 5 user properties" (mqtt5_user_properties) makes it 256 bytes, ' +
        "which fits; otherwise raise the broker's limit or leave out this record's large fields.",
    );
  });

  it('does not offer it when the message would still be too large', () => {
    assert.equal(
      describeOversize(oversize(257)),
      'the record of stream "users" makes a 395-byte MQTT message, larger than the 256 bytes the broker accepts ' +
        '(its Maximum Packet Size). Nothing larger can be published to this broker; raise its limit or leave out ' +
        "this record's large fields.",
    );
  });
});

describe('messageTooLarge', () => {
  it('names the input line of a record, as a configuration error', () => {
    const error = messageTooLarge(oversize(300), 12);
    assert.equal(error.failureType, 'config_error');
    assert.match(error.message, /^Input line 12: the record of stream "users" makes a 395-byte MQTT message/);
    assert.equal(error.internalMessage, undefined);
  });

  it('starts the sentence with the message itself when it has no input line', () => {
    const error = messageTooLarge({ ...oversize(300), label: 'the check message' }, 0);
    assert.match(error.message, /^The check message makes a 395-byte MQTT message, larger than the 256 bytes/);
  });
});

describe('messageRefused', () => {
  it('is a configuration error for a refusal that would repeat, naming the topic and the reason', () => {
    const error = messageRefused('t/users', 0x87);
    assert.equal(error.failureType, 'config_error');
    assert.equal(
      error.message,
      'The broker refused a message on topic "t/users": Not authorized (reason code 0x87). ' +
        "Check the broker's access rules and limits for this topic.",
    );
    assert.equal(error.internalMessage, 'Not authorized (reason code 0x87)');
  });

  for (const code of [0x80, 0x89, 0x96]) {
    it(`is a transient error for a refusal that may pass (0x${code.toString(16)})`, () => {
      const error = messageRefused('t/users', code);
      assert.equal(error.failureType, 'transient_error');
      assert.match(
        error.message,
        /^The broker refused a message on topic "t\/users": .* \(reason code 0x[0-9a-f]+\)\. It may accept it later; the sync stops so that it can be retried\.$/,
      );
    });
  }
});

describe('qos2Downgraded and silentTwice', () => {
  it('tells the user to lower the QoS when the broker answers QoS 2 with PUBACK, quoting the topic as JSON', () => {
    const error = qos2Downgraded('t/"odd"');
    assert.equal(error.failureType, 'config_error');
    assert.equal(
      error.message,
      'The broker answered a QoS 2 (exactly once) message on topic "t/\\"odd\\"" with PUBACK, the QoS 1 ' +
        'acknowledgement: it does not support QoS 2 and downgraded the message. Set "Message QoS" (message_qos) to ' +
        'AT_LEAST_ONCE.',
    );
    assert.equal(error.internalMessage, 'PUBACK for a QoS 2 PUBLISH');
  });

  it('reports messages silent twice as transient, naming the QoS and the timeout field', () => {
    const error = silentTwice('2 message(s) at QoS 1 without PUBACK for 30 s', 1);
    assert.equal(error.failureType, 'transient_error');
    assert.equal(
      error.message,
      'The broker left 2 message(s) at QoS 1 without PUBACK for 30 s, again after the connector reconnected and ' +
        "sent them once more: it keeps the connection open but does not answer at QoS 1. Check the broker's log " +
        'and load; if it is only slow, raise "Acknowledgement timeout (seconds)" (ack_timeout_seconds).',
    );
    assert.equal(error.internalMessage, 'silent twice: 2 message(s) at QoS 1 without PUBACK for 30 s');
  });
});
