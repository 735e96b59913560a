import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WHOLE_DIGITS, rfc3339, wholeMilliseconds } from '../../../src/payload/emitted-at.js';
import { mulberry32 } from '../../support/random.js';

describe('wholeMilliseconds', () => {
  it('returns integers as written, at any size', () => {
    for (const text of ['1700000000000', '0', '-5', '12345678901234567890', '123456789012345678901234567890']) {
      assert.equal(wholeMilliseconds(text), text);
    }
    assert.equal(wholeMilliseconds('-0'), '0');
  });

  it('turns the doubles the platform writes into whole milliseconds', () => {
    assert.equal(wholeMilliseconds('1.7e12'), '1700000000000');
    assert.equal(wholeMilliseconds('1.7241888E12'), '1724188800000');
    assert.equal(wholeMilliseconds('1E+3'), '1000');
    assert.equal(wholeMilliseconds('17e11'), '1700000000000');
  });

  it('truncates a fraction toward zero', () => {
    assert.equal(wholeMilliseconds('1700000000000.5'), '1700000000000');
    assert.equal(wholeMilliseconds('1700000000000.999'), '1700000000000');
    assert.equal(wholeMilliseconds('-1.5'), '-1');
    assert.equal(wholeMilliseconds('-0.5'), '0');
    assert.equal(wholeMilliseconds('0.5'), '0');
    assert.equal(wholeMilliseconds('1e-3'), '0');
    assert.equal(wholeMilliseconds('123e-2'), '1');
    assert.equal(wholeMilliseconds('12.345e1'), '123');
    assert.equal(wholeMilliseconds('0.00123e5'), '123');
    assert.equal(wholeMilliseconds('0.0'), '0');
  });

  it('is exact beyond the precision of a double', () => {
    assert.equal(wholeMilliseconds('12345678901234567890.5'), '12345678901234567890');
    assert.equal(wholeMilliseconds('1.23456789012345678901e20'), '123456789012345678901');
    assert.equal(wholeMilliseconds('9007199254740993.0'), '9007199254740993');
  });

  it('refuses values too large for any double instead of writing them out, and keeps tiny ones cheap', () => {
    assert.equal(wholeMilliseconds('1e308'), `1${'0'.repeat(308)}`);
    assert.equal(wholeMilliseconds(`1e${MAX_WHOLE_DIGITS - 1}`)?.length, MAX_WHOLE_DIGITS);
    assert.equal(wholeMilliseconds(`1e${MAX_WHOLE_DIGITS}`), undefined);
    assert.equal(wholeMilliseconds('1e999999999999'), undefined);
    assert.equal(wholeMilliseconds('1e99999999999999999999999'), undefined);
    assert.equal(wholeMilliseconds('0e999999999'), '0');
    assert.equal(wholeMilliseconds('1e-999999999999'), '0');
  });

  it('refuses text that is not a JSON number', () => {
    for (const text of [
      '',
      '-',
      '01',
      '-01',
      '1.',
      '.5',
      '+1',
      '1e',
      '1e+',
      'abc',
      ' 1',
      '1 ',
      'NaN',
      'Infinity',
      '0x10',
    ]) {
      assert.equal(wholeMilliseconds(text), undefined, text);
    }
  });

  it('agrees with Math.trunc for every double below 2^53, however it is written', () => {
    const random = mulberry32(7);
    for (let i = 0; i < 20_000; i++) {
      const magnitude = 10 ** Math.floor(random() * 16);
      const value = (random() - 0.5) * 2 * magnitude;
      const expected = String(Math.trunc(value) === 0 ? 0 : Math.trunc(value));
      assert.equal(wholeMilliseconds(String(value)), expected, String(value));
      assert.equal(wholeMilliseconds(value.toExponential()), expected, value.toExponential());
      assert.equal(wholeMilliseconds(value.toExponential().toUpperCase()), expected);
    }
  });
});

describe('rfc3339', () => {
  it('writes UTC with milliseconds', () => {
    assert.equal(rfc3339('1700000000000'), '2023-11-14T22:13:20.000Z');
    assert.equal(rfc3339('1700000000123'), '2023-11-14T22:13:20.123Z');
    assert.equal(rfc3339('0'), '1970-01-01T00:00:00.000Z');
    assert.equal(rfc3339('-1'), '1969-12-31T23:59:59.999Z');
  });

  it('writes what toISOString writes, for any instant in range and in any order', () => {
    const random = mulberry32(11);
    const min = -62_167_219_200_000;
    const max = 253_402_300_799_999;
    const day = 86_400_000;
    const instants = [min, max, -1, 0, 1, day - 1, day, -day, -day - 1, 951_782_400_000 /* 2000-02-29 */];
    for (let i = 0; i < 20_000; i++) {
      const r = random();
      // Anywhere in range, or near a day boundary, or a run of neighbours sharing a day.
      if (r < 0.4) instants.push(Math.floor(min + random() * (max - min)));
      else if (r < 0.7) instants.push(Math.round((random() - 0.5) * 1e5) * day + Math.round((random() - 0.5) * 4));
      else instants.push(1_700_000_000_000 + Math.floor(random() * 1e6));
    }
    for (const ms of instants) assert.equal(rfc3339(String(ms)), new Date(ms).toISOString(), String(ms));
  });

  it('covers exactly the years RFC 3339 can write', () => {
    assert.equal(rfc3339('-62167219200000'), '0000-01-01T00:00:00.000Z');
    assert.equal(rfc3339('-62167219200001'), undefined);
    assert.equal(rfc3339('253402300799999'), '9999-12-31T23:59:59.999Z');
    assert.equal(rfc3339('253402300800000'), undefined);
    assert.equal(rfc3339('99999999999999999999'), undefined);
    assert.equal(rfc3339(`1${'0'.repeat(400)}`), undefined);
  });
});
