/**
 * `emitted_at` as published: whole milliseconds since the epoch.
 *
 * The protocol types `emitted_at` as an integer (epoch milliseconds), and Airbyte's Java and Kotlin code reads it into
 * a `long`; but the platform itself sometimes writes it as a double (`1.7241888E12`), and a source may write
 * `1700000000000.5`. Every format that carries the time publishes it as an integer, so consumers that read it as one
 * (Airbyte's own raw tables do: `_airbyte_extracted_at` is an integer of epoch ms) never meet a fraction or an
 * exponent.
 *
 * The conversion is done on the text, digit by digit, so it is exact at any size: an integer is returned as written
 * (the fast path, taken by nearly every record), and a fraction is truncated toward zero, which is what Airbyte's Java
 * and Kotlin destinations do when Jackson coerces a JSON float into a `long` (`ACCEPT_FLOAT_AS_INT`, on by default).
 */
import { C, code } from '../text/json-scanner.js';

/** A JSON number: sign, integer part, fraction, exponent. */
const JSON_NUMBER = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

/**
 * The most digits a converted value may have: 309, as many as the largest finite double (about 1.8e308). A number
 * beyond that is one `JSON.parse` reads as Infinity, and writing it out in full could take gigabytes (`1e999999999`).
 */
export const MAX_WHOLE_DIGITS = 309;

function isIntegerText(text: string): boolean {
  let i = code(text, 0) === C.Minus ? 1 : 0;
  if (i === text.length) return false;
  // JSON allows no leading zero: "0" alone, or a digit 1-9 first.
  if (code(text, i) === C.Zero && text.length > i + 1) return false;
  for (; i < text.length; i++) {
    const c = code(text, i);
    if (c < C.Zero || c > C.Nine) return false;
  }
  return true;
}

/**
 * `emittedAtJson` (a JSON number as the source wrote it) as whole milliseconds, in integer JSON text. Integers come
 * back unchanged (`-0` becomes `0`); anything else is truncated toward zero: `1.7e12` gives `1700000000000`,
 * `1700000000000.9` gives `1700000000000`, `-1.5` gives `-1`. Undefined when the text is not a JSON number, or when the
 * value has more than MAX_WHOLE_DIGITS digits.
 */
export function wholeMilliseconds(emittedAtJson: string): string | undefined {
  if (isIntegerText(emittedAtJson)) return emittedAtJson === '-0' ? '0' : emittedAtJson;
  const match = JSON_NUMBER.exec(emittedAtJson);
  if (!match) return undefined;
  const [, sign, integer = '', fraction = '', exponent = '0'] = match;
  const digits = integer + fraction;
  // Where the decimal point falls in `digits` once the exponent is applied. Number() of a very long exponent is a
  // very large (or infinite) number, which the length check below turns away.
  const point = integer.length + Number(exponent);
  let first = 0;
  while (first < digits.length && code(digits, first) === C.Zero) first++;
  if (first === digits.length || first >= point) return '0';
  if (point - first > MAX_WHOLE_DIGITS) return undefined;
  const whole =
    point <= digits.length ? digits.slice(first, point) : digits.slice(first) + '0'.repeat(point - digits.length);
  return sign + whole;
}

/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: RFC 3339 years have exactly four digits. */
const RFC3339_MIN_MS = -62_167_219_200_000;
const RFC3339_MAX_MS = 253_402_300_799_999;
const DAY_MS = 86_400_000;

// `Date.prototype.toISOString` for every record measured about 1.3 us, more than the rest of a CloudEvent together;
// the date changes once a day, so it is formatted once per day and the time of day computed here.
let cachedDay = Number.NaN;
let cachedDate = '';

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * Whole milliseconds (the output of wholeMilliseconds) as an RFC 3339 UTC timestamp with milliseconds, as
 * `toISOString` writes it: `2023-11-14T22:13:20.000Z`. Undefined outside the years 0000-9999, which RFC 3339 cannot
 * write.
 */
export function rfc3339(wholeMs: string): string | undefined {
  const ms = Number(wholeMs);
  if (!(ms >= RFC3339_MIN_MS && ms <= RFC3339_MAX_MS)) return undefined;
  const day = Math.floor(ms / DAY_MS) * DAY_MS;
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDate = new Date(day).toISOString().slice(0, 11);
  }
  let rest = ms - day;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return (
    `${cachedDate}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.` +
    `${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`
  );
}
