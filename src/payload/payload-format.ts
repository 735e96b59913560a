/**
 * What a payload format is, apart from any one format (formats.ts and cloudevents.ts implement them): which formats
 * there are, what a format needs to know about a stream, and what it takes from each record.
 */

export type MessageFormat = 'airbyte_envelope' | 'data' | 'airbyte_v2' | 'cloudevents';

/** What a format needs to know about the stream, from the configured catalog. */
export interface FormatStream {
  readonly name: string;
  readonly namespace: string | undefined;
  /** The catalog's `sync_id` for the stream; undefined when the platform sent none. */
  readonly syncId?: number | undefined;
  /** The catalog's `generation_id` for the stream; undefined when the platform sent none (generation 0). */
  readonly generationId?: number | undefined;
}

/** What changes from one record to the next: the parts of the payload that are the record's own. */
export interface PayloadParts {
  /** The record's id, a UUID (record-id.ts); it is written between quotes as is. */
  readonly id: string;
  /** `record.data` exactly as the source wrote it (a JSON object). */
  readonly dataJson: string;
  /** `record.emitted_at` as whole milliseconds, integer JSON text (wholeMilliseconds in emitted-at.ts). */
  readonly emittedAtMs: string;
  /** `record.meta` exactly as the source wrote it, when the record has one. */
  readonly metaJson?: string | undefined;
  /** The record's key rendered for CloudEvents `subject` (keySubject in cloudevents.ts); undefined when it has none. */
  readonly subject?: string | undefined;
}

/** A format prepared for one stream. */
export interface PayloadFormat {
  readonly format: MessageFormat;
  /** The MQTT 5 Content Type property of every payload in this format. */
  readonly contentType: string;
  /** Whether the payload carries the record id; otherwise only an MQTT 5 user property can. */
  readonly carriesId: boolean;
  /** Whether a consumer can tell from the payload alone which stream, and which namespace, it came from. */
  readonly carriesStream: boolean;
  readonly carriesNamespace: boolean;
  render(parts: PayloadParts): string;
}

/** Several records per message (`batch_layout`): none, a JSON array of their payloads, or one payload per line. */
export type BatchLayout = 'none' | 'json_array' | 'jsonl';

/** How each message's payload is compressed (`payload_compression`). */
export type Compression = 'none' | 'gzip' | 'deflate';
