/**
 * The configured catalog: which streams this sync may carry, each with its keys, sync mode and generations, checked
 * before the first record is read, so that a catalog the connector cannot honour fails the sync before anything is
 * published. What each stream becomes on the broker is sync/routes.ts's business.
 */
import { readFile } from 'node:fs/promises';
import { supportedSyncModes } from '../config/spec.js';
import { ConfigError, SystemError } from '../errors.js';

/** A primary key: each element is the path of one key field inside the record's `data`. */
export type PrimaryKey = readonly (readonly string[])[];

/**
 * The sync modes that mean something on the broker, as the spec's `supported_destination_sync_modes` declares them:
 * only values of the protocol's DestinationSyncMode, or the platform cannot read the spec at all. "Overwrite +
 * Deduped" is a choice the platform itself offers in its UI for a destination that declares these three and
 * refreshes; it arrives as `append_dedup` with a truncating generation (or as `overwrite` without refreshes).
 */
export const DECLARED_SYNC_MODES = ['append', 'append_dedup', 'overwrite'] as const;
/**
 * What a catalog may ask for: the declared modes, and `overwrite_dedup`, which no platform sends but means overwrite.
 */
const ACCEPTED_SYNC_MODES = [...DECLARED_SYNC_MODES, 'overwrite_dedup'] as const;
export type SyncMode = (typeof ACCEPTED_SYNC_MODES)[number];

/** What the configured catalog says about a stream, checked. */
export interface ConfiguredStream {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly primaryKey: PrimaryKey;
  /** The cursor field's path into `data`; empty when the stream has none. */
  readonly cursorField: readonly string[];
  readonly mode: SyncMode;
  /** How the source reads the stream: everything every sync (`full_refresh`), or what changed (`incremental`). */
  readonly syncMode: 'full_refresh' | 'incremental';
  /**
   * The source can resume the stream from a state within one job (`stream.is_resumable`). The platform keeps the
   * generation of such a full refresh, as of every incremental stream, across the attempts of a job; any other full
   * refresh gets a new generation with every attempt.
   */
  readonly resumable: boolean;
  /** The generation this sync writes (0 when the platform does not say). */
  readonly generationId: number;
  /** Data of generations below this may be cleared once the stream completes (0: nothing may be). */
  readonly minimumGenerationId: number;
  /** The platform's job id, the same for every attempt; undefined when the catalog has none. */
  readonly syncId: number | undefined;
}

/** One string per (namespace, stream) pair; a missing namespace and an empty one are the same stream. */
export function streamKey(namespace: string | undefined | null, name: string): string {
  return `${namespace ?? ''}\u0000${name}`;
}

export function describeStream(namespace: string | undefined, name: string): string {
  return namespace ? `"${namespace}.${name}"` : `"${name}"`;
}

function isKeyPath(path: unknown): path is string[] {
  return Array.isArray(path) && path.length > 0 && path.every((part) => typeof part === 'string');
}

/** `primary_key` of the configured stream, else the source-defined one; a malformed key names the stream. */
function primaryKeyOf(
  entry: { primary_key?: unknown; stream?: { source_defined_primary_key?: unknown } },
  name: string,
  source: string,
): PrimaryKey {
  const declared = entry.primary_key ?? entry.stream?.source_defined_primary_key;
  if (declared === undefined || declared === null) return [];
  if (!Array.isArray(declared) || !declared.every(isKeyPath)) {
    throw new SystemError(
      `The catalog ${source} gives stream "${name}" a primary key that is not a list of field paths (lists of strings)`,
    );
  }
  return declared;
}

export async function readCatalog(path: string): Promise<ConfiguredStream[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the catalog file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseCatalog(text, path);
}

function parseCatalog(text: string, source: string): ConfiguredStream[] {
  let catalog: unknown;
  try {
    catalog = JSON.parse(text);
  } catch {
    throw new SystemError(`The catalog ${source} is not valid JSON`);
  }
  const streams = (catalog as { streams?: unknown } | null)?.streams;
  if (!Array.isArray(streams)) throw new SystemError(`The catalog ${source} has no "streams" list`);
  return streams.map((entry: unknown, index) => {
    const configured = (entry ?? {}) as CatalogEntry;
    const stream = configured.stream;
    if (typeof stream?.name !== 'string' || stream.name === '') {
      throw new SystemError(`The catalog ${source} has no stream name at streams[${index}].stream.name`);
    }
    const namespace = typeof stream.namespace === 'string' && stream.namespace !== '' ? stream.namespace : undefined;
    const name = stream.name;
    const cursor = configured.cursor_field;
    return {
      name,
      namespace,
      primaryKey: primaryKeyOf(configured, name, source),
      cursorField: isKeyPath(cursor) ? cursor : [],
      syncMode: configured.sync_mode === 'incremental' ? 'incremental' : 'full_refresh',
      resumable: stream.is_resumable === true,
      ...generationsOf(configured, describeStream(namespace, name)),
      mode: syncModeOf(configured.destination_sync_mode, describeStream(namespace, name)),
    };
  });
}

interface CatalogEntry {
  readonly primary_key?: unknown;
  readonly cursor_field?: unknown;
  readonly destination_sync_mode?: unknown;
  readonly generation_id?: unknown;
  readonly minimum_generation_id?: unknown;
  readonly sync_id?: unknown;
  readonly sync_mode?: unknown;
  readonly stream?: {
    name?: unknown;
    namespace?: unknown;
    source_defined_primary_key?: unknown;
    is_resumable?: unknown;
  };
}

/**
 * The stream's sync mode. A catalog without one is from a platform older than sync modes: append. A mode the spec
 * does not declare fails the sync before anything is published (the platform does not enforce the spec's list), so
 * `update`, `soft_delete` or a typo are never written as if they were `append`.
 */
function syncModeOf(mode: unknown, stream: string): SyncMode {
  if (mode === undefined || mode === null) return 'append';
  if (typeof mode !== 'string' || !(ACCEPTED_SYNC_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(
      `Stream ${stream} asks for the sync mode ${JSON.stringify(mode)}, which this destination does not support ` +
        `(it supports ${supportedSyncModes().join(', ')}). ` +
        'Choose one of those for the stream in the connection settings.',
    );
  }
  return mode as SyncMode;
}

function wholeNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** generation_id, minimum_generation_id and sync_id; absent on platforms without refreshes. */
function generationsOf(
  entry: CatalogEntry,
  stream: string,
): Pick<ConfiguredStream, 'generationId' | 'minimumGenerationId' | 'syncId'> {
  const generationId = wholeNumber(entry.generation_id) ?? 0;
  const minimumGenerationId = wholeNumber(entry.minimum_generation_id) ?? 0;
  if (minimumGenerationId > 0 && minimumGenerationId !== generationId) {
    // Airbyte knows two refreshes: truncate (minimum == generation) and merge (minimum 0). Anything between would
    // ask to clear data of a generation newer than the minimum but older than this one, which no platform sends.
    throw new ConfigError(
      `Stream ${stream} has minimum_generation_id ${minimumGenerationId} and generation_id ${generationId}: ` +
        'the minimum must be 0 or equal to the generation. ' +
        'The catalog is not one the Airbyte platform sends; refresh the stream again.',
    );
  }
  return { generationId, minimumGenerationId, syncId: wholeNumber(entry.sync_id) };
}
