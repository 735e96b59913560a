/**
 * Compressing a message's payload (`payload_compression`): gzip (RFC 1952) or deflate, which as an HTTP content
 * coding means the zlib format (RFC 1950), as Node's `deflateSync` writes it. With MQTT 5 the message says which in a
 * user property `content-encoding`, the name HTTP gives it, and keeps the content type of the uncompressed payload.
 *
 * Compression runs synchronously at the default level: a 64 KiB batch of JSON takes about a millisecond, which a
 * message that stands for a hundred records can afford.
 */
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import type { Compression } from './payload-format.js';

// node:zlib is loaded at the first compressed payload, not when this module is (which every `check` and `write` does):
// it took about 6 million instructions per start (callgrind, Node 20).
const require = createRequire(import.meta.url);
let zlib: typeof Zlib | undefined;

/** The `content-encoding` user property of a compressed payload; undefined when it is not compressed. */
export function contentEncoding(compression: Compression): string | undefined {
  return compression === 'none' ? undefined : compression;
}

/** `payload` compressed as `compression` says (not `none`). */
export function compress(payload: string | Buffer, compression: Exclude<Compression, 'none'>): Buffer {
  zlib ??= require('node:zlib') as typeof Zlib;
  return compression === 'gzip' ? zlib.gzipSync(payload) : zlib.deflateSync(payload);
}
