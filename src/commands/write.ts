/**
 * `write`: the sync itself, as a script of steps. The data path reads top to bottom:
 *
 *   stdin line -> message -> lane (topic + payload) -> channel (connection) -> acknowledgement -> ledger -> state out
 *
 * Before the first record: the settings, each stream's route, the keys a truncation may clear, the connections, and
 * the delivery check. For each record: its lane makes it a message or rejects it, its channel sends it, and pacing
 * holds input while that channel has no room. Acknowledgements go from the channel to the ledger, which emits each
 * state once every record before it is acknowledged. At the end: drain, clear stale keys, drain, close, summarise.
 * When anything fails, reading stops, every connection is dropped and the states still held are never emitted.
 */
import type { Readable } from 'node:stream';
import { readCatalog, streamKey } from '../airbyte/catalog.js';
import { Checkpoints } from '../airbyte/checkpoints.js';
import { parseLine } from '../airbyte/input.js';
import type { Output } from '../airbyte/output.js';
import { type Settings, describeSettings, readConfigFile, toSettings } from '../config/settings.js';
import { type ConnectorError, asConnectorError } from '../errors.js';
import type { Log } from '../log.js';
import type { Connection } from '../mqtt/connect.js';
import { closeTunnels } from '../mqtt/reach.js';
import type { ChannelEvents, RefusedMessage } from '../sync/channel.js';
import { Channels, connectChannels } from '../sync/channels.js';
import { Batches, checkBatching } from '../sync/batches.js';
import { DeliveryCheck, streamFilters } from '../sync/delivery-check.js';
import { type Lane, laneOf, lanesFor } from '../sync/lane.js';
import { Pacing } from '../sync/pacing.js';
import { Progress } from '../sync/progress.js';
import { Rejections, type Sent } from '../sync/rejections.js';
import { type StreamRoute, fieldTopicWarnings, messageIdentity, routeStreams, sharedTopics } from '../sync/routes.js';
import { GracePeriod } from '../sync/grace.js';
import { type StreamCounts, StatusTopic } from '../sync/status.js';
import { Summary, completeMessage, publishingMessage, stoppingMessage } from '../sync/summary.js';
import { Truncation } from '../sync/truncation.js';
import { type LineSplitter, readLines } from '../text/line-reader.js';

export async function write(configPath: string, catalogPath: string, output: Output, input: Readable = process.stdin) {
  // 1. The settings, with every secret known to the output before anything is printed.
  const settings = toSettings(await readConfigFile(configPath));
  output.redact(settings.secrets);
  output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
  for (const warning of settings.warnings) output.log('WARN', warning);
  // 2. Each stream's route: its topic, keys and retention; streams that would merge on a topic fail here.
  const { broker, messages, sync } = settings;
  const catalog = await readCatalog(catalogPath);
  const { topicPattern, topicEscaping: escaping, retain } = messages;
  const routes = routeStreams(catalog, topicPattern, { escaping, retain });
  checkBatching(routes, messages.packing.layout);
  const warnings = [...sharedTopics(routes, messageIdentity(messages)), ...fieldTopicWarnings(routes)];
  for (const warning of warnings) output.log('WARN', warning);
  // 3. The status topic says "running", and every connection from here on leaves "interrupted" as its Last Will.
  const log = output.log.bind(output);
  const status = await StatusTopic.open(broker, sync.statusTopic, catalog, log);
  let run: WriteSync | undefined;
  let failure: ConnectorError | undefined;
  try {
    // 4. Before any connection publishes: a truncation must know the keys that were there before it.
    const truncation = await Truncation.prepare({ ...settings, overwriteCleanup: sync.overwriteCleanup }, routes, log);
    // 5. The connections, and with MQTT 3.1.x the subscription the first message of each topic must come back to.
    const connections = await connectChannels(settings, status?.will);
    const warn = (warning: string): void => output.log('WARN', warning);
    const delivery = await DeliveryCheck.open(broker, sync.verifyDelivery, streamFilters(routes), warn);
    // 6. The records, until the input ends or something fails.
    run = new WriteSync(settings, routes, output, truncation, connections, delivery, status);
    await run.run(input).finally(() => {
      input.destroy();
      return delivery?.close();
    });
  } catch (err) {
    failure = asConnectorError(err);
    throw failure;
  } finally {
    await status?.finish(failure, (key) => run?.counts(key), output.redacted);
    await closeTunnels();
  }
}

class WriteSync {
  private readonly ledger: Checkpoints;
  private readonly lanes: ReadonlyMap<string, Lane>;
  private readonly summary = new Summary();
  private readonly pacing: Pacing;
  /** Open batches, when records go several to a message (`batch_layout`). */
  private readonly batches: Batches | undefined;
  private readonly channels: Channels;
  private readonly rejections: Rejections;
  private readonly progress: Progress;
  private lines: LineSplitter | undefined;
  private lineNumber = 0;
  private failure: ConnectorError | undefined;
  private readonly grace: GracePeriod;
  private endRun: ((error: ConnectorError) => void) | undefined;
  /** Streams the platform reported complete (TRACE STREAM_STATUS COMPLETE): only their stale keys may be cleared. */
  private readonly completed = new Set<string>();

  constructor(
    private readonly settings: Settings,
    private readonly routes: ReadonlyMap<string, StreamRoute>,
    private readonly output: Output,
    private readonly truncation: Truncation | undefined,
    connections: readonly Connection[],
    private readonly delivery: DeliveryCheck | undefined,
    status: StatusTopic | undefined,
  ) {
    this.ledger = new Checkpoints((line) => output.state(line));
    this.lanes = lanesFor(routes, settings.messages);
    this.pacing = new Pacing(settings.sync);
    if (settings.messages.packing.layout !== 'none') {
      this.batches = new Batches(settings.messages.packing, (lane, channel, payload, bytes) => {
        if (this.lines) this.pacing.charge(this.lines, bytes);
        this.delivery?.holdFirst(lane.key, payload, channel);
      });
    }
    const log: Log = (level, message) => output.log(level, message);
    const refused = (refusal: RefusedMessage): void => {
      const error = this.failure ?? this.rejections.refused(refusal);
      if (error) this.fail(error);
    };
    // Acknowledgements go to the ledger, refusals to the rejections (with rejected_records fail, the publisher fails
    // the sync itself), failures here.
    const events: ChannelEvents = {
      acknowledged: (token) => this.ledger.acknowledged(token),
      failed: (error) => this.fail(error),
      refused: settings.sync.rejectedRecords === 'fail' ? undefined : refused,
      restored: () => status?.running(),
      log,
    };
    this.channels = new Channels(settings, connections, events, status?.will);
    this.rejections = new Rejections(settings, this.lanes, this.channels, this.ledger, this.summary, log);
    const { ledger, channels } = this;
    this.progress = new Progress({ ledger, connected: () => channels.connected, input: () => this.lines }, log);
    this.grace = new GracePeriod(settings.sync.shutdownGraceMs, {
      channels,
      ledger,
      pauseInput: () => this.lines?.pause(),
      flush: () => this.batches?.flushAll(),
      stopNow: (error) => this.fail(error),
      stopDrained: (error) => this.stop(error, () => this.channels.close().then(() => error)),
      log,
    });
  }

  /** What the sync did with a stream's records so far (status.ts). */
  counts(key: string): StreamCounts {
    return this.summary.countsOf(key);
  }

  run(input: Readable): Promise<void> {
    const { channels } = this;
    this.output.log('INFO', publishingMessage(this.settings, this.routes.size, channels));
    this.progress.start();
    this.grace.listen();
    return new Promise<void>((resolve, reject) => {
      this.endRun = reject;
      const lines = readLines(input);
      this.lines = lines;
      lines.on('error', (err: unknown) => this.fail(asConnectorError(err)));
      lines.on('data', (line: string) => {
        if (this.failure || this.grace.interruptedBy) return;
        this.lineNumber++;
        try {
          const sent = this.handleLine(line);
          if (sent) this.pacing.after(lines, sent.channel, sent.bytes, sent.messages);
        } catch (err) {
          this.fail(asConnectorError(err));
        }
      });
      lines.on('end', () => {
        if (this.failure || this.grace.interruptedBy) return;
        this.finish().then(resolve, (err: unknown) => this.fail(asConnectorError(err)));
      });
    }).finally(() => this.grace.stopListening());
  }

  /** Handles one input line; for a record, returns where it (or its report) went, for pacing. */
  private handleLine(line: string): Sent | undefined {
    if (line.length === 0 || (line.charCodeAt(0) <= 0x20 && line.trim() === '')) return undefined;
    const number = this.lineNumber;
    const message = parseLine(line, number);
    if (message.kind === 'state') this.ledger.stateReceived(message);
    if (message.kind === 'stream_complete') this.completed.add(streamKey(message.namespace, message.stream));
    // Other TRACE, LOG and any other message type carry nothing to publish.
    if (message.kind !== 'record') return undefined;
    const lane = laneOf(this.lanes, message.namespace, message.stream, number);
    this.summary.received(lane.key);
    const { rejections } = this;
    const prepared = lane.prepare(message, number);
    if (prepared.kind === 'reject') {
      return rejections.reject(lane, prepared.reason, number, prepared.recordId, message.dataJson);
    }
    const channel = this.channels.for(lane.route, prepared.key);
    const { target, payload, bytes, values } = prepared;
    const token = this.ledger.recordReceived(lane.key);
    if (this.batches?.add(lane, prepared, token, number, channel)) {
      this.summary.published(lane.key, bytes, false);
      return { channel, bytes, messages: 0 };
    }
    const oversize = channel.send(target, payload, bytes, values, token, number);
    if (oversize > 0) return rejections.oversize(lane, channel, prepared, number, message.dataJson, token, oversize);
    this.summary.published(lane.key, bytes, prepared.tombstone);
    this.truncation?.written(lane.key, target.topic);
    if (!prepared.tombstone) this.delivery?.holdFirst(lane.key, payload, channel);
    return { channel, bytes };
  }

  private async finish(): Promise<void> {
    const { channels } = this;
    this.batches?.flushAll();
    await channels.drain();
    if (this.failure) return;
    if (this.truncation) {
      const clear = (route: StreamRoute, topics: readonly string[]): Promise<void> => {
        const lane = this.lanes.get(streamKey(route.namespace, route.name)) as Lane;
        return this.pacing.sendOwn(channels.for(route, undefined), topics, (topic) => lane.tombstone(topic));
      };
      await this.truncation.cleanup(this.completed, (key) => this.summary.rejectedOf(key), clear);
      await channels.drain();
      if (this.failure) return;
    }
    this.progress.stop();
    await channels.close();
    for (const line of this.summary.streamLines(this.routes, channels, this.settings)) this.output.log('INFO', line);
    this.output.log('INFO', completeMessage(this.ledger, this.lineNumber));
  }

  private fail(error: ConnectorError): void {
    this.stop(error, () => {
      this.channels.abort();
      return Promise.resolve(error);
    });
  }

  /** Ends the sync with `error`, once: nothing more is published or acknowledged, and no further state goes out. */
  private stop(error: ConnectorError, close: () => Promise<ConnectorError>): void {
    if (this.failure) return;
    this.failure = error;
    this.grace.end();
    this.progress.stop();
    this.pacing.stop();
    this.batches?.stop();
    this.channels.stop(error);
    this.lines?.pause();
    this.output.log('WARN', stoppingMessage(this.ledger, this.lineNumber));
    // Closing reports the error to end the run with; if closing itself fails, the run ends with the original error.
    close().then(
      (e) => this.endRun?.(e),
      () => this.endRun?.(error),
    );
  }
}
