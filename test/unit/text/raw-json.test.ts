/**
 * State objects, record data and metadata travel as the exact text the source wrote: JSON.parse would round big
 * integers and long decimals. These helpers find a member's value in that text and set one without re-serialising,
 * so what they return must slice exactly the value JSON.parse would read there, and leave every other byte alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findPath, setMember, type Span } from '../../../src/text/raw-json.js';
import { mulberry32 } from '../../support/random.js';

/** The text of the value at `path`, which must be there. */
function valueText(text: string, path: readonly string[]): string {
  const span = findPath(text, path);
  assert.ok(span, `${JSON.stringify(path)} must be found in ${text}`);
  return text.slice(span.start, span.end);
}

/** What JSON.parse reads at `path`, or undefined where it finds no object member. */
function parsedAt(text: string, path: readonly string[]): unknown {
  let value: unknown = JSON.parse(text);
  for (const key of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function spanOf(text: string, path: readonly string[]): Span {
  const span = findPath(text, path);
  assert.ok(span, `${JSON.stringify(path)} must be found in ${text}`);
  return span;
}

describe('findPath', () => {
  it('follows a path of keys down nested objects to the exact text of the value', () => {
    const text = '{"a":{"b":{"c":[1, 2],"d":"x y"},"e":null},"f":true}';
    assert.equal(valueText(text, ['a', 'b', 'c']), '[1, 2]');
    assert.equal(valueText(text, ['a', 'b', 'd']), '"x y"', 'a string keeps its quotes');
    assert.equal(valueText(text, ['a', 'b']), '{"c":[1, 2],"d":"x y"}');
    assert.equal(valueText(text, ['a', 'e']), 'null');
    assert.equal(valueText(text, ['f']), 'true');
  });

  it('leaves the whitespace around a value out of its span', () => {
    const text = ' \n{ "a" :\t{ "b" :  -1.5e3 \r\n} , "c" : [ ] }\n';
    assert.equal(valueText(text, ['a', 'b']), '-1.5e3');
    assert.equal(valueText(text, ['a']), '{ "b" :  -1.5e3 \r\n}');
    assert.equal(valueText(text, ['c']), '[ ]');
  });

  it('takes the empty path as the whole text from its first non-blank character', () => {
    assert.deepEqual(findPath('{"a":1}', []), { start: 0, end: 7 });
    assert.deepEqual(findPath('  [1]', []), { start: 2, end: 5 });
  });

  it('keeps big integers and long decimals exactly as written', () => {
    const big = '123456789012345678901234567890';
    const long = '0.1000000000000000055511151231257827';
    const text = `{"n":${big},"d":${long},"e":1E+400,"z":-0.0,"s":{"n":${big}}}`;
    assert.equal(valueText(text, ['n']), big);
    assert.notEqual(String((JSON.parse(text) as { n: number }).n), big, 'JSON.parse would round it');
    assert.equal(valueText(text, ['d']), long);
    assert.equal(valueText(text, ['e']), '1E+400');
    assert.equal(valueText(text, ['z']), '-0.0');
    assert.equal(valueText(text, ['s', 'n']), big);
  });

  it('matches keys by their decoded value, whatever escapes spell them', () => {
    const text = '{"a\\"b":1,"\\u00e9":2,"\\ud83d\\ude00":3,"a\\\\b":4,"\\/":5,"t\\tab":6,"":7,"\\u0041":8}';
    assert.equal(valueText(text, ['a"b']), '1');
    assert.equal(valueText(text, ['é']), '2');
    assert.equal(valueText(text, ['😀']), '3');
    assert.equal(valueText(text, ['a\\b']), '4');
    assert.equal(valueText(text, ['/']), '5');
    assert.equal(valueText(text, ['t\tab']), '6');
    assert.equal(valueText(text, ['']), '7');
    assert.equal(valueText(text, ['A']), '8');
    assert.equal(findPath(text, ['\\u0041']), undefined, 'the escaped spelling is not the key');
    assert.equal(findPath(text, ['a']), undefined);
  });

  it('matches keys exactly: no case folding, trimming or prefixes', () => {
    const text = '{"Key":1,"key ":2,"keys":3}';
    for (const key of ['key', 'KEY', 'Ke', ' key']) assert.equal(findPath(text, [key]), undefined, key);
    assert.equal(valueText(text, ['key ']), '2');
  });

  it('takes the last of duplicated keys, the one JSON.parse reads', () => {
    // The connector validates and reads a message with JSON.parse but publishes and echoes its text: if the two
    // disagreed on a duplicated key, it would key, route or checkpoint by one value and publish another.
    const cases: [string, string[], string | undefined][] = [
      ['{"a":1,"a":2}', ['a'], '2'],
      ['{"a":1,"b":0,"a":{"x":2}}', ['a'], '{"x":2}'],
      ['{"a":{"b":1},"a":{"c":2}}', ['a', 'b'], undefined],
      ['{"a":{"b":1},"a":{"b":2,"b":3}}', ['a', 'b'], '3'],
      ['{"a":{"b":1},"a":"flat"}', ['a', 'b'], undefined],
      ['{"a":"\\u0031","\\u0061":"last"}', ['a'], '"last"'],
    ];
    for (const [text, path, expected] of cases) {
      const span = findPath(text, path);
      assert.equal(span && text.slice(span.start, span.end), expected, text);
      const parsed = parsedAt(text, path);
      assert.deepEqual(span && JSON.parse(text.slice(span.start, span.end)), parsed, `${text}: as JSON.parse`);
    }
  });

  it('finds only members of the object on the path, not keys nested elsewhere or inside strings', () => {
    assert.equal(findPath('{"x":{"a":1}}', ['a']), undefined);
    assert.equal(valueText('{"x":{"a":1},"a":2}', ['a']), '2');
    assert.equal(valueText('{"x":[{"a":1}],"a":2}', ['a']), '2');
    assert.equal(findPath('{"x":"\\"a\\":1"}', ['a']), undefined);
    assert.equal(valueText('{"x":"{\\"a\\":1}","a":"}"}', ['a']), '"}"');
  });

  it('finds nothing where the path leaves objects or the member is missing', () => {
    const text = '{"a":[{"b":1}],"s":"{\\"b\\":1}","n":1,"o":{}}';
    for (const path of [['z'], ['a', 'b'], ['a', '0'], ['s', 'b'], ['n', 'b'], ['o', 'b'], ['a', 'b', 'c']]) {
      assert.equal(findPath(text, path), undefined, JSON.stringify(path));
    }
    for (const top of ['[{"a":1}]', '"a"', '1', 'null', '']) assert.equal(findPath(top, ['a']), undefined, top);
  });

  it('finds nothing in an object that is not valid JSON, even after the member', () => {
    for (const text of ['{"a":1,', '{"a":}', '{"a":1 "b":2}', '{"a":1,"b":}', '{"a":1,"b":[}', '{"a" 1}', '{a:1}']) {
      assert.equal(findPath(text, ['a']), undefined, text);
    }
    assert.equal(findPath('{"a":{"b":1,}}', ['a', 'b']), undefined);
  });

  it('slices what JSON.parse reads at every path of generated objects', () => {
    const random = mulberry32(7_919);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const space = (): string => pick(['', '', ' ', '\n', '\t']);
    const keys = ['a', 'b', 'c', 'é', 'a"b', '\\', ''];
    const scalars = ['0', '-1.25', '9007199254740993', '"s"', '"\\u00e9"', 'true', 'null', '[1,{"a":2}]', '"}"'];
    const object = (depth: number, paths: string[][], path: string[]): string => {
      const count = Math.floor(random() * 4);
      const members: string[] = [];
      for (let i = 0; i < count; i++) {
        const key = pick(keys);
        const here = [...path, key];
        paths.push(here);
        const value = depth < 3 && random() < 0.5 ? object(depth + 1, paths, here) : pick(scalars);
        members.push(`${space()}${JSON.stringify(key)}${space()}:${space()}${value}${space()}`);
      }
      return `{${members.join(',')}${space()}}`;
    };
    for (let i = 0; i < 500; i++) {
      const paths: string[][] = [];
      const text = space() + object(0, paths, []) + space();
      for (const path of [...paths, ['missing'], ['a', 'missing']]) {
        const span = findPath(text, path);
        const expected = parsedAt(text, path);
        if (expected === undefined) assert.equal(span, undefined, `${text} at ${JSON.stringify(path)}`);
        else {
          assert.ok(span, `${text} at ${JSON.stringify(path)}`);
          const slice = text.slice(span.start, span.end);
          assert.equal(slice, slice.trim(), 'no whitespace around');
          assert.deepEqual(JSON.parse(slice), expected, `${text} at ${JSON.stringify(path)}`);
        }
      }
    }
  });
});

describe('setMember', () => {
  it('replaces the value of an existing member and not one byte more', () => {
    const text = '{"a":1,"b":[1, 2],"c":"x"}';
    const result = setMember(text, spanOf(text, []), 'b', '{"z":true}');
    assert.equal(result, '{"a":1,"b":{"z":true},"c":"x"}');
    const b = spanOf(text, ['b']);
    assert.equal(result.slice(0, b.start), text.slice(0, b.start));
    assert.equal(result.slice(result.length - (text.length - b.end)), text.slice(b.end));
  });

  it('keeps the whitespace and key spelling around a replaced value', () => {
    const text = '{ "\\u0061" :\t1 ,\n "b" : 2 }';
    assert.equal(setMember(text, spanOf(text, []), 'a', '99'), '{ "\\u0061" :\t99 ,\n "b" : 2 }');
  });

  it('appends a member that is missing, before the closing brace', () => {
    const cases: [string, string][] = [
      ['{"a":1}', '{"a":1,"k":2}'],
      ['{"a":1 }', '{"a":1 ,"k":2}'],
      ['{"a":1\n}', '{"a":1\n,"k":2}'],
      ['{}', '{"k":2}'],
      ['{ }', '{ "k":2}'],
      ['{\n\t}', '{\n\t"k":2}'],
    ];
    for (const [text, expected] of cases) {
      const result = setMember(text, spanOf(text, []), 'k', '2');
      assert.equal(result, expected, text);
      assert.deepEqual(JSON.parse(result), { ...(JSON.parse(text) as object), k: 2 });
    }
  });

  it('writes a new key JSON-escaped', () => {
    const result = setMember('{}', { start: 0, end: 2 }, 'a"b\\c\n😀', '1');
    assert.equal(result, '{"a\\"b\\\\c\\n😀":1}');
    assert.deepEqual(JSON.parse(result), { 'a"b\\c\n😀': 1 });
  });

  it('sets a member of a nested object, leaving the text around that object as it was', () => {
    const head = '{"type":"STATE","state":';
    const tail = ',"big":123456789012345678901234567890,"s":"}"}';
    const text = `${head}{"x":1.10}${tail}`;
    const state = spanOf(text, ['state']);
    assert.equal(setMember(text, state, 'y', '{"n":2}'), `${head}{"x":1.10,"y":{"n":2}}${tail}`);
    assert.equal(setMember(text, state, 'x', '3'), `${head}{"x":3}${tail}`);
  });

  it('does not mistake a member of a nested object for one of the object given', () => {
    const text = '{"x":{"a":1},"y":"\\"a\\":1"}';
    assert.equal(setMember(text, spanOf(text, []), 'a', '2'), '{"x":{"a":1},"y":"\\"a\\":1","a":2}');
  });

  it('replaces the last of duplicated keys, so that JSON.parse reads the new value', () => {
    // Replacing the first would change the text and nothing any reader sees.
    const text = '{"a":1,"b":0,"a":2}';
    const result = setMember(text, spanOf(text, []), 'a', '3');
    assert.equal(result, '{"a":1,"b":0,"a":3}');
    assert.equal((JSON.parse(result) as { a: number }).a, 3);
  });

  it('sets member after member, each time on the span found again', () => {
    let text = '{"state":{"data":{"cursor":"2024-01-01"},"destinationStats":{}},"n":18446744073709551616}';
    for (const [key, value] of [
      ['recordCount', '5'],
      ['bytes', '100'],
      ['recordCount', '7'],
    ] as const) {
      text = setMember(text, spanOf(text, ['state', 'destinationStats']), key, value);
    }
    assert.equal(
      text,
      '{"state":{"data":{"cursor":"2024-01-01"},"destinationStats":{"recordCount":7,"bytes":100}},' +
        '"n":18446744073709551616}',
    );
  });
});
