/**
 * The payload formats a record can be published in (`message_format`):
 *
 * - `airbyte_envelope` (default): `{"_airbyte_ab_id","_airbyte_stream","_airbyte_emitted_at","_airbyte_data"}`, the
 *   envelope this connector has always published (and Airbyte's older destinations wrote).
 * - `data`: the record's `data` alone, byte for byte.
 * - `airbyte_v2`: the record as Airbyte's current destinations store it (Destinations V2):
 *   `{"_airbyte_raw_id","_airbyte_extracted_at","_airbyte_meta":{"sync_id","changes"},
 *   "_airbyte_generation_id","_airbyte_data"}`.
 *   Names, types and order follow the Kotlin bulk-load CDK (airbytehq/airbyte, airbyte-cdk/bulk/core/load,
 *   `DestinationRecordToAirbyteValueWithMeta`), and the JSON types are those of Airbyte's object-storage raw records
 *   (docs.airbyte.com/integrations/destinations/s3-migrations, "Upgrading to 1.0.0"): `_airbyte_extracted_at` an
 *   integer of epoch milliseconds (not an ISO string), `_airbyte_generation_id` an integer, `sync_id` an integer.
 *   `changes` is the record's `meta.changes` as the source wrote it, `[]` without one. A catalog without
 *   `generation_id` (older platforms, custom connectors) means generation 0, as in Airbyte's CDKs. A catalog without
 *   `sync_id` gives `"sync_id":null`: Airbyte's CDKs put a made-up 0 or 1 there, which would look like a real job id.
 * - `cloudevents`: a CloudEvents 1.0 event in the JSON format (structured mode), see cloudevents.ts.
 *
 * Every payload is assembled as text from pieces encoded once per stream, with the record's `data` spliced in as the
 * source wrote it: re-serialising would round large integers and long decimals, and parsing every record would cost
 * more than publishing it. `emitted_at` arrives already as whole milliseconds (emitted-at.ts).
 */
import { C, code } from '../text/json-scanner.js';
import { findPath } from '../text/raw-json.js';
import { SystemError } from '../errors.js';
import { structuredCloudEvent, CLOUDEVENTS_CONTENT_TYPE } from './cloudevents.js';
import type { FormatStream, MessageFormat, PayloadFormat } from './payload-format.js';

const JSON_CONTENT_TYPE = 'application/json';

/** A catalog number as JSON text: it is spliced into every payload, so anything but a whole number is refused. */
function catalogInteger(value: number | undefined, fallback: string, field: string, stream: FormatStream): string {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value)) {
    throw new SystemError(
      `The catalog gives stream ${JSON.stringify(stream.name)} a ${field} that is not a whole number`,
    );
  }
  return String(value);
}

/** The `changes` array of a record's `meta`, as written; `[]` when there is no meta, no `changes` or no array there. */
export function metaChanges(metaJson: string | undefined): string {
  if (metaJson === undefined) return '[]';
  const span = findPath(metaJson, ['changes']);
  return span && code(metaJson, span.start) === C.OpenBracket ? metaJson.slice(span.start, span.end) : '[]';
}

function airbyteEnvelope(stream: FormatStream): PayloadFormat {
  const afterId = `","_airbyte_stream":${JSON.stringify(stream.name)},"_airbyte_emitted_at":`;
  return {
    format: 'airbyte_envelope',
    contentType: JSON_CONTENT_TYPE,
    carriesId: true,
    carriesStream: true,
    carriesNamespace: false,
    render: (parts) =>
      '{"_airbyte_ab_id":"' + parts.id + afterId + parts.emittedAtMs + ',"_airbyte_data":' + parts.dataJson + '}',
  };
}

function dataOnly(): PayloadFormat {
  return {
    format: 'data',
    contentType: JSON_CONTENT_TYPE,
    carriesId: false,
    carriesStream: false,
    carriesNamespace: false,
    render: (parts) => parts.dataJson,
  };
}

function airbyteV2(stream: FormatStream): PayloadFormat {
  const syncId = catalogInteger(stream.syncId, 'null', 'sync_id', stream);
  const generationId = catalogInteger(stream.generationId, '0', 'generation_id', stream);
  const metaHead = `,"_airbyte_meta":{"sync_id":${syncId},"changes":`;
  const afterMeta = `},"_airbyte_generation_id":${generationId},"_airbyte_data":`;
  return {
    format: 'airbyte_v2',
    contentType: JSON_CONTENT_TYPE,
    carriesId: true,
    carriesStream: false,
    carriesNamespace: false,
    render: (parts) =>
      '{"_airbyte_raw_id":"' +
      parts.id +
      '","_airbyte_extracted_at":' +
      parts.emittedAtMs +
      metaHead +
      metaChanges(parts.metaJson) +
      afterMeta +
      parts.dataJson +
      '}',
  };
}

/** `format` prepared for `stream`: call once per stream, then `render` for each of its records. */
export function prepareFormat(format: MessageFormat, stream: FormatStream): PayloadFormat {
  switch (format) {
    case 'airbyte_envelope':
      return airbyteEnvelope(stream);
    case 'data':
      return dataOnly();
    case 'airbyte_v2':
      return airbyteV2(stream);
    case 'cloudevents':
      return {
        format,
        contentType: CLOUDEVENTS_CONTENT_TYPE,
        carriesId: true,
        carriesStream: true,
        carriesNamespace: true,
        render: structuredCloudEvent(stream),
      };
  }
}
