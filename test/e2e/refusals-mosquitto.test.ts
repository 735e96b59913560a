/**
 * Mosquitto 2.0 limits that an MQTT 3.1.1 client cannot learn (`max_qos 1`, `retain_available false`): the broker
 * closes the connection right after receiving what it refuses. The diagnosis names what was sent and the likely cause
 * for it, never a client ID clash. With MQTT 5 the same broker announces its Maximum Packet Size, and a record that
 * fits once the user properties are left out says so.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { type Mosquitto, mosquittoSkipReason, withMosquitto } from '../support/mosquitto.js';

const skip = mosquittoSkipReason();
const STREAM = { name: 'orders', namespace: 'shop' };
const CATALOG = catalogOf([STREAM]);
const INPUT = [1, 2, 3].flatMap((i) => [recordLine(STREAM, { i }), streamStateLine(STREAM, i)]).join('\n');

describe('Mosquitto refusing by closing the connection', { skip }, () => {
  // max_qos is a listener setting: before any listener line it would open a default listener on port 1883.
  const limited = withMosquitto({
    config: 'retain_available false',
    listeners: ([port]) => `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_qos 1`,
  });
  const small = withMosquitto({ config: 'max_packet_size 256' });
  const config = (broker: Mosquitto, overrides: Record<string, unknown>): Record<string, unknown> => ({
    broker_host: '127.0.0.1',
    broker_port: broker.port,
    topic_pattern: 'refused/{namespace}/{stream}',
    ...overrides,
  });

  it('QoS 2 above max_qos: write names QoS 2 as the likely cause, not a client ID', async () => {
    const result = await runWrite(
      config(limited, { message_qos: 'EXACTLY_ONCE', client: 'airbyte-fixed-id' }),
      CATALOG,
      INPUT,
    );
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /the first a message at QoS 2, not retained, on topic "refused\/shop\/orders" \(payload \d+ bytes\)/,
    );
    assert.match(String(error.message), /Likely causes, most likely first: \(1\) the broker does not accept QoS 2/);
    assert.doesNotMatch(String(error.message), /client ID/);
    assert.deepEqual(result.states(), []);
  });

  it('QoS 2 above max_qos: check fails at once with the same finding', async () => {
    const { status: outcome, message } = status(
      await runCheck(
        config(limited, { message_qos: 'EXACTLY_ONCE', topic_test: 'refused/check', connect_timeout: 20 }),
      ),
    );
    assert.equal(outcome, 'FAILED');
    assert.match(
      message,
      /right after receiving the test message \(a message at QoS 2, not retained, on topic "refused\/check".*\(1\) the broker does not accept QoS 2/,
    );
  });

  it('retain where it is off: write names retain as the likely cause', async () => {
    const result = await runWrite(config(limited, { message_retained: true }), CATALOG, INPUT);
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(String(error.message), /a message at QoS 1, retained, on topic "refused\/shop\/orders"/);
    assert.match(
      String(error.message),
      /\(1\) the broker does not accept retained messages .*turn off "Retain messages" \(message_retained\)/,
    );
    assert.deepEqual(result.states(), []);
  });

  it('MQTT 5 Maximum Packet Size: the error names turning off the user properties when that makes the record fit', async () => {
    const record = recordLine(STREAM, { note: 'x'.repeat(50) });
    const result = await runWrite(config(small, { protocol_version: '5' }), CATALOG, record);
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(
      String(error.message),
      /makes a \d+-byte MQTT message, larger than the 256 bytes the broker accepts .*Turning off "MQTT 5 user properties" \(mqtt5_user_properties\) makes it \d+ bytes, which fits/,
    );
    const lean = await runWrite(
      config(small, { protocol_version: '5', mqtt5_user_properties: false }),
      CATALOG,
      record,
    );
    assert.equal(lean.code, 0, lean.stdout);
  });
});
