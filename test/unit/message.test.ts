import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import type { StreamRoute } from '../../src/catalog.js';
import { toSettings } from '../../src/config/settings.js';
import { publishPacketSize, recordProperties, streamProperties } from '../../src/message.js';

const route: StreamRoute = { name: 'users', namespace: 'crm', topic: 'airbyte/crm/users', streamJson: '"users"' };

describe('MQTT 5 properties', () => {
  it('are absent below MQTT 5', () => {
    assert.equal(streamProperties(toSettings({ broker_host: 'h', topic_pattern: 't' }), route), undefined);
  });

  it('carry content type, payload format, expiry and the Airbyte user properties', () => {
    const settings = toSettings({ broker_host: 'h', topic_pattern: 't', protocol_version: '5', message_expiry_seconds: 60 });
    const base = streamProperties(settings, route);
    assert.deepEqual(recordProperties(base, '1700000000000'), {
      contentType: 'application/json',
      payloadFormatIndicator: true,
      messageExpiryInterval: 60,
      userProperties: { airbyte_stream: 'users', airbyte_namespace: 'crm', airbyte_emitted_at: '1700000000000' },
    });
    assert.deepEqual(base?.userProperties, { airbyte_stream: 'users', airbyte_namespace: 'crm' }, 'the shared object is not changed per record');
    const noNamespace = streamProperties(settings, { ...route, namespace: undefined });
    assert.deepEqual(noNamespace?.userProperties, { airbyte_stream: 'users' });
  });
});

describe('publishPacketSize', () => {
  // mqtt-packet, the encoder MQTT.js uses, is the oracle.
  function encodedSize(topic: string, payload: string, qos: 0 | 1 | 2, properties: ReturnType<typeof recordProperties>, protocolVersion: 4 | 5): number {
    const packet = { cmd: 'publish' as const, topic, payload, qos, retain: false, dup: false, messageId: qos > 0 ? 1 : undefined, properties };
    return mqttPacket.generate(packet, { protocolVersion }).length;
  }

  it('matches the encoder for MQTT 3.1.1 at every QoS and across length-field boundaries', () => {
    for (const qos of [0, 1, 2] as const) {
      for (const payloadLength of [0, 100, 120, 127, 16_380, 16_400, 2_097_200]) {
        const payload = 'x'.repeat(payloadLength);
        assert.equal(publishPacketSize('a/b', payloadLength, qos, undefined, false), encodedSize('a/b', payload, qos, undefined, 4), `qos ${qos}, ${payloadLength} bytes`);
      }
    }
  });

  it('counts multi-byte topics in UTF-8 bytes', () => {
    assert.equal(publishPacketSize('東京/é', 10, 1, undefined, false), encodedSize('東京/é', 'x'.repeat(10), 1, undefined, 4));
  });

  it('never underestimates MQTT 5 packets (a topic alias is always allowed for)', () => {
    const settings = toSettings({ broker_host: 'h', topic_pattern: 't', protocol_version: '5', message_expiry_seconds: 60 });
    const properties = recordProperties(streamProperties(settings, route), '1700000000000');
    for (const payloadLength of [0, 200, 20_000]) {
      const estimate = publishPacketSize(route.topic, payloadLength, 1, properties, true);
      const actual = encodedSize(route.topic, 'x'.repeat(payloadLength), 1, properties, 5);
      assert.ok(estimate >= actual && estimate <= actual + 3, `estimate ${estimate}, actual ${actual}`);
    }
  });
});
