/**
 * The fast path for RECORD lines, which are almost all of a sync's input: one pass over the line that validates it
 * as JSON (the grammar `JSON.parse` accepts) and picks out what the connector needs, without building the record's
 * data as objects only to throw them away. It returns undefined for anything it does not handle or does not accept;
 * the caller then falls back to `JSON.parse`, which has the final word on what is valid and how to report it.
 */

export interface ScannedRecord {
  readonly stream: string | undefined;
  readonly namespace: string | undefined;
  readonly dataStart: number;
  readonly dataEnd: number;
  readonly emittedAtStart: number;
  readonly emittedAtEnd: number;
}

class Invalid extends Error {}
const INVALID = new Invalid();

const enum C {
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

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  ws(): void {
    const { text } = this;
    let c = text.charCodeAt(this.pos);
    while (c === C.Space || c === C.Newline || c === C.Return || c === C.Tab) c = text.charCodeAt(++this.pos);
  }

  expect(code: number): void {
    if (this.text.charCodeAt(this.pos) !== code) throw INVALID;
    this.pos++;
  }

  /** Validates a string at pos (at its opening quote); returns whether it contains escapes. */
  string(): boolean {
    const { text } = this;
    let i = this.pos + 1;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === C.Quote) break;
      if (c < 0x20 || Number.isNaN(c)) throw INVALID;
      if (c === C.Backslash) {
        escaped = true;
        const e = text.charCodeAt(i + 1);
        if (e === C.LowerU) {
          if (!isHex(text.charCodeAt(i + 2)) || !isHex(text.charCodeAt(i + 3)) || !isHex(text.charCodeAt(i + 4)) || !isHex(text.charCodeAt(i + 5))) throw INVALID;
          i += 6;
          continue;
        }
        if (e !== C.Quote && e !== C.Backslash && e !== C.Slash && e !== C.LowerB && e !== C.LowerF && e !== C.LowerN && e !== C.LowerR && e !== C.LowerT) throw INVALID;
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
    return escaped ? (JSON.parse(this.text.slice(start, this.pos)) as string) : this.text.slice(start + 1, this.pos - 1);
  }

  digits(): void {
    const { text } = this;
    let c = text.charCodeAt(this.pos);
    if (!(c >= C.Zero && c <= C.Nine)) throw INVALID;
    do c = text.charCodeAt(++this.pos);
    while (c >= C.Zero && c <= C.Nine);
  }

  number(): void {
    const { text } = this;
    if (text.charCodeAt(this.pos) === C.Minus) this.pos++;
    if (text.charCodeAt(this.pos) === C.Zero) this.pos++;
    else this.digits();
    if (text.charCodeAt(this.pos) === C.Dot) {
      this.pos++;
      this.digits();
    }
    const e = text.charCodeAt(this.pos);
    if (e === C.LowerE || e === C.UpperE) {
      const sign = text.charCodeAt(++this.pos);
      if (sign === C.Plus || sign === C.Minus) this.pos++;
      this.digits();
    }
  }

  literal(word: string): void {
    if (!this.text.startsWith(word, this.pos)) throw INVALID;
    this.pos += word.length;
  }

  /** Validates any value at pos (whitespace already skipped). */
  value(): void {
    const c = this.text.charCodeAt(this.pos);
    if (c === C.OpenBrace) this.object(undefined);
    else if (c === C.OpenBracket) this.array();
    else if (c === C.Quote) this.string();
    else if (c === C.LowerT) this.literal('true');
    else if (c === C.LowerF) this.literal('false');
    else if (c === C.LowerN) this.literal('null');
    else this.number();
  }

  array(): void {
    this.pos++;
    this.ws();
    if (this.text.charCodeAt(this.pos) === C.CloseBracket) {
      this.pos++;
      return;
    }
    for (;;) {
      this.value();
      this.ws();
      const c = this.text.charCodeAt(this.pos++);
      if (c === C.CloseBracket) return;
      if (c !== C.Comma) throw INVALID;
      this.ws();
    }
  }

  /** Validates an object at pos; `member` is offered each member (key decoded) and may consume its value itself. */
  object(member: ((key: string) => boolean) | undefined): void {
    this.pos++;
    this.ws();
    if (this.text.charCodeAt(this.pos) === C.CloseBrace) {
      this.pos++;
      return;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== C.Quote) throw INVALID;
      const key = member ? this.stringValue() : (this.string(), '');
      this.ws();
      this.expect(C.Colon);
      this.ws();
      if (!member?.(key)) this.value();
      this.ws();
      const c = this.text.charCodeAt(this.pos++);
      if (c === C.CloseBrace) return;
      if (c !== C.Comma) throw INVALID;
      this.ws();
    }
  }
}

/**
 * The parts of a RECORD line, or undefined when the line is not a well-formed RECORD message with an object
 * `record.data` and a numeric `record.emitted_at` (in which case `JSON.parse` must decide and explain).
 */
export function scanRecord(line: string): ScannedRecord | undefined {
  const s = new Scanner(line);
  let type: string | undefined;
  let stream: string | undefined;
  let namespace: string | undefined;
  let dataStart = -1;
  let dataEnd = -1;
  let emittedAtStart = -1;
  let emittedAtEnd = -1;
  let recordSeen = false;
  const recordMember = (key: string): boolean => {
    const c = line.charCodeAt(s.pos);
    // A later duplicate of a key replaces the earlier value, as in JSON.parse, even when it is of the wrong type.
    if (key === 'data') {
      dataStart = -1;
      if (c !== C.OpenBrace) return false;
      dataStart = s.pos;
      s.object(undefined);
      dataEnd = s.pos;
      return true;
    }
    if (key === 'emitted_at') {
      emittedAtStart = -1;
      if (c !== C.Minus && !(c >= C.Zero && c <= C.Nine)) return false;
      emittedAtStart = s.pos;
      s.number();
      emittedAtEnd = s.pos;
      return true;
    }
    if (key === 'stream' || key === 'namespace') {
      const value = c === C.Quote ? s.stringValue() : undefined;
      if (key === 'stream') stream = value;
      else namespace = value;
      return value !== undefined;
    }
    return false;
  };
  try {
    s.ws();
    if (line.charCodeAt(s.pos) !== C.OpenBrace) return undefined;
    s.object((key) => {
      const c = line.charCodeAt(s.pos);
      if (key === 'type') {
        type = c === C.Quote ? s.stringValue() : undefined;
        return type !== undefined;
      }
      if (key === 'record' && c === C.OpenBrace) {
        // As in JSON.parse, a later "record" replaces an earlier one entirely.
        stream = namespace = undefined;
        dataStart = dataEnd = emittedAtStart = emittedAtEnd = -1;
        recordSeen = true;
        s.object(recordMember);
        return true;
      }
      if (key === 'record') recordSeen = false;
      return false;
    });
    s.ws();
    if (s.pos !== line.length) return undefined;
  } catch (err) {
    // RangeError: nesting deeper than the stack allows; JSON.parse copes with it.
    if (err === INVALID || err instanceof RangeError) return undefined;
    throw err;
  }
  if (type !== 'RECORD' || !recordSeen || dataStart < 0 || emittedAtStart < 0) return undefined;
  return { stream, namespace, dataStart, dataEnd, emittedAtStart, emittedAtEnd };
}
