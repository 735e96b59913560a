/**
 * Parsing one line of `write` input into the messages the connector acts on. Structure comes from `JSON.parse`
 * (fast, and it validates); the values that must survive exactly, record data and whole state messages, are kept as
 * the source's own text (see raw-json.ts).
 */
import { InputError } from '../errors.js';
import { findPath, type Span } from '../text/raw-json.js';
import { scanRecord } from './record-scan.js';

interface RecordMessage {
  readonly kind: 'record';
  readonly stream: string;
  readonly namespace: string | undefined;
  /** `record.emitted_at` as written by the source. */
  readonly emittedAtJson: string;
  /** `record.data` as written by the source, every number exact. */
  readonly dataJson: string;
  /** `record.meta` as written by the source (it carries `changes`), when it is an object. */
  readonly metaJson: string | undefined;
}

/**
 * The platform's word that a stream's source finished successfully: a TRACE STREAM_STATUS COMPLETE, appended for every
 * stream at the end of input, and only when the source succeeded. Destructive steps (clearing stale retained keys)
 * wait for it.
 */
interface StreamCompleteMessage {
  readonly kind: 'stream_complete';
  readonly stream: string;
  readonly namespace: string | undefined;
}

type StateScope =
  | { readonly type: 'STREAM'; readonly stream: string; readonly namespace: string | undefined }
  | { readonly type: 'GLOBAL' }
  | { readonly type: 'LEGACY' };

export interface StateMessage {
  readonly kind: 'state';
  readonly scope: StateScope;
  /** The whole input line, so every field (unknown ones, `id`, `sourceStats`, big cursors) is echoed unchanged. */
  readonly line: string;
  /** Where the `state` object sits in `line`. */
  readonly stateSpan: Span;
}

interface OtherMessage {
  readonly kind: 'other';
  readonly type: string;
}

type InputMessage = RecordMessage | StateMessage | StreamCompleteMessage | OtherMessage;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A description of why the line is not JSON that never quotes the line: V8's own message includes a snippet of it. */
function describeSyntaxError(err: unknown, line: string): string {
  const position = err instanceof Error ? /position (\d+)/.exec(err.message)?.[1] : undefined;
  const where = position === undefined ? '' : `, error at character ${Number(position) + 1}`;
  return `is not valid JSON (${line.length} characters${where}); every input line must be one Airbyte message`;
}

export function parseLine(line: string, lineNumber: number): InputMessage {
  const scanned = scanRecord(line);
  if (scanned?.stream) {
    return {
      kind: 'record',
      stream: scanned.stream,
      namespace: scanned.namespace,
      emittedAtJson: line.slice(scanned.emittedAtStart, scanned.emittedAtEnd),
      dataJson: line.slice(scanned.dataStart, scanned.dataEnd),
      metaJson: scanned.metaStart < 0 ? undefined : line.slice(scanned.metaStart, scanned.metaEnd),
    };
  }
  // Everything else, and every line the fast path does not accept, goes through JSON.parse, which decides.
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (err) {
    throw new InputError(lineNumber, describeSyntaxError(err, line));
  }
  if (!isObject(message) || typeof message.type !== 'string') {
    throw new InputError(lineNumber, 'is not an Airbyte message: it must be a JSON object with a string "type"');
  }
  switch (message.type) {
    case 'RECORD':
      return parseRecord(message, line, lineNumber);
    case 'STATE':
      return parseState(message, line, lineNumber);
    case 'TRACE':
      return parseStreamStatus(message) ?? { kind: 'other', type: message.type };
    default:
      return { kind: 'other', type: message.type };
  }
}

function parseRecord(message: JsonObject, line: string, lineNumber: number): RecordMessage {
  const record = message.record;
  if (!isObject(record)) throw new InputError(lineNumber, 'RECORD message has no "record" object');
  if (typeof record.stream !== 'string' || record.stream === '') {
    throw new InputError(lineNumber, 'RECORD message has no "record.stream" name');
  }
  if (!isObject(record.data)) {
    throw new InputError(lineNumber, `RECORD of stream "${record.stream}" has no "record.data" object`);
  }
  if (typeof record.emitted_at !== 'number') {
    throw new InputError(lineNumber, `RECORD of stream "${record.stream}" has no numeric "record.emitted_at"`);
  }
  // JSON.parse accepted what the scanner declined only if the scanner is wrong: say so rather than guess.
  const scanned = scanRecord(line);
  if (!scanned) throw new InputError(lineNumber, 'RECORD message could not be located in the line');
  return {
    kind: 'record',
    stream: record.stream,
    namespace: optionalString(record.namespace),
    emittedAtJson: line.slice(scanned.emittedAtStart, scanned.emittedAtEnd),
    dataJson: line.slice(scanned.dataStart, scanned.dataEnd),
    metaJson: scanned.metaStart < 0 ? undefined : line.slice(scanned.metaStart, scanned.metaEnd),
  };
}

/** A STREAM_STATUS COMPLETE trace, or undefined for any other TRACE (which carries nothing the connector acts on). */
function parseStreamStatus(message: JsonObject): StreamCompleteMessage | undefined {
  const trace = message.trace;
  if (!isObject(trace) || trace.type !== 'STREAM_STATUS' || !isObject(trace.stream_status)) return undefined;
  const status = trace.stream_status;
  const descriptor = status.stream_descriptor;
  if (status.status !== 'COMPLETE' || !isObject(descriptor) || typeof descriptor.name !== 'string') return undefined;
  return { kind: 'stream_complete', stream: descriptor.name, namespace: optionalString(descriptor.namespace) };
}

function parseState(message: JsonObject, line: string, lineNumber: number): StateMessage {
  const state = message.state;
  const stateSpan = findPath(line, ['state']);
  if (!isObject(state) || !stateSpan) throw new InputError(lineNumber, 'STATE message has no "state" object');
  return { kind: 'state', scope: stateScope(state, lineNumber), line, stateSpan };
}

function stateScope(state: JsonObject, lineNumber: number): StateScope {
  const type = state.type ?? 'LEGACY';
  switch (type) {
    case 'STREAM': {
      const stream = isObject(state.stream) ? state.stream : undefined;
      const descriptor = stream && isObject(stream.stream_descriptor) ? stream.stream_descriptor : undefined;
      if (!descriptor || typeof descriptor.name !== 'string') {
        throw new InputError(lineNumber, 'STREAM state has no "stream.stream_descriptor.name"');
      }
      return { type: 'STREAM', stream: descriptor.name, namespace: optionalString(descriptor.namespace) };
    }
    case 'GLOBAL': {
      // Echoed as it came: a global state without its stream states would be refused by the platform on the way out.
      const global = isObject(state.global) ? state.global : undefined;
      if (!global || !Array.isArray(global.stream_states))
        throw new InputError(lineNumber, 'GLOBAL state has no "global.stream_states" list');
      return { type: 'GLOBAL' };
    }
    case 'LEGACY':
      if (state.data !== undefined && !isObject(state.data))
        throw new InputError(lineNumber, 'LEGACY state has a "data" that is not an object');
      return { type: 'LEGACY' };
    default:
      throw new InputError(
        lineNumber,
        'STATE has unknown type ' +
          `${typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : `of JSON type ${typeof type}`}` +
          '; expected STREAM, GLOBAL or LEGACY',
      );
  }
}
