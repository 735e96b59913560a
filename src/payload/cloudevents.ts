/**
 * Records as CloudEvents 1.0 (github.com/cloudevents/spec: spec.md, formats/json-format.md,
 * bindings/mqtt-protocol-binding.md).
 *
 * Structured mode, the `cloudevents` message format: the payload is one event in the JSON format,
 *
 *     {"specversion":"1.0","id":<record id>,"source":<stream URI>,"type":"io.airbyte.record",
 *      "subject":<record key>,"time":<emitted_at>,"datacontenttype":"application/json","data":<data as written>}
 *
 * and with MQTT 5 the Content Type `application/cloudevents+json` (the binding's rule; with MQTT 3.1.1 it is implied).
 *
 * - `source` says which stream the record belongs to, and stays the same from sync to sync: `airbyte:<stream>`, or
 *   `airbyte:<namespace>/<stream>` when the stream has a namespace, each name percent-encoded as a URI path segment
 *   (encodeURIComponent), so `a/b` without namespace (`airbyte:a%2Fb`) and stream `b` in namespace `a` (`airbyte:a/b`)
 *   stay apart. It is an absolute URI, as the spec recommends, with no authority part: RFC 3986 treats an authority as
 *   a host and lets it be lower-cased, which would merge namespaces that differ in case.
 * - `id` is the record id (record-id.ts). The spec asks that `source` + `id` be unique per distinct event and lets
 *   consumers treat a repeated pair as a duplicate: random ids are unique, and deterministic ids repeat exactly when
 *   a retried sync sends a record again.
 * - `subject` is the record's key, for filtering without reading `data` (the spec's own example is a client id), and is
 *   left out when the stream has no primary key or the record's key is unusable (see keySubject).
 * - `time` is `emitted_at`, when the source read the record, in RFC 3339 with milliseconds; the spec allows a time
 *   other than the occurrence's as long as one source is consistent. Left out for an instant outside the years
 *   0000-9999, which RFC 3339 cannot write.
 * - `data` is the record's `data` as the source wrote it; with `datacontenttype` `application/json` the JSON format
 *   carries it as a JSON value, not a string.
 *
 * Binary mode (MQTT 5 only: the payload is `data` alone and every other attribute a user property) is not offered.
 * `id`, `time` and `subject` change per record, and the per-message user properties packets.ts encodes carry ASCII
 * values only (record ids and times), while a subject is a key value in any script; structured mode works on every
 * MQTT version and with every consumer.
 */
import type { FormatStream, PayloadParts } from './payload-format.js';
import { rfc3339 } from './emitted-at.js';
import { isScalar, type KeyValue, keyValueText } from './key-values.js';

export const CLOUDEVENTS_TYPE = 'io.airbyte.record';
/** The MQTT 5 Content Type of a structured-mode event in the JSON format. */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';
/** `datacontenttype`: records' data is JSON. */
const DATA_CONTENT_TYPE = 'application/json';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** encodeURIComponent, with lone surrogates (which it refuses, having no UTF-8 form) as U+FFFD. */
function encodeSegment(name: string): string {
  return encodeURIComponent(name.replace(LONE_SURROGATE, '\ufffd'));
}

export function cloudEventsSource(namespace: string | undefined, name: string): string {
  return namespace ? `airbyte:${encodeSegment(namespace)}/${encodeSegment(name)}` : `airbyte:${encodeSegment(name)}`;
}

/**
 * What `subject` escapes in a key value: `/` (it separates the fields of a composite key) and `%` (it starts an
 * escape), so the key can be read back; and what a CloudEvents String must not contain: control characters
 * (U+0000-U+001F, U+007F-U+009F), Unicode noncharacters and unpaired surrogates.
 */
const SUBJECT_ESCAPED = /[%/\p{Cc}\p{Noncharacter_Code_Point}]|\p{Cs}/gu;

function escapeSubjectChar(char: string): string {
  // An unpaired surrogate has no UTF-8 form: it is written as U+FFFD, the one case where two keys can meet.
  return /\p{Cs}/u.test(char) ? '%EF%BF%BD' : encodeURIComponent(char);
}

/**
 * The record's key as CloudEvents `subject`: its values in primary-key order, joined by `/`, strings by their content
 * and numbers and booleans as written, each percent-encoded as SUBJECT_ESCAPED says (`{"org":"a/b","id":7}` keyed by
 * org and id gives `a%2Fb/7`). Undefined when there is no key, a value is missing, null, an object or an array, or the
 * subject would be empty (a single empty string): CloudEvents requires a non-empty subject or none.
 */
export function keySubject(values: readonly KeyValue[]): string | undefined {
  if (values.length === 0 || !values.every(isScalar)) return undefined;
  const parts = values.map((value) => {
    // Numbers and booleans are digits, signs, dots and letters: nothing to escape.
    if (value.kind !== 'string') return value.json;
    return keyValueText(value).replace(SUBJECT_ESCAPED, escapeSubjectChar);
  });
  const subject = parts.join('/');
  return subject === '' ? undefined : subject;
}

/** Structured-mode events of `stream`: the `render` of the `cloudevents` format. */
export function structuredCloudEvent(stream: FormatStream): (parts: PayloadParts) => string {
  const afterId =
    `","source":${JSON.stringify(cloudEventsSource(stream.namespace, stream.name))},` + `"type":"${CLOUDEVENTS_TYPE}"`;
  const beforeData = `,"datacontenttype":"${DATA_CONTENT_TYPE}","data":`;
  return (parts) => {
    const time = rfc3339(parts.emittedAtMs);
    const subject =
      parts.subject === undefined || parts.subject === '' ? '' : `,"subject":${JSON.stringify(parts.subject)}`;
    return (
      '{"specversion":"1.0","id":"' +
      parts.id +
      afterId +
      subject +
      (time === undefined ? '' : `,"time":"${time}"`) +
      beforeData +
      parts.dataJson +
      '}'
    );
  };
}
