/**
 * Rejected records under each `rejected_records` mode, over fake lanes (a stream's key and route), a fake channel
 * that keeps every message it is asked to send (and refuses those above the payload it is given as room), fake
 * channels that hand it out, the real ledger (checkpoints.ts, pure: the states it emits show what a rejected record
 * holds back and how it is counted) and the real per-stream summary.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { streamKey } from '../../../src/airbyte/catalog.js';
import { Checkpoints } from '../../../src/airbyte/checkpoints.js';
import { type StateMessage, parseLine } from '../../../src/airbyte/input.js';
import { type Settings, toSettings } from '../../../src/config/settings.js';
import { ConfigError } from '../../../src/errors.js';
import type { LogLevel } from '../../../src/log.js';
import {
  type MessageValues,
  NO_VALUES,
  type Payload,
  type PublishTarget,
  publishTarget,
} from '../../../src/mqtt/packets.js';
import type { Channel, RefusedMessage } from '../../../src/sync/channel.js';
import type { Channels } from '../../../src/sync/channels.js';
import type { Lane, Publish } from '../../../src/sync/lane.js';
import { Rejections } from '../../../src/sync/rejections.js';
import type { StreamRoute } from '../../../src/sync/routes.js';
import { Summary } from '../../../src/sync/summary.js';
import { streamStateLine } from '../../support/messages.js';

const DEVICES = { name: 'devices', namespace: 'fleet' };
const USERS = { name: 'users' };
const DEVICES_KEY = streamKey('fleet', 'devices');
const USERS_KEY = streamKey(undefined, 'users');

const NO_KEY_REASON =
  'input line 2: the record of stream "fleet.devices" has no topic of its own: its primary key field "id" is missing';

interface Message {
  readonly target: PublishTarget;
  readonly payload: Payload;
  readonly bytes: number;
  readonly values: MessageValues;
  readonly token: number;
  readonly line: number;
}

/** Bytes an MQTT message adds to its payload, in this fake: what `send` gives as the size of one that does not fit. */
const OVERHEAD = 50;

/** A channel that keeps what it sends; a payload above `room` bytes is not sent, and its message's size returned. */
class FakeChannel {
  /** Every message it was asked to send, sent or not. */
  readonly asked: Message[] = [];
  readonly sent: Message[] = [];

  constructor(private readonly room = Number.POSITIVE_INFINITY) {}

  send(target: PublishTarget, payload: Payload, bytes: number, values: MessageValues, token: number, line: number) {
    const message = { target, payload, bytes, values, token, line };
    this.asked.push(message);
    if (bytes > this.room) return bytes + OVERHEAD;
    this.sent.push(message);
    return 0;
  }

  describeOversize(target: PublishTarget, bytes: number, size: number): string {
    return `${target.label} is ${size} bytes as an MQTT message (${bytes} of payload); the broker takes 1.0 KB.`;
  }

  get channel(): Channel {
    return this as unknown as Channel;
  }

  /** The payloads sent, as text. */
  texts(): string[] {
    return this.sent.map((message) => {
      assert.equal(typeof message.payload, 'string', 'a report is JSON text');
      return message.payload as string;
    });
  }
}

function laneOf(stream: { readonly name: string; readonly namespace?: string }): Lane {
  const route = { name: stream.name, namespace: stream.namespace } as StreamRoute;
  return { key: streamKey(stream.namespace, stream.name), route } as unknown as Lane;
}

function state(line: string): StateMessage {
  const message = parseLine(line, 1);
  assert.ok(message.kind === 'state');
  return message;
}

interface Harness {
  readonly settings: Settings;
  readonly rejections: Rejections;
  readonly ledger: Checkpoints;
  readonly summary: Summary;
  readonly channel: FakeChannel;
  /** What `Channels.for` was asked: the stream and the key. */
  readonly asked: { readonly stream: string; readonly key: readonly string[] | undefined }[];
  readonly logs: { readonly level: LogLevel; readonly message: string }[];
  /** The `destinationStats` of each state emitted so far, taken from the list. */
  readonly emitted: () => unknown[];
  readonly devices: Lane;
  readonly users: Lane;
}

function harness(config: Record<string, unknown>, room?: number, settingsOf = toSettings): Harness {
  const settings = settingsOf({ broker_host: 'localhost', topic_pattern: 't/{stream}/{key}', ...config });
  const devices = laneOf(DEVICES);
  const users = laneOf(USERS);
  const lanes = new Map([
    [devices.key, devices],
    [users.key, users],
  ]);
  const channel = new FakeChannel(room);
  const asked: Harness['asked'] = [];
  const channels = {
    for: (route: StreamRoute, key: readonly string[] | undefined): Channel => {
      asked.push({ stream: route.name, key });
      return channel.channel;
    },
  };
  const lines: string[] = [];
  const ledger = new Checkpoints((line) => lines.push(line));
  const summary = new Summary();
  const logs: Harness['logs'] = [];
  const log = (level: LogLevel, message: string): void => {
    logs.push({ level, message });
  };
  const rejections = new Rejections(settings, lanes, channels as unknown as Channels, ledger, summary, log);
  const emitted = (): unknown[] =>
    lines
      .splice(0)
      .map((line) => (JSON.parse(line) as { state: { destinationStats: unknown } }).state.destinationStats);
  return { settings, rejections, ledger, summary, channel, asked, logs, emitted, devices, users };
}

const SKIP = { rejected_records: 'skip' };
const DEAD_LETTER = { rejected_records: 'dead_letter', dead_letter_topic: 'dead/{namespace}/{stream}' };

/** A message of stream `devices` the broker refused, sent as record `token` from input line `line`. */
function refusal(token: number, line: number, payload: Payload, source = DEVICES_KEY): RefusedMessage {
  const target = publishTarget('t/devices/denied', {
    mqtt5: true,
    label: 'the record of stream "fleet.devices"',
    source,
  });
  return { token, line, target, payload, reason: 'Not authorized', code: 0x87 };
}

describe('Rejections with rejected_records fail', () => {
  it('takes no refusals: the broker refusing a record fails the sync', () => {
    assert.equal(harness({}).rejections.takesRefusals, false);
    assert.equal(harness(SKIP).rejections.takesRefusals, true);
    assert.equal(harness(DEAD_LETTER).rejections.takesRefusals, true);
  });

  it('fails the sync with a config error that gives the reason as a sentence and how to go on past such records', () => {
    const h = harness({});
    assert.throws(
      () => h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'id-1', '{"n":1}'),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(
          error.message,
          'Input line 2: the record of stream "fleet.devices" has no topic of its own: its primary key field "id" ' +
            'is missing. Set "Rejected records" (rejected_records) to skip or dead_letter to go on past such records.',
        );
        return true;
      },
    );
    assert.equal(h.ledger.recordsReceived, 0, 'the record is not numbered');
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 0, 'nor counted as rejected');
    assert.deepEqual(h.logs, []);
  });

  it('fails on a message too large with the size the channel describes, its full stop once', () => {
    const h = harness({});
    const token = h.ledger.recordReceived(DEVICES_KEY);
    const record = { target: publishTarget('t/devices/1', { mqtt5: false, label: 'the record of stream "x"' }) };
    assert.throws(
      () =>
        h.rejections.oversize(h.devices, h.channel.channel, { ...record, bytes: 990 } as Publish, 7, '{}', token, 1040),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(
          error.message,
          'Input line 7: the record of stream "x" is 1040 bytes as an MQTT message (990 of payload); the broker ' +
            'takes 1.0 KB. Set "Rejected records" (rejected_records) to skip or dead_letter to go on past ' +
            'such records.',
        );
        return true;
      },
    );
  });
});

describe('Rejections with rejected_records skip', () => {
  it('skips the record with a warning, counts it, and releases the state after it at once', () => {
    const h = harness(SKIP);
    assert.equal(h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'id-1', '{"n":1}'), undefined);
    assert.deepEqual(h.logs, [{ level: 'WARN', message: `Skipped ${NO_KEY_REASON}.` }]);
    assert.equal(h.ledger.recordsReceived, 1, 'the record is numbered in the ledger');
    assert.equal(h.ledger.recordsAcknowledged, 1, 'and done with at once');
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 1);
    assert.equal(h.summary.rejectedOf(USERS_KEY), 0);
    assert.deepEqual(h.channel.asked, [], 'nothing is sent');
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 1)));
    assert.deepEqual(h.emitted(), [{ recordCount: 1.0, rejectedRecordCount: 1.0 }]);
  });

  it('still holds the state back for the records before the skipped one that are not acknowledged', () => {
    const h = harness(SKIP);
    const first = h.ledger.recordReceived(DEVICES_KEY);
    h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'id-2', '{}');
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 2)));
    assert.deepEqual(h.emitted(), []);
    h.ledger.acknowledged(first);
    assert.deepEqual(h.emitted(), [{ recordCount: 2, rejectedRecordCount: 1 }]);
  });

  it('rejects a message too large under the number the record already has, with the size in the warning', () => {
    const h = harness(SKIP);
    const before = h.ledger.recordReceived(DEVICES_KEY);
    const token = h.ledger.recordReceived(DEVICES_KEY);
    const target = publishTarget('t/devices/1', { mqtt5: false, label: 'the record of stream "fleet.devices"' });
    const record = { kind: 'publish', target, payload: 'x', bytes: 990, values: NO_VALUES } as Publish;
    assert.equal(h.rejections.oversize(h.devices, h.channel.channel, record, 7, '{}', token, 1040), undefined);
    assert.deepEqual(h.logs, [
      {
        level: 'WARN',
        message:
          'Skipped input line 7: the record of stream "fleet.devices" is 1040 bytes as an MQTT message (990 of ' +
          'payload); the broker takes 1.0 KB.',
      },
    ]);
    assert.equal(h.ledger.recordsReceived, 2, 'no new number');
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 2)));
    assert.deepEqual(h.emitted(), [], 'the record before it is still out');
    h.ledger.acknowledged(before);
    assert.deepEqual(h.emitted(), [{ recordCount: 2, rejectedRecordCount: 1 }]);
  });

  it('counts a refusal in the state that covers the record, though later states were read meanwhile', () => {
    const h = harness(SKIP);
    const refused = h.ledger.recordReceived(DEVICES_KEY);
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 1)));
    const later = h.ledger.recordReceived(DEVICES_KEY);
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 2)));
    assert.equal(h.rejections.refused(refusal(refused, 1, '{"id":"denied"}')), undefined);
    assert.deepEqual(h.emitted(), [{ recordCount: 1, rejectedRecordCount: 1 }]);
    h.ledger.acknowledged(later);
    assert.deepEqual(h.emitted(), [{ recordCount: 1 }]);
    assert.equal(h.ledger.recordsReceived, 2, 'a refused record is not numbered again');
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 1);
    assert.deepEqual(h.logs, [
      {
        level: 'WARN',
        message:
          'Skipped input line 1: the record of stream "fleet.devices" was refused by the broker on topic ' +
          '"t/devices/denied": Not authorized.',
      },
    ]);
  });

  it('skips when no dead letter target is set, whatever the mode says', () => {
    const h = harness(DEAD_LETTER, undefined, (config) => {
      const settings = toSettings(config);
      return { ...settings, sync: { ...settings.sync, deadLetterTopic: undefined } };
    });
    assert.equal(h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'id-1', '{}'), undefined);
    assert.deepEqual(h.channel.asked, []);
    assert.equal(h.logs[0]?.message, `Skipped ${NO_KEY_REASON}.`);
    assert.equal(h.ledger.recordsAcknowledged, 1);
  });

  it('skips under skip even with a dead letter topic at hand', () => {
    const h = harness(SKIP, undefined, (config) => {
      const settings = toSettings(config);
      return { ...settings, sync: { ...settings.sync, deadLetterTopic: 'dead' } };
    });
    assert.equal(h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'id-1', '{}'), undefined);
    assert.deepEqual(h.channel.asked, []);
    assert.equal(h.logs[0]?.message, `Skipped ${NO_KEY_REASON}.`);
  });
});

describe('Rejections with rejected_records dead_letter', () => {
  it('reports the record on the dead letter topic with its data as the source wrote it, over the stream channel', () => {
    const h = harness({ ...DEAD_LETTER, protocol_version: '5' });
    const data = '{"id":null,"big":9007199254740993,"price":1.10,"name":"Zoë"}';
    const sent = h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'rec-1', data);
    const report =
      `{"reason":${JSON.stringify(NO_KEY_REASON)},"stream":"devices","namespace":"fleet","line":2,` +
      `"record_id":"rec-1","data":${data}}`;
    assert.deepEqual(h.channel.texts(), [report]);
    const message = h.channel.sent[0];
    assert.ok(message);
    assert.equal(message.target.topic, 'dead/fleet/devices');
    assert.deepEqual(message.target.topicBytes, Buffer.from('dead/fleet/devices'));
    assert.equal(message.target.label, 'the dead letter report');
    assert.equal(message.target.retain, false);
    assert.equal(message.bytes, Buffer.byteLength(report, 'utf8'), 'bytes, not characters');
    assert.notEqual(message.bytes, report.length);
    assert.equal(message.values, NO_VALUES);
    assert.equal(message.token, 0);
    assert.equal(message.line, 2);
    assert.deepEqual(sent, { channel: h.channel.channel, bytes: message.bytes });
    assert.deepEqual(h.asked, [{ stream: 'devices', key: undefined }], 'over the channel of the stream without a key');
    assert.deepEqual(h.logs, [], 'a report is no warning');
  });

  it('reports with the configured MQTT 5 properties: JSON content type and the custom user properties', () => {
    const h = harness({
      ...DEAD_LETTER,
      protocol_version: '5',
      mqtt5_custom_user_properties: [{ name: 'site', value: 'berlin' }],
    });
    h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'rec-1', '{}');
    const expected = publishTarget('dead/fleet/devices', {
      mqtt5: true,
      contentType: 'application/json',
      customUserProperties: [['site', 'berlin']],
      label: 'the dead letter report',
    });
    const { staticProperties } = h.channel.sent[0]?.target ?? assert.fail('no report');
    assert.deepEqual(staticProperties, expected.staticProperties);
    assert.ok(staticProperties.includes('application/json'));
    assert.ok(staticProperties.includes('berlin'));
  });

  it('sends reports without properties below MQTT 5', () => {
    const h = harness(DEAD_LETTER);
    h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'rec-1', '{}');
    assert.equal(h.channel.sent[0]?.target.staticProperties.length, 0);
  });

  it('holds the states after the record back until the broker acknowledges the report', () => {
    const h = harness(DEAD_LETTER);
    h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'rec-1', '{}');
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 1)));
    assert.deepEqual(h.emitted(), [], 'not before the report is acknowledged');
    assert.equal(h.ledger.unacknowledged, 1);
    const token = h.channel.sent[0]?.token;
    assert.equal(token, 0);
    h.ledger.acknowledged(token);
    assert.deepEqual(h.emitted(), [{ recordCount: 1, rejectedRecordCount: 1 }]);
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 1);
  });

  it('reports under the number the record already has when it was too large to send', () => {
    const h = harness(DEAD_LETTER);
    h.ledger.recordReceived(DEVICES_KEY);
    const token = h.ledger.recordReceived(DEVICES_KEY);
    const target = publishTarget('t/devices/1', { mqtt5: false, label: 'the record of stream "fleet.devices"' });
    const record = { kind: 'publish', target, payload: 'x', bytes: 990, values: NO_VALUES, recordId: 'r-7' } as Publish;
    h.rejections.oversize(h.devices, h.channel.channel, record, 7, '{"n":7}', token, 1040);
    assert.equal(h.ledger.recordsReceived, 2);
    assert.equal(h.channel.sent[0]?.token, token);
    assert.deepEqual(JSON.parse(h.channel.texts()[0] ?? ''), {
      reason:
        'input line 7: the record of stream "fleet.devices" is 1040 bytes as an MQTT message (990 of payload); the ' +
        'broker takes 1.0 KB',
      stream: 'devices',
      namespace: 'fleet',
      line: 7,
      record_id: 'r-7',
      data: { n: 7 },
    });
  });

  it('gives the size of the data instead when the report with the data would be too large', () => {
    const data = `{"blob":"${'é'.repeat(300)}"}`;
    const h = harness(DEAD_LETTER, 400);
    const sent = h.rejections.reject(h.users, 'input line 9: too large', 9, 'rec-9', data);
    assert.equal(h.channel.asked.length, 2, 'tried with the data first');
    assert.equal(h.channel.asked[1]?.token, 0);
    const report =
      '{"reason":"input line 9: too large","stream":"users","namespace":null,"line":9,"record_id":"rec-9",' +
      `"data_bytes":${Buffer.byteLength(data, 'utf8')}}`;
    assert.deepEqual(h.channel.texts(), [report]);
    assert.deepEqual(sent, { channel: h.channel.channel, bytes: report.length });
    assert.equal(Buffer.byteLength(data, 'utf8'), 611);
    assert.deepEqual(h.logs, []);
    assert.equal(h.ledger.recordsAcknowledged, 0, 'done with once the report is acknowledged');
  });

  it('skips with a warning when even the report without the data is too large, and releases at once', () => {
    const h = harness(DEAD_LETTER, 10);
    assert.equal(h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'rec-1', '{"n":1}'), undefined);
    assert.equal(h.channel.asked.length, 2);
    assert.deepEqual(h.channel.sent, []);
    assert.deepEqual(h.logs, [
      { level: 'WARN', message: `Skipped ${NO_KEY_REASON} (even its report is larger than the broker accepts).` },
    ]);
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 1)));
    assert.deepEqual(h.emitted(), [{ recordCount: 1, rejectedRecordCount: 1 }]);
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 1);
  });

  it('reports a refused message with the message the broker refused, no record ID, under its number', () => {
    const h = harness(DEAD_LETTER);
    const token = h.ledger.recordReceived(DEVICES_KEY);
    h.ledger.stateReceived(state(streamStateLine(DEVICES, 1)));
    const payload = '{"_airbyte_data":{"id":"denied","n":1.50}}';
    assert.equal(h.rejections.refused(refusal(token, 4, payload)), undefined);
    assert.deepEqual(h.channel.texts(), [
      '{"reason":"input line 4: the record of stream \\"fleet.devices\\" was refused by the broker on topic ' +
        '\\"t/devices/denied\\": Not authorized","stream":"devices","namespace":"fleet","line":4,"record_id":null,' +
        `"message":${payload}}`,
    ]);
    assert.equal(h.channel.sent[0]?.token, token);
    assert.equal(h.ledger.recordsReceived, 1);
    assert.deepEqual(h.emitted(), [], 'the state waits for the report');
    h.ledger.acknowledged(token);
    assert.deepEqual(h.emitted(), [{ recordCount: 1, rejectedRecordCount: 1 }]);
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 1);
  });

  it('reports an empty refused message as null, and a compressed one by its size', () => {
    const h = harness(DEAD_LETTER);
    h.ledger.recordReceived(DEVICES_KEY);
    h.ledger.recordReceived(DEVICES_KEY);
    h.rejections.refused(refusal(0, 1, ''));
    h.rejections.refused(refusal(1, 2, Buffer.alloc(37)));
    const [empty, compressed] = h.channel.texts().map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.equal(empty?.message, null);
    assert.ok(empty && 'message' in empty);
    assert.equal(compressed?.message_bytes, 37);
    assert.equal(compressed && 'message' in compressed, false);
    assert.equal(h.channel.asked.length, 2, 'a compressed message is reported by size at once');
  });

  it('gives the size in bytes of a refused message too large to report', () => {
    const h = harness(DEAD_LETTER, 300);
    h.ledger.recordReceived(DEVICES_KEY);
    const payload = `"${'é'.repeat(200)}"`;
    h.rejections.refused(refusal(0, 1, payload));
    assert.match(h.channel.texts()[0] ?? '', /,"message_bytes":402\}$/);
  });

  it('skips a compressed refused message whose report is too large after one try, its size being all it has', () => {
    const h = harness(DEAD_LETTER, 10);
    h.ledger.recordReceived(DEVICES_KEY);
    assert.equal(h.rejections.refused(refusal(0, 1, Buffer.alloc(37))), undefined);
    assert.equal(h.channel.asked.length, 1);
    assert.match(
      h.logs[0]?.message ?? '',
      /^Skipped input line 1: .* \(even its report is larger than the broker accepts\)\.$/,
    );
    assert.equal(h.ledger.recordsAcknowledged, 1);
  });

  it('fails the sync when the refused message names no stream of the sync', () => {
    const h = harness(DEAD_LETTER);
    const error = h.rejections.refused(refusal(0, 1, '{}', 'elsewhere'));
    assert.ok(error instanceof ConfigError);
    assert.equal(
      error.message,
      'The broker refused the record of stream "fleet.devices" on topic "t/devices/denied": Not authorized.',
    );
    assert.deepEqual(h.channel.asked, []);
    assert.equal(h.summary.rejectedOf(DEVICES_KEY), 0);
  });

  it('fails the sync when the broker refuses a dead letter report, which is no record of a stream', () => {
    const h = harness(DEAD_LETTER);
    h.rejections.reject(h.devices, NO_KEY_REASON, 2, 'rec-1', '{}');
    const report = h.channel.sent[0] ?? assert.fail('no report');
    const error = h.rejections.refused({ ...refusal(0, 2, report.payload), target: report.target });
    assert.ok(error instanceof ConfigError);
    assert.equal(
      error.message,
      'The broker refused the dead letter report on topic "dead/fleet/devices": Not authorized.',
    );
    assert.equal(h.channel.sent.length, 1, 'no report of the report');
  });
});

describe('the dead letter topic', () => {
  const fieldTopic = (topic: string, extra: Record<string, unknown> = {}): Harness =>
    harness({ rejected_records: 'dead_letter', dead_letter_topic: topic, ...extra });

  it('takes each stream its own {namespace} and {stream}, leaving out an empty namespace', () => {
    const h = fieldTopic('dead/{namespace}/{stream}');
    h.rejections.reject(h.devices, 'a', 1, 'r', '{}');
    h.rejections.reject(h.users, 'b', 2, 'r', '{}');
    h.rejections.reject(h.devices, 'c', 3, 'r', '{}');
    assert.deepEqual(
      h.channel.sent.map((message) => message.target.topic),
      ['dead/fleet/devices', 'dead/users', 'dead/fleet/devices'],
    );
  });

  it('fills each {field:PATH} from the record data, encoded as a topic level', () => {
    const h = fieldTopic('dead/{stream}/{field:site}/{field:device.id}');
    h.rejections.reject(h.devices, 'a', 1, 'r', '{"site":"ber/lin","device":{"id":42}}');
    h.rejections.reject(h.users, 'b', 2, 'r', '{"device":{"id":true},"site":"x"}');
    assert.deepEqual(
      h.channel.sent.map((message) => message.target.topic),
      ['dead/devices/ber%2Flin/42', 'dead/users/x/true'],
    );
  });

  it('encodes field values strictly with strict topic value escaping', () => {
    const h = fieldTopic('dead/{field:site}', { topic_value_escaping: 'strict' });
    h.rejections.reject(h.devices, 'a', 1, 'r', '{"site":"a.b c"}');
    assert.equal(h.channel.sent[0]?.target.topic, 'dead/a%2Eb%20c');
  });

  it('leaves the level of a field that is missing, null, an object, an array or no text empty', () => {
    const h = fieldTopic('dead/{field:a}/{field:b}');
    const data = ['{"b":1}', '{"a":null,"b":1}', '{"a":{},"b":1}', '{"a":[1],"b":1}', '{"a":"\\ud800","b":1}'];
    for (const [index, json] of data.entries()) h.rejections.reject(h.devices, 'r', index + 1, 'r', json);
    assert.deepEqual(
      h.channel.sent.map((message) => message.target.topic),
      ['dead//1', 'dead//1', 'dead//1', 'dead//1', 'dead//1'],
    );
  });

  it('leaves every field level empty for a refused message, whose data the report does not carry', () => {
    const h = fieldTopic('dead/{stream}/{field:id}');
    h.ledger.recordReceived(DEVICES_KEY);
    h.rejections.refused(refusal(0, 1, '{"id":"denied"}'));
    assert.equal(h.channel.sent[0]?.target.topic, 'dead/devices/');
  });

  it('leaves every field level empty, the short ones too, when the topic would be longer than MQTT allows', () => {
    const h = fieldTopic('dead/{field:a}/{field:b}');
    const long = 'x'.repeat(65_535);
    h.rejections.reject(h.devices, 'r', 1, 'r', `{"a":"short","b":"${long}"}`);
    h.rejections.reject(h.devices, 'r', 2, 'r', `{"a":"short","b":"fine"}`);
    assert.deepEqual(
      h.channel.sent.map((message) => message.target.topic),
      ['dead//', 'dead/short/fine'],
    );
  });
});
