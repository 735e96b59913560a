/**
 * Input bytes to lines, in time linear in the input and memory bounded by the longest line.
 *
 * split2, which did this before, appends every chunk to the pending text and splits all of it again, so a line of n
 * chunks costs n^2/2 chunk scans: a 10 MB record took 2 s, 40 MB 27 s and 100 MB 2 min 39 s. Its options cannot
 * change that (a larger read size only divides the count of chunks; `maxLength` counts UTF-16 units and names no line).
 * Here each byte is looked at once: the pieces of an unfinished line are kept as they came and joined once, when its
 * newline arrives, and a line longer than the limit is refused by number and size without being kept.
 */
import { getHeapStatistics } from 'node:v8';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { InputError } from '../errors.js';
import { Utf8Guard } from './utf8.js';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** The largest payload an MQTT message can carry: a longer record could never be published. */
const MQTT_MAX_PAYLOAD_BYTES = 268_435_455;

/**
 * A line of n bytes costs about 5n of memory at its peak: its bytes, its text, the message built from it and its
 * encoded packet (measured 5.0 times for 10 MB and 40 MB records, above the 70 MB of a small sync). An eighth of V8's
 * heap, which the Docker image sizes to three quarters of the container, keeps such a line from running the connector
 * out of memory: with a 64 MB heap, a 30 MB record crashed Node (exit 134) before this limit existed.
 */
const HEAP_SHARE = 8;

/**
 * The longest input line accepted, in bytes: MAX_INPUT_LINE_BYTES when set, else the smaller of the two limits above.
 */
export function maxLineBytes(value: string | undefined = process.env.MAX_INPUT_LINE_BYTES): number {
  const configured = Number(value);
  if (value !== undefined && value.trim() !== '' && Number.isSafeInteger(configured) && configured > 0)
    return configured;
  return Math.min(MQTT_MAX_PAYLOAD_BYTES, Math.floor(getHeapStatistics().heap_size_limit / HEAP_SHARE));
}

/** Splits UTF-8 bytes into lines (without `\n` or `\r\n`), one string per line, blank lines included. */
export class LineSplitter extends Transform {
  private pieces: Buffer[] = [];
  private pendingLength = 0;
  /** Lines completed so far; the pending one is number `lines + 1`. */
  private lines = 0;
  private received = 0;
  /** Set while the rest of an over-long line is counted (and dropped) to report its size. */
  private overLong = false;

  constructor(private readonly limit: number = maxLineBytes()) {
    super({ readableObjectMode: true });
  }

  /** Bytes received so far, including those of a line not yet complete. */
  get bytesRead(): number {
    return this.received;
  }

  /** Bytes of the line still arriving; 0 between lines. */
  get pendingLineBytes(): number {
    return this.pendingLength;
  }

  /** The number of the line still arriving (the next line when none is). */
  get pendingLineNumber(): number {
    return this.lines + 1;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      const error = this.complete(chunk, start, end);
      if (error) return callback(error);
      start = end + 1;
    }
    return callback(this.keep(chunk, start));
  }

  override _flush(callback: TransformCallback): void {
    if (this.pendingLength === 0 && !this.overLong) return callback();
    callback(this.complete(Buffer.alloc(0), 0, 0));
  }

  /** Ends the pending line with `chunk[start, end)` and passes it on; returns the error if it is too long. */
  private complete(chunk: Buffer, start: number, end: number): InputError | undefined {
    const length = this.pendingLength + end - start;
    this.lines++;
    if (this.overLong || length > this.limit) return this.tooLong(this.lines, length);
    let line: string;
    if (this.pieces.length === 0) {
      line = chunk.toString('utf8', start, end > start && chunk[end - 1] === CARRIAGE_RETURN ? end - 1 : end);
    } else {
      const bytes = Buffer.concat([...this.pieces, chunk.subarray(start, end)], length);
      this.pieces = [];
      this.pendingLength = 0;
      line = bytes.toString('utf8', 0, length > 0 && bytes[length - 1] === CARRIAGE_RETURN ? length - 1 : length);
    }
    this.push(line);
    return undefined;
  }

  /** Keeps the start of a line the next chunk continues; past the limit only its length is kept. */
  private keep(chunk: Buffer, start: number): InputError | undefined {
    if (start === chunk.length) return undefined;
    this.pendingLength += chunk.length - start;
    if (this.overLong) return undefined;
    if (this.pendingLength > this.limit) {
      // Counted to its end, so that the error can give the size, but no longer kept.
      this.overLong = true;
      this.pieces = [];
      return undefined;
    }
    this.pieces.push(start === 0 ? chunk : chunk.subarray(start));
    return undefined;
  }

  private tooLong(lineNumber: number, length: number): InputError {
    return new InputError(
      lineNumber,
      `is ${length} bytes long; an input line may have at most ${this.limit} bytes ` +
        '(MAX_INPUT_LINE_BYTES; by default the smaller of ' +
        `the largest MQTT payload, ${MQTT_MAX_PAYLOAD_BYTES} bytes, and 1/${HEAP_SHARE} of the connector's memory)`,
    );
  }
}

/** The lines of `input`, checked as UTF-8; errors of `input` and of the check surface on the returned stream. */
export function readLines(input: Readable, limit: number = maxLineBytes()): LineSplitter {
  const guard = new Utf8Guard();
  const lines = new LineSplitter(limit);
  for (const stage of [input, guard]) stage.on('error', (err: Error) => lines.destroy(err));
  input.pipe(guard).pipe(lines);
  return lines;
}
