import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NO_MATCHING_SUBSCRIBERS, describeReason, isFailure, wouldRepeat } from '../../../src/mqtt/reason-codes.js';

describe('reason codes', () => {
  it('tells failures from successes at 0x80', () => {
    assert.equal(isFailure(0), false);
    assert.equal(isFailure(NO_MATCHING_SUBSCRIBERS), false);
    assert.equal(isFailure(0x7f), false);
    assert.equal(isFailure(0x80), true);
    assert.equal(isFailure(0xff), true);
  });

  it('gives one answer to "would this repeat?" for PUBACK, PUBREC and DISCONNECT alike', () => {
    const transient = [0x80, 0x89, 0x8b, 0x8d, 0x96, 0x98, 0x9f, 0xa0];
    const lasting = [
      0x81, 0x82, 0x83, 0x87, 0x8e, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d,
    ];
    for (const code of transient) assert.equal(wouldRepeat(code), false, describeReason(code));
    for (const code of lasting) assert.equal(wouldRepeat(code), true, describeReason(code));
    assert.equal(wouldRepeat(0xfe), true, 'an unknown code is taken to repeat: looping is worse than stopping');
  });

  it('names the reason and its code', () => {
    assert.equal(describeReason(0x87), 'Not authorized (reason code 0x87)');
    assert.equal(describeReason(0x95), 'Packet too large (reason code 0x95)');
    assert.equal(describeReason(0xfe), 'Refused (reason code 0xfe)');
  });
});
