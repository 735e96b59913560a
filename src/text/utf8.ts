/**
 * Input must be UTF-8 (JSON is). Decoding invalid bytes would quietly turn them into U+FFFD and publish corrupted
 * data, so the bytes are checked before they are decoded, and the first invalid line stops the sync, by number.
 */
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { InputError } from '../errors.js';

const NEWLINE = 0x0a;

/** The length of `data` without a character that the next chunk completes (at most 3 bytes of it). */
function completeLength(data: Buffer): number {
  let start = data.length - 1;
  while (start >= 0 && start > data.length - 4 && ((data[start] as number) & 0xc0) === 0x80) start--;
  if (start < 0) return data.length;
  const lead = data[start] as number;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return data.length - start < needed ? start : data.length;
}

/** Whether `bytes`, the start of a character the input ended inside, could have become a valid character. */
function validPrefix(bytes: Buffer): boolean {
  const lead = bytes[0] as number;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  // The second byte's valid range depends on the lead (E0 needs A0-BF, ED 80-9F, F0 90-BF, F4 80-8F); one of these fits
  // each.
  return [0x80, 0x90, 0xa0].some((fill) => isUtf8(Buffer.concat([bytes, Buffer.alloc(needed - bytes.length, fill)])));
}

export class Utf8Guard extends Transform {
  /** Lines completed in the bytes passed on so far. */
  private lines = 0;
  private carry: Buffer | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const data = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    const end = completeLength(data);
    const whole = end === data.length ? data : data.subarray(0, end);
    if (!isUtf8(whole)) {
      callback(this.invalid(whole));
      return;
    }
    this.carry = end === data.length ? undefined : Buffer.from(data.subarray(end));
    for (let at = whole.indexOf(NEWLINE); at !== -1; at = whole.indexOf(NEWLINE, at + 1)) this.lines++;
    callback(null, whole);
  }

  override _flush(callback: TransformCallback): void {
    const carry = this.carry;
    if (!carry) return callback(null);
    // Bytes held back in case the next chunk completed them: a character cut short, or bytes no chunk could complete.
    callback(
      validPrefix(carry)
        ? new InputError(this.lines + 1, 'is not valid UTF-8 (it ends inside a character)')
        : this.invalid(carry),
    );
  }

  private invalid(data: Buffer): InputError {
    let line = this.lines + 1;
    let start = 0;
    for (;;) {
      const end = data.indexOf(NEWLINE, start);
      if (!isUtf8(data.subarray(start, end === -1 ? data.length : end)) || end === -1) break;
      line++;
      start = end + 1;
    }
    return new InputError(line, 'is not valid UTF-8; the Airbyte protocol requires UTF-8 JSON');
  }
}
