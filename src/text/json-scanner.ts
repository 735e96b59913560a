/**
 * One pass over JSON text that validates it against the grammar `JSON.parse` accepts and says where things are,
 * without building values. Two users share it: the fast path for RECORD lines (record-scan.ts), which validates and
 * takes a line apart at once, and the helpers that locate members of state messages (raw-json.ts), so that data and
 * states are always cut out of the input text the same way.
 *
 * Nested containers are followed with an explicit stack rather than recursion: JSON.parse accepts any depth, and so
 * must this.
 */

/** Thrown (one shared instance, no stack trace to build) when the text is not valid JSON. */
class Invalid extends Error {}
export const INVALID = new Invalid();

/** Character codes the scanner looks for. */
export const enum C {
  Tab = 0x09,
  Newline = 0x0a,
  Return = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Plus = 0x2b,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Slash = 0x2f,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  UpperE = 0x45,
  OpenBracket = 0x5b,
  Backslash = 0x5c,
  CloseBracket = 0x5d,
  LowerB = 0x62,
  LowerE = 0x65,
  LowerF = 0x66,
  LowerN = 0x6e,
  LowerR = 0x72,
  LowerT = 0x74,
  LowerU = 0x75,
  OpenBrace = 0x7b,
  CloseBrace = 0x7d,
}

/**
 * The character code at `at` as a `C`, so that comparisons with the codes above are between the same kind of value
 * (a plain `charCodeAt` is any number). NaN past the end, as `charCodeAt` gives, matches no code.
 */
export function code(text: string, at: number): C {
  return text.charCodeAt(at);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export class JsonScanner {
  /** Open containers while a value is validated: OBJECT or ARRAY per level, reused from value to value. */
  private readonly stack: number[] = [];

  pos = 0;
  constructor(readonly text: string) {}

  ws(): void {
    const { text } = this;
    let c = code(text, this.pos);
    while (c === C.Space || c === C.Newline || c === C.Return || c === C.Tab) c = code(text, ++this.pos);
  }

  expect(expected: C): void {
    if (code(this.text, this.pos) !== expected) throw INVALID;
    this.pos++;
  }

  /** Validates a string at pos (at its opening quote); returns whether it contains escapes. */
  string(): boolean {
    const { text } = this;
    let i = this.pos + 1;
    let escaped = false;
    for (;;) {
      const c = code(text, i);
      if (c === C.Quote) break;
      if (c < C.Space || Number.isNaN(c)) throw INVALID;
      if (c === C.Backslash) {
        escaped = true;
        const e = code(text, i + 1);
        if (e === C.LowerU) {
          if (
            !isHex(code(text, i + 2)) ||
            !isHex(code(text, i + 3)) ||
            !isHex(code(text, i + 4)) ||
            !isHex(code(text, i + 5))
          )
            throw INVALID;
          i += 6;
          continue;
        }
        if (
          e !== C.Quote &&
          e !== C.Backslash &&
          e !== C.Slash &&
          e !== C.LowerB &&
          e !== C.LowerF &&
          e !== C.LowerN &&
          e !== C.LowerR &&
          e !== C.LowerT
        )
          throw INVALID;
        i += 2;
        continue;
      }
      i++;
    }
    this.pos = i + 1;
    return escaped;
  }

  /** The decoded string at pos, advancing past it. */
  stringValue(): string {
    const start = this.pos;
    const escaped = this.string();
    return escaped
      ? (JSON.parse(this.text.slice(start, this.pos)) as string)
      : this.text.slice(start + 1, this.pos - 1);
  }

  digits(): void {
    const { text } = this;
    let c = code(text, this.pos);
    if (!(c >= C.Zero && c <= C.Nine)) throw INVALID;
    do c = code(text, ++this.pos);
    while (c >= C.Zero && c <= C.Nine);
  }

  number(): void {
    const { text } = this;
    if (code(text, this.pos) === C.Minus) this.pos++;
    if (code(text, this.pos) === C.Zero) this.pos++;
    else this.digits();
    if (code(text, this.pos) === C.Dot) {
      this.pos++;
      this.digits();
    }
    const e = code(text, this.pos);
    if (e === C.LowerE || e === C.UpperE) {
      const sign = code(text, ++this.pos);
      if (sign === C.Plus || sign === C.Minus) this.pos++;
      this.digits();
    }
  }

  literal(word: string): void {
    if (!this.text.startsWith(word, this.pos)) throw INVALID;
    this.pos += word.length;
  }

  /** Validates a member key and its colon at pos, leaving pos at the member's value. */
  private key(): void {
    if (code(this.text, this.pos) !== C.Quote) throw INVALID;
    this.string();
    this.ws();
    this.expect(C.Colon);
    this.ws();
  }

  /** Validates any value at pos (whitespace already skipped), leaving pos just after it. */
  value(): void {
    const { text, stack } = this;
    let depth = 0;
    for (;;) {
      const c = code(text, this.pos);
      if (c === C.OpenBrace || c === C.OpenBracket) {
        this.pos++;
        this.ws();
        const close = c === C.OpenBrace ? C.CloseBrace : C.CloseBracket;
        if (code(text, this.pos) !== close) {
          stack[depth++] = c;
          if (c === C.OpenBrace) this.key();
          continue;
        }
        this.pos++;
      } else if (c === C.Quote) this.string();
      else if (c === C.LowerT) this.literal('true');
      else if (c === C.LowerF) this.literal('false');
      else if (c === C.LowerN) this.literal('null');
      else this.number();
      // A value is complete: close the containers it completes, or go on to the next member or element.
      for (;;) {
        if (depth === 0) return;
        this.ws();
        const d = code(text, this.pos++);
        const open = stack[depth - 1];
        if (d === C.Comma) {
          this.ws();
          if (open === C.OpenBrace) this.key();
          break;
        }
        if (d !== (open === C.OpenBrace ? C.CloseBrace : C.CloseBracket)) throw INVALID;
        depth--;
      }
    }
  }

  /** Validates an object at pos; `member` is offered each member (key decoded) and may consume its value itself. */
  object(member: ((key: string) => boolean) | undefined): void {
    this.pos++;
    this.ws();
    if (code(this.text, this.pos) === C.CloseBrace) {
      this.pos++;
      return;
    }
    for (;;) {
      if (code(this.text, this.pos) !== C.Quote) throw INVALID;
      const key = member ? this.stringValue() : (this.string(), '');
      this.ws();
      this.expect(C.Colon);
      this.ws();
      if (!member?.(key)) this.value();
      this.ws();
      const c = code(this.text, this.pos++);
      if (c === C.CloseBrace) return;
      if (c !== C.Comma) throw INVALID;
      this.ws();
    }
  }
}
