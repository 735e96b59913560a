/** Builders for Airbyte input lines and catalogs used across tests. */
import type { ConfiguredStream } from '../../src/airbyte/catalog.js';

/** A configured stream as the catalog reader returns it: key `id`, mode append, no generations, unless overridden. */
export function configuredStream(name: string, overrides: Partial<ConfiguredStream> = {}): ConfiguredStream {
  return {
    name,
    namespace: undefined,
    primaryKey: [['id']],
    cursorField: [],
    mode: 'append',
    syncMode: 'full_refresh',
    resumable: false,
    generationId: 0,
    minimumGenerationId: 0,
    syncId: undefined,
    ...overrides,
  };
}

export interface StreamId {
  readonly name: string;
  readonly namespace?: string;
}

export function catalogOf(streams: readonly StreamId[]): Record<string, unknown> {
  return {
    streams: streams.map(({ name, namespace }) => ({
      stream: {
        name,
        ...(namespace ? { namespace } : {}),
        json_schema: { type: 'object' },
        supported_sync_modes: ['full_refresh', 'incremental'],
      },
      sync_mode: 'incremental',
      destination_sync_mode: 'append',
    })),
  };
}

export function recordLine(
  stream: StreamId,
  data: Record<string, unknown> | string,
  emittedAt = 1_700_000_000_000,
): string {
  const dataJson = typeof data === 'string' ? data : JSON.stringify(data);
  const ns = stream.namespace ? `,"namespace":${JSON.stringify(stream.namespace)}` : '';
  return `{"type":"RECORD","record":{"stream":${JSON.stringify(stream.name)}${ns},"emitted_at":${emittedAt},"data":${dataJson}}}`;
}

export function streamStateLine(stream: StreamId, cursor: unknown, extra = ''): string {
  const descriptor = JSON.stringify({
    name: stream.name,
    ...(stream.namespace ? { namespace: stream.namespace } : {}),
  });
  return `{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":${descriptor},"stream_state":{"cursor":${JSON.stringify(cursor)}}}${extra}}}`;
}

export function globalStateLine(cursor: unknown, extra = ''): string {
  return `{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"cursor":${JSON.stringify(cursor)}},"stream_states":[]}${extra}}}`;
}

export function legacyStateLine(cursor: unknown, extra = ''): string {
  return `{"type":"STATE","state":{"data":{"cursor":${JSON.stringify(cursor)}}${extra}}}`;
}
