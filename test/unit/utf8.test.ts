import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { InputError } from '../../src/errors.js';
import { Utf8Guard } from '../../src/protocol/utf8.js';

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
    assert.match((await rejection([Buffer.from('ok\n\xed\xa0\x80\n', 'latin1')])).message, /^Input line 2:/, 'encoded surrogates are invalid');
  });

  it('refuses input that ends inside a character', async () => {
    const error = await rejection([Buffer.from('{"a":1}\n"'), Buffer.from([0xe6, 0x9d])]);
    assert.match(error.message, /^Input line 2: is not valid UTF-8 \(it ends inside a character\)/);
  });
});
