/**
 * The scanner validates JSON text against the grammar JSON.parse accepts, and says where each value ends. Both of its
 * users (the RECORD fast path and the raw-JSON helpers) cut the input apart at the positions it reports, so a value it
 * accepts that JSON.parse refuses, or an end one character off, would publish or echo the wrong bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { INVALID, JsonScanner } from '../../../src/text/json-scanner.js';
import { mulberry32 } from '../../support/random.js';

/** Whether the scanner takes the whole of `text` as one JSON value between optional whitespace. */
function accepts(text: string): boolean {
  const scanner = new JsonScanner(text);
  try {
    scanner.ws();
    scanner.value();
    scanner.ws();
  } catch (err) {
    if (err === INVALID) return false;
    throw err;
  }
  return scanner.pos === text.length;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const isInvalid = (err: unknown): boolean => err === INVALID;

type Scan = (scanner: JsonScanner) => unknown;
const scanValue: Scan = (s) => s.value();
const scanNumber: Scan = (s) => s.number();
const scanDigits: Scan = (s) => s.digits();
const scanString: Scan = (s) => s.string();
const scanObject: Scan = (s) => s.object(undefined);
const skipWhitespace: Scan = (s) => s.ws();

/** Where `scan` left the scanner on `text`, which it must have completed. */
function endOf(text: string, scan: Scan = scanValue): number {
  const scanner = new JsonScanner(text);
  scan(scanner);
  return scanner.pos;
}

/** Where `scan` gave up on `text`, which it must have refused with INVALID (and nothing else). */
function failureAt(text: string, scan: Scan = scanValue): number {
  const scanner = new JsonScanner(text);
  assert.throws(() => scan(scanner), isInvalid, `${JSON.stringify(text)} must be refused as INVALID`);
  return scanner.pos;
}

/** Agrees with JSON.parse on `text`, and says which way. */
function assertAgrees(text: string): boolean {
  const expected = parses(text);
  assert.equal(accepts(text), expected, `${JSON.stringify(text)}: JSON.parse ${expected ? 'accepts' : 'refuses'} it`);
  return expected;
}

describe('JsonScanner: values', () => {
  it('takes each kind of value and stops just after it, leaving what follows to the caller', () => {
    for (const value of [
      '{}',
      '[]',
      '{"a":1}',
      '[1,"x",true,false,null,{},[]]',
      '""',
      '"text"',
      'true',
      'false',
      'null',
      '0',
      '-12.5e+3',
    ]) {
      for (const after of ['', ' ', ',', ']', '}', ' x', '1']) {
        if (after === '1' && /^-?\d/.test(value)) continue; // the digit would continue the number
        assert.equal(endOf(value + after), value.length, `${value} followed by ${JSON.stringify(after)}`);
      }
      assert.ok(assertAgrees(value));
    }
  });

  it('skips exactly the four JSON whitespace characters', () => {
    const scanner = new JsonScanner(' \t\r\n \n1');
    scanner.ws();
    assert.equal(scanner.pos, 6);
    for (const other of ['\f', '\v', '\u00a0', '\u2028', '\ufeff', '\u3000']) {
      const text = `${other}1`;
      assert.equal(endOf(text, skipWhitespace), 0, `${JSON.stringify(other)} is not JSON whitespace`);
      assert.equal(assertAgrees(text), false);
      assert.equal(assertAgrees(`[1,${other}2]`), false);
    }
    assert.ok(assertAgrees(' \t{ \r\n"a" \t:\n[ 1 ,\t2 ] , "b" : { } ,"c":[ ]}\n'));
  });

  it('reads the literals whole and only in lower case', () => {
    for (const literal of ['true', 'false', 'null']) {
      assert.equal(endOf(literal), literal.length);
      assert.equal(endOf(`${literal}x`), literal.length, 'the scanner stops after the literal');
      assert.equal(assertAgrees(`${literal}x`), false, 'and the caller refuses what follows');
    }
    for (const wrong of ['tru', 'fals', 'nul', 't', 'True', 'FALSE', 'Null', 'nil', 'undefined', 'trUe']) {
      assert.equal(assertAgrees(wrong), false);
    }
    const partial = new JsonScanner('trux');
    assert.throws(() => partial.literal('true'), isInvalid);
    assert.equal(partial.pos, 0, 'a literal is taken whole or not at all');
    const inside = new JsonScanner('[true]x');
    inside.pos = 1;
    inside.literal('true');
    assert.equal(inside.pos, 5);
  });

  it('refuses an empty text or one holding only whitespace', () => {
    assert.equal(assertAgrees(''), false);
    assert.equal(assertAgrees(' \n'), false);
  });
});

describe('JsonScanner: numbers', () => {
  const valid = [
    '0',
    '-0',
    '7',
    '-7',
    '10',
    '1234567890',
    '12345678901234567890123456789',
    '0.5',
    '-0.0',
    '3.14159',
    '0.1000000000000000055511151231257827',
    '1e5',
    '1E5',
    '1e+5',
    '1e-5',
    '1E+05',
    '0e0',
    '-0E-0',
    '2.5e-3',
    '1e400',
    '-1.7976931348623157e308',
    '5e-324',
  ];

  it('takes every form of JSON number and ends it after its last digit', () => {
    for (const number of valid) {
      assert.ok(assertAgrees(number), number);
      assert.equal(endOf(`${number},`, scanNumber), number.length, number);
      assert.equal(endOf(`[${number}]`), number.length + 2);
    }
  });

  it('reads a leading zero as the whole integer part', () => {
    assert.equal(endOf('0123', scanNumber), 1);
    assert.equal(endOf('-0123', scanNumber), 2);
    for (const text of ['01', '-01', '00', '00.5', '[01]']) assert.equal(assertAgrees(text), false, text);
  });

  it('refuses what is not a JSON number, at the character that breaks it', () => {
    // [text, offset of the character the scanner stops at]
    const cases: [string, number][] = [
      ['-', 1],
      ['-a', 1],
      ['--1', 1],
      ['+1', 0],
      ['.5', 0],
      ['-.5', 1],
      ['1.', 2],
      ['1.e5', 2],
      ['1.x', 2],
      ['1e', 2],
      ['1E', 2],
      ['1e+', 3],
      ['1e-x', 3],
      ['1e+-1', 3],
      ['x', 0],
      ['Infinity', 0],
      ['NaN', 0],
      ['-Infinity', 1],
      ['\u0661', 0], // ARABIC-INDIC DIGIT ONE
      ['\uff11', 0], // FULLWIDTH DIGIT ONE
    ];
    for (const [text, offset] of cases) {
      assert.equal(failureAt(text, scanNumber), offset, text);
      assert.equal(assertAgrees(text), false, text);
    }
    for (const text of ['0x1F', '1_000', '1.5.5', '1e5e5', '1 2', '1,2']) assert.equal(assertAgrees(text), false, text);
  });

  it('requires at least one digit where digits are due', () => {
    assert.equal(endOf('123x', scanDigits), 3);
    assert.equal(failureAt('x1', scanDigits), 0);
    assert.equal(failureAt('', scanDigits), 0);
  });
});

describe('JsonScanner: strings', () => {
  it('takes plain strings, whatever their characters, and says they hold no escapes', () => {
    for (const content of ['', 'a', 'hello world', 'é東京', '😀', '\u2028\u2029', '\u007f\u0080', "'", '/', '{[,:]}']) {
      const text = `"${content}"`;
      const scanner = new JsonScanner(`${text},`);
      assert.equal(scanner.string(), false, text);
      assert.equal(scanner.pos, text.length, text);
      scanner.pos = 0;
      assert.equal(scanner.stringValue(), content);
      assert.equal(scanner.pos, text.length);
      assert.ok(assertAgrees(text));
    }
  });

  it('decodes every escape as JSON.parse does, and says the string holds one', () => {
    const simple = ['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t'];
    const escapes = [...simple, '\\u0041', '\\u00e9', '\\u00E9', '\\uABCD'];
    for (const escape of escapes) {
      for (const text of [`"${escape}"`, `"x${escape}y"`, `"${escape}${escape}"`]) {
        const scanner = new JsonScanner(text);
        assert.equal(scanner.string(), true, text);
        assert.equal(scanner.pos, text.length, text);
        scanner.pos = 0;
        assert.equal(scanner.stringValue(), JSON.parse(text), text);
        assert.ok(assertAgrees(text));
      }
    }
  });

  it('decodes surrogate pairs, and lone surrogates too, as JSON.parse does', () => {
    const cases: [string, string][] = [
      ['"\\ud83d\\ude00"', '😀'],
      ['"\\uD83D\\uDE00"', '😀'],
      ['"a\\ud83d\\ude00b"', 'a😀b'],
      ['"\\ud800"', '\ud800'],
      ['"\\udc00"', '\udc00'],
      ['"\\ude00\\ud83d"', '\ude00\ud83d'],
      ['"\\ud83dx"', '\ud83dx'],
      ['"\ud800"', '\ud800'],
    ];
    for (const [text, value] of cases) {
      const scanner = new JsonScanner(text);
      assert.equal(scanner.stringValue(), value, text);
      assert.equal(scanner.pos, text.length, text);
      assert.equal(JSON.parse(text), value);
    }
  });

  it('refuses bad escapes, leaving the position at the opening quote', () => {
    const bad = ['\\x41', '\\u12', '\\u123', '\\u12G4', '\\uGGGG', '\\u{41}', '\\U0041', "\\'", '\\a', '\\0'];
    for (const escape of bad) {
      const text = `["ok", "a${escape}z"]`;
      assert.equal(failureAt(text), 7, text);
      assert.equal(failureAt(`"${escape}"`, scanString), 0, escape);
      assert.equal(assertAgrees(`"${escape}"`), false, escape);
    }
  });

  it('refuses raw control characters, and only those', () => {
    for (let code = 0; code < 0x20; code++) {
      const text = `"a${String.fromCharCode(code)}b"`;
      assert.equal(failureAt(text, scanString), 0, `U+${code.toString(16)}`);
      assert.equal(assertAgrees(text), false);
    }
    for (const code of [0x20, 0x7f, 0x85, 0xa0, 0x2028, 0xfeff, 0xfffe, 0xffff]) {
      assert.ok(assertAgrees(`"a${String.fromCharCode(code)}b"`), `U+${code.toString(16)}`);
    }
  });

  it('does not end a string at an escaped quote, only at one after an escaped backslash', () => {
    for (const text of ['"', '"abc', '"abc\\"', '"\\', '"\\u00', '"\\"\\"', '"a\\\\\\"']) {
      assert.equal(failureAt(text, scanString), 0, text);
      assert.equal(assertAgrees(text), false, text);
    }
    const cases: [string, string][] = [
      ['"abc\\\\"', 'abc\\'],
      ['"\\\\\\""', '\\"'],
      ['"\\"\\\\"', '"\\'],
      ['"\\\\\\\\"', '\\\\'],
    ];
    for (const [text, value] of cases) {
      const scanner = new JsonScanner(`${text}"x"`);
      assert.equal(scanner.stringValue(), value, text);
      assert.equal(scanner.pos, text.length, `${text} ends at its own closing quote`);
    }
  });

  it('agrees with JSON.parse on every cut of an escape-laden string, as a chunk boundary would cut it', () => {
    const whole = '"a\\"b\\\\c\\/\\u00e9\\uD83D\\uDE00\\n\\"\\\\"';
    assert.ok(accepts(whole));
    for (let cut = 1; cut < whole.length; cut++) {
      const head = whole.slice(0, cut);
      assert.equal(failureAt(head, scanString), 0, `${head} is not a whole string`);
      const closed = `${head}"`;
      if (assertAgrees(closed)) {
        const scanner = new JsonScanner(closed);
        assert.equal(scanner.stringValue(), JSON.parse(closed), closed);
        assert.equal(scanner.pos, closed.length);
      }
    }
  });
});

describe('JsonScanner: containers', () => {
  it('takes nested objects and arrays and stops after the outermost', () => {
    for (const text of [
      '[[]]',
      '[{}]',
      '{"a":[]}',
      '{"a":{"b":{"c":[1,[2,[3,{"d":null}]]]}}}',
      '[{"a":1},{"b":[true,false]},"s",0,[[],{}]]',
      '{"":0,"a":"}","b":"]","c":"\\"}"}',
    ]) {
      assert.ok(assertAgrees(text), text);
      assert.equal(endOf(`${text}]}`), text.length, text);
    }
  });

  it('follows nesting of any depth, as JSON.parse does', () => {
    const depth = 100_000;
    const arrays = '['.repeat(depth) + ']'.repeat(depth);
    const objects = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    const mixed = '[{"a":'.repeat(depth) + '[]' + '}]'.repeat(depth);
    for (const text of [arrays, objects, mixed]) {
      assert.ok(assertAgrees(text));
      assert.equal(endOf(text), text.length);
      // One bracket short: refused one past the end, where the missing bracket was due.
      assert.equal(failureAt(text.slice(0, -1)), text.length);
      assert.equal(endOf(`${text}]`), text.length, 'one bracket too many is left to the caller');
      assert.equal(assertAgrees(`${text}]`), false);
    }
    const swapped = '['.repeat(depth) + '}' + ']'.repeat(depth - 1);
    assert.equal(failureAt(swapped), depth);
  });

  it('scans value after value with one scanner, whatever the nesting of the one before', () => {
    const first = '[[[{"a":[{"b":{}}]}]]]';
    const second = '{"c":{"d":[[1]]}}';
    const scanner = new JsonScanner(`${first} ${second} "e"`);
    scanner.value();
    assert.equal(scanner.pos, first.length);
    scanner.ws();
    scanner.value();
    assert.equal(scanner.pos, first.length + 1 + second.length);
    scanner.ws();
    scanner.value();
    assert.equal(scanner.pos, scanner.text.length);
  });

  it('refuses malformed containers, at the character that breaks them', () => {
    // The position is left at the offending character, or just past it where a separator or closing bracket was
    // due and has been read; a string is refused from its opening quote.
    const cases: [string, number][] = [
      ['[', 1],
      ['{', 1],
      ['[1', 3],
      ['[1,', 3],
      ['[1,]', 3],
      ['[,1]', 1],
      ['[1 2]', 4],
      ['[1,,2]', 3],
      ['[}', 1],
      ['[1}', 3],
      ['[[1]}', 5],
      ['{]', 1],
      ['{"a":1]', 7],
      ['{"a":1,}', 7],
      ['{,"a":1}', 1],
      ['{"a"}', 4],
      ['{"a" 1}', 5],
      ['{"a"::1}', 5],
      ['{"a":}', 5],
      ['{"a":1 "b":2}', 8],
      ['{"a":1,"b"}', 10],
      ['{a:1}', 1],
      ["{'a':1}", 1],
      ['{1:2}', 1],
      ['{"a":1,2}', 7],
      ['{"a":[1,{"b":"\\x"}]}', 13],
      [']', 0],
      ['}', 0],
      [':', 0],
      [',', 0],
    ];
    for (const [text, offset] of cases) {
      assert.equal(failureAt(text), offset, text);
      assert.equal(assertAgrees(text), false, text);
    }
  });
});

describe('JsonScanner.object', () => {
  /** Every key `object` offers for `text`, with the value each member's callback saw, letting the scanner take it. */
  function members(text: string): [string, string][] {
    const scanner = new JsonScanner(text);
    const seen: [string, string][] = [];
    scanner.object((key) => {
      seen.push([key, text.charAt(scanner.pos)]);
      return false;
    });
    return seen;
  }

  it('offers each key decoded, in order, duplicates included, at its value', () => {
    assert.deepEqual(members('{ "a" : 1 , "b\\u0063" : "x", "\\"" :[], "a":{}, "😀":null, "":true }'), [
      ['a', '1'],
      ['bc', '"'],
      ['"', '['],
      ['a', '{'],
      ['😀', 'n'],
      ['', 't'],
    ]);
    assert.deepEqual(members('{}'), []);
    assert.deepEqual(members('{ \n }'), []);
  });

  it('validates a value the callback leaves, and uses the end of one it takes', () => {
    const leaveAll: Scan = (s) => s.object(() => false);
    assert.equal(failureAt('{"a":[1,}', leaveAll), 8);
    const text = '{"a":{"x":[1,2]},"b":"s"} tail';
    const scanner = new JsonScanner(text);
    const values: string[] = [];
    scanner.object((key) => {
      if (key !== 'a') return false;
      const start = scanner.pos;
      scanner.object(undefined);
      values.push(text.slice(start, scanner.pos));
      return true;
    });
    assert.deepEqual(values, ['{"x":[1,2]}']);
    assert.equal(scanner.pos, text.indexOf(' tail'), 'the object ends after its closing brace');
  });

  it('validates without decoding when no callback is given', () => {
    const text = '{"a\\u0062":[{"c":1}], "d" : "e"}x';
    assert.equal(endOf(text, scanObject), text.length - 1);
    for (const bad of ['{"a" 1}', '{"a":1,}', '{"a":1 "b":2}', '{"a":tru}', '{"\\q":1}', '{"a":1']) {
      failureAt(bad, scanObject);
    }
  });
});

describe('JsonScanner.expect', () => {
  it('advances past the character expected, and stays put on any other', () => {
    const scanner = new JsonScanner(':,');
    scanner.expect(0x3a);
    assert.equal(scanner.pos, 1);
    assert.throws(() => scanner.expect(0x3a), isInvalid);
    assert.equal(scanner.pos, 1);
    assert.throws(() => new JsonScanner('').expect(0x3a), isInvalid);
  });
});

describe('JsonScanner against JSON.parse', () => {
  it('accepts exactly what JSON.parse accepts, on generated and mutated texts', () => {
    const random = mulberry32(2_025_11_22);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const space = (): string => pick(['', '', '', ' ', '\n', '\t ', '\r\n']);
    const scalars = ['0', '-1', '2.5', '1e3', '-0.0E-1', '12345678901234567890', 'true', 'false', 'null', '""'];
    const strings = ['"a"', '"\\n"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\\\"', '"\\""', '"é😀"', '"}"', '"]"'];
    const value = (depth: number): string => {
      const roll = random();
      if (depth > 4 || roll < 0.4) return pick([...scalars, ...strings]);
      const count = Math.floor(random() * 4);
      const items = Array.from({ length: count }, () => value(depth + 1));
      if (roll < 0.7) return `[${space()}${items.map((item) => item + space()).join(`,${space()}`)}]`;
      const entries = items.map((item) => `${pick(strings)}${space()}:${space()}${item}${space()}`);
      return `{${space()}${entries.join(`,${space()}`)}}`;
    };
    const noise = ['', ',', ':', '"', '\\', '{', '}', '[', ']', '0', '-', '.', 'e', 'u', ' ', '\u0001', 'x'];
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const text = space() + value(0) + space();
      assert.ok(assertAgrees(text), text);
      accepted++;
      const at = Math.floor(random() * (text.length + 1));
      const cut = Math.floor(random() * 3);
      const mutated = text.slice(0, at) + pick(noise) + text.slice(at + cut);
      if (assertAgrees(mutated)) accepted++;
      else refused++;
    }
    assert.ok(refused > 1000, `the mutations must exercise refusal (${refused} refused, ${accepted} accepted)`);
  });
});
