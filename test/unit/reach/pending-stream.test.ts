/**
 * The stream handed out before its connection is open: what is written before is held and passed on in order, an
 * end before the connection is kept for it, a connection that fails becomes the stream's error, and one that opens
 * after the stream was given up is closed at once. The connection here is an echo (a PassThrough).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { PendingStream } from '../../../src/reach/pending-stream.js';

/** A promise with its resolve and reject, to open or fail the connection when the test says. */
function opening(): { promise: Promise<PassThrough>; open(inner: PassThrough): void; fail(error: Error): void } {
  let open!: (inner: PassThrough) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<PassThrough>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

async function readAll(stream: PendingStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += (chunk as Buffer).toString();
  return text;
}

describe('PendingStream', () => {
  it('holds what is written before the connection opens and passes it on in order, then both ways', async () => {
    const connection = opening();
    const stream = new PendingStream(connection.promise);
    const written: string[] = [];
    stream.write('one ', () => written.push('one'));
    stream.write('two ', () => written.push('two'));
    assert.equal(stream.connected, false);
    const connected = once(stream, 'connect');
    const echo = new PassThrough();
    connection.open(echo);
    await connected;
    assert.equal(stream.connected, true);
    stream.end('three');
    assert.equal(await readAll(stream), 'one two three');
    assert.deepEqual(written, ['one', 'two']);
  });

  it('ends the connection when the stream was ended before it opened', async () => {
    const connection = opening();
    const stream = new PendingStream(connection.promise);
    stream.end('only');
    const echo = new PassThrough();
    const finished = once(echo, 'finish');
    connection.open(echo);
    await finished;
    assert.equal(await readAll(stream), 'only');
  });

  it('fails with the error that kept the connection from opening', async () => {
    const connection = opening();
    const stream = new PendingStream(connection.promise);
    stream.write('lost');
    const failure = new Error('the bastion refused');
    connection.fail(failure);
    const [error] = (await once(stream, 'error')) as [Error];
    assert.equal(error, failure);
    assert.equal(stream.destroyed, true);
  });

  it('closes a connection that opens after the stream was destroyed', async () => {
    const connection = opening();
    const stream = new PendingStream(connection.promise);
    stream.destroy();
    const echo = new PassThrough();
    const closed = once(echo, 'close');
    connection.open(echo);
    await closed;
    assert.equal(echo.destroyed, true);
  });

  it('destroys the connection when destroyed, and closes when the connection closes', async () => {
    const inner = new PassThrough();
    const stream = new PendingStream(Promise.resolve(inner));
    await once(stream, 'connect');
    stream.destroy();
    await once(inner, 'close');

    const other = new PassThrough();
    const second = new PendingStream(Promise.resolve(other));
    await once(second, 'connect');
    const closed = once(second, 'close');
    other.destroy();
    await closed;
    assert.equal(second.destroyed, true);
  });
});
