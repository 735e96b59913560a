/**
 * Redaction as a property: thousands of secrets drawn from the output's own vocabulary (every key, enum value, word,
 * digit run and stretch of JSON punctuation the connector prints, and unicode) are configured in turn, and every kind
 * of line is printed with texts that hold the secret as it is, JSON-escaped and percent-encoded, at the edges, twice
 * and overlapping. Every line must parse, keep the structure it has without the secret, and show the secret in no
 * text; SPEC and STATE lines must stay byte for byte the same.
 *
 * PROPERTY_CASES sets the number of secrets (default 3,000); PROPERTY_SEED replays one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { Output } from '../../../src/airbyte/output.js';
import { REDACTED, Redactor } from '../../../src/text/redaction.js';
import { ConfigError, SystemError, TransientError } from '../../../src/errors.js';
import { PROJECT_ROOT } from '../../support/connector.js';
import { streamStateLine } from '../../support/messages.js';
import { mulberry32 } from '../../support/random.js';
import { assertSameMessages, drawSecret, vocabularyOf } from '../../support/secrets.js';

const CASES = Number(process.env.PROPERTY_CASES ?? 3000);
const ONLY_SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
const SPEC = JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')) as unknown;
const STATE = streamStateLine(
  { name: 'users', namespace: 'crm' },
  'c',
  ',"destinationStats":{"recordCount":2.0},"id":12345678901234567890',
);

function encoded(secret: string): string {
  try {
    return encodeURIComponent(secret);
  } catch {
    return secret;
  }
}

/** Every kind of line, with texts built around `secret` the ways a library or the connector might write it. */
function printAll(output: Output, secret: string): void {
  const texts = [
    `Effective configuration: ${JSON.stringify({ host: 'broker', password: secret, username: 'airbyte', port: 1883 })}`,
    `connect to mqtt://airbyte:${encoded(secret)}@broker:1883 failed`,
    `${secret}`,
    `${secret}${secret}x${secret.slice(1)}${secret}`,
    `Input line 17: ${secret.slice(0, -1)}|${secret}|${secret.slice(1)}`,
    'Sync complete: 3 record(s) acknowledged from 5 input line(s).',
  ];
  output.spec(SPEC);
  for (const level of ['FATAL', 'ERROR', 'WARN', 'INFO'] as const) for (const text of texts) output.log(level, text);
  output.state(STATE);
  output.connectionStatus('SUCCEEDED', `Connected as client "${secret}". ${texts[1]}`);
  output.connectionStatus('FAILED', texts[3] as string);
  for (const ErrorClass of [ConfigError, TransientError, SystemError])
    output.error(new ErrorClass(texts[4] as string, texts[0]));
  output.error(new ConfigError(texts[5] as string));
}

function linesOf(secret: string, configured: readonly string[]): string[] {
  const sink = new PassThrough();
  let text = '';
  sink.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const output = new Output(sink, 'INFO');
  output.redact(configured);
  printAll(output, secret);
  return text.split('\n').filter(Boolean);
}

describe('Output under any secret', () => {
  const baseline = linesOf('harmless-value', []);
  const vocabulary = vocabularyOf(baseline);

  it(`keeps every line an Airbyte message and hides the secret, for ${CASES} secrets from its own vocabulary`, () => {
    const seeds = ONLY_SEED === undefined ? Array.from({ length: CASES }, (_, i) => i + 1) : [ONLY_SEED];
    for (const seed of seeds) {
      const random = mulberry32(seed);
      const secret = drawSecret(random, vocabulary, baseline, 1);
      assertSameMessages(linesOf(secret, [secret]), baseline, secret, `seed ${seed}`);
    }
  });

  it('breaks no line for the secrets that broke it before', () => {
    const now = String(Date.now());
    for (const secret of [
      'type',
      'status',
      'SUCCEEDED',
      '","',
      '":"',
      now.slice(0, 3),
      now.slice(0, 6),
      'LOG',
      'log',
      'message',
      'true',
      'null',
      '{',
      '}',
      '"',
    ]) {
      assertSameMessages(linesOf(secret, [secret]), baseline, secret, 'named');
    }
  });
});

describe('Redactor', () => {
  it('masks with **********, JSON-escaped and percent-encoded forms too', () => {
    const redactor = new Redactor();
    redactor.add(['pa"ss w', undefined, '']);
    assert.equal(redactor.text('a pa"ss w b pa\\"ss w c pa%22ss%20w'), `a ${REDACTED} b ${REDACTED} c ${REDACTED}`);
    assert.equal(redactor.text('nothing here'), 'nothing here');
  });

  it('falls back to another mask when the secret is part of the usual one, or masking would form it again', () => {
    const stars = new Redactor();
    stars.add(['***']);
    assert.equal(stars.text('a *** b'), 'a [secret] b');
    const edge = new Redactor();
    edge.add(['x*']);
    // "xx*" masked with stars gives "x**********", which holds "x*" again.
    assert.equal(edge.text('xx*'), 'x[secret]');
  });

  it('masks a secret as long as MQTT allows, which as one regular expression V8 refused', () => {
    const long = 'é'.repeat(32_767);
    const redactor = new Redactor();
    redactor.add([long]);
    assert.equal(redactor.text(`a ${long} b ${encodeURIComponent(long)}`), `a ${REDACTED} b ${REDACTED}`);
  });

  it('masks the leftmost occurrence first, the longest of those starting there', () => {
    const redactor = new Redactor();
    redactor.add(['abc', 'cde', 'abcd']);
    assert.equal(redactor.text('xabcde abcd cdex'), `x${REDACTED}e ${REDACTED} ${REDACTED}x`);
  });

  it('withholds a text no mask can clean', () => {
    const redactor = new Redactor();
    redactor.add(['*', '[', '<', '#']);
    assert.equal(redactor.text('a*b'), '(text withheld: it would show a configured secret)');
  });
});
