/**
 * An overwrite on a broker that refuses the subscription it needs (aedes with an authorizeSubscribe hook, as EMQX,
 * HiveMQ or AWS IoT answer a denied subscription with a failure SUBACK): the sync fails before anything is published.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWrite } from '../support/connector.js';
import { withAedes } from '../support/aedes.js';
import { recordLine } from '../support/messages.js';

const DEVICES = { name: 'devices', namespace: 'fleet' };

describe('overwrite on a broker that refuses the subscription', () => {
  const broker = withAedes({
    authorizeSubscribe: (_client, subscription, callback) =>
      // A null subscription is refused with a failure SUBACK (0x80); the connection stays up.
      subscription.topic.startsWith('locked/') ? callback(null, null) : callback(null, subscription),
  });

  it('fails with a config_error that names the filter and the ways out, before publishing anything', async () => {
    const catalog = {
      streams: [
        {
          stream: { ...DEVICES, json_schema: { type: 'object' }, supported_sync_modes: ['full_refresh'] },
          sync_mode: 'full_refresh',
          destination_sync_mode: 'overwrite',
          primary_key: [['id']],
        },
      ],
    };
    const result = await runWrite(
      { broker_host: '127.0.0.1', broker_port: broker.port, topic_pattern: 'locked/{key}' },
      catalog,
      `${recordLine(DEVICES, { id: 1 })}\n`,
    );
    assert.equal(result.code, 1, result.stdout);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /refused the subscription to "locked\/\+".*subscribe permission on that filter, or use the sync mode append_dedup/,
    );
    assert.equal(broker.received.filter((packet) => packet.topic.startsWith('locked/')).length, 0, 'nothing published');
  });
});
