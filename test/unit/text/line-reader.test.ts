import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { InputError } from '../../../src/errors.js';
import { LineSplitter, maxLineBytes, readLines } from '../../../src/text/line-reader.js';

async function linesOf(chunks: readonly Buffer[], limit = 1 << 20): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of Readable.from(chunks).pipe(new LineSplitter(limit))) lines.push(line as string);
  return lines;
}

async function refusal(chunks: readonly Buffer[], limit: number): Promise<InputError> {
  try {
    await linesOf(chunks, limit);
  } catch (err) {
    assert.ok(err instanceof InputError, String(err));
    return err;
  }
  assert.fail('expected the input to be refused');
}

describe('LineSplitter', () => {
  const text = Buffer.from('{"a":"é"}\n\n{"b":"東京😀"}\r\n  \n{"c":"\r\u2028"}\r\n{"last":true}');
  const expected = ['{"a":"é"}', '', '{"b":"東京😀"}', '  ', '{"c":"\r\u2028"}', '{"last":true}'];

  it('gives every line, blank ones included, without \\n or \\r\\n, and a last line without newline', async () => {
    assert.deepEqual(await linesOf([text]), expected);
    assert.deepEqual(await linesOf([Buffer.from('a\n')]), ['a']);
    assert.deepEqual(await linesOf([Buffer.from('\n')]), ['']);
    assert.deepEqual(await linesOf([]), []);
  });

  it('gives the same lines wherever chunks are cut, inside characters and between \\r and \\n too', async () => {
    for (let cut = 0; cut <= text.length; cut++) {
      assert.deepEqual(await linesOf([text.subarray(0, cut), text.subarray(cut)]), expected, `cut at ${cut}`);
    }
    assert.deepEqual(await linesOf([...text].map((byte) => Buffer.from([byte]))), expected);
  });

  it('refuses a line longer than the limit by number and exact size, also when it is the last', async () => {
    const long = Buffer.from(`ok\n${'x'.repeat(100)}\nafter\n`);
    const byByte = [...long].map((byte) => Buffer.from([byte]));
    for (const chunks of [[long], byByte]) {
      const error = await refusal(chunks, 99);
      assert.match(
        error.message,
        /^Input line 2: is 100 bytes long; an input line may have at most 99 bytes \(MAX_INPUT_LINE_BYTES/,
      );
    }
    assert.deepEqual(await linesOf([long], 100), ['ok', 'x'.repeat(100), 'after']);
    assert.match((await refusal([Buffer.from('a\nbbbb')], 3)).message, /^Input line 2: is 4 bytes long/);
    // Bytes, not characters: "é" is two.
    assert.match((await refusal([Buffer.from('éé\n')], 3)).message, /^Input line 1: is 4 bytes long/);
  });

  it('keeps nothing of an over-long line beyond the limit while counting its size', async () => {
    const splitter = new LineSplitter(1000);
    const chunk = Buffer.alloc(4096, 0x78);
    const seen: number[] = [];
    splitter.on('error', () => undefined);
    for (let i = 0; i < 8; i++) {
      splitter.write(chunk);
      seen.push(splitter.pendingLineBytes);
    }
    assert.deepEqual(seen, [4096, 8192, 12288, 16384, 20480, 24576, 28672, 32768]);
    const kept = (splitter as unknown as { pieces: Buffer[] }).pieces;
    assert.equal(kept.length, 0);
    const error = await new Promise<Error>((resolve) => {
      splitter.once('error', resolve);
      splitter.end(Buffer.from('xx\n'));
    });
    assert.match(error.message, /^Input line 1: is 32770 bytes long/);
  });

  it('counts bytes read and the line still arriving', () => {
    const splitter = new LineSplitter(1 << 20);
    splitter.resume();
    splitter.write(Buffer.from('{"a":1}\n{"b":'));
    assert.deepEqual([splitter.bytesRead, splitter.pendingLineNumber, splitter.pendingLineBytes], [13, 2, 5]);
    splitter.write(Buffer.from('2}\n'));
    assert.deepEqual([splitter.bytesRead, splitter.pendingLineNumber, splitter.pendingLineBytes], [16, 3, 0]);
  });

  it('takes time linear in the length of a line', () => {
    // Split2 rescanned the pending text on every chunk: four times the line took sixteen times as long.
    const cpuMs = (megabytes: number): number => {
      const splitter = new LineSplitter(1 << 30);
      let length = 0;
      splitter.on('data', (line: string) => (length += line.length));
      const chunk = Buffer.alloc(65_536, 0x61);
      const started = process.cpuUsage();
      for (let i = 0; i < megabytes * 16; i++) splitter.write(chunk);
      splitter.write(Buffer.from('\n'));
      const used = process.cpuUsage(started);
      assert.equal(length, megabytes * 1_048_576);
      return (used.user + used.system) / 1000;
    };
    const best = (megabytes: number): number => Math.min(cpuMs(megabytes), cpuMs(megabytes), cpuMs(megabytes));
    const small = best(8);
    const large = best(32);
    assert.ok(large < 8 * small + 20, `8 MB: ${small.toFixed(1)} ms, 32 MB: ${large.toFixed(1)} ms of CPU`);
  });
});

describe('readLines', () => {
  it('passes errors of the UTF-8 check on, naming the line', async () => {
    const lines = readLines(Readable.from([Buffer.from('{"a":1}\n'), Buffer.from([0x7b, 0xff, 0x7d, 0x0a])]));
    const error = await new Promise<Error>((resolve) => lines.on('error', resolve).resume());
    assert.match(error.message, /^Input line 2: is not valid UTF-8/);
  });

  it('passes errors of the input itself on', async () => {
    const input = new Readable({ read: () => undefined });
    const lines = readLines(input);
    const error = new Promise<Error>((resolve) => lines.on('error', resolve));
    input.destroy(new Error('stdin broke'));
    assert.equal((await error).message, 'stdin broke');
  });
});

describe('maxLineBytes', () => {
  it('is MAX_INPUT_LINE_BYTES when that is a positive whole number', () => {
    assert.equal(maxLineBytes('1048576'), 1_048_576);
  });

  it('is otherwise the MQTT payload limit or an eighth of the heap, whichever is smaller', () => {
    const fallback = maxLineBytes(undefined);
    assert.ok(fallback > 0 && fallback <= 268_435_455, String(fallback));
    for (const value of ['', 'lots', '0', '-5', '1.5']) assert.equal(maxLineBytes(value), fallback, value);
  });
});
