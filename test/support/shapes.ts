/**
 * Record data shaped like real data, for end-to-end tests. Nearly identical small records hide every bug that depends
 * on size: a buffer reused after a flush, a length prefix that grows a byte, a frame header that changes form. So the
 * generator mixes sizes from `{}` to 200 KB in random order, includes a run of records of a few kilobytes, fills text
 * columns with multi-byte UTF-8 and JSON escapes, carries numbers that must stay exact, and aims some records at the
 * exact sizes where encoders and buffers change behaviour.
 *
 * Everything comes from one seed, which the tests print in their assertion messages, so a failing run can be replayed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { RunResult } from './connector.js';
import { envelopeOf } from './expect.js';
import type { Delivery, Subscriber } from './subscriber.js';
import { type Random, mulberry32 } from './random.js';
import { catalogOf } from './messages.js';

export { type Random, mulberry32 };

const between = (random: Random, low: number, high: number): number => low + Math.floor(random() * (high - low + 1));
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
/** Sizes spread evenly over orders of magnitude, as record sizes are in practice. */
const logUniform = (random: Random, low: number, high: number): number =>
  Math.round(Math.exp(Math.log(low) + random() * (Math.log(high) - Math.log(low))));

/**
 * Pieces of JSON string content, as written in the JSON text: plain words, two-, three- and four-byte UTF-8 (a
 * surrogate pair in JavaScript), and the escapes a source may emit. `\u2028` appears raw too: valid in JSON, a line
 * terminator in old JavaScript.
 */
const TEXT_PIECES = [
  'order ',
  'shipped ',
  'the ',
  'é',
  'ü',
  'ñ',
  '東京',
  'München ',
  '😀',
  '👩‍💻',
  '🇫🇷',
  '\\n',
  '\\"',
  '\\\\',
  '\\/',
  '\\t',
  '\\u00e9',
  '\\u2028',
  '\\ud83d\\ude00',
  '\u2028',
];
const bytesOf = (text: string): number => Buffer.byteLength(text, 'utf8');

/** JSON string content of exactly `bytes` UTF-8 bytes. */
function textOfBytes(random: Random, bytes: number): string {
  let text = '';
  let left = bytes;
  while (left > 12) {
    const piece = pick(random, TEXT_PIECES);
    text += piece;
    left -= bytesOf(piece);
  }
  return text + 'abcdefghijkl'.slice(0, left);
}

/** Members of a typical row, each a JSON member text: exact numbers, nulls, booleans, nesting, text. */
function rowMembers(random: Random): string[] {
  const id = 9_007_199_254_740_993n + BigInt(between(random, 0, 1_000_000)); // above 2^53: a double would round it
  return [
    `"id":${id}`,
    `"account":${BigInt(between(random, 1, 9)) * 10n ** 25n + BigInt(between(random, 0, 999_999))}`,
    `"amount":${between(random, 0, 99_999)}.${String(between(random, 0, 999_999_999)).padStart(9, '0')}00000000000000001`,
    `"rate":0.1000000000000000055511151231257827021181583404541015625`,
    `"avogadro":6.02214076e+23`,
    `"tiny":-1.5E-300`,
    `"name":"José Müller-Łukasiewicz"`,
    `"city":"東京都渋谷区"`,
    `"status":"${pick(random, ['active', 'closed', 'pending'])}"`,
    `"active":${random() < 0.5}`,
    `"deleted_at":null`,
    `"escapes":"line 1\\nline 2\\t\\"quoted\\" back\\\\slash \\u00e9 \\u2028 \\ud83d\\ude00 \u2028"`,
    `"address":{"street":"Hauptstraße 5","geo":{"lat":52.520008,"lon":13.404954},"tags":["home","ünïcödé",null]}`,
    `"matrix":[[1,2,3],[4.5,-6e-7,0],[]]`,
    `"empty":{}`,
    `"emoji":"🚀✨👩‍👩‍👧"`,
  ];
}

/** A line item of an order, for the large records: real large rows are arrays of small objects, not one blob. */
function lineItem(random: Random, n: number): string {
  return `{"line":${n},"sku":"SKU-${between(random, 10_000, 99_999)}","qty":${between(random, 1, 20)},"price":${between(random, 0, 999)}.${between(random, 10, 99)},"label":"${pick(random, ['Käse', '寿司', 'crème brûlée', 'tea \\"green\\"', 'cable\\\\adapter', '🍕 slice'])}"}`;
}

/**
 * A realistic record `data` JSON object text of exactly `bytes` UTF-8 bytes (at least 2). Below the smallest realistic
 * row it is `{}` padded with whitespace, which is valid JSON that must reach the broker unchanged too.
 */
export function dataOfBytes(random: Random, bytes: number): string {
  if (bytes < 2) throw new Error(`a JSON object needs at least 2 bytes, not ${bytes}`);
  const notes = (content: string): string => `"notes":"${content}"`;
  const close = (members: readonly string[], pad: string): string => `{${[...members, notes(pad)].join(',')}}`;
  const shell = bytesOf(close([], ''));
  if (bytes < shell) return `{${' '.repeat(bytes - 2)}}`;
  const members: string[] = [];
  for (const member of rowMembers(random)) {
    if (random() < 0.6 && bytesOf(close([...members, member], '')) <= bytes) members.push(member);
  }
  // Large rows: an array of line items, filled up to roughly the size, the text column making up the rest exactly.
  if (bytes - bytesOf(close(members, '')) > 2000) {
    const items: string[] = [];
    let itemBytes = 0;
    const budget = (bytes - bytesOf(close(members, '')) - 200) * (0.5 + random() * 0.5);
    for (let n = 1; ; n++) {
      const item = lineItem(random, n);
      if (itemBytes + bytesOf(item) + 1 > budget) break;
      items.push(item);
      itemBytes += bytesOf(item) + 1;
    }
    if (items.length > 0) members.push(`"items":[${items.join(',')}]`);
  }
  const text = close(members, textOfBytes(random, bytes - bytesOf(close(members, ''))));
  if (bytesOf(text) !== bytes) throw new Error(`dataOfBytes made ${bytesOf(text)} bytes instead of ${bytes}`);
  return text;
}

/** A stream of the generated sync, with the topic the connector publishes it on (the test's `topic_pattern`). */
export interface ShapeStream {
  readonly name: string;
  readonly namespace?: string;
  readonly topic: string;
  /** `emitted_at` of the stream's records. A short one lets the smallest payload sizes be reached. */
  readonly emittedAt: number;
}

/** How the connector frames a message: what decides the PUBLISH packet's size around the payload. */
export interface Wire {
  readonly qos: 0 | 1 | 2;
  /** MQTT 5, with the connector's default properties (content type, payload format, Airbyte user properties). */
  readonly mqtt5: boolean;
  /** The broker allows topic aliases (MQTT 5): after a stream's first message its packets leave out the topic. */
  readonly aliases: boolean;
}

const UUID_LENGTH = 36;

/** Bytes of the published envelope (the MQTT payload) for `dataBytes` bytes of data; the layout is the README's. */
export function envelopeBytes(stream: ShapeStream, dataBytes: number): number {
  const empty = `{"_airbyte_ab_id":"${'0'.repeat(UUID_LENGTH)}","_airbyte_stream":${JSON.stringify(stream.name)},"_airbyte_emitted_at":${stream.emittedAt},"_airbyte_data":}`;
  return bytesOf(empty) + dataBytes;
}

const varIntBytes = (value: number): number => (value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4);
const stringPair = (key: string, value: string): number => 1 + 2 + bytesOf(key) + 2 + bytesOf(value);

/** Bytes of the MQTT 5 properties the connector sends with each message of `stream` (MQTT 5.0 section 3.3.2.3). */
export function mqtt5PropertiesBytes(stream: ShapeStream, alias: boolean): number {
  let bytes = 2 + 1 + 2 + bytesOf('application/json'); // payload format indicator; content type
  bytes += stringPair('airbyte_stream', stream.name);
  if (stream.namespace) bytes += stringPair('airbyte_namespace', stream.namespace);
  bytes += stringPair('airbyte_emitted_at', String(stream.emittedAt));
  bytes += stringPair('airbyte_record_id', '0'.repeat(UUID_LENGTH));
  return alias ? bytes + 3 : bytes;
}

/** The PUBLISH packet's remaining length and whole size (MQTT 3.1.1 section 3.3, MQTT 5.0 section 3.3). */
export function publishBytes(
  stream: ShapeStream,
  wire: Wire,
  payloadBytes: number,
  withTopic: boolean,
): { remaining: number; packet: number } {
  let remaining = 2 + (withTopic ? bytesOf(stream.topic) : 0) + (wire.qos > 0 ? 2 : 0) + payloadBytes;
  if (wire.mqtt5) {
    const properties = mqtt5PropertiesBytes(stream, wire.aliases);
    remaining += varIntBytes(properties) + properties;
  }
  return { remaining, packet: 1 + varIntBytes(remaining) + remaining };
}

type Measure = 'payload' | 'remaining' | 'packet';

/** Sizes where things change: each is aimed at one byte below, at, and one byte above. */
const AIMS: readonly { readonly measure: Measure; readonly bytes: number; readonly why: string }[] = [
  { measure: 'payload', bytes: 128, why: '127/128-byte payload' },
  { measure: 'payload', bytes: 4096, why: '4 KiB payload' },
  { measure: 'payload', bytes: 16_384, why: '16383/16384-byte payload' },
  { measure: 'payload', bytes: 65_536, why: '64 KiB payload' },
  { measure: 'remaining', bytes: 128, why: 'remaining length 127/128 (one- to two-byte length field)' },
  { measure: 'remaining', bytes: 16_384, why: 'remaining length 16383/16384 (two- to three-byte length field)' },
  { measure: 'packet', bytes: 4096, why: '4 KiB packet (a flushed batch keeps its remainder from 4 KiB on)' },
  { measure: 'packet', bytes: 65_536, why: '64 KiB packet (one write batch)' },
];

export interface ShapedRecord {
  readonly stream: ShapeStream;
  readonly dataJson: string;
  /** What the size aims at, when it aims at something. */
  readonly aim?: string;
}

function measured(measure: Measure, stream: ShapeStream, wire: Wire, dataBytes: number, withTopic: boolean): number {
  const payload = envelopeBytes(stream, dataBytes);
  if (measure === 'payload') return payload;
  const { remaining, packet } = publishBytes(stream, wire, payload, withTopic);
  return measure === 'remaining' ? remaining : packet;
}

/** The data size that makes `measure` exactly `target` for `stream`, or undefined when no data size does. */
function dataBytesFor(
  measure: Measure,
  target: number,
  stream: ShapeStream,
  wire: Wire,
  withTopic: boolean,
): number | undefined {
  const guess = target - measured(measure, stream, wire, 0, withTopic);
  // Length fields grow by a byte at their boundaries, so the exact size may sit a few bytes from the linear guess.
  for (let delta = -4; delta <= 4; delta++) {
    const dataBytes = guess + delta;
    if (dataBytes >= 2 && measured(measure, stream, wire, dataBytes, withTopic) === target) return dataBytes;
  }
  return undefined;
}

/**
 * The data size that makes a record of `stream` a PUBLISH packet of exactly `packetBytes`, with its topic or (after a
 * stream's first message under MQTT 5 topic aliases) without; undefined when none does.
 */
export function dataBytesForPacket(
  stream: ShapeStream,
  wire: Wire,
  packetBytes: number,
  withTopic: boolean,
): number | undefined {
  return dataBytesFor('packet', packetBytes, stream, wire, withTopic);
}

export interface ShapeOptions {
  /** Records besides the aimed ones, the run of mid-sized ones and the large ones. Default 150. */
  readonly others?: number;
  /** Length of the run of 2-12 KB records. Default 40. */
  readonly runLength?: number;
}

/**
 * The records of a sync, in order: one small record per stream first (so that aimed sizes hold for the messages
 * after a stream's first, when MQTT 5 topic aliases leave the topic out), then, shuffled, records of every size aimed
 * at the boundaries above wherever some stream can reach them, a few `{}`, three records two to three times 64 KiB
 * and up to 200 KB, and sizes spread from a few bytes to 20 KB; with a run of 2-12 KB records inserted somewhere.
 */
export function shapeRecords(
  seed: number,
  streams: readonly ShapeStream[],
  wire: Wire,
  options: ShapeOptions = {},
): ShapedRecord[] {
  const random = mulberry32(seed);
  const body: ShapedRecord[] = [];
  const sized = (bytes: number, stream = pick(random, streams), aim?: string): ShapedRecord => ({
    stream,
    dataJson: dataOfBytes(random, bytes),
    aim,
  });
  for (const { measure, bytes, why } of AIMS) {
    for (const target of [bytes - 1, bytes, bytes + 1]) {
      // Any stream that can reach the size; small sizes need the stream with the shortest name and topic.
      const reachable = streams.flatMap((stream) => {
        // A stream's first message carries the topic; the generator starts each stream with an unaimed record.
        const dataBytes = dataBytesFor(measure, target, stream, wire, !wire.aliases);
        return dataBytes === undefined ? [] : [{ stream, dataBytes }];
      });
      if (reachable.length === 0) continue;
      const { stream, dataBytes } = pick(random, reachable);
      body.push(sized(dataBytes, stream, `${measure} ${target} bytes: ${why}`));
    }
  }
  for (let i = 0; i < 3; i++) body.push({ stream: pick(random, streams), dataJson: '{}' });
  for (const bytes of [
    between(random, 131_072, 160_000),
    between(random, 196_608, 200_000),
    between(random, 65_537, 200_000),
  ]) {
    body.push(sized(bytes, undefined, 'several times one write batch'));
  }
  for (let i = 0; i < (options.others ?? 150); i++) body.push(sized(logUniform(random, 2, 20_000)));
  for (let i = body.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [body[i], body[j]] = [body[j] as ShapedRecord, body[i] as ShapedRecord];
  }
  const run = Array.from({ length: options.runLength ?? 40 }, () =>
    sized(between(random, 2048, 12_288), undefined, 'run of 2-12 KB'),
  );
  body.splice(Math.floor(random() * body.length), 0, ...run);
  const openers = streams.map((stream) => sized(between(random, 2, 300), stream));
  return [...openers, ...body];
}

/** Which boundaries a generated sync actually reached, so a test can insist on the ones that matter to it. */
export function aimsReached(records: readonly ShapedRecord[]): Set<string> {
  return new Set(records.flatMap((record) => (record.aim ? [record.aim] : [])));
}

export interface ExpectedState {
  /** The state object as sent, as JSON text. */
  readonly stateJson: string;
  readonly recordCount: number;
}

export interface ShapedSync {
  readonly seed: number;
  readonly records: readonly ShapedRecord[];
  /** The connector's standard input. */
  readonly input: string;
  readonly states: readonly ExpectedState[];
}

function recordInput(record: ShapedRecord): string {
  const ns = record.stream.namespace ? `,"namespace":${JSON.stringify(record.stream.namespace)}` : '';
  return `{"type":"RECORD","record":{"stream":${JSON.stringify(record.stream.name)}${ns},"emitted_at":${record.stream.emittedAt},"data":${record.dataJson}}}`;
}

/**
 * The input of a sync of `records`, with STREAM states interleaved at random (about one every eight records, for a
 * random stream, sometimes one with no record since its last state) and a final state per stream. Cursors carry
 * text and numbers that must come back unchanged.
 */
export function shapedSync(seed: number, records: readonly ShapedRecord[]): ShapedSync {
  const random = mulberry32(seed ^ 0x5eed);
  const streams = [...new Set(records.map((r) => r.stream))];
  const since = new Map<ShapeStream, number>(streams.map((s) => [s, 0]));
  const lines: string[] = [];
  const states: ExpectedState[] = [];
  const state = (stream: ShapeStream): void => {
    const descriptor = JSON.stringify({
      name: stream.name,
      ...(stream.namespace ? { namespace: stream.namespace } : {}),
    });
    const cursor = `{"updated_at":"2024-0${between(random, 1, 9)}-1${between(random, 0, 9)}T12:34:56.123456+02:00","last_id":${12_345_678_901_234_567_890n + BigInt(lines.length)},"note":"é東京😀\\n\\u2028"}`;
    const stateJson = `{"type":"STREAM","stream":{"stream_descriptor":${descriptor},"stream_state":${cursor}}}`;
    lines.push(`{"type":"STATE","state":${stateJson}}`);
    states.push({ stateJson, recordCount: since.get(stream) ?? 0 });
    since.set(stream, 0);
  };
  for (const record of records) {
    lines.push(recordInput(record));
    since.set(record.stream, (since.get(record.stream) ?? 0) + 1);
    if (random() < 0.125) state(pick(random, streams));
  }
  for (const stream of streams) state(stream);
  return { seed, records, input: `${lines.join('\n')}\n`, states };
}

/** Index of the first character where two texts differ, for a message that does not print 200 KB. */
function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * `deliveries` are exactly the sync's records: the same number per topic, in input order per topic, each with its
 * stream, `emitted_at` and `_airbyte_data` byte for byte, each with its own id; nothing else. Messages name the seed.
 */
export function assertShapesDelivered(deliveries: readonly Delivery[], sync: ShapedSync, label: string): void {
  const context = `${label}, seed ${sync.seed}`;
  const topics = new Set(sync.records.map((r) => r.stream.topic));
  const stray = deliveries.filter((d) => !topics.has(d.topic));
  assert.equal(
    stray.length,
    0,
    `${context}: messages on unexpected topics: ${[...new Set(stray.map((d) => d.topic))].join(', ')}`,
  );
  const ids = new Set<string>();
  for (const topic of topics) {
    const want = sync.records.filter((r) => r.stream.topic === topic);
    const got = deliveries.filter((d) => d.topic === topic);
    assert.equal(
      got.length,
      want.length,
      `${context}: topic ${topic}: expected ${want.length} messages, got ${got.length}`,
    );
    got.forEach((delivery, i) => {
      const record = want[i] as ShapedRecord;
      const envelope = envelopeOf(delivery.payload);
      const where = `${context}: topic ${topic} message ${i} (${bytesOf(record.dataJson)}-byte data${record.aim ? `, ${record.aim}` : ''})`;
      assert.equal(envelope._airbyte_stream, record.stream.name, where);
      assert.equal(envelope._airbyte_emitted_at, record.stream.emittedAt, where);
      if (envelope.dataJson !== record.dataJson) {
        const at = firstDifference(envelope.dataJson, record.dataJson);
        assert.fail(
          `${where}: data differs from character ${at}: got ${bytesOf(envelope.dataJson)} bytes, ` +
            `${JSON.stringify(envelope.dataJson.slice(at, at + 40))} instead of ${JSON.stringify(record.dataJson.slice(at, at + 40))}`,
        );
      }
      ids.add(envelope._airbyte_ab_id);
    });
  }
  assert.equal(ids.size, sync.records.length, `${context}: every record must have its own _airbyte_ab_id`);
}

/**
 * The sync succeeded and echoed every input state, in order, unchanged but for `destinationStats.recordCount`.
 * `diagnostics` (a broker's log, say) is added to the message when the sync failed.
 */
export function assertShapesStates(result: RunResult, sync: ShapedSync, label: string, diagnostics = ''): void {
  const context = `${label}, seed ${sync.seed}`;
  assert.equal(
    result.code,
    0,
    `${context}: exit code ${result.code}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}\n${diagnostics}`,
  );
  assert.equal(result.ofType('TRACE').length, 0, `${context}: ${result.stdout.slice(-4000)}`);
  const emitted = result.states();
  assert.equal(
    emitted.length,
    sync.states.length,
    `${context}: expected ${sync.states.length} states, got ${emitted.length}`,
  );
  const stateLines = result.stdout.split('\n').filter((line) => line.startsWith('{"type":"STATE"'));
  sync.states.forEach((want, i) => {
    const { destinationStats, ...state } = emitted[i] as Record<string, unknown>;
    assert.deepEqual(state, JSON.parse(want.stateJson), `${context}: state ${i}`);
    assert.deepEqual(destinationStats, { recordCount: want.recordCount }, `${context}: state ${i} destinationStats`);
    // Parsed objects round big numbers alike; the text shows that the cursor came back exactly.
    const cursor = want.stateJson.slice(want.stateJson.indexOf('"stream_state":'), -2);
    assert.ok(stateLines[i]?.includes(cursor), `${context}: state ${i} text changed: ${stateLines[i]}`);
  });
}

/**
 * Waits for `count` messages, then publishes a sentinel from the subscriber itself and waits for it: the broker
 * forwards it after everything it routed before, so what came before it is the complete set, and an extra message the
 * connector sent cannot hide behind an early count. Returns the messages before the sentinel.
 */
export async function deliveriesBeforeSentinel(
  subscriber: Subscriber,
  count: number,
  label: string,
  topic = `sentinel/${randomUUID()}`,
  timeoutMs = 30_000,
): Promise<Delivery[]> {
  await subscriber
    .waitFor(count, timeoutMs)
    .catch((err: unknown) => assert.fail(`${label}: ${(err as Error).message}`));
  const seen = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label}: the sentinel did not come back within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (arrived: string): void => {
      if (arrived !== topic) return;
      clearTimeout(timer);
      subscriber.client.off('message', onMessage);
      resolve();
    };
    subscriber.client.on('message', onMessage);
  });
  await Promise.all([seen, subscriber.client.publishAsync(topic, 'end', { qos: 1 })]);
  return subscriber.messages.slice(
    0,
    subscriber.messages.findIndex((d) => d.topic === topic),
  );
}

/** `s` has the shortest name, topic and emitted_at, so that the smallest payload and packet sizes can be reached. */
export const SHAPE_STREAMS: readonly ShapeStream[] = [
  { name: 's', topic: 's', emittedAt: 7 },
  { name: 'users', namespace: 'crm', topic: 'crm/users', emittedAt: 1_700_000_000_000 },
  { name: 'events', namespace: 'app', topic: 'app/events', emittedAt: 1_700_000_012_345 },
];
export const SHAPE_CATALOG = catalogOf(SHAPE_STREAMS);
export const QOS_NAMES = ['AT_MOST_ONCE', 'AT_LEAST_ONCE', 'EXACTLY_ONCE'] as const;
/** Replays one seed for every case when set, e.g. to chase a failure seen with another seed. */
export const SHAPES_SEED = process.env.SHAPES_SEED === undefined ? undefined : Number(process.env.SHAPES_SEED);

/**
 * The sync a shapes test runs for `seed` over `wire`, after checking that its records reach the sizes where framing
 * and the write batch change behaviour (without them the test would prove little). `note` receives a summary line.
 */
export function plannedSync(seed: number, wire: Wire, note: (line: string) => void): ShapedSync {
  const sync = shapedSync(seed, shapeRecords(seed, SHAPE_STREAMS, wire));
  const dataBytes = sync.records.reduce((sum, r) => sum + Buffer.byteLength(r.dataJson), 0);
  note(`seed ${seed}: ${sync.records.length} records, ${dataBytes} bytes of data, ${sync.states.length} states`);
  const reached = aimsReached(sync.records);
  for (const aim of ['packet 65536 bytes', 'packet 4096 bytes', 'remaining 16384 bytes', 'payload 128 bytes']) {
    assert.ok(
      [...reached].some((r) => r.startsWith(aim)),
      `seed ${seed}: no record aimed at ${aim}`,
    );
  }
  return sync;
}
