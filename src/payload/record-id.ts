/**
 * The id every published record carries (`_airbyte_ab_id`, `_airbyte_raw_id`, the CloudEvents `id`, an MQTT 5 user
 * property), in one of two kinds:
 *
 * - `random`: a UUID v4 from node:crypto, unique per record. A retried sync that reads a record again gives it a new
 *   id.
 * - `deterministic`: a UUID v5 (RFC 9562, SHA-1) of the record's identity, so a record that a retried sync reads again
 *   gets the id it had the first time and consumers can drop it as a duplicate. The identity is the stream plus either
 *   - the record's primary key and cursor values, when the catalog declares both and the record has a string, number
 *     or boolean in each of those fields: that pair is how the source itself tells one version of a row from another;
 *   - or else its `data` exactly as the source wrote it. A primary key alone is not used, because an updated row
 *     would get the id of its earlier version and consumers would drop the update as a duplicate; a cursor alone is
 *     shared by many rows. Two records with identical data in one stream get one id: they are indistinguishable.
 *
 * The name that is hashed is JSON text, so its parts can never run into each other: strings are quoted and escaped,
 * and the array brackets and commas separate the parts:
 *
 *     ["key",<namespace>,<stream>,[<primary key values>],[<cursor value>]]
 *     ["data",<namespace>,<stream>,<data as written>]
 *
 * A missing namespace is written `""`, as an empty one is the same stream (catalog.ts). Key values are written so that
 * equal values give equal names however the source spelled them, and different values never do: a string as
 * `JSON.stringify` writes it (`"\u0041"` and `"A"` are the same string), a number as exact decimal digits and a power
 * of ten with no redundant zeros (`1`, `1.0` and `10e-1` are the same number, `12345678901234567890` keeps every
 * digit), a boolean as written. `1` and `"1"` stay different, and so do the same values in another stream.
 *
 * The UUID v5 namespace is this connector's own: RECORD_ID_NAMESPACE, itself the UUID v5 of the URL
 * `https://docs.airbyte.com/integrations/destinations/mqtt#record_id` in RFC 9562's URL namespace, so anyone can
 * recompute an id outside the connector.
 *
 * The name is written into one reused buffer and hashed with the one-shot `crypto.hash`: measured 1.5-3x faster than
 * a Hash object per record (Node 20, 2 cores). Extracting the key values costs about one more scan of the data, which
 * makes ids by key slower than ids by data bytes for small records (scripts/bench/formats.ts).
 */
import * as crypto from 'node:crypto';
import { isScalar, type KeyPath, type KeyValue, keyValues } from './key-values.js';

export type RecordIdKind = 'random' | 'deterministic';

/** uuid5(URL namespace, "https://docs.airbyte.com/integrations/destinations/mqtt#record_id"). */
export const RECORD_ID_NAMESPACE = '4ab4b9d0-3f74-5a79-b60d-0d72230b7322';

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidBytes(uuid: string): Buffer {
  if (!UUID_TEXT.test(uuid)) throw new TypeError(`not a UUID: ${JSON.stringify(uuid)}`);
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

const VARIANT = '89ab';

/**
 * The UUID v5 made of a SHA-1 digest in hex: its first 128 bits with the version and variant bits set (RFC 9562 5.5).
 */
function uuidFromSha1(hex: string): string {
  return (
    hex.slice(0, 8) +
    '-' +
    hex.slice(8, 12) +
    '-5' +
    hex.slice(13, 16) +
    '-' +
    VARIANT[parseInt(hex.charAt(16), 16) & 3] +
    hex.slice(17, 20) +
    '-' +
    hex.slice(20, 32)
  );
}

/** UUID v5 of `name` (UTF-8 when a string) in `namespace`, as RFC 9562 section 5.5 defines it. */
export function uuidV5(namespace: string, name: string | Uint8Array): string {
  return uuidFromSha1(crypto.createHash('sha1').update(uuidBytes(namespace)).update(name).digest('hex'));
}

/** Larger names are hashed in pieces rather than kept in a buffer that would then stay that large. */
const SCRATCH_LIMIT = 64 * 1024;

/**
 * UUID v5 of names given in up to three pieces, in one namespace. The namespace and the name are written into a
 * reused buffer and hashed in one call: no Hash object and no concatenated copy of a record's data per id.
 */
class NameHasher {
  private readonly namespace: Buffer;
  private scratch: Buffer;

  constructor(namespace: string) {
    this.namespace = uuidBytes(namespace);
    this.scratch = Buffer.alloc(1024);
    this.namespace.copy(this.scratch);
  }

  uuid(a: string, b = '', c = ''): string {
    // Each UTF-16 unit takes at most 3 bytes in UTF-8.
    const bound = 16 + 3 * (a.length + b.length + c.length);
    if (typeof crypto.hash !== 'function' || bound > SCRATCH_LIMIT) {
      return uuidFromSha1(crypto.createHash('sha1').update(this.namespace).update(a).update(b).update(c).digest('hex'));
    }
    if (bound > this.scratch.length) {
      this.scratch = Buffer.alloc(Math.min(SCRATCH_LIMIT, 2 ** Math.ceil(Math.log2(bound))));
      this.namespace.copy(this.scratch);
    }
    let end = 16 + this.scratch.write(a, 16);
    end += this.scratch.write(b, end);
    end += this.scratch.write(c, end);
    return uuidFromSha1(crypto.hash('sha1', this.scratch.subarray(0, end), 'hex'));
  }
}

let hasher: NameHasher | undefined;

const JSON_NUMBER = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

/** canonicalNumber of an integer without a regular expression or BigInt: the common case of a numeric key. */
function canonicalInteger(json: string): string | undefined {
  const start = json.charCodeAt(0) === 0x2d ? 1 : 0;
  if (json.length === start || (json.charCodeAt(start) === 0x30 && json.length > start + 1)) return undefined;
  let zeros = 0;
  for (let i = start; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
    zeros = c === 0x30 ? zeros + 1 : 0;
  }
  if (zeros === json.length - start) return '0';
  return `${json.slice(0, json.length - zeros)}e${zeros}`;
}

/**
 * A JSON number as exact decimal digits times a power of ten, without redundant zeros: `15e-1` for `1.5`, `1.50` and
 * `0.15e1`; `0` for every zero. Two spellings of one value give the same text, two values never do.
 */
export function canonicalNumber(json: string): string {
  const fast = canonicalInteger(json);
  if (fast !== undefined) return fast;
  const match = JSON_NUMBER.exec(json);
  if (!match) throw new TypeError('not a JSON number');
  const [, sign, integer = '', fraction = '', exponent = '0'] = match;
  const digits = integer + fraction;
  let first = 0;
  while (first < digits.length && digits.charCodeAt(first) === 0x30) first++;
  if (first === digits.length) return '0';
  let last = digits.length;
  while (digits.charCodeAt(last - 1) === 0x30) last--;
  // BigInt keeps even an absurd exponent exact, so no two values can meet.
  const power = BigInt(exponent) - BigInt(fraction.length) + BigInt(digits.length - last);
  return `${sign}${digits.slice(first, last)}e${power}`;
}

function canonicalString(json: string): string {
  // Without a backslash, the text is already what JSON.stringify writes for the string; with one, re-escape it.
  return json.includes('\\') ? JSON.stringify(JSON.parse(json) as string) : json;
}

/** A string, number or boolean key value in the form the id's name uses (see the module comment). */
export function canonicalKeyValue(value: KeyValue): string {
  switch (value.kind) {
    case 'string':
      return canonicalString(value.json);
    case 'number':
      return canonicalNumber(value.json);
    case 'boolean':
      return value.json;
    case 'null':
    case 'object':
    case 'array':
    case 'missing':
      throw new TypeError(`a ${value.kind} key value has no canonical form`);
  }
}

export interface IdStream {
  readonly name: string;
  readonly namespace: string | undefined;
  /** The configured stream's primary key (each element a path into `data`); empty when it has none. */
  readonly primaryKey: readonly KeyPath[];
  /** The configured stream's cursor field; undefined or empty when it has none. */
  readonly cursorField?: KeyPath | undefined;
}

export interface RecordIds {
  readonly kind: RecordIdKind;
  /**
   * The fields a deterministic id is made from: the primary key's paths, then the cursor's. Empty when ids are random
   * or made from the data. The caller that extracts these values anyway (for `{key}` topics) can pass them to `idOf`.
   */
  readonly keyPaths: readonly KeyPath[];
  /** The id of one record; `values` must be `keyValues(dataJson, keyPaths)` when given. */
  idOf(dataJson: string, values?: readonly KeyValue[]): string;
}

/** Prepared once per stream: everything constant about the stream is encoded here, not per record. */
export function recordIds(kind: RecordIdKind, stream: IdStream): RecordIds {
  if (kind === 'random') return { kind, keyPaths: [], idOf: () => crypto.randomUUID() };
  const ids = (hasher ??= new NameHasher(RECORD_ID_NAMESPACE));
  const streamJson = `${JSON.stringify(stream.namespace ?? '')},${JSON.stringify(stream.name)}`;
  const dataPrefix = `["data",${streamJson},`;
  const cursor = stream.cursorField ?? [];
  const byKey = stream.primaryKey.length > 0 && cursor.length > 0;
  const keyPaths = byKey ? [...stream.primaryKey, cursor] : [];
  const keyPrefix = `["key",${streamJson},[`;
  const keyCount = stream.primaryKey.length;
  return {
    kind,
    keyPaths,
    idOf(dataJson, given) {
      if (!byKey) return ids.uuid(dataPrefix, dataJson, ']');
      const values = given ?? keyValues(dataJson, keyPaths);
      if (!values.every(isScalar)) return ids.uuid(dataPrefix, dataJson, ']');
      let name = keyPrefix;
      for (let i = 0; i < values.length; i++) {
        if (i === keyCount) name += '],[';
        else if (i > 0) name += ',';
        name += canonicalKeyValue(values[i] as KeyValue);
      }
      return ids.uuid(name + ']]');
    },
  };
}
