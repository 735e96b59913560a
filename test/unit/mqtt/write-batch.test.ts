import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BATCH_BYTES, MIN_REMAINDER, WriteBatch } from '../../../src/mqtt/write-batch.js';
import { nextTurn } from '../../support/fake-port.js';

/** A batch that keeps the chunks it flushes, as they were handed over (views of its buffers, not copies). */
function batch(): { readonly batch: WriteBatch; readonly chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  return { batch: new WriteBatch((chunk) => chunks.push(chunk)), chunks };
}

/** Encodes a "packet" of `size` bytes of `fill` the way the encoder does: into `room`, then `commit`. */
function put(into: WriteBatch, size: number, fill = 'x'): void {
  const buffer = into.room(size);
  const start = into.offset;
  assert.ok(buffer.length - start >= size, `room for ${size} bytes`);
  buffer.fill(fill, start, start + size);
  into.commit(start + size);
}

describe('WriteBatch', () => {
  it('hands over the packets committed in one turn as one chunk, in order, by itself in a later tick', async () => {
    const { batch: packets, chunks } = batch();
    put(packets, 3, 'a');
    put(packets, 2, 'b');
    assert.equal(packets.pending, 5);
    assert.equal(chunks.length, 0, 'not before the turn ends');
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(
      chunks.map((chunk) => chunk.toString()),
      ['aaabb'],
    );
    assert.equal(packets.pending, 0);
    put(packets, 1, 'c');
    packets.flush();
    packets.flush(); // nothing left: nothing handed over
    await nextTurn();
    assert.deepEqual(
      chunks.map((chunk) => chunk.toString()),
      ['aaabb', 'c'],
    );
  });

  it('keeps the rest of its buffer for the next chunk, unless too little is left', () => {
    const { batch: packets, chunks } = batch();
    put(packets, 1000);
    packets.flush();
    put(packets, 500, 'y');
    packets.flush();
    const [first, second] = chunks as [Buffer, Buffer];
    assert.equal(second.buffer, first.buffer, 'the same memory');
    assert.equal(second.byteOffset, first.byteOffset + 1000, 'right behind the first chunk');
    put(packets, BATCH_BYTES - 1500 - MIN_REMAINDER + 1);
    packets.flush();
    put(packets, 10);
    packets.flush();
    assert.notEqual((chunks[3] as Buffer).buffer, first.buffer, 'less than MIN_REMAINDER was left: a new buffer');
  });

  it('flushes before a packet larger than what is left, and gives one larger than a batch a buffer of its size', () => {
    const { batch: packets, chunks } = batch();
    put(packets, BATCH_BYTES - 100, 'a');
    put(packets, 1000, 'b');
    assert.deepEqual(
      chunks.map((chunk) => chunk.length),
      [BATCH_BYTES - 100],
      'the first packet went out on its own',
    );
    put(packets, 3 * BATCH_BYTES, 'c');
    put(packets, 10, 'd');
    packets.flush();
    assert.deepEqual(
      chunks.map((chunk) => [chunk.length, chunk.toString('latin1', 0, 1)]),
      [
        [BATCH_BYTES - 100, 'a'],
        [1000, 'b'],
        [3 * BATCH_BYTES, 'c'],
        [10, 'd'],
      ],
      'whole packets only, in order; nothing fits behind a packet that filled a buffer of its own size',
    );
  });

  it('refuses a packet that does not end where its computed size says', () => {
    const { batch: packets } = batch();
    put(packets, 4);
    const buffer = packets.room(10);
    buffer.fill('z', packets.offset, packets.offset + 9);
    assert.throws(
      () => packets.commit(packets.offset + 9),
      /^Error: a packet was encoded into 9 bytes where 10 were computed$/,
    );
    assert.equal(packets.pending, 4, 'the short packet is not taken');
  });

  it('drops what it holds when cleared (its connection is gone)', async () => {
    const { batch: packets, chunks } = batch();
    put(packets, 10);
    packets.clear();
    assert.equal(packets.pending, 0);
    await nextTurn();
    assert.equal(chunks.length, 0);
    put(packets, 5, 'n');
    packets.flush();
    assert.deepEqual(
      chunks.map((chunk) => chunk.toString()),
      ['nnnnn'],
      'and goes on afresh',
    );
  });
});
