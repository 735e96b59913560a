import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.js';
import { Output, logLevelFrom } from '../../../src/airbyte/output.js';
import { windowSize } from '../../../src/mqtt/send-state.js';
import { parseProtocolLines } from '../../support/airbyte-protocol.js';

function capture(): { output: Output; lines: () => Record<string, unknown>[] } {
  const sink = new PassThrough();
  let text = '';
  sink.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return {
    output: new Output(sink),
    lines: () => parseProtocolLines(text),
  };
}

describe('Output', () => {
  it('writes one Airbyte message per line', () => {
    const { output, lines } = capture();
    output.log('INFO', 'hello');
    output.connectionStatus('FAILED', 'nope');
    assert.deepEqual(lines(), [
      { type: 'LOG', log: { level: 'INFO', message: 'hello' } },
      { type: 'CONNECTION_STATUS', connectionStatus: { status: 'FAILED', message: 'nope' } },
    ]);
  });

  it('writes a TRACE error with emitted_at and failure_type', () => {
    const { output, lines } = capture();
    const before = Date.now();
    output.error(new ConfigError('bad topic', 'detail'));
    const trace = lines()[0]?.trace as { type: string; emitted_at: number; error: Record<string, unknown> };
    assert.equal(trace.type, 'ERROR');
    assert.ok(trace.emitted_at >= before);
    assert.equal(trace.error.message, 'bad topic');
    assert.equal(trace.error.internal_message, 'detail');
    assert.equal(trace.error.failure_type, 'config_error');
    assert.match(String(trace.error.stack_trace), /ConfigError: bad topic/);
  });

  it('redacts configured secrets from every line, also when JSON-escaped', () => {
    const { output, lines } = capture();
    output.redact(['pa"ss', undefined, 'topsecret']);
    output.log('ERROR', 'connecting with topsecret and pa"ss failed');
    const text = JSON.stringify(lines());
    assert.doesNotMatch(text, /topsecret|pa\\"ss/);
    assert.match(text, /\*{10} and \*{10}/);
  });
});

describe('log levels', () => {
  it('prints messages at or above the threshold only', () => {
    const sink = new PassThrough();
    let text = '';
    sink.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const output = new Output(sink, 'WARN');
    output.log('INFO', 'hidden');
    output.log('DEBUG', 'hidden');
    output.log('WARN', 'shown');
    output.log('ERROR', 'shown too');
    assert.deepEqual(
      parseProtocolLines(text).map((m) => (m.log as { level: string }).level),
      ['WARN', 'ERROR'],
    );
  });

  it('reads LOG_LEVEL case-insensitively and falls back to INFO', () => {
    assert.equal(logLevelFrom('debug'), 'DEBUG');
    assert.equal(logLevelFrom('TRACE'), 'TRACE');
    assert.equal(logLevelFrom(undefined), 'INFO');
    assert.equal(logLevelFrom('verbose'), 'INFO');
  });
});

describe('windowSize', () => {
  const base = { maxInflight: 1000, oneAtATime: false, brokerReceiveMaximum: undefined };
  it('is the configured bound, lowered by the broker Receive Maximum and packet ids', () => {
    assert.equal(windowSize(base), 1000);
    assert.equal(windowSize({ ...base, brokerReceiveMaximum: 20 }), 20);
    assert.equal(windowSize({ ...base, maxInflight: 65535, brokerReceiveMaximum: 70000 }), 65535);
    assert.equal(windowSize({ ...base, oneAtATime: true }), 1);
  });
});
