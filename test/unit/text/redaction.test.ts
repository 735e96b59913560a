/**
 * The redactor is the last thing between a configured password and a log line, an error message or a connection
 * status: whatever the secret is (a word, a piece of a word, a regular expression metacharacter, part of the mask
 * itself), no form of it may come out, and nothing else of the text may change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED, Redactor } from '../../../src/text/redaction.js';
import { mulberry32 } from '../../support/random.js';

const R = REDACTED;

function redactorOf(...secrets: (string | undefined)[]): Redactor {
  const redactor = new Redactor();
  redactor.add(secrets);
  return redactor;
}

describe('Redactor', () => {
  it('returns a text that shows no secret as it is', () => {
    const none = new Redactor();
    for (const text of ['', 'plain', '{"password":"x"}', R]) assert.equal(none.text(text), text);
    const redactor = redactorOf('hunter2');
    for (const text of ['', 'hunter', 'unter2', 'Hunter2', 'hunter 2', 'h u n t e r 2']) {
      assert.equal(redactor.text(text), text);
    }
  });

  it('ignores empty and missing values rather than treating every text as a secret', () => {
    const redactor = redactorOf('', undefined, '');
    assert.equal(redactor.text('anything at all'), 'anything at all');
    assert.equal(redactor.text(''), '');
  });

  it('masks a secret wherever it appears, inside words too, and only in its exact case', () => {
    const redactor = redactorOf('hunter2');
    assert.equal(redactor.text('hunter2'), R);
    assert.equal(redactor.text('xhunter2y hunter2hunter2 HUNTER2'), `x${R}y ${R}${R} HUNTER2`);
    assert.equal(redactor.text('"hunter2":"hunter2"'), `"${R}":"${R}"`);
  });

  it('masks secrets of one or two characters too: a minimum length is for its callers to choose', () => {
    assert.equal(redactorOf('q').text('quiz q'), `${R}uiz ${R}`);
    assert.equal(redactorOf('ab').text('a b ab cab'), `a b ${R} c${R}`);
  });

  it('takes a secret literally, regular expression metacharacters and replacement patterns included', () => {
    const cases: [string, string, string][] = [
      ['a.c', 'abc a.c', `abc ${R}`],
      ['.*', 'all of it .* here', `all of it ${R} here`],
      ['\\d+', '123 \\d+', `123 ${R}`],
      ['(', 'f(x)', `f${R}x)`],
      ['[a-z]', 'abc [a-z]', `abc ${R}`],
      ['^x$', 'x ^x$', `x ${R}`],
      ['a|b', 'a b a|b', `a b ${R}`],
      ['$&', 'cost: $&!', `cost: ${R}!`],
      ['$1', 'say $1', `say ${R}`],
      ["$'", "it$'s", `it${R}s`],
      ['?', 'why? ', `why${R} `],
    ];
    for (const [secret, text, expected] of cases) assert.equal(redactorOf(secret).text(text), expected, secret);
  });

  it('masks overlapping secrets leftmost first, the longest of those starting at one place', () => {
    const redactor = redactorOf('abcd', 'cdef');
    // The first occurrence is masked whole; only what is left of the second shows, which is no secret.
    assert.equal(redactor.text('abcdef'), `${R}ef`);
    assert.equal(redactor.text('xcdefabcd'), `x${R}${R}`);
    assert.equal(redactorOf('pass', 'password').text('password pass'), `${R} ${R}`);
    assert.equal(redactorOf('password', 'pass').text('passwordpass'), `${R}${R}`, 'whatever the order given');
    assert.equal(redactorOf('secret', 'cre').text('secret cre'), `${R} ${R}`);
    assert.equal(redactorOf('aa').text('aaaaa'), `${R}${R}a`);
  });

  it('masks a secret written inside a JSON string', () => {
    const secret = 'p"a\\s\ns\tw\u0001/é';
    const escaped = JSON.stringify(secret).slice(1, -1);
    assert.equal(escaped, 'p\\"a\\\\s\\ns\\tw\\u0001/é');
    const redactor = redactorOf(secret);
    assert.equal(redactor.text(`raw ${secret} json {"password":"${escaped}"}`), `raw ${R} json {"password":"${R}"}`);
  });

  it('masks a secret percent-encoded in a URL', () => {
    const secret = 'p@ss w:rd/?é';
    const redactor = redactorOf(secret);
    assert.equal(redactor.text('mqtt://user:p%40ss%20w%3Ard%2F%3F%C3%A9@host:1883'), `mqtt://user:${R}@host:1883`);
  });

  it('masks a secret with a lone surrogate, which has no percent-encoded form, as written and JSON-escaped', () => {
    const redactor = new Redactor();
    redactor.add(['a\ud800b']);
    assert.equal(redactor.text('[a\ud800b] [a\\ud800b]'), `[${R}] [${R}]`);
  });

  it('falls back to the next mask while the mask shows a secret, then withholds the text', () => {
    assert.equal(redactorOf('**').text('a ** b'), 'a [secret] b');
    assert.equal(redactorOf('*', 'cret]').text('x*y'), 'x<hidden>y');
    assert.equal(redactorOf('*', '[', '<').text('x*y'), 'x###y');
    assert.equal(redactorOf('*', '[', '<', '#').text('x*y'), '(text withheld: it would show a configured secret)');
    assert.equal(redactorOf('*', '[', '<', '#', 'configured').text('x*y'), '(withheld)');
    assert.equal(redactorOf('*', '[', '<', '#', '(').text('x*y'), '');
  });

  it('keeps secrets added earlier when more are added, from any iterable', () => {
    const redactor = new Redactor();
    redactor.add(new Set(['one']));
    redactor.add(
      (function* () {
        yield 'two';
        yield undefined;
      })(),
    );
    assert.equal(redactor.text('one two three'), `${R} ${R} three`);
    assert.equal(new Redactor().text('one two'), 'one two', 'secrets belong to the redactor they were given to');
  });

  it('keeps every character outside the secrets as it was', () => {
    const random = mulberry32(4_242);
    const secrets = ['qz', 'zqq', 'q.z', 'Q$&z'];
    const redactor = redactorOf(...secrets);
    // Filler that cannot form a secret: no q, no z.
    const filler = ['a', ' ', '"', '\\', '{', '}', ':', ',', '\n', 'é', '😀', '*', '%', '$', '.', '&', 'Q', '\u2028'];
    for (let i = 0; i < 500; i++) {
      const pieces: string[] = [];
      const expected: string[] = [];
      const count = Math.floor(random() * 8);
      for (let j = 0; j < count; j++) {
        let gap = '';
        const length = Math.floor(random() * 4);
        for (let k = 0; k < length; k++) gap += filler[Math.floor(random() * filler.length)] as string;
        const secret = secrets[Math.floor(random() * secrets.length)] as string;
        pieces.push(gap, secret);
        expected.push(gap, R);
      }
      const text = pieces.join('');
      assert.equal(redactor.text(text), expected.join(''), JSON.stringify(text));
    }
  });
});
