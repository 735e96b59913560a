import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { InputError } from '../../../src/errors.js';
import { Utf8Guard } from '../../../src/text/utf8.js';

function through(chunks: Buffer[]): Promise<Buffer> {
  return buffer(Readable.from(chunks).pipe(new Utf8Guard()));
}

async function rejection(chunks: Buffer[]): Promise<InputError> {
  try {
    await through(chunks);
  } catch (err) {
    assert.ok(err instanceof InputError, String(err));
    return err;
  }
  assert.fail('expected the input to be refused');
}

describe('Utf8Guard', () => {
  const text = Buffer.from('{"a":"é"}\n{"b":"東京😀"}\r\n{"c":"\u2028"}');

  it('passes valid UTF-8 through unchanged, wherever chunks split characters', async () => {
    for (let cut = 0; cut <= text.length; cut++) {
      assert.deepEqual(await through([text.subarray(0, cut), text.subarray(cut)]), text);
    }
    const bytes = [...text].map((byte) => Buffer.from([byte]));
    assert.deepEqual(await through(bytes), text);
  });

  it('names the line of the first invalid byte, across chunks', async () => {
    const bad = Buffer.concat([text, Buffer.from('\n{"d":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]);
    for (let cut = 0; cut <= bad.length; cut += 3) {
      const error = await rejection([bad.subarray(0, cut), bad.subarray(cut)]);
      assert.match(error.message, /^Input line 4: is not valid UTF-8/);
    }
    assert.match((await rejection([Buffer.from([0xff])])).message, /^Input line 1:/);
    assert.match(
      (await rejection([Buffer.from('ok\n\xed\xa0\x80\n', 'latin1')])).message,
      /^Input line 2:/,
      'encoded surrogates are invalid',
    );
  });

  it('refuses input that ends inside a character', async () => {
    const error = await rejection([Buffer.from('{"a":1}\n"'), Buffer.from([0xe6, 0x9d])]);
    assert.match(error.message, /^Input line 2: is not valid UTF-8 \(it ends inside a character\)/);
  });
});

interface Outcome {
  /** The chunks passed on, in order. */
  readonly passed: Buffer[];
  readonly error: InputError | undefined;
}

/**
 * Feeds chunks to the guard's transform and flush directly, without stream scheduling, so that thousands of ways of
 * cutting the same bytes can be checked in a few milliseconds. The stream tests above cover the wiring.
 */
function feed(chunks: readonly Buffer[]): Outcome {
  const guard = new Utf8Guard();
  const passed: Buffer[] = [];
  let error: Error | null | undefined;
  const done = (err?: Error | null, data?: Buffer): void => {
    error ??= err;
    if (data !== undefined) passed.push(data);
  };
  for (const chunk of chunks) {
    guard._transform(chunk, 'binary', done);
    if (error) break;
  }
  if (!error) guard._flush(done);
  if (error && !(error instanceof InputError)) assert.fail(String(error));
  return { passed, error: error ?? undefined };
}

/** Every way of cutting `bytes` into consecutive non-empty chunks (2^(n-1) of them). */
function* everySplit(bytes: Buffer): Generator<Buffer[]> {
  const cuts = bytes.length - 1;
  for (let mask = 0; mask < 2 ** cuts; mask++) {
    const chunks: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < cuts; i++) {
      if (mask & (2 ** i)) {
        chunks.push(bytes.subarray(start, i + 1));
        start = i + 1;
      }
    }
    chunks.push(bytes.subarray(start));
    yield chunks;
  }
}

/** Every way of cutting `bytes` into at most three chunks, the first or last possibly empty. */
function* twoCuts(bytes: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) yield [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
  }
}

const hex = (bytes: Buffer): string => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
const describeSplit = (chunks: readonly Buffer[]): string => chunks.map(hex).join(' | ');

describe('Utf8Guard at chunk boundaries', () => {
  // The smallest and largest code point of each encoded length, and the neighbours of the surrogate range.
  const characters: ReadonlyArray<readonly [string, number]> = [
    ['\u0080', 2],
    ['é', 2],
    ['\u07ff', 2],
    ['\u0800', 3],
    ['東', 3],
    ['\ud7ff', 3],
    ['\ue000', 3],
    ['\uffff', 3],
    ['\u{10000}', 4],
    ['😀', 4],
    ['\u{10ffff}', 4],
  ];

  it('passes every multi-byte character through under every split of its bytes, one byte per chunk included', () => {
    for (const [character, length] of characters) {
      assert.equal(Buffer.byteLength(character), length);
      // Two of the same character around a newline, so that a split can also fall just before or after a line end.
      const text = Buffer.from(`a${character}\n${character}`);
      for (const chunks of everySplit(text)) {
        const { passed, error } = feed(chunks);
        // Each chunk passed on ends on a character boundary: it is valid UTF-8 by itself.
        const ok = error === undefined && Buffer.concat(passed).equals(text) && passed.every((piece) => isUtf8(piece));
        // The message is built only on failure: there are thousands of splits.
        if (!ok)
          assert.fail(`${describeSplit(chunks)}: ${error?.message ?? `passed on ${passed.map(hex).join(' | ')}`}`);
      }
    }
  });

  it('holds back a chunk that ends right after a lead byte, and empty chunks change nothing', () => {
    for (const [character, length] of characters) {
      const bytes = Buffer.from(character);
      for (let kept = 1; kept < length; kept++) {
        const { passed, error } = feed([
          Buffer.from('x'),
          bytes.subarray(0, kept),
          Buffer.alloc(0),
          bytes.subarray(kept),
          Buffer.alloc(0),
        ]);
        assert.equal(error, undefined);
        assert.deepEqual(passed.map(hex), ['78', '', '', hex(bytes), ''], `${hex(bytes)} cut after ${kept}`);
      }
    }
  });

  // Sequences isUtf8 must refuse however they arrive: a lead byte without its continuation, stray continuations,
  // overlong forms of every length, UTF-16 surrogates encoded as UTF-8, code points above U+10FFFF, and bytes that
  // never occur in UTF-8. The third element counts the bytes before the first invalid one.
  const invalid: ReadonlyArray<readonly [string, number[], number?]> = [
    ['2-byte lead, then ASCII', [0xc3, 0x28]],
    ['3-byte lead, one continuation, then ASCII', [0xe6, 0x9d, 0x28]],
    ['4-byte lead, two continuations, then ASCII', [0xf0, 0x9f, 0x98, 0x28]],
    ['lead byte followed by another lead', [0xe6, 0xc3, 0xa9]],
    ['stray continuation', [0x80]],
    ['three stray continuations', [0xbf, 0xbf, 0xbf]],
    ['a fourth continuation after a 4-byte character', [0xf0, 0x9f, 0x98, 0x80, 0x80], 4],
    ['overlong NUL, 2 bytes', [0xc0, 0x80]],
    ['overlong U+007F, 2 bytes', [0xc1, 0xbf]],
    ['overlong NUL, 3 bytes', [0xe0, 0x80, 0x80]],
    ['overlong U+07FF, 3 bytes', [0xe0, 0x9f, 0xbf]],
    ['overlong NUL, 4 bytes', [0xf0, 0x80, 0x80, 0x80]],
    ['overlong U+FFFF, 4 bytes', [0xf0, 0x8f, 0xbf, 0xbf]],
    ['high surrogate U+D800', [0xed, 0xa0, 0x80]],
    ['low surrogate U+DFFF', [0xed, 0xbf, 0xbf]],
    ['surrogate pair encoded separately', [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]],
    ['U+110000', [0xf4, 0x90, 0x80, 0x80]],
    ['lead byte F5', [0xf5, 0x80, 0x80, 0x80]],
    ['5-byte form', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ['byte FE', [0xfe]],
    ['byte FF', [0xff]],
  ];

  it('refuses each invalid sequence on the line it is on, however the chunks cut it, and passes none of it on', () => {
    for (const [name, sequence, validPrefix = 0] of invalid) {
      const head = Buffer.from('{"a":1}\n{"b":"é');
      const input = Buffer.concat([head, Buffer.from(sequence), Buffer.from('"}\nok\n')]);
      for (const chunks of twoCuts(input)) {
        const { passed, error } = feed(chunks);
        const out = Buffer.concat(passed);
        const ok =
          /^Input line 2: is not valid UTF-8;/.test(error?.message ?? '') &&
          out.length <= head.length + validPrefix &&
          out.equals(input.subarray(0, out.length));
        if (!ok)
          assert.fail(`${name}: ${describeSplit(chunks)}: ${error?.message ?? 'accepted'}, passed on ${hex(out)}`);
      }
      const { error } = feed([...input].map((byte) => Buffer.from([byte])));
      assert.match(error?.message ?? '', /^Input line 2:/, `${name}: one byte per chunk`);
    }
  });

  it('names the right line when the invalid byte is the first or last of a chunk, or next to a line end', () => {
    const cases: ReadonlyArray<readonly [string, readonly Buffer[], number]> = [
      ['first byte of a chunk after a line end', [Buffer.from('a\nb\n'), Buffer.from([0xff]), Buffer.from('\n')], 3],
      ['first byte of a chunk that starts with the line end', [Buffer.from('a\nb'), Buffer.from([0x0a, 0xff])], 3],
      ['last byte of a chunk, before the line end', [Buffer.from([0x61, 0x0a, 0xc3]), Buffer.from('\nc\n')], 2],
      ['last byte of a chunk that ends a line', [Buffer.from([0x61, 0x0a, 0x80, 0x0a]), Buffer.from('c\n')], 2],
      [
        'continuation missing at the very start of the next chunk',
        [Buffer.from([0x0a, 0x0a, 0xe6, 0x9d]), Buffer.from('\n')],
        3,
      ],
      ['on the first line, first byte', [Buffer.from([0xc0]), Buffer.from([0x80, 0x0a])], 1],
      ['two invalid lines: the first is named', [Buffer.from('a\n'), Buffer.from([0xff, 0x0a, 0x62, 0x0a, 0xff])], 2],
      [
        'after many chunks of whole lines',
        [...Array.from({ length: 50 }, () => Buffer.from('é\n')), Buffer.from([0xed, 0xa0]), Buffer.from([0x80])],
        51,
      ],
    ];
    for (const [name, chunks, line] of cases) {
      const { error } = feed(chunks);
      assert.match(error?.message ?? '', new RegExp(`^Input line ${line}: `), name);
    }
  });

  it('refuses input that ends inside a character on the line where it ends, however the last character was cut', () => {
    for (const [character, length] of characters) {
      const whole = Buffer.from(character);
      for (let kept = 1; kept < length; kept++) {
        const input = Buffer.concat([Buffer.from('a\n\nb'), whole.subarray(0, kept)]);
        for (const chunks of twoCuts(input)) {
          const { passed, error } = feed(chunks);
          assert.match(
            error?.message ?? '',
            /^Input line 3: is not valid UTF-8 \(it ends inside a character\)/,
            describeSplit(chunks),
          );
          assert.deepEqual(
            Buffer.concat(passed),
            Buffer.from('a\n\nb'),
            'everything but the cut character is passed on',
          );
        }
      }
    }
  });

  it('calls bytes at the end of input that no continuation could complete invalid, not a character cut short', () => {
    const invalid = [
      [0xff],
      [0xc0],
      [0xc1],
      [0xf8, 0x88],
      [0xed, 0xa0],
      [0xe0, 0x80],
      [0xf0, 0x80],
      [0xf4, 0x90],
      [0xf5],
    ];
    for (const bytes of invalid) {
      const { error } = feed([Buffer.from('a\n'), Buffer.from(bytes)]);
      assert.match(
        error?.message ?? '',
        /^Input line 2: is not valid UTF-8; the Airbyte protocol requires UTF-8 JSON/,
        hex(Buffer.from(bytes)),
      );
    }
    // Prefixes of real characters whose second byte has a narrower range than usual: still a character cut short.
    for (const bytes of [[0xe0, 0xa0], [0xed, 0x9f], [0xf0, 0x90], [0xf4, 0x8f], [0xf4], [0xe0], [0xc2]]) {
      const { error } = feed([Buffer.from('a\n'), Buffer.from(bytes)]);
      assert.match(
        error?.message ?? '',
        /^Input line 2: is not valid UTF-8 \(it ends inside a character\)/,
        hex(Buffer.from(bytes)),
      );
    }
  });

  it('refuses stray continuation bytes that make up a whole chunk at once, rather than waiting for a lead byte', () => {
    // Nothing earlier can complete them, so they are invalid now, not a character the next chunk finishes.
    for (const stray of [[0x80], [0x80, 0xbf], [0xbf, 0xbf, 0xbf]]) {
      for (const chunks of [[Buffer.from('a\n'), Buffer.from(stray)], [Buffer.from(stray)]]) {
        const { error } = feed(chunks);
        assert.match(
          error?.message ?? '',
          new RegExp(`^Input line ${chunks.length}: is not valid UTF-8;`),
          hex(Buffer.from(stray)),
        );
      }
    }
  });

  it('does the same through the stream as through its transform', async () => {
    const input = Buffer.concat([Buffer.from('x\n東'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\n')]);
    for (let cut = 0; cut <= input.length; cut++) {
      const error = await rejection([input.subarray(0, cut), input.subarray(cut)]);
      assert.equal(error.message, feed([input.subarray(0, cut), input.subarray(cut)]).error?.message);
    }
  });
});
