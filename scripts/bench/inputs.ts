/**
 * The input every benchmark feeds the connector and its references: records of about 250 bytes across four streams,
 * a STREAM state every 1,000 records, and, for the reference publishers, the same records as finished envelopes.
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export const STREAMS = ['users', 'orders', 'events', 'sensor_readings'];

export interface Inputs {
  /** Airbyte messages for the connector's stdin. */
  readonly messages: string;
  /** "topic<TAB>envelope" lines for the bare MQTT.js publisher (with `references`). */
  readonly envelopes: string;
  /** One envelope per line for `mosquitto_pub -l` (with `references`). */
  readonly payloads: string;
  readonly catalog: string;
  readonly bytes: number;
}

export interface InputOptions {
  /** Also write the envelopes and payloads the reference publishers send. */
  readonly references: boolean;
  /**
   * Give the streams a primary key (`id`). The connector spreads records over its connections by key, and without one
   * by topic, which would put four streams on at most four connections (measured: 8 connections took as long as 4).
   */
  readonly primaryKey: boolean;
  /** Pad each record's data to about this many bytes (a `notes` field); records are about 250 bytes without. */
  readonly recordBytes?: number;
}

/** A `notes` field that brings a record's data to about `bytes`, varied per record so it compresses as text does. */
function padding(bytes: number | undefined, used: number, i: number): string {
  if (bytes === undefined) return '';
  const words = ['pump', 'valve', 'line', 'north', 'pressure', 'ok', 'maintenance', 'shift', String(i % 13)];
  let text = '';
  for (let w = i; text.length < bytes - used - 14; w += 7) text += `${words[w % words.length]} `;
  return `,"notes":"${text.trimEnd()}"`;
}

export async function generateInputs(dir: string, records: number, options: InputOptions): Promise<Inputs> {
  const paths = {
    messages: join(dir, `messages-${records}.jsonl`),
    envelopes: join(dir, 'envelopes.tsv'),
    payloads: join(dir, 'payloads.txt'),
  };
  const messages = createWriteStream(paths.messages);
  const envelopes = options.references ? createWriteStream(paths.envelopes) : undefined;
  const payloads = options.references ? createWriteStream(paths.payloads) : undefined;
  let bytes = 0;
  const write = async (stream: NodeJS.WritableStream | undefined, text: string): Promise<void> => {
    if (stream && !stream.write(text)) await new Promise((resolve) => stream.once('drain', resolve));
  };
  for (let i = 0; i < records; i++) {
    const stream = STREAMS[i % STREAMS.length] as string;
    const emittedAt = 1_700_000_000_000 + i;
    const fields =
      `"id":${i},"account":"acct-${(i * 7919) % 100000}","email":"user${i}@example.com",` +
      `"amount":${(i % 1000) + 0.25},"currency":"EUR","status":"active",` +
      `"updated_at":"2026-11-01T12:00:00Z","tags":["a","b"],"score":${i % 97}`;
    const data = `{${fields}${padding(options.recordBytes, fields.length, i)}}`;
    const line =
      `{"type":"RECORD","record":{"stream":"${stream}","namespace":"bench",` +
      `"emitted_at":${emittedAt},"data":${data}}}\n`;
    bytes += line.length;
    await write(messages, line);
    if (options.references) {
      const envelope =
        `{"_airbyte_ab_id":"${randomUUID()}","_airbyte_stream":"${stream}",` +
        `"_airbyte_emitted_at":${emittedAt},"_airbyte_data":${data}}`;
      await write(envelopes, `bench/bench/${stream}\t${envelope}\n`);
      await write(payloads, `${envelope}\n`);
    }
    if (i % 1000 === 999) {
      await write(
        messages,
        '{"type":"STATE","state":{"type":"STREAM",' +
          `"stream":{"stream_descriptor":{"name":"${stream}","namespace":"bench"},` +
          `"stream_state":{"cursor":${i}}}}}\n`,
      );
    }
  }
  await Promise.all(
    [messages, envelopes, payloads].map((s) => (s ? new Promise((resolve) => s.end(resolve)) : Promise.resolve())),
  );
  const catalog = join(dir, `catalog-${records}.json`);
  const key = options.primaryKey ? { primary_key: [['id']] } : {};
  writeFileSync(
    catalog,
    JSON.stringify({
      streams: STREAMS.map((name) => ({
        stream: { name, namespace: 'bench', json_schema: {}, supported_sync_modes: ['incremental'] },
        sync_mode: 'incremental',
        destination_sync_mode: 'append',
        ...key,
      })),
    }),
  );
  return { ...paths, catalog, bytes };
}
