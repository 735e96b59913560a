import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { MQTT_MAX_PACKET_BYTES } from '../../../src/config/settings.js';
import {
  PUBREL_SIZE,
  PublishEncoder,
  publishTarget,
  writePubrel,
  type TargetOptions,
} from '../../../src/mqtt/packets.js';

/** mqtt-packet's parser (the one MQTT.js and aedes use) decodes what the encoder wrote. */
function parse(buffer: Buffer, protocolVersion: 4 | 5): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', (err: Error) => errors.push(err));
  parser.parse(buffer);
  assert.deepEqual(errors, []);
  return packets;
}

function encode(
  encoder: PublishEncoder,
  target: ReturnType<typeof publishTarget>,
  id: number,
  payload: string,
  emittedAt = '1700000000000',
  dup = false,
  alias = 0,
  withTopic = true,
): Buffer {
  const bytes = Buffer.byteLength(payload);
  const size = encoder.size(target, bytes, [emittedAt], alias, withTopic);
  const buffer = Buffer.alloc(size + 10);
  const end = encoder.write(buffer, 0, target, id, payload, bytes, [emittedAt], dup, alias, withTopic);
  assert.equal(end, size, 'size() is exact');
  return buffer.subarray(0, end);
}

describe('PublishEncoder', () => {
  it('encodes MQTT 3.1.1 PUBLISH packets at every QoS, with retain, across length-field boundaries', () => {
    for (const qos of [0, 1, 2] as const) {
      for (const retain of [false, true]) {
        for (const length of [0, 1, 120, 16_380, 16_400, 2_097_200]) {
          const payload = 'é'.repeat(length / 2) + 'x'.repeat(length % 2);
          const target = publishTarget('airbyte/東京/users', { mqtt5: false, emittedAtProperty: false });
          const [packet] = parse(
            encode(new PublishEncoder(qos, retain, false), target, 513, payload),
            4,
          ) as IPublishPacket[];
          assert.equal(packet?.cmd, 'publish');
          assert.equal(packet?.topic, 'airbyte/東京/users');
          assert.equal(packet?.qos, qos);
          assert.equal(packet?.retain, retain);
          assert.equal(packet?.dup, false);
          if (qos > 0) assert.equal(packet?.messageId, 513);
          assert.equal(packet?.payload.toString(), payload);
        }
      }
    }
  });

  it('encodes MQTT 5 properties, with a topic alias announced with the topic and then used without it', () => {
    const target = publishTarget('airbyte/crm/users', {
      mqtt5: true,
      contentType: 'application/json',
      messageExpirySeconds: 3600,
      userProperties: { airbyte_stream: 'users', airbyte_namespace: 'crm' },
      emittedAtProperty: true,
    });
    const encoder = new PublishEncoder(1, false, true);
    const first = encode(encoder, target, 1, '{"a":1}', '1700000000000', false, 3, true);
    const second = encode(encoder, target, 2, '{"a":2}', '1700000000001', false, 3, false);
    assert.ok(second.length < first.length, 'the second message leaves out the topic');
    const [one, two] = parse(Buffer.concat([first, second]), 5) as IPublishPacket[];
    assert.equal(one?.topic, 'airbyte/crm/users');
    assert.equal(two?.topic, '');
    for (const [packet, emittedAt] of [
      [one, '1700000000000'],
      [two, '1700000000001'],
    ] as const) {
      assert.equal(packet?.properties?.topicAlias, 3);
      assert.equal(packet?.properties?.contentType, 'application/json');
      assert.equal(packet?.properties?.payloadFormatIndicator, true);
      assert.equal(packet?.properties?.messageExpiryInterval, 3600);
      assert.deepEqual(
        { ...packet?.properties?.userProperties },
        { airbyte_stream: 'users', airbyte_namespace: 'crm', airbyte_emitted_at: emittedAt },
      );
    }
  });

  it('encodes MQTT 5 messages without user properties or alias', () => {
    const target = publishTarget('t', { mqtt5: true, contentType: 'application/json', emittedAtProperty: false });
    const [packet] = parse(encode(new PublishEncoder(2, true, true), target, 65535, 'x'), 5) as IPublishPacket[];
    assert.equal(packet?.topic, 't');
    assert.equal(packet?.messageId, 65535);
    assert.equal(packet?.properties?.userProperties, undefined);
    assert.equal(packet?.properties?.topicAlias, undefined);
  });

  it('marks a message sent again with DUP', () => {
    const target = publishTarget('t', { mqtt5: false, emittedAtProperty: false });
    const [again] = parse(encode(new PublishEncoder(1, true, false), target, 7, 'x', '1', true), 4) as IPublishPacket[];
    assert.equal(again?.dup, true);
    assert.equal(again?.retain, true);
    assert.equal(again?.messageId, 7);
  });

  it('writes PUBREL packets', () => {
    const buffer = Buffer.alloc(4);
    writePubrel(buffer, 0, 258);
    const [packet] = parse(buffer, 4);
    assert.equal(packet?.cmd, 'pubrel');
    assert.equal((packet as { messageId: number }).messageId, 258);
  });
});

/**
 * MQTT's variable byte integer at each of its length boundaries, written out by hand from the specification (7 bits a
 * byte, least significant group first, high bit set when another byte follows) so that the expectations do not share
 * any code with the encoder.
 */
const VAR_INT: ReadonlyArray<readonly [number, readonly number[]]> = [
  [0, [0x00]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [16_383, [0xff, 0x7f]],
  [16_384, [0x80, 0x80, 0x01]],
  [2_097_151, [0xff, 0xff, 0x7f]],
  [2_097_152, [0x80, 0x80, 0x80, 0x01]],
  [3_000_000, [0xc0, 0x8d, 0xb7, 0x01]],
  [268_435_455, [0xff, 0xff, 0xff, 0x7f]],
];

/** The encoded bytes of a value from the table. */
function varIntBytes(value: number): readonly number[] {
  const known = VAR_INT.find(([n]) => n === value)?.[1];
  assert.ok(known, `test setup: ${value} is in the table`);
  return known;
}

/** The width of the field for any value, to add up lengths that are not on the table: 7 bits per byte. */
function varIntWidth(value: number): number {
  return value < 2 ** 7 ? 1 : value < 2 ** 14 ? 2 : value < 2 ** 21 ? 3 : 4;
}

/** One flat string to cut fillers from: building megabytes with repeat() for every case costs more than the tests. */
const FILLER = Buffer.alloc(3_000_000, 'x').toString('latin1');

/** A payload of exactly `bytes` UTF-8 bytes whose character count differs, ending in a 4-byte character. */
function payloadOfBytes(bytes: number): string {
  if (bytes < 9) return FILLER.slice(0, bytes);
  return `é${FILLER.slice(0, bytes - 9)}東😀`;
}

interface BoundaryCase {
  readonly name: string;
  readonly version: 4 | 5;
  readonly qos: 0 | 1 | 2;
  readonly topic: string;
  readonly options: TargetOptions;
  /** The topic alias the message carries (0: none). */
  readonly alias: number;
  /** The alias was announced by an earlier message, so this one leaves out the topic. */
  readonly announced: boolean;
  readonly emittedAt: string;
}

/** The MQTT 5 property bytes the case's options call for, counted from the specification's field layout. */
function propertyBytes(c: BoundaryCase): number {
  if (c.version === 4) return 0;
  const utf8 = (text: string): number => 2 + Buffer.byteLength(text);
  let total = 2; // payload format indicator: identifier and one byte
  if (c.options.messageExpirySeconds !== undefined) total += 1 + 4;
  if (c.options.contentType !== undefined) total += 1 + utf8(c.options.contentType);
  for (const [key, value] of Object.entries(c.options.userProperties ?? {})) total += 1 + utf8(key) + utf8(value);
  if (c.alias !== 0) total += 1 + 2;
  if (c.options.emittedAtProperty) total += 1 + utf8('airbyte_emitted_at') + utf8(c.emittedAt);
  return total;
}

/** Everything after the fixed header except the payload. */
function overhead(c: BoundaryCase): number {
  const topic = c.announced && c.alias !== 0 ? 0 : Buffer.byteLength(c.topic);
  const props = propertyBytes(c);
  return 2 + topic + (c.qos > 0 ? 2 : 0) + (c.version === 5 ? varIntWidth(props) + props : 0);
}

function boundaryCases(): BoundaryCase[] {
  const cases: BoundaryCase[] = [];
  for (const qos of [0, 1, 2] as const) {
    for (const topic of ['a/b', '東京/ü/😀']) {
      cases.push({
        name: `3.1.1 qos ${qos} topic ${topic}`,
        version: 4,
        qos,
        topic,
        options: { mqtt5: false, emittedAtProperty: false },
        alias: 0,
        announced: false,
        emittedAt: '1',
      });
    }
    const v5 = (
      name: string,
      alias: number,
      options: Omit<TargetOptions, 'mqtt5'>,
      announced = false,
      topic = 'airbyte/東京',
    ): void => {
      cases.push({
        name: `5 qos ${qos} ${name}`,
        version: 5,
        qos,
        topic,
        options: { mqtt5: true, ...options },
        alias,
        announced,
        emittedAt: '1700000000000',
      });
    };
    v5('no properties, no alias', 0, { emittedAtProperty: false });
    v5('alias, first message', 1, { emittedAtProperty: false });
    v5('alias, announced', 1, { emittedAtProperty: false }, true);
    const all = {
      contentType: 'application/json',
      messageExpirySeconds: 60,
      userProperties: { clé: 'välue東' },
      emittedAtProperty: true,
    };
    v5('all properties, no alias', 0, all);
    v5('all properties and alias, first message', 65_535, all);
    v5('all properties and alias, announced', 65_535, all, true);
  }
  return cases;
}

/** Checks one encoded PUBLISH against the case it was built from, parsed by mqtt-packet. */
function checkParsed(packet: IPublishPacket | undefined, c: BoundaryCase, payload: string, id: number): void {
  assert.equal(packet?.cmd, 'publish', c.name);
  assert.equal(packet?.qos, c.qos, c.name);
  assert.equal(packet?.topic, c.announced && c.alias !== 0 ? '' : c.topic, c.name);
  if (c.qos > 0) assert.equal(packet?.messageId, id, c.name);
  assert.ok(
    packet?.payload instanceof Buffer && packet.payload.equals(Buffer.from(payload)),
    `${c.name}: payload read back intact`,
  );
  if (c.version === 5) {
    const props = packet?.properties;
    assert.equal(props?.payloadFormatIndicator, true, c.name);
    assert.equal(props?.topicAlias, c.alias === 0 ? undefined : c.alias, c.name);
    assert.equal(props?.contentType, c.options.contentType, c.name);
    assert.equal(props?.messageExpiryInterval, c.options.messageExpirySeconds, c.name);
    const user = {
      ...c.options.userProperties,
      ...(c.options.emittedAtProperty ? { airbyte_emitted_at: c.emittedAt } : {}),
    };
    assert.deepEqual({ ...props?.userProperties }, user, c.name);
  }
}

/** A PUBREL after the packet: the parser must find it right where the remaining length says the PUBLISH ends. */
const SENTINEL_ID = 4242;

function parseWithSentinel(bytes: Buffer, version: 4 | 5): IPublishPacket | undefined {
  const sentinel = Buffer.alloc(PUBREL_SIZE);
  writePubrel(sentinel, 0, SENTINEL_ID);
  const packets = parse(Buffer.concat([bytes, sentinel]), version);
  assert.equal(packets.length, 2, 'exactly one PUBLISH, then the PUBREL');
  assert.equal(packets[1]?.cmd, 'pubrel');
  assert.equal((packets[1] as { messageId?: number }).messageId, SENTINEL_ID);
  return packets[0] as IPublishPacket;
}

describe('PublishEncoder at the remaining-length boundaries', () => {
  const cases = boundaryCases();
  const remainingLengths = [127, 128, 16_383, 16_384, 2_097_151, 2_097_152];

  it('spells the boundary values of the length field as the specification does', () => {
    // The table is the oracle for everything below; check it against the definition once, independently.
    for (const [value, bytes] of VAR_INT) {
      let decoded = 0;
      bytes.forEach((byte, i) => {
        assert.equal((byte & 0x80) !== 0, i < bytes.length - 1, `continuation bit of byte ${i} of ${value}`);
        decoded += (byte & 0x7f) * 128 ** i;
      });
      assert.equal(decoded, value);
      assert.equal(varIntWidth(value), bytes.length);
    }
  });

  for (const remaining of remainingLengths) {
    it(`writes a remaining length of exactly ${remaining} in ${varIntBytes(remaining).length} byte(s), for every version, QoS, alias and property set`, () => {
      const expectedField = varIntBytes(remaining);
      for (const c of cases) {
        const payloadBytes = remaining - overhead(c);
        assert.ok(payloadBytes >= 0, `${c.name}: overhead fits under ${remaining}`);
        const payload = payloadOfBytes(payloadBytes);
        assert.equal(Buffer.byteLength(payload), payloadBytes);
        const target = publishTarget(c.topic, c.options);
        const encoder = new PublishEncoder(c.qos, false, c.version === 5);
        const bytes = encode(
          encoder,
          target,
          65_535,
          payload,
          c.emittedAt,
          false,
          c.alias,
          !c.announced || c.alias === 0,
        );
        assert.equal(bytes.length, 1 + expectedField.length + remaining, `${c.name}: total size`);
        assert.deepEqual(
          [...bytes.subarray(1, 1 + expectedField.length)],
          expectedField,
          `${c.name}: length field bytes`,
        );
        checkParsed(parseWithSentinel(bytes, c.version), c, payload, 65_535);
      }
    });
  }

  it('crosses into a 4-byte length field well past the boundary (3,000,000)', () => {
    const c = cases.find((k) => k.name === '5 qos 2 all properties and alias, first message');
    assert.ok(c);
    const payload = payloadOfBytes(3_000_000 - overhead(c));
    const target = publishTarget(c.topic, c.options);
    const bytes = encode(new PublishEncoder(2, true, true), target, 1, payload, c.emittedAt, false, c.alias, true);
    assert.deepEqual([...bytes.subarray(1, 5)], [0xc0, 0x8d, 0xb7, 0x01]);
    checkParsed(parseWithSentinel(bytes, 5), c, payload, 1);
  });

  it('sizes the largest packet MQTT allows without writing it', () => {
    // 268,435,455 is the largest remaining length; the packet is too big to allocate in a unit test, but size() is
    // what the connector compares with its limits, and it must land exactly on MQTT's maximum.
    for (const c of cases) {
      const target = publishTarget(c.topic, c.options);
      const encoder = new PublishEncoder(c.qos, false, c.version === 5);
      const withTopic = !c.announced || c.alias === 0;
      const payloadBytes = 268_435_455 - overhead(c);
      assert.equal(
        encoder.size(target, payloadBytes, [c.emittedAt], c.alias, withTopic),
        MQTT_MAX_PACKET_BYTES,
        c.name,
      );
      for (const [remaining, field] of VAR_INT.filter(([n]) => n >= overhead(c))) {
        assert.equal(
          encoder.size(target, remaining - overhead(c), [c.emittedAt], c.alias, withTopic),
          1 + field.length + remaining,
          `${c.name} at ${remaining}`,
        );
      }
    }
  });

  it('gives the size of a first message (topic included) after the alias was announced, for limits', () => {
    const c = cases.find((k) => k.name === '5 qos 1 all properties and alias, first message');
    assert.ok(c);
    const target = publishTarget(c.topic, c.options);
    const encoder = new PublishEncoder(1, false, true);
    const topicBytes = Buffer.byteLength(c.topic);
    // The first message's remaining length is exactly 128; without the topic the next one falls back to one byte.
    const payload = payloadOfBytes(128 - overhead(c));
    const first = encode(encoder, target, 1, payload, c.emittedAt, false, c.alias, true);
    assert.equal(first[1], 0x80);
    assert.equal(
      encoder.size(target, Buffer.byteLength(payload), [c.emittedAt], c.alias, true),
      first.length,
      'withTopic gives the first message size',
    );
    const second = encode(encoder, target, 2, payload, c.emittedAt, false, c.alias, false);
    assert.equal(second.length, first.length - topicBytes - 1, 'no topic, and one length byte fewer');
    assert.equal(second[1], 128 - topicBytes);
  });

  it('writes packets back to back in one shared buffer sized by size() alone', () => {
    // The batch buffer is sized from size(); any byte over or under would corrupt the next packet or overrun.
    const c = cases.find((k) => k.name === '5 qos 1 all properties and alias, first message');
    assert.ok(c);
    const target = publishTarget(c.topic, c.options);
    const encoder = new PublishEncoder(1, false, true);
    const payloads = [127, 128, 16_383, 16_384, 0, 1].map((r) => payloadOfBytes(Math.max(0, r - overhead(c))));
    // The first packet announces the alias with the topic; the others carry only the alias.
    const sizes = payloads.map((payload, i) =>
      encoder.size(target, Buffer.byteLength(payload), [c.emittedAt], c.alias, i === 0),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    const buffer = Buffer.alloc(total + 3, 0xee);
    let at = 3;
    payloads.forEach((payload, i) => {
      const end = encoder.write(
        buffer,
        at,
        target,
        i + 1,
        payload,
        Buffer.byteLength(payload),
        [c.emittedAt],
        false,
        c.alias,
        i === 0,
      );
      assert.equal(end - at, sizes[i], `packet ${i}`);
      at = end;
    });
    assert.equal(at, buffer.length);
    assert.deepEqual([...buffer.subarray(0, 3)], [0xee, 0xee, 0xee], 'bytes before the offset untouched');
    const packets = parse(buffer.subarray(3), 5) as IPublishPacket[];
    assert.equal(packets.length, payloads.length);
    packets.forEach((packet, i) => {
      assert.equal(packet.messageId, i + 1);
      assert.equal(packet.topic, i === 0 ? c.topic : '');
      assert.equal(packet.payload.toString(), payloads[i]);
    });
  });
});

describe('PublishEncoder MQTT 5 property length', () => {
  /** Properties of `bytes` bytes: the payload format indicator (2), one user property "k" (1 + 3 + 2 + value) and an alias (3). */
  function targetWithProperties(bytes: number): ReturnType<typeof publishTarget> {
    const value = 'é'.repeat(Math.floor((bytes - 11) / 2)) + 'v'.repeat((bytes - 11) % 2);
    const target = publishTarget('t/東', { mqtt5: true, userProperties: { k: value }, emittedAtProperty: false });
    assert.equal(target.staticProperties.length + 3, bytes, 'test setup: properties of the intended size');
    return target;
  }

  for (const [props, field] of VAR_INT.filter(([n]) => n >= 127 && n <= 16_384)) {
    for (const qos of [0, 1, 2] as const) {
      it(`writes a property length of exactly ${props} in ${field.length} byte(s) at QoS ${qos}`, () => {
        const target = targetWithProperties(props);
        const payload = '{"a":"é"}';
        const bytes = encode(
          new PublishEncoder(qos, false, true),
          target,
          300,
          payload,
          '1700000000000',
          false,
          9,
          true,
        );
        const beforeProperties = 2 + Buffer.byteLength('t/東') + (qos > 0 ? 2 : 0);
        const remaining = beforeProperties + field.length + props + Buffer.byteLength(payload);
        const remainingField = varIntWidth(remaining);
        assert.equal(
          bytes.length,
          1 + remainingField + remaining,
          'the property length field is counted in the remaining length',
        );
        const at = 1 + remainingField + beforeProperties;
        assert.deepEqual([...bytes.subarray(at, at + field.length)], field, 'property length field');
        const packet = parseWithSentinel(bytes, 5);
        assert.equal(packet?.properties?.topicAlias, 9);
        assert.equal(Buffer.byteLength(String(packet?.properties?.userProperties?.k)), props - 11);
        assert.equal(packet?.payload.toString(), payload);
      });
    }
  }

  it('counts the emitted_at property by its length, whatever number text it holds', () => {
    const target = publishTarget('t', { mqtt5: true, emittedAtProperty: true });
    const encoder = new PublishEncoder(1, false, true);
    // Format indicator (2) + identifier (1) + key (2 + 18) + value (2 + n) = 25 + n: 102 digits give exactly 127, 103 give 128.
    for (const [digits, field] of [
      [102, [0x7f]],
      [103, [0x80, 0x01]],
    ] as const) {
      const emittedAt = `1${'0'.repeat(digits - 1)}`;
      const bytes = encode(encoder, target, 1, 'x', emittedAt);
      // Remaining length: topic (2 + 1), packet id (2), the property length field, the properties, a 1-byte payload.
      const props = 25 + digits;
      const remaining = 2 + 1 + 2 + field.length + props + 1;
      const remainingField = varIntWidth(remaining);
      assert.equal(bytes.length, 1 + remainingField + remaining);
      const at = 1 + remainingField + 5;
      assert.deepEqual([...bytes.subarray(at, at + field.length)], field, 'property length field');
      const packet = parseWithSentinel(bytes, 5);
      assert.deepEqual({ ...packet?.properties?.userProperties }, { airbyte_emitted_at: emittedAt });
    }
  });
});

describe('PublishEncoder byte lengths of text', () => {
  it('counts topics, properties and payloads in UTF-8 bytes, not characters', () => {
    const topic = 'données/東京/😀';
    const payload = '{"名前":"😀😀","é":"ü"}';
    assert.notEqual(Buffer.byteLength(topic), topic.length);
    assert.notEqual(Buffer.byteLength(payload), payload.length);
    for (const mqtt5 of [false, true]) {
      const target = publishTarget(
        topic,
        mqtt5
          ? { mqtt5, contentType: 'text/ü', userProperties: { ключ: '値' }, emittedAtProperty: true }
          : { mqtt5, emittedAtProperty: false },
      );
      const bytes = encode(new PublishEncoder(1, false, mqtt5), target, 5, payload);
      assert.equal(bytes.readUInt16BE(2), Buffer.byteLength(topic), 'topic length prefix in bytes');
      const [packet] = parse(bytes, mqtt5 ? 5 : 4) as IPublishPacket[];
      assert.equal(packet?.topic, topic);
      assert.equal(packet?.payload.toString(), payload);
      if (mqtt5) {
        assert.equal(packet?.properties?.contentType, 'text/ü');
        assert.equal(packet?.properties?.userProperties?.['ключ'], '値');
      }
    }
  });
});

describe('writePubrel', () => {
  it('writes exactly PUBREL_SIZE bytes at any offset, for the smallest and largest packet id', () => {
    for (const id of [1, 255, 256, 65_535]) {
      const buffer = Buffer.alloc(PUBREL_SIZE + 6, 0xee);
      assert.equal(writePubrel(buffer, 3, id), 3 + PUBREL_SIZE);
      assert.deepEqual([...buffer.subarray(0, 3)], [0xee, 0xee, 0xee]);
      assert.deepEqual([...buffer.subarray(3 + PUBREL_SIZE)], [0xee, 0xee, 0xee]);
      for (const version of [4, 5] as const) {
        const [packet] = parse(buffer.subarray(3, 3 + PUBREL_SIZE), version);
        assert.equal(packet?.cmd, 'pubrel');
        assert.equal((packet as { messageId?: number }).messageId, id);
      }
    }
  });
});
