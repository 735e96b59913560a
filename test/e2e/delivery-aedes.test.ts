/**
 * Delivery verification against aedes, whose hooks let a test refuse a subscription (SUBACK 0x80) and watch which
 * client subscribes to what: a refused subscription means "could not verify" (a warning, never a failure), and a
 * topic shared by several streams is verified once, over a connection of its own that closes when it is done.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { logMessages, runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';

/** Per client ID, the filters it subscribed to, in order. */
const subscriptions = new Map<string, string[]>();
/** Client IDs in the order they disconnected. */
const disconnected: string[] = [];

describe('delivery verification', () => {
  // In the describe: at the top level of a file node:test starts each before hook without waiting for the last one.
  const broker = withAedes({
    authorizeSubscribe: (_client, subscription, done) => {
      // null refuses the subscription: SUBACK 0x80 for that filter.
      if (subscription.topic.startsWith('secret/')) return done(null, null);
      return done(null, subscription);
    },
  });
  before(() => {
    broker.aedes.on('subscribe', (subs, client) => {
      if (!client) return;
      subscriptions.set(client.id, [...(subscriptions.get(client.id) ?? []), ...subs.map((s) => s.topic)]);
    });
    broker.aedes.on('clientDisconnect', (client) => void disconnected.push(client.id));
  });

  it('check succeeds, saying it could not verify, when the subscription is refused', async () => {
    const { status: outcome, message } = status(
      await runCheck({
        broker_host: '127.0.0.1',
        broker_port: broker.port,
        topic_pattern: 't',
        topic_test: 'secret/check',
      }),
    );
    assert.equal(outcome, 'SUCCEEDED', message);
    assert.match(
      message,
      /Test message on "secret\/check" at QoS 1 accepted\. Delivery on "secret\/check" cannot be verified \("Verify delivery" \(verify_delivery\)\).*the broker refused the subscription/,
    );
    assert.doesNotMatch(message, /came back/);
  });

  it('write goes on with a warning when the subscription is refused', async () => {
    const stream = { name: 'orders' };
    const input = [recordLine(stream, { i: 1 }), streamStateLine(stream, 1)].join('\n');
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: broker.port, topic_pattern: 'secret/{stream}' },
      catalogOf([stream]),
      input,
    );
    assert.equal(result.code, 0, result.stdout);
    assert.equal(result.states().length, 1);
    assert.equal(
      logMessages(result, /^Delivery on "secret\/orders" cannot be verified .*refused the subscription/).length,
      1,
    );
  });

  it('verifies a topic shared by two streams once, over its own connection, closed before the sync ends', async () => {
    const a = { name: 'alpha' };
    const b = { name: 'beta' };
    const input = [
      recordLine(a, { i: 1 }),
      recordLine(b, { i: 2 }),
      recordLine(a, { i: 3 }),
      streamStateLine(a, 3),
    ].join('\n');
    const client = 'airbyte-shared';
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: broker.port, topic_pattern: 'shared/all', client },
      catalogOf([a, b]),
      input,
    );
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(subscriptions.get(`${client}-verify`), ['shared/all']);
    assert.equal(subscriptions.get(client), undefined, 'the publishing connection never subscribes');
    assert.ok(
      disconnected.indexOf(`${client}-verify`) < disconnected.indexOf(client),
      `closed once verified: ${disconnected.join(', ')}`,
    );
  });
});
