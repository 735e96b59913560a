/**
 * What the Airbyte platform sends a destination, job by job and attempt by attempt, so that tests feed the connector
 * catalogs shaped as the platform shapes them rather than as we read the protocol. The rules are the platform's
 * (airbytehq/airbyte-platform; ../shared notes on the Airbyte protocol list them):
 *
 * - The UI choice becomes a wire mode. With refreshes (the destination's registry entry says `supportsRefreshes`),
 *   "Full refresh | Overwrite" is `append` and "Full refresh | Overwrite + Deduped" is `append_dedup`, each with
 *   `minimum_generation_id` equal to `generation_id` (truncate); incremental choices keep their mode with minimum 0.
 *   Without refreshes (a connector added from a custom image) both overwrites are `overwrite`, and no generation ids
 *   and no STREAM_STATUS lines are sent.
 * - Generations (AttemptHandler): the first attempt of a sync job bumps every full-refresh stream; a later attempt bumps
 *   the full-refresh streams whose `is_resumable` is not true; incremental streams keep theirs. A refresh job bumps the
 *   refreshed stream (truncate: minimum = generation; merge: minimum 0). A Clear (CatalogTransforms.updateCatalogForReset)
 *   sends the cleared streams alone as full refresh `overwrite`, which a platform with refreshes sends as `append`,
 *   with a new generation and minimum = generation; its source emits no record.
 * - At the end of input, when the source succeeded, one STREAM_STATUS COMPLETE per configured stream, its emitted_at
 *   written as a double (ReplicationWorker); nothing when the source failed.
 */

export type UiChoice =
  | 'Full refresh | Overwrite'
  | 'Full refresh | Overwrite + Deduped'
  | 'Incremental | Append'
  | 'Incremental | Append + Deduped';

export interface StreamSetup {
  readonly name: string;
  readonly namespace?: string;
  readonly primaryKey: readonly (readonly string[])[];
  readonly choice: UiChoice;
  /** The source declares the stream resumable (`is_resumable`). */
  readonly resumable?: boolean;
}

const SYNC_ID_BASE = 1000;

interface JobShape {
  readonly kind: 'sync' | 'truncate' | 'merge' | 'clear';
  /** The stream a refresh or Clear is for. */
  readonly stream?: string;
}

/** One job's attempt: the catalog file's content and the STREAM_STATUS lines to append when its source succeeds. */
export interface Attempt {
  readonly catalog: Record<string, unknown>;
  readonly completeLines: readonly string[];
  /** The generation each configured stream got, by name (absent without refreshes). */
  readonly generations: Readonly<Record<string, number>>;
}

function isFullRefresh(choice: UiChoice): boolean {
  return choice.startsWith('Full refresh');
}

/** A connection between a source and this destination, as the platform keeps it: streams and their generations. */
export class PlatformConnection {
  private readonly generations = new Map<string, number>();
  private jobs = 0;
  private configured: StreamSetup[];

  constructor(
    streams: readonly StreamSetup[],
    readonly refreshes = true,
  ) {
    this.configured = [...streams];
    for (const stream of streams) this.generations.set(stream.name, 0);
  }

  get streams(): readonly StreamSetup[] {
    return this.configured;
  }

  /** The user picks another sync mode for a stream; its generation goes on. */
  choose(name: string, choice: UiChoice): void {
    this.configured = this.configured.map((stream) => (stream.name === name ? { ...stream, choice } : stream));
  }

  sync(): Job {
    return this.job({ kind: 'sync' });
  }

  refresh(stream: string, kind: 'truncate' | 'merge'): Job {
    if (!this.refreshes) throw new Error('the platform offers refreshes only for destinations that support them');
    return this.job({ kind, stream });
  }

  clear(stream: string): Job {
    return this.job({ kind: 'clear', stream });
  }

  private job(shape: JobShape): Job {
    this.jobs++;
    return new Job(this, shape, SYNC_ID_BASE + this.jobs);
  }

  /** Bumps the generation of `name` and returns it. */
  bump(name: string): number {
    const next = (this.generations.get(name) ?? 0) + 1;
    this.generations.set(name, next);
    return next;
  }

  generation(name: string): number {
    return this.generations.get(name) ?? 0;
  }
}

export class Job {
  private attempts = 0;

  constructor(
    private readonly connection: PlatformConnection,
    private readonly shape: JobShape,
    readonly syncId: number,
  ) {}

  /** The next attempt of this job, with the generations the platform gives it. */
  attempt(): Attempt {
    const first = this.attempts === 0;
    this.attempts++;
    const { connection, shape } = this;
    const streams =
      shape.kind === 'clear' ? connection.streams.filter((s) => s.name === shape.stream) : connection.streams;
    const generations: Record<string, number> = {};
    const entries = streams.map((stream) => {
      const clearing = shape.kind === 'clear';
      const fullRefresh = clearing || isFullRefresh(stream.choice);
      const refreshed = (shape.kind === 'truncate' || shape.kind === 'merge') && shape.stream === stream.name;
      const bumped = first
        ? fullRefresh || refreshed || clearing
        : fullRefresh && !(connection.refreshes && stream.resumable === true);
      const generation =
        connection.refreshes && bumped ? connection.bump(stream.name) : connection.generation(stream.name);
      const truncates =
        clearing ||
        (isFullRefresh(stream.choice) && stream.choice.includes('Overwrite')) ||
        (refreshed && shape.kind === 'truncate');
      generations[stream.name] = generation;
      const deduped = !clearing && stream.choice.endsWith('Deduped');
      const mode = connection.refreshes
        ? deduped
          ? 'append_dedup'
          : 'append'
        : clearing || stream.choice.includes('Overwrite')
          ? 'overwrite'
          : deduped
            ? 'append_dedup'
            : 'append';
      return {
        stream: {
          name: stream.name,
          ...(stream.namespace ? { namespace: stream.namespace } : {}),
          json_schema: { type: 'object' },
          supported_sync_modes: ['full_refresh', 'incremental'],
          source_defined_primary_key: stream.primaryKey,
          ...(stream.resumable === undefined ? {} : { is_resumable: stream.resumable }),
        },
        sync_mode: fullRefresh ? 'full_refresh' : 'incremental',
        destination_sync_mode: mode,
        primary_key: stream.primaryKey,
        ...(connection.refreshes
          ? { generation_id: generation, minimum_generation_id: truncates ? generation : 0, sync_id: this.syncId }
          : {}),
      };
    });
    const completeLines = connection.refreshes ? streams.map((stream) => streamComplete(stream)) : [];
    return { catalog: { streams: entries }, completeLines, generations };
  }
}

/** The STREAM_STATUS COMPLETE line the platform appends for a stream when the source succeeded. */
export function streamComplete(stream: { readonly name: string; readonly namespace?: string }): string {
  const descriptor = JSON.stringify({
    name: stream.name,
    ...(stream.namespace ? { namespace: stream.namespace } : {}),
  });
  return `{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.7241888E12,"stream_status":{"stream_descriptor":${descriptor},"status":"COMPLETE"}}}`;
}
