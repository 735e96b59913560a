/**
 * The JSON document published for each record. It is assembled as text so that `_airbyte_data` is the source's own
 * JSON, byte for byte: re-serialising would round large integers and long decimals.
 */
import { v4 as uuidv4 } from 'uuid';

interface EnvelopeParts {
  /** The stream name, already encoded as a JSON string (encoded once per stream, not per record). */
  readonly streamJson: string;
  readonly emittedAtJson: string;
  readonly dataJson: string;
}

export function buildEnvelope(parts: EnvelopeParts, id: string = uuidv4()): string {
  return (
    '{"_airbyte_ab_id":"' +
    id +
    '","_airbyte_stream":' +
    parts.streamJson +
    ',"_airbyte_emitted_at":' +
    parts.emittedAtJson +
    ',"_airbyte_data":' +
    parts.dataJson +
    '}'
  );
}
