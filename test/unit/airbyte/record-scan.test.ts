/**
 * The RECORD fast path must accept exactly what JSON.parse accepts (and read the same values from it), or decline.
 * Checked differentially on many generated lines, valid and mutated, from a fixed seed so failures reproduce.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../../src/errors.js';
import { parseLine } from '../../../src/airbyte/input.js';
import { findPath, setMember } from '../../../src/text/raw-json.js';
import { scanRecord } from '../../../src/airbyte/record-scan.js';

function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(20261122);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const ws = (): string => pick(['', '', '', ' ', '\t', '\r\n ', '  ']);

const STRING_PARTS = [
  'a',
  'é',
  '東',
  '\\"',
  '\\\\',
  '\\/',
  '\\n',
  '\\u00e9',
  '\\ud83d\\ude00',
  '}',
  ']',
  ',',
  ':',
  '{',
  '[',
  ' ',
  '\\t',
  'data',
  'record',
];
const NUMBERS = [
  '0',
  '-0',
  '1',
  '-12',
  '3.14',
  '1e10',
  '1E+2',
  '2.5e-3',
  '12345678901234567890',
  '0.1000000000000000055511151231257827',
  '-0.0',
];

function jsonString(): string {
  let body = '';
  const length = Math.floor(random() * 5);
  for (let i = 0; i < length; i++) body += pick(STRING_PARTS);
  return `"${body}"`;
}

function jsonValue(depth: number): string {
  const kind = depth > 3 ? Math.floor(random() * 4) : Math.floor(random() * 6);
  switch (kind) {
    case 0:
      return jsonString();
    case 1:
      return pick(NUMBERS);
    case 2:
      return pick(['true', 'false', 'null']);
    case 3:
      return pick(NUMBERS);
    case 4: {
      const items = Array.from({ length: Math.floor(random() * 4) }, () => `${ws()}${jsonValue(depth + 1)}${ws()}`);
      return `[${items.join(',')}]`;
    }
    default:
      return jsonObject(depth + 1);
  }
}

function jsonObject(depth: number): string {
  const members = Array.from(
    { length: Math.floor(random() * 4) },
    () => `${ws()}${jsonString()}${ws()}:${ws()}${jsonValue(depth)}${ws()}`,
  );
  return `{${members.join(',')}}`;
}

function recordLine(): string {
  const record: string[] = [
    `"stream":${pick(['"users"', '"us\\u0065rs"', '"a\\"b"', '""', '1', 'null'])}`,
    `"data":${random() < 0.9 ? jsonObject(1) : jsonValue(1)}`,
    `"emitted_at":${random() < 0.9 ? pick(NUMBERS) : jsonValue(2)}`,
  ];
  if (random() < 0.5) record.push(`"namespace":${pick(['"crm"', 'null', '"n\\u00e9"', '7'])}`);
  if (random() < 0.2) record.push(`"data":${jsonObject(1)}`);
  if (random() < 0.3) record.push(`"meta":${jsonValue(1)}`);
  record.sort(() => random() - 0.5);
  const top = [
    `"type":${pick(['"RECORD"', '"RECORD"', '"RECORD"', '"STATE"', '"R\\u0045CORD"', '1'])}`,
    `"record":{${record.map((m) => `${ws()}${m}${ws()}`).join(',')}}`,
  ];
  if (random() < 0.2) top.push(`"record":${jsonValue(1)}`);
  if (random() < 0.2) top.push(`"x":${jsonValue(1)}`);
  top.sort(() => random() - 0.5);
  return `${ws()}{${top.map((m) => `${ws()}${m}${ws()}`).join(',')}}${ws()}`;
}

const MUTATIONS = [
  '"',
  '\\',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  ' ',
  '0',
  '-',
  '.',
  'e',
  '+',
  'x',
  '\u0001',
  '\n',
  'u',
  'n',
  't',
];

function mutate(line: string): string {
  const at = Math.floor(random() * line.length);
  switch (Math.floor(random() * 3)) {
    case 0:
      return line.slice(0, at) + line.slice(at + 1);
    case 1:
      return line.slice(0, at) + pick(MUTATIONS) + line.slice(at);
    default:
      return line.slice(0, at) + pick(MUTATIONS) + line.slice(at + 1);
  }
}

function reference(
  line: string,
): { stream: string; namespace: string | undefined; data: unknown; emittedAt: number } | undefined {
  let message: {
    type?: unknown;
    record?: { stream?: unknown; namespace?: unknown; data?: unknown; emitted_at?: unknown };
  };
  try {
    message = JSON.parse(line) as typeof message;
  } catch {
    return undefined;
  }
  const record = message?.record;
  if (message?.type !== 'RECORD' || typeof record !== 'object' || record === null || Array.isArray(record))
    return undefined;
  if (
    typeof record.data !== 'object' ||
    record.data === null ||
    Array.isArray(record.data) ||
    typeof record.emitted_at !== 'number'
  )
    return undefined;
  if (typeof record.stream !== 'string' || record.stream === '') return undefined;
  return {
    stream: record.stream,
    namespace: typeof record.namespace === 'string' ? record.namespace : undefined,
    data: record.data,
    emittedAt: record.emitted_at,
  };
}

describe('scanRecord', () => {
  it('agrees with JSON.parse on 40,000 generated and mutated lines', () => {
    let accepted = 0;
    let declined = 0;
    for (let i = 0; i < 40_000; i++) {
      const base = recordLine();
      const line = i % 2 === 0 ? base : mutate(random() < 0.5 ? base : mutate(base));
      const expected = reference(line);
      const scanned = scanRecord(line);
      if (scanned?.stream) {
        assert.ok(expected, `accepted a line JSON.parse does not take as a record: ${JSON.stringify(line)}`);
        assert.equal(scanned.stream, expected.stream, line);
        assert.equal(scanned.namespace, expected.namespace, line);
        assert.deepEqual(JSON.parse(line.slice(scanned.dataStart, scanned.dataEnd)), expected.data, line);
        assert.equal(Number(line.slice(scanned.emittedAtStart, scanned.emittedAtEnd)), expected.emittedAt, line);
        accepted++;
      } else {
        declined++;
      }
      // Whatever the fast path did, parseLine must reach the same verdict as JSON.parse.
      let outcome: string;
      try {
        const message = parseLine(line, 1);
        outcome = message.kind === 'record' ? `record ${message.stream}` : message.kind;
      } catch {
        outcome = 'error';
      }
      if (expected) assert.equal(outcome, `record ${expected.stream}`, line);
      else assert.notEqual(outcome.startsWith('record'), true, line);
    }
    assert.ok(accepted > 5000 && declined > 5000, `both paths exercised: ${accepted} accepted, ${declined} declined`);
  });

  it('follows deeply nested data without throwing, and declines it unbalanced', () => {
    const depth = 100_000;
    const line = `{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
    assert.equal(scanRecord(line)?.dataEnd, line.length - 2);
    const unbalanced = `{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":${'['.repeat(depth)}${']'.repeat(depth - 1)}}}}`;
    assert.equal(scanRecord(unbalanced), undefined);
  });
});

/** A line assembled from text pieces, remembering where the data object and emitted_at were placed. */
interface BuiltLine {
  readonly line: string;
  readonly data: string;
  readonly dataStart: number;
  readonly emittedAt: string;
  readonly emittedAtStart: number;
}

type Piece = string | { readonly data: string } | { readonly emittedAt: string };

function build(pieces: readonly Piece[]): BuiltLine {
  let line = '';
  let data: { text: string; at: number } | undefined;
  let emittedAt: { text: string; at: number } | undefined;
  for (const piece of pieces) {
    if (typeof piece === 'string') line += piece;
    else if ('data' in piece) {
      data = { text: piece.data, at: line.length };
      line += piece.data;
    } else {
      emittedAt = { text: piece.emittedAt, at: line.length };
      line += piece.emittedAt;
    }
  }
  assert.ok(data && emittedAt, 'test setup: both placed');
  return { line, data: data.text, dataStart: data.at, emittedAt: emittedAt.text, emittedAtStart: emittedAt.at };
}

/**
 * The fast path and parseLine must both find the data object and
 * emitted_at exactly where they were placed, and agree with JSON.parse on the values.
 */
function expectRecord(built: BuiltLine, stream: string, namespace?: string): void {
  const { line } = built;
  const expected = reference(line);
  assert.ok(expected, `test setup: JSON.parse takes it as a record: ${line.slice(0, 200)}`);
  assert.equal(expected.stream, stream);
  // Compared as canonical JSON text: deepEqual recurses and cannot follow the deepest nesting tested here.
  assert.equal(
    JSON.stringify(JSON.parse(built.data)),
    JSON.stringify(expected.data),
    'test setup: the placed data is the one JSON.parse keeps',
  );
  const dataEnd = built.dataStart + built.data.length;
  const emittedAtEnd = built.emittedAtStart + built.emittedAt.length;
  const scanned = scanRecord(line);
  assert.ok(scanned, `fast path accepts: ${line.slice(0, 200)}`);
  assert.deepEqual(
    [
      scanned.stream,
      scanned.namespace,
      scanned.dataStart,
      scanned.dataEnd,
      scanned.emittedAtStart,
      scanned.emittedAtEnd,
    ],
    [stream, namespace, built.dataStart, dataEnd, built.emittedAtStart, emittedAtEnd],
    line.slice(0, 200),
  );
  const message = parseLine(line, 1);
  assert.equal(message.kind, 'record');
  if (message.kind === 'record') {
    assert.equal(message.dataJson, built.data);
    assert.equal(message.emittedAtJson, built.emittedAt);
    assert.equal(message.stream, stream);
    assert.equal(message.namespace, namespace);
  }
}

/** Lines JSON.parse refuses: the fast path must decline without throwing, and parseLine must report an input error. */
function expectRefused(line: string): void {
  assert.throws(() => JSON.parse(line), SyntaxError, `test setup: invalid JSON: ${line.slice(0, 200)}`);
  assert.equal(scanRecord(line), undefined, line.slice(0, 200));
  assert.throws(
    () => parseLine(line, 7),
    (err: unknown) => err instanceof InputError && /^Input line 7: is not valid JSON/.test(err.message),
    line.slice(0, 200),
  );
}

const record = (data: string, emittedAt = '1700000000000', stream = '"s"'): Piece[] => [
  '{"type":"RECORD","record":{"stream":',
  stream,
  ',"data":',
  { data },
  ',"emitted_at":',
  { emittedAt },
  '}}',
];

describe('scanRecord at the edges of a line', () => {
  it('finds data that is empty, first, last or the only other member, and emitted_at as the very last value', () => {
    for (const data of ['{}', '{ }', '{\t\r\n }', '{"a":{}}', '{"":""}']) {
      expectRecord(build(record(data)), 's');
      expectRecord(
        build([
          '{"record":{"data":',
          { data },
          ',"stream":"s","emitted_at":',
          { emittedAt: '1' },
          '},"type":"RECORD"}',
        ]),
        's',
      );
      expectRecord(
        build([
          '{"type":"RECORD","record":{"stream":"s","emitted_at":',
          { emittedAt: '-0' },
          ',"data":',
          { data },
          '}}',
        ]),
        's',
      );
      expectRecord(
        build([
          '{"record":{"emitted_at":',
          { emittedAt: '0' },
          ',"stream":"s","data":',
          { data },
          '},"type":"RECORD"}',
        ]),
        's',
      );
    }
  });

  it('reads numbers that end right before a closing brace, in every JSON form', () => {
    for (const number of [
      '0',
      '-0',
      '7',
      '-1',
      '1700000000000',
      '12345678901234567890123',
      '1.5',
      '-0.0',
      '1e5',
      '1E+5',
      '2.5e-3',
      '0e0',
      '-1.0E-0',
    ]) {
      expectRecord(build(record(`{"n":${number}}`, number)), 's');
      expectRecord(
        build([
          '{"type":"RECORD","record":{"stream":"s","data":',
          { data: `{"n":[${number}]}` },
          ',"emitted_at":',
          { emittedAt: number },
          '}}',
        ]),
        's',
      );
    }
    // Each of these stops where a number cannot: the scanner must decline, JSON.parse explains.
    for (const bad of ['01', '-', '1.', '.5', '1e', '1e+', '+1', '--1', '1.e5', '0x10', 'Infinity', 'NaN']) {
      expectRefused(build(record('{}', bad)).line);
      expectRefused(build(record(`{"n":${bad}}`)).line);
    }
  });

  it('declines every truncation of a record line, wherever it is cut, without throwing', () => {
    const lines = [
      build(
        record(
          String.raw`{"a\\":"b\\\\","c":[1,-2.5e+3,true,false,null,{"d":"\u00e9\ud83d\ude00"}]}`,
          '-12.5E-2',
          String.raw`"s\\"`,
        ),
      ).line,
      ` \t${build(record('{ "k" : [ ] }')).line}\r `,
    ];
    for (const line of lines) {
      for (let cut = 0; cut < line.length; cut++) {
        const prefix = line.slice(0, cut);
        const expected = reference(prefix);
        const scanned = scanRecord(prefix);
        // A prefix may still be the whole record if only trailing whitespace was cut.
        assert.equal(scanned !== undefined, expected !== undefined, JSON.stringify(prefix));
      }
    }
  });

  it('takes whitespace around every token, and only JSON whitespace', () => {
    for (const space of [' ', '\t', '\r', '\n', ' \t\r\n ']) {
      const w = (text: string): string => `${space}${text}${space}`;
      const data = `{${w('"a"')}:${w('[')}${w('1')},${w('"x"')},${w('{')}${w('"b"')}:${w('null')}}${w(']')}}`;
      expectRecord(
        build([
          space,
          '{',
          w('"type"'),
          ':',
          w('"RECORD"'),
          ',',
          w('"record"'),
          ':',
          space,
          '{',
          w('"stream"'),
          ':',
          w('"s"'),
          ',',
          w('"data"'),
          ':',
          space,
          { data },
          space,
          ',',
          w('"emitted_at"'),
          ':',
          space,
          { emittedAt: '5' },
          space,
          '}',
          space,
          '}',
          space,
        ]),
        's',
      );
    }
    for (const notJson of ['\u00a0', '\v', '\f', '\u2028', '\ufeff']) {
      expectRefused(`{"type":"RECORD","record":{"stream":"s","data":{}${notJson},"emitted_at":1}}`);
      expectRefused(`${notJson}{"type":"RECORD","record":{"stream":"s","data":{},"emitted_at":1}}`);
    }
  });
});

describe('scanRecord inside strings', () => {
  // JSON text of strings whose escapes end exactly at the closing quote, or that hold the characters the scanners
  // look for.
  const strings = [
    String.raw`"a\\"`,
    String.raw`"\\"`,
    String.raw`"\\\\"`,
    String.raw`"\""`,
    String.raw`"a\\\""`,
    String.raw`"\/"`,
    String.raw`"\u0041"`,
    String.raw`"x\u00e9"`,
    String.raw`"\ud83d\ude00"`,
    String.raw`"\uD83D"`,
    String.raw`"\u005C"`,
    String.raw`"\u0022"`,
    String.raw`"}"`,
    String.raw`"\"}],"`,
    '""',
    '"é東😀"',
  ];

  it('ends each string at its real closing quote, as key, value, stream and neighbour of data', () => {
    for (const text of strings) {
      const value = JSON.parse(text) as string;
      expectRecord(build(record(`{${text}:${text}}`)), 's');
      expectRecord(build(record(`{"a":[${text},${text}]}`)), 's');
      if (value !== '') expectRecord(build(record('{}', '1', text)), value);
      expectRecord(
        build([
          '{"type":"RECORD","record":{"x":',
          text,
          ',"stream":"s","data":',
          { data: `{"k":${text}}` },
          ',',
          text,
          ':',
          text,
          ',"emitted_at":',
          { emittedAt: '2' },
          '}}',
        ]),
        's',
      );
      expectRecord(
        build([
          '{',
          text,
          ':',
          text,
          ',"type":"RECORD","record":{"stream":"s","namespace":',
          text,
          ',"data":',
          { data: '{}' },
          ',"emitted_at":',
          { emittedAt: '3' },
          '}}',
        ]),
        's',
        value,
      );
    }
  });

  it('declines strings whose escapes are cut or wrong, at the end of the string or of the line', () => {
    for (const bad of [
      String.raw`"a\"`,
      String.raw`"\u004"`,
      String.raw`"\u004G"`,
      String.raw`"\u"`,
      String.raw`"\x"`,
      String.raw`"\U0041"`,
      '"\t"',
      '"\u0000"',
      '"a',
    ]) {
      expectRefused(build(record(`{"k":${bad}}`)).line);
      expectRefused(build(record('{}', '1', bad)).line);
    }
    for (const end of ['\\', '\\u', '\\u00', '\\u00e'])
      expectRefused(`{"type":"RECORD","record":{"stream":"s","data":{"k":"${end}`);
  });

  it('recognises keys written with escapes, and not keys that only end like one', () => {
    expectRecord(
      build([
        '{"t\\u0079pe":"RECORD","rec\\u006frd":{"str\\u0065am":"s","d\\u0061ta":',
        { data: '{}' },
        ',"emitted\\u005fat":',
        { emittedAt: '4' },
        '}}',
      ]),
      's',
    );
    // "data\\" is not "data": the real data comes after it.
    expectRecord(
      build([
        '{"type":"RECORD","record":{"stream":"s","data\\\\":{"x":1},"data":',
        { data: '{"y":2}' },
        ',"emitted_at\\\\":9,"emitted_at":',
        { emittedAt: '8' },
        '}}',
      ]),
      's',
    );
  });

  it('does not take keys that only start like the ones it looks for', () => {
    expectRecord(
      build([
        '{"type":"RECORD","record":{"stream":"s","data":',
        { data: '{"y":2}' },
        ',"dataset":{"x":1},"emitted_at":',
        { emittedAt: '8' },
        ',"emitted_at_ms":9,"d":{}}}',
      ]),
      's',
    );
    expectRecord(
      build([
        '{"type":"RECORD","record":{"stream":"s","data":',
        { data: '{}' },
        ',"emitted_at":',
        { emittedAt: '1' },
        '},"recordx":{"data":{"z":0},"emitted_at":2}}',
      ]),
      's',
    );
  });

  it('lets a later record replace an earlier one entirely, as JSON.parse does', () => {
    expectRecord(
      build([
        '{"type":"RECORD","record":{"stream":"old","data":{"a":1},"emitted_at":1},"record":{"stream":"s","data":',
        { data: '{"b":2}' },
        ',"emitted_at":',
        { emittedAt: '2' },
        '},"x":0}',
      ]),
      's',
    );
    // A later record without data leaves none, rather than the earlier record's.
    assert.equal(
      scanRecord('{"type":"RECORD","record":{"stream":"s","data":{},"emitted_at":1},"record":{"stream":"s"}}'),
      undefined,
    );
  });

  it('finds data after and inside strings longer than 64 KiB', () => {
    const long = 'é東😀\\\\\\"\\u00e9/'.repeat(6_000);
    assert.ok(long.length > 65_536);
    const big = `"${long}\\\\"`;
    expectRecord(build(record(`{${big}:${big},"n":1}`)), 's');
    expectRecord(
      build([
        '{"type":"RECORD","x":',
        big,
        ',"record":{"namespace":',
        big,
        ',"stream":"s","data":',
        { data: `{"a":${big}}` },
        ',"emitted_at":',
        { emittedAt: '1' },
        '}}',
      ]),
      's',
      JSON.parse(big) as string,
    );
    expectRecord(build(record('{}', '1', big)), JSON.parse(big) as string);
  });

  it('finds data around deep nesting, as deep as JSON.parse goes, with exact spans', () => {
    const depth = 2_000;
    const nested = `${'{"a":['.repeat(depth)}"\\\\"${']}'.repeat(depth)}`;
    expectRecord(build(record(nested)), 's');
    expectRecord(build(record(`{"k":${nested},"z":[]}`)), 's');
    // Deeper than a recursive scanner could follow: the scanner keeps its own stack, so the fast path takes it.
    const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const built = build(record(deep, '-5'));
    const scanned = scanRecord(built.line);
    assert.ok(scanned);
    assert.deepEqual(
      [scanned.dataStart, scanned.dataEnd, scanned.emittedAtStart, scanned.emittedAtEnd],
      [built.dataStart, built.dataStart + deep.length, built.emittedAtStart, built.emittedAtStart + 2],
    );
    const message = parseLine(built.line, 1);
    assert.ok(message.kind === 'record' && message.dataJson === deep && message.emittedAtJson === '-5');
  });
});

describe('raw-json spans and setMember at the edges', () => {
  it('finds the state object wherever it sits, with whitespace around it', () => {
    for (const [before, state, after] of [
      ['{"type":"STATE","state":', '{}', '}'],
      [' \t{"state":', '{"data":{"c":"x\\\\"}}', ',"type":"STATE"}\r '],
      ['{"type":"STATE","state" : ', '{ "a" : [ 1 , { } ] }', ' }'],
      ['{"state":{"x":1},"type":"STATE","state":', '{"y":2}', '}'],
    ] as const) {
      const line = before + state + after;
      assert.deepEqual(findPath(line, ['state']), { start: before.length, end: before.length + state.length }, line);
      const message = parseLine(line, 1);
      assert.ok(message.kind === 'state');
      assert.deepEqual(message.stateSpan, { start: before.length, end: before.length + state.length });
    }
  });

  it('sets a member of an empty, one-member or many-member object, leaving every other byte alone', () => {
    const cases: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
      ['{}', { k: 7 }],
      ['{ }', { k: 7 }],
      ['{\n}', { k: 7 }],
      ['{"a":"b\\\\"}', { a: 'b\\', k: 7 }],
      ['{"k":1}', { k: 7 }],
      ['{"k":{"deep":[1,2]} , "z":0}', { k: 7, z: 0 }],
      ['{"z":0,"k":"\\\\"}', { z: 0, k: 7 }],
      ['{"k":1,"k":2}', { k: 7 }],
      ['{"\\u006b":1}', { k: 7 }],
      ['{"k\\\\":1}', { 'k\\': 1, k: 7 }],
    ];
    for (const [object, expected] of cases) {
      const line = `{"type":"STATE","state":${object},"after":"}"}`;
      const start = line.indexOf(object);
      const result = setMember(line, { start, end: start + object.length }, 'k', '7');
      assert.ok(result.startsWith(line.slice(0, start)) && result.endsWith(line.slice(start + object.length)), result);
      const parsed = JSON.parse(result) as { state: unknown; after: unknown };
      assert.deepEqual(parsed.state, expected, result);
      assert.equal(parsed.after, '}');
    }
  });
});
