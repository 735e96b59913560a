/**
 * The fast path for RECORD lines, which are almost all of a sync's input: one pass over the line that validates it
 * as JSON (the grammar `JSON.parse` accepts) and picks out what the connector needs, without building the record's
 * data as objects only to throw them away. It returns undefined for anything it does not handle or does not accept;
 * the caller then falls back to `JSON.parse`, which has the final word on what is valid and how to report it.
 */

interface ScannedRecord {
  readonly stream: string | undefined;
  readonly namespace: string | undefined;
  readonly dataStart: number;
  readonly dataEnd: number;
  readonly emittedAtStart: number;
  readonly emittedAtEnd: number;
  /** `record.meta` when it is an object (its `changes` go into some formats); -1 when absent. */
  readonly metaStart: number;
  readonly metaEnd: number;
}

import { C, INVALID, JsonScanner, code } from '../text/json-scanner.js';

/**
 * The parts of a RECORD line, or undefined when the line is not a well-formed RECORD message with an object
 * `record.data` and a numeric `record.emitted_at` (in which case `JSON.parse` must decide and explain).
 */
export function scanRecord(line: string): ScannedRecord | undefined {
  const s = new JsonScanner(line);
  let type: string | undefined;
  let stream: string | undefined;
  let namespace: string | undefined;
  let dataStart = -1;
  let dataEnd = -1;
  let emittedAtStart = -1;
  let emittedAtEnd = -1;
  let metaStart = -1;
  let metaEnd = -1;
  let recordSeen = false;
  const recordMember = (key: string): boolean => {
    const c = code(line, s.pos);
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
    if (key === 'meta') {
      metaStart = -1;
      if (c !== C.OpenBrace) return false;
      metaStart = s.pos;
      s.object(undefined);
      metaEnd = s.pos;
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
    if (code(line, s.pos) !== C.OpenBrace) return undefined;
    s.object((key) => {
      const c = code(line, s.pos);
      if (key === 'type') {
        type = c === C.Quote ? s.stringValue() : undefined;
        return type !== undefined;
      }
      if (key === 'record' && c === C.OpenBrace) {
        // As in JSON.parse, a later "record" replaces an earlier one entirely.
        stream = namespace = undefined;
        dataStart = dataEnd = emittedAtStart = emittedAtEnd = metaStart = metaEnd = -1;
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
  return { stream, namespace, dataStart, dataEnd, emittedAtStart, emittedAtEnd, metaStart, metaEnd };
}
