/**
 * The RECORD fast path must accept exactly what JSON.parse accepts (and read the same values from it), or decline.
 * Checked differentially on many generated lines, valid and mutated, from a fixed seed so failures reproduce.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLine } from '../../src/protocol/input.js';
import { scanRecord } from '../../src/protocol/record-scan.js';

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

const STRING_PARTS = ['a', 'é', '東', '\\"', '\\\\', '\\/', '\\n', '\\u00e9', '\\ud83d\\ude00', '}', ']', ',', ':', '{', '[', ' ', '\\t', 'data', 'record'];
const NUMBERS = ['0', '-0', '1', '-12', '3.14', '1e10', '1E+2', '2.5e-3', '12345678901234567890', '0.1000000000000000055511151231257827', '-0.0'];

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
  const members = Array.from({ length: Math.floor(random() * 4) }, () => `${ws()}${jsonString()}${ws()}:${ws()}${jsonValue(depth)}${ws()}`);
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
  const top = [`"type":${pick(['"RECORD"', '"RECORD"', '"RECORD"', '"STATE"', '"R\\u0045CORD"', '1'])}`, `"record":{${record.map((m) => `${ws()}${m}${ws()}`).join(',')}}`];
  if (random() < 0.2) top.push(`"record":${jsonValue(1)}`);
  if (random() < 0.2) top.push(`"x":${jsonValue(1)}`);
  top.sort(() => random() - 0.5);
  return `${ws()}{${top.map((m) => `${ws()}${m}${ws()}`).join(',')}}${ws()}`;
}

const MUTATIONS = ['"', '\\', '{', '}', '[', ']', ',', ':', ' ', '0', '-', '.', 'e', '+', 'x', '\u0001', '\n', 'u', 'n', 't'];

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

function reference(line: string): { stream: string; namespace: string | undefined; data: unknown; emittedAt: number } | undefined {
  let message: { type?: unknown; record?: { stream?: unknown; namespace?: unknown; data?: unknown; emitted_at?: unknown } };
  try {
    message = JSON.parse(line) as typeof message;
  } catch {
    return undefined;
  }
  const record = message?.record;
  if (message?.type !== 'RECORD' || typeof record !== 'object' || record === null || Array.isArray(record)) return undefined;
  if (typeof record.data !== 'object' || record.data === null || Array.isArray(record.data) || typeof record.emitted_at !== 'number') return undefined;
  if (typeof record.stream !== 'string' || record.stream === '') return undefined;
  return { stream: record.stream, namespace: typeof record.namespace === 'string' ? record.namespace : undefined, data: record.data, emittedAt: record.emitted_at };
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

  it('declines deeply nested data without throwing', () => {
    const depth = 100_000;
    const line = `{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
    assert.equal(scanRecord(line), undefined);
  });
});
