import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Loss, QUICK_LOSS_MS, QUICK_LOSSES_TO_FAIL, decideOnLoss } from '../../../src/mqtt/connection-loss.js';
import { ConfigError, TransientError } from '../../../src/errors.js';
import type { SendEvidence } from '../../../src/mqtt/close-causes.js';

const POLICY = { automaticReconnect: true, clientId: 'airbyte-sync-7' };
const LONG_LIVED = QUICK_LOSS_MS * 10;

function loss(overrides: Partial<Loss>): Loss {
  return { reasonCode: undefined, problem: undefined, livedMs: LONG_LIVED, quickLossesBefore: 0, ...overrides };
}

describe('decideOnLoss', () => {
  const cases: [
    string,
    Partial<Loss>,
    Partial<typeof POLICY>,
    'reconnect' | 'config_error' | 'transient_error',
    RegExp,
  ][] = [
    ['a reset socket', { problem: 'ECONNRESET' }, {}, 'reconnect', /^ECONNRESET$/],
    ['a close without a word', {}, {}, 'reconnect', /^closed by the broker or the network$/],
    ['DISCONNECT with success', { reasonCode: 0 }, {}, 'reconnect', /closed by the broker or the network/],
    ['Server shutting down (0x8b)', { reasonCode: 0x8b }, {}, 'reconnect', /Server shutting down \(reason code 0x8b\)/],
    ['Server busy (0x89)', { reasonCode: 0x89 }, {}, 'reconnect', /Server busy/],
    ['Unspecified error (0x80)', { reasonCode: 0x80 }, {}, 'reconnect', /Unspecified error/],
    ['Administrative action (0x98)', { reasonCode: 0x98 }, {}, 'reconnect', /Administrative action/],
    ['Connection rate exceeded (0x9f)', { reasonCode: 0x9f }, {}, 'reconnect', /Connection rate exceeded/],
    [
      'Packet too large (0x95)',
      { reasonCode: 0x95 },
      {},
      'config_error',
      /Packet too large \(reason code 0x95\)\. Sending the same messages again would meet the same answer/,
    ],
    ['Not authorized (0x87)', { reasonCode: 0x87 }, {}, 'config_error', /Not authorized/],
    ['Receive Maximum exceeded (0x93)', { reasonCode: 0x93 }, {}, 'config_error', /Receive Maximum exceeded/],
    ['Topic Name invalid (0x90)', { reasonCode: 0x90 }, {}, 'config_error', /Topic Name invalid/],
    ['an unknown failure code', { reasonCode: 0xfe }, {}, 'config_error', /Refused \(reason code 0xfe\)/],
    [
      'Session taken over (0x8e)',
      { reasonCode: 0x8e },
      {},
      'config_error',
      /Another client connected with client ID "airbyte-sync-7".*"Client ID" \(client\)/,
    ],
    [
      'Session taken over, even with reconnection off',
      { reasonCode: 0x8e },
      { automaticReconnect: false },
      'config_error',
      /Session taken over/,
    ],
    [
      'a reset with reconnection off',
      { problem: 'ECONNRESET' },
      { automaticReconnect: false },
      'transient_error',
      /lost \(ECONNRESET\) and "Automatic reconnect" \(automatic_reconnect\) is off/,
    ],
    [
      `the ${QUICK_LOSSES_TO_FAIL}rd quick loss in a row`,
      { livedMs: 10, quickLossesBefore: QUICK_LOSSES_TO_FAIL - 1 },
      {},
      'config_error',
      /closed the connection 3 times in a row within 2 s of accepting it.*client ID "airbyte-sync-7"/,
    ],
    ['a quick loss after a long-lived connection', { livedMs: 10, quickLossesBefore: 0 }, {}, 'reconnect', /closed by/],
    [
      'a long-lived connection after quick losses',
      { livedMs: LONG_LIVED, quickLossesBefore: QUICK_LOSSES_TO_FAIL - 1 },
      {},
      'reconnect',
      /closed by/,
    ],
  ];
  for (const [name, given, policy, expected, text] of cases) {
    it(`${name}: ${expected}`, () => {
      const decision = decideOnLoss(loss(given), { ...POLICY, ...policy });
      if (expected === 'reconnect') {
        assert.equal(decision.action, 'reconnect');
        assert.match(decision.action === 'reconnect' ? decision.cause : '', text);
      } else {
        assert.equal(decision.action, 'fail');
        const error = decision.action === 'fail' ? decision.error : undefined;
        assert.ok(error instanceof (expected === 'config_error' ? ConfigError : TransientError));
        assert.equal(error.failureType, expected);
        assert.match(error.message, text);
      }
    });
  }

  describe('with what the connection carried', () => {
    const evidence = (overrides: Partial<SendEvidence>): SendEvidence => ({
      qos: 2,
      retain: false,
      unacknowledged: 3,
      suspect: { topic: 'airbyte/sales.eu/orders', payloadBytes: 120, topicAcknowledged: false },
      acknowledgedAny: false,
      largestAcknowledged: 0,
      ...overrides,
    });
    const third = { livedMs: 10, quickLossesBefore: QUICK_LOSSES_TO_FAIL - 1 };

    it('reconnects on a single loss, whatever was in flight', () => {
      const decision = decideOnLoss(loss({ problem: 'ECONNRESET', livedMs: 10, evidence: evidence({}) }), POLICY);
      assert.equal(decision.action, 'reconnect');
      assert.equal(decision.action === 'reconnect' ? decision.cause : '', 'ECONNRESET');
    });

    it('blames what was sent, not a client ID clash, when the broker closes repeatedly with messages unanswered', () => {
      const decision = decideOnLoss(loss({ ...third, evidence: evidence({}) }), POLICY);
      assert.equal(decision.action, 'fail');
      const error = decision.action === 'fail' ? decision.error : undefined;
      assert.ok(error instanceof ConfigError);
      assert.match(
        error.message,
        /closed the connection 3 times in a row within 2 s of accepting it, each time after receiving messages it did not acknowledge/,
      );
      assert.match(
        error.message,
        /the first a message at QoS 2, not retained, on topic "airbyte\/sales\.eu\/orders" \(payload 120 bytes\)/,
      );
      assert.match(error.message, /rather than another client taking the session over/);
      assert.match(
        error.message,
        /Likely causes, most likely first: \(1\) the broker does not accept QoS 2 .*\(2\) the broker refuses characters in the topic/,
      );
      assert.doesNotMatch(error.message, /another client is connected/);
    });

    it('keeps the takeover diagnosis when nothing was awaiting an answer', () => {
      const decision = decideOnLoss(
        loss({ ...third, evidence: evidence({ unacknowledged: 0, suspect: undefined }) }),
        POLICY,
      );
      assert.match(
        decision.action === 'fail' ? decision.error.message : '',
        /Most likely another client is connected with client ID "airbyte-sync-7"/,
      );
    });

    it('keeps the takeover diagnosis on an MQTT 5 Session taken over, whatever was in flight', () => {
      const decision = decideOnLoss(loss({ reasonCode: 0x8e, evidence: evidence({}) }), POLICY);
      assert.match(
        decision.action === 'fail' ? decision.error.message : '',
        /^Another client connected with client ID "airbyte-sync-7"/,
      );
    });

    it('lists the likely causes at once when reconnecting is off', () => {
      const decision = decideOnLoss(loss({ evidence: evidence({ qos: 1 }) }), { ...POLICY, automaticReconnect: false });
      const error = decision.action === 'fail' ? decision.error : undefined;
      assert.ok(error instanceof TransientError);
      assert.match(
        error.message,
        /is off\. It closed with 3 message\(s\) unacknowledged, the first a message at QoS 1, .*; if it did so over what it received: Likely causes, most likely first: \(1\) the broker refuses characters/,
      );
    });
  });

  it('counts quick losses in a row and starts again after a connection that lived', () => {
    let quick = 0;
    for (let n = 1; n < QUICK_LOSSES_TO_FAIL; n++) {
      const decision = decideOnLoss(loss({ livedMs: QUICK_LOSS_MS - 1, quickLossesBefore: quick }), POLICY);
      assert.equal(decision.action, 'reconnect');
      quick = decision.quickLosses;
      assert.equal(quick, n);
    }
    assert.equal(
      decideOnLoss(loss({ livedMs: QUICK_LOSS_MS, quickLossesBefore: quick }), POLICY).quickLosses,
      0,
      'exactly 2 s is not quick',
    );
  });
});
