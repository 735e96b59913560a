/**
 * State details, on Mosquitto: the connector sets only the counts it owns in `destinationStats`, written with a
 * decimal point as the protocol asks of a double, and echoes every other byte of the state as it came, fields of an
 * incoming `destinationStats` included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runWrite } from '../support/connector.js';
import { catalogOf, globalStateLine, recordLine, streamStateLine } from '../support/messages.js';
import { mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';
import { type Subscriber, subscribe } from '../support/subscriber.js';

const skip = mosquittoSkipReason();
const USERS = { name: 'users', namespace: 'crm' };
const ORDERS = { name: 'orders' };

describe('state lines', { skip }, () => {
  const broker = withMosquitto();
  let subscriber: Subscriber;

  before(async () => {
    subscriber = await subscribe(broker.url, 'state/#');
  });
  after(() => subscriber?.close());

  it('keep the fields of an incoming destinationStats and get counts with a decimal point', async () => {
    const carried =
      ',"sourceStats":{"recordCount":2.0},"destinationStats":{ "recordCount": 17, "platformField": 12345678901234567890, "x":[1.50] },"id":42';
    const states = [
      streamStateLine(USERS, 'u1', carried),
      streamStateLine(ORDERS, 'o1', ',"destinationStats":{"otherCount":5.0}'),
      globalStateLine('g1', ',"destinationStats":null'),
      streamStateLine(USERS, 'u2'),
    ];
    const input = [
      recordLine(USERS, { id: 1 }),
      recordLine(USERS, { id: 2 }),
      recordLine(ORDERS, { id: 3 }),
      states[0],
      states[1],
      recordLine(USERS, { id: 4 }),
      states[2],
      states[3],
    ].join('\n');
    const before = subscriber.messages.length;
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: broker.port, topic_pattern: 'state/{stream}' },
      catalogOf([USERS, ORDERS]),
      input,
    );
    assert.equal(result.code, 0, result.stdout);
    await subscriber.waitFor(before + 4);
    const emitted = result.stdout.split('\n').filter((line) => line.includes('"type":"STATE"'));
    assert.deepEqual(emitted, [
      (states[0] as string).replace('"recordCount": 17', '"recordCount": 2.0'),
      (states[1] as string).replace('{"otherCount":5.0}', '{"otherCount":5.0,"recordCount":1.0}'),
      (states[2] as string).replace('"destinationStats":null', '"destinationStats":{"recordCount":4.0}'),
      `${(states[3] as string).slice(0, -2)},"destinationStats":{"recordCount":1.0}}}`,
    ]);
  });
});
