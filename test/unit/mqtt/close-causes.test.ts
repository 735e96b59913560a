import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SendEvidence, describeSuspect, likelyCauses, listCauses } from '../../../src/mqtt/close-causes.js';

function evidence(overrides: Partial<SendEvidence>): SendEvidence {
  return {
    qos: 1,
    retain: false,
    unacknowledged: 1,
    suspect: { topic: 'airbyte/orders', payloadBytes: 200, topicAcknowledged: false },
    acknowledgedAny: false,
    largestAcknowledged: 0,
    ...overrides,
  };
}

/** The first words of each cause, enough to tell them apart. */
function order(given: SendEvidence): string[] {
  return likelyCauses(given).map((cause) => {
    if (cause.includes('QoS 2 messages in flight')) return 'qos2-inflight';
    if (cause.includes('does not accept QoS 2')) return 'qos2';
    if (cause.includes('retained')) return 'retain';
    if (cause.includes('refuses characters')) return 'characters';
    if (cause.includes('refuses this topic')) return 'topic';
    if (cause.includes('larger than')) return 'size';
    if (cause.includes('access rules')) return 'acl';
    if (cause.includes('in flight')) return 'inflight';
    return cause;
  });
}

describe('likelyCauses', () => {
  const cases: [string, Partial<SendEvidence>, string[]][] = [
    ['QoS 2 never acknowledged comes first', { qos: 2 }, ['qos2', 'size', 'acl', 'topic']],
    ['then retain', { qos: 2, retain: true }, ['qos2', 'retain', 'size', 'acl', 'topic']],
    [
      'a topic NATS refuses',
      { suspect: { topic: 'airbyte/sales.eu', payloadBytes: 10, topicAcknowledged: false } },
      ['characters', 'size', 'acl'],
    ],
    [
      'a space in the topic',
      { suspect: { topic: 'a b', payloadBytes: 10, topicAcknowledged: false } },
      ['characters', 'size', 'acl'],
    ],
    [
      'a $ topic',
      { suspect: { topic: '$SYS/x', payloadBytes: 10, topicAcknowledged: false } },
      ['characters', 'size', 'acl'],
    ],
    [
      'a payload larger than common limits ranks size first',
      { suspect: { topic: 'a', payloadBytes: 200_000, topicAcknowledged: false } },
      ['size', 'acl', 'topic'],
    ],
    [
      'anything acknowledged rules out QoS and retain',
      { qos: 2, retain: true, acknowledgedAny: true, largestAcknowledged: 100 },
      ['size', 'acl', 'topic'],
    ],
    [
      'a topic and size acknowledged before leave only the in-flight limit',
      {
        qos: 2,
        acknowledgedAny: true,
        largestAcknowledged: 500,
        unacknowledged: 480,
        suspect: { topic: 'over/b', payloadBytes: 80, topicAcknowledged: true },
      },
      ['qos2-inflight'],
    ],
    [
      'many in flight at QoS 1 is a weak hint',
      {
        acknowledgedAny: true,
        largestAcknowledged: 500,
        unacknowledged: 30,
        suspect: { topic: 'a', payloadBytes: 80, topicAcknowledged: true },
      },
      ['inflight'],
    ],
    [
      'nothing fits',
      {
        acknowledgedAny: true,
        largestAcknowledged: 500,
        suspect: { topic: 'a', payloadBytes: 80, topicAcknowledged: true },
      },
      [],
    ],
  ];
  for (const [name, given, expected] of cases) {
    it(name, () => assert.deepEqual(order(evidence(given)), expected));
  }

  it('says what to change for each cause, naming the field', () => {
    const causes = likelyCauses(
      evidence({ qos: 2, retain: true, suspect: { topic: 'a.b', payloadBytes: 10, topicAcknowledged: false } }),
    );
    assert.match(causes[0] ?? '', /set "Message QoS" \(message_qos\) to AT_LEAST_ONCE$/);
    assert.match(causes[1] ?? '', /refuses characters.*keep them out of "Topic pattern" \(topic_pattern\)/);
    assert.match(causes[2] ?? '', /turn off "Retain messages" \(message_retained\)$/);
  });
});

describe('listCauses and describeSuspect', () => {
  it('numbers the causes, or points to the log when none fits', () => {
    assert.match(
      listCauses(evidence({ qos: 2 })),
      /^Likely causes, most likely first: \(1\) the broker does not accept QoS 2 .*; \(2\) .*The broker's log says which\.$/,
    );
    assert.match(
      listCauses(
        evidence({
          acknowledgedAny: true,
          largestAcknowledged: 500,
          suspect: { topic: 'a', payloadBytes: 1, topicAcknowledged: true },
        }),
      ),
      /^Nothing sent explains it/,
    );
  });

  it('describes a message by QoS, retain, topic and size', () => {
    const given = evidence({ qos: 0, retain: true });
    assert.equal(
      describeSuspect(given, given.suspect!),
      'a message at QoS 0, retained, on topic "airbyte/orders" (payload 200 bytes)',
    );
  });
});
