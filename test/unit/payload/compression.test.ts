import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { compress, contentEncoding } from '../../../src/payload/compression.js';

/** A batch-like payload with repetition and text beyond ASCII, so that a round trip checks bytes, not characters. */
const PAYLOAD = `[${Array.from({ length: 50 }, (_, n) => `{"id":${n},"name":"Zoë ✓ ${n}"}`).join(',')}]`;

describe('compress', () => {
  it('gzip: a member gunzip reads back byte for byte, with the gzip magic bytes', () => {
    const packed = compress(PAYLOAD, 'gzip');
    assert.ok(Buffer.isBuffer(packed));
    assert.deepEqual([...packed.subarray(0, 2)], [0x1f, 0x8b], 'RFC 1952 header');
    assert.equal(gunzipSync(packed).toString('utf8'), PAYLOAD);
    assert.ok(packed.length < Buffer.byteLength(PAYLOAD), 'repetitive JSON shrinks');
  });

  it('deflate: the zlib format (RFC 1950) that HTTP calls deflate, not raw deflate nor gzip', () => {
    const packed = compress(PAYLOAD, 'deflate');
    assert.equal(inflateSync(packed).toString('utf8'), PAYLOAD);
    // A zlib header: compression method 8 and a check value making the first two bytes a multiple of 31.
    assert.equal((packed[0] ?? 0) & 0x0f, 8);
    assert.equal(packed.readUInt16BE(0) % 31, 0);
    assert.throws(() => gunzipSync(packed), 'not a gzip member');
    assert.throws(() => inflateRawSync(packed), 'not raw deflate');
  });

  it('takes bytes as well as text, and an empty payload', () => {
    const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    assert.deepEqual(gunzipSync(compress(bytes, 'gzip')), bytes);
    assert.deepEqual(inflateSync(compress(bytes, 'deflate')), bytes);
    assert.equal(gunzipSync(compress('', 'gzip')).length, 0);
    assert.equal(inflateSync(compress('', 'deflate')).length, 0);
  });
});

describe('contentEncoding', () => {
  it('names the coding as HTTP does, and nothing for an uncompressed payload', () => {
    assert.equal(contentEncoding('gzip'), 'gzip');
    assert.equal(contentEncoding('deflate'), 'deflate');
    assert.equal(contentEncoding('none'), undefined);
  });
});
