/**
 * `write`: the sync itself. The data path reads top to bottom:
 *
 *   stdin line -> message -> (route: topic, envelope, connection) -> publish -> acknowledgement -> state out
 *
 * Input is read only while the record's connection has room (and the rate limit allows), so memory stays bounded
 * however large the sync. A state goes out only once the checkpoints say every record before it is acknowledged, on
 * whichever connection it went. While a connection is down, its messages wait and its keeper reconnects; its
 * publisher then sends again whatever was not acknowledged. When anything fails, reading stops, every connection is
 * dropped and the states still held are never emitted.
 */
import type { Readable } from 'node:stream';
import { describeStream, readCatalog, streamKey } from '../airbyte/catalog.js';
import { type StreamRoute, routeStreams, sharedTopics } from '../sync/routes.js';
import { Checkpoints } from '../airbyte/checkpoints.js';
import { parseLine } from '../airbyte/input.js';
import { type LineSplitter, readLines } from '../text/line-reader.js';
import type { Output } from '../airbyte/output.js';
import type { LogLevel } from '../log.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { ConfigError, type ConnectorError, InputError, InterruptedError, asConnectorError } from '../errors.js';
import { field } from '../config/spec.js';
import { type Connection, brokerAddress } from '../mqtt/connect.js';
import { type PublishTarget, publishTarget } from '../mqtt/packets.js';
import type { Refusal } from '../mqtt/publisher.js';
import { Channel, connectChannels } from '../sync/channel.js';
import { prepareFormat } from '../payload/formats.js';
import { Lane, type Publish } from '../sync/lane.js';
import { DeliveryCheck, streamFilters } from '../sync/delivery-check.js';
import { Progress, progressIntervalMs } from '../sync/progress.js';
import { type RateLimit, rateLimit } from '../sync/rate-limit.js';
import { Router } from '../sync/router.js';
import { Truncation } from '../sync/truncation.js';

const QOS_NAMES = ['0 (at most once)', '1 (at least once)', '2 (exactly once)'];
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export async function write(
  configPath: string,
  catalogPath: string,
  output: Output,
  input: Readable = process.stdin,
): Promise<void> {
  const settings = toSettings(await readConfigFile(configPath));
  output.redact(settings.secrets);
  output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
  for (const warning of settings.warnings) output.log('WARN', warning);
  const routes = routeStreams(await readCatalog(catalogPath), settings.topicPattern, {
    escaping: settings.topicEscaping,
    retain: settings.retain,
  });
  for (const warning of sharedTopics(routes, messageIdentity(settings))) output.log('WARN', warning);
  // Before any connection publishes: an overwrite must know the keys that were there before it.
  const truncation = await Truncation.prepare(settings, routes, (level, message) => output.log(level, message));
  const connections = await connectChannels(settings);
  // MQTT 3.1.x cannot refuse a message: the first of each topic must come back to a subscription (delivery-check.ts).
  const delivery = await DeliveryCheck.open(settings, streamFilters(routes), (warning) => output.log('WARN', warning));
  const sync = new WriteSync(settings, routes, connections, output, truncation, delivery);
  const interrupt = (signal: NodeJS.Signals): void => sync.interrupt(signal);
  for (const signal of SIGNALS) process.on(signal, interrupt);
  try {
    await sync.run(input);
  } finally {
    for (const signal of SIGNALS) process.off(signal, interrupt);
    input.destroy();
    await delivery?.close();
  }
}

/** What each message says about its stream: the format's own fields, and with MQTT 5 the user properties. */
function messageIdentity(settings: Settings): { carriesStream: boolean; carriesNamespace: boolean } {
  const properties = settings.mqttVersion === '5' && settings.mqtt5UserProperties;
  const format = prepareFormat(settings.messageFormat, { name: '', namespace: undefined });
  return { carriesStream: properties || format.carriesStream, carriesNamespace: properties || format.carriesNamespace };
}

interface StreamTotals {
  records: number;
  bytes: number;
  tombstones: number;
  rejected: number;
}

/** A stream's lane (what its records become) and its running totals for the summary. */
interface StreamLane {
  readonly lane: Lane;
  readonly totals: StreamTotals;
}

class WriteSync {
  private readonly checkpoints = new Checkpoints();
  private readonly channels: Channel[];
  private readonly router: Router;
  private readonly rateLimit: RateLimit | undefined;
  private readonly progress: Progress;
  private readonly lanes = new Map<string, StreamLane>();
  /** Where reports of rejected records go, when `rejected_records` is `dead_letter`. */
  private readonly deadLetter: PublishTarget | undefined;
  private lineNumber = 0;
  private statesEmitted = 0;
  private failure: ConnectorError | undefined;
  private interruptedBy: string | undefined;
  private lines: LineSplitter | undefined;
  private rateTimer: NodeJS.Timeout | undefined;
  private rejectRun: ((error: ConnectorError) => void) | undefined;
  /** Streams the platform reported complete (TRACE STREAM_STATUS COMPLETE): only their stale keys may be cleared. */
  private readonly completed = new Set<string>();
  /** Messages the sync sends on its own account (clearing stale keys) get negative tokens: the checkpoints never see them. */
  private nextOwnToken = -1;

  constructor(
    private readonly settings: Settings,
    private readonly routes: ReadonlyMap<string, StreamRoute>,
    connections: readonly Connection[],
    private readonly output: Output,
    private readonly truncation: Truncation | undefined,
    private readonly delivery?: DeliveryCheck,
  ) {
    for (const [key, route] of routes)
      this.lanes.set(key, {
        lane: new Lane(route, settings),
        totals: { records: 0, bytes: 0, tombstones: 0, rejected: 0 },
      });
    this.deadLetter =
      settings.deadLetterTopic === undefined
        ? undefined
        : publishTarget(settings.deadLetterTopic, {
            mqtt5: settings.mqttVersion === '5',
            contentType: 'application/json',
            label: 'the dead letter report',
          });
    const events = {
      acknowledged: (token: number) => {
        if (token >= 0) this.emitStates(this.checkpoints.acknowledged(token));
      },
      failed: (error: ConnectorError) => this.fail(error),
      // With rejected_records fail, a refusal fails the sync in the publisher itself.
      refused: settings.rejectedRecords === 'fail' ? undefined : (refusal: Refusal) => this.refusedByBroker(refusal),
      log: (level: LogLevel, message: string) => this.output.log(level, message),
    };
    this.channels = connections.map((connection, index) => new Channel(index, settings, connection, events));
    this.router = new Router(this.channels.length);
    this.rateLimit = rateLimit(settings);
    this.progress = new Progress(
      progressIntervalMs(process.env.LOG_PROGRESS_SECONDS),
      () => ({
        received: this.checkpoints.recordsReceived,
        acknowledged: this.checkpoints.recordsAcknowledged,
        statesEmitted: this.statesEmitted,
        connected: this.channels.every((channel) => channel.connected),
        input: this.lines,
      }),
      (level, message) => this.output.log(level, message),
    );
  }

  /** Messages sent and not yet acknowledged, over every connection. */
  private get unacknowledged(): number {
    return this.channels.reduce((sum, channel) => sum + channel.publisher.unacknowledged, 0);
  }

  run(input: Readable): Promise<void> {
    const { connections } = this.settings;
    const over =
      connections === 1
        ? ''
        : ` over ${connections} connections (client IDs "${this.channels[0]?.clientId}" to "${this.channels.at(-1)?.clientId}")`;
    const limits = [
      this.settings.maxMessagesPerSecond === undefined ? '' : `${this.settings.maxMessagesPerSecond} message(s)`,
      this.settings.maxBytesPerSecond === undefined ? '' : `${this.settings.maxBytesPerSecond} payload byte(s)`,
    ].filter(Boolean);
    this.output.log(
      'INFO',
      `Publishing ${this.routes.size} stream(s) to ${brokerAddress(this.settings)}${over} at QoS ${QOS_NAMES[this.settings.qos]}` +
        `${this.settings.retain ? ', retained' : ''}, up to ${this.channels[0]?.publisher.window} message(s) in flight${connections === 1 ? '' : ' on each'}` +
        `${limits.length > 0 ? `, at most ${limits.join(' and ')} per second` : ''}.`,
    );
    this.progress.start();
    return new Promise<void>((resolve, reject) => {
      this.rejectRun = reject;
      const lines = readLines(input);
      this.lines = lines;
      lines.on('error', (err: unknown) => this.fail(asConnectorError(err)));
      lines.on('data', (line: string) => {
        if (this.failure || this.interruptedBy) return;
        this.lineNumber++;
        let sent: { channel: Channel; bytes: number } | undefined;
        try {
          sent = this.handleLine(line);
        } catch (err) {
          this.fail(asConnectorError(err));
          return;
        }
        if (sent) this.holdInputIfNeeded(lines, sent.channel, sent.bytes);
      });
      lines.on('end', () => {
        if (this.failure || this.interruptedBy) return;
        this.finish().then(resolve, (err: unknown) => this.fail(asConnectorError(err)));
      });
    });
  }

  /**
   * Pauses input until the record's connection has room again, or until the rate limit allows the next message. Only
   * the connection the last record went to is asked: records spread evenly, so when one window is full the others
   * are nearly full too, and a paused reader keeps memory bounded whatever the input.
   */
  private holdInputIfNeeded(lines: Readable, channel: Channel, bytes: number): void {
    const resume = (): void => {
      if (!this.interruptedBy && !this.failure) lines.resume();
    };
    if (!channel.publisher.hasRoom) {
      lines.pause();
      channel.publisher.whenRoom(() => this.holdForRate(lines, bytes, resume));
      return;
    }
    this.holdForRate(lines, bytes, resume, false);
  }

  private holdForRate(lines: Readable, bytes: number, resume: () => void, paused = true): void {
    const wait = this.rateLimit?.spend(bytes) ?? 0;
    if (wait <= 0) {
      if (paused) resume();
      return;
    }
    lines.pause();
    this.rateTimer = setTimeout(resume, Math.ceil(wait));
  }

  /** Handles one input line; for a record, returns the connection it went to and its payload size. */
  private handleLine(line: string): { channel: Channel; bytes: number } | undefined {
    if (line.length === 0 || (line.charCodeAt(0) <= 0x20 && line.trim() === '')) return undefined;
    const message = parseLine(line, this.lineNumber);
    if (message.kind === 'record') {
      const key = streamKey(message.namespace, message.stream);
      const stream = this.lanes.get(key);
      if (!stream) {
        throw new InputError(
          this.lineNumber,
          `record of stream ${describeStream(message.namespace, message.stream)}, which is not in the configured catalog`,
        );
      }
      const { lane, totals } = stream;
      totals.records++;
      const prepared = lane.prepare(message, this.lineNumber);
      if (prepared.kind === 'reject')
        return this.rejected(key, stream, prepared.reason, prepared.recordId, message.dataJson);
      const channel = this.channels[this.router.connectionFor(lane.route, prepared.key)] as Channel;
      const oversize = channel.publisher.oversize(prepared.target, prepared.bytes, prepared.values);
      if (oversize > 0)
        return this.rejected(
          key,
          stream,
          this.tooLarge(prepared, oversize, channel),
          prepared.recordId,
          message.dataJson,
        );
      totals.bytes += prepared.bytes;
      if (prepared.tombstone) totals.tombstones++;
      if (this.truncation?.tracks(key)) this.truncation.written(key, prepared.target.topic);
      channel.publisher.send(
        prepared.target,
        prepared.payload,
        prepared.bytes,
        prepared.values,
        this.checkpoints.recordReceived(key),
        this.lineNumber,
      );
      // The first record of a topic being verified holds input back until it has come back (or fails the sync).
      const verifying = prepared.tombstone ? undefined : this.delivery?.published(key, prepared.payload);
      if (verifying) channel.publisher.holdUntil(verifying);
      return { channel, bytes: prepared.bytes };
    }
    if (message.kind === 'state') this.emitStates(this.checkpoints.stateReceived(message));
    if (message.kind === 'stream_complete') this.completed.add(streamKey(message.namespace, message.stream));
    // Other TRACE, LOG and any other message type carry nothing to publish.
    return undefined;
  }

  private tooLarge(prepared: Publish, size: number, channel: Channel): string {
    // Without its final full stop: the rejection adds what to set to go on past such records.
    return `input line ${this.lineNumber}: ${channel.publisher.describeOversize(undefined, prepared.target, prepared.bytes, size).replace(/\.$/, '')}`;
  }

  /**
   * A record that cannot be published, handled as `rejected_records` says: the sync fails, or the record is counted
   * as rejected and the sync goes on, with a warning or a report on the dead letter topic. A rejected record still
   * holds back the states after it until its report (if any) is acknowledged, so no state claims more than was done.
   */
  private rejected(
    key: string,
    stream: StreamLane,
    reason: string,
    recordId: string,
    dataJson: string,
  ): { channel: Channel; bytes: number } | undefined {
    if (this.settings.rejectedRecords === 'fail') {
      // Reasons start with the input line, as every input error does.
      throw new ConfigError(
        `${reason.charAt(0).toUpperCase()}${reason.slice(1)}. Set ${field('rejected_records')} to skip or dead_letter to go on past such records.`,
      );
    }
    const token = this.checkpoints.recordReceived(key);
    return this.dropRecord(
      key,
      stream,
      reason,
      token,
      this.lineNumber,
      recordId,
      `"data":${dataJson}`,
      Buffer.byteLength(dataJson, 'utf8'),
    );
  }

  /**
   * The broker refused a record it was sent, for a reason of that record's own (MQTT 5 Not authorized, Topic Name
   * invalid, Quota exceeded, Payload format invalid), and `rejected_records` says to go on: the record is rejected as
   * if it had been refused before sending. Its report carries the message that was refused, not the record's data.
   */
  private refusedByBroker(refusal: Refusal): void {
    const stream = this.lanes.get(refusal.target.source);
    if (!stream || this.failure) {
      this.fail(
        new ConfigError(
          `The broker refused ${refusal.target.label} on topic "${refusal.target.topic}": ${refusal.reason}.`,
        ),
      );
      return;
    }
    const reason = `input line ${refusal.line}: ${refusal.target.label} was refused by the broker on topic "${refusal.target.topic}": ${refusal.reason}`;
    const message = refusal.payload === '' ? '"message":null' : `"message":${refusal.payload}`;
    // The report takes the refused message's place in the window; the reader's own checks keep input within room.
    this.dropRecord(
      refusal.target.source,
      stream,
      reason,
      refusal.token,
      refusal.line,
      undefined,
      message,
      Buffer.byteLength(refusal.payload, 'utf8'),
    );
  }

  /**
   * A rejected record, numbered `token`: counted as rejected (in the states that cover it and the stream's summary),
   * then skipped with a warning, or reported on the dead letter topic. Its states wait until it is done with: at once
   * when skipped, on the report's acknowledgement otherwise, so no state claims more than was done.
   */
  private dropRecord(
    key: string,
    stream: StreamLane,
    reason: string,
    token: number,
    line: number,
    recordId: string | undefined,
    body: string,
    bodyBytes: number,
  ): { channel: Channel; bytes: number } | undefined {
    stream.totals.rejected++;
    this.checkpoints.recordRefused(token, key);
    const deadLetter = this.deadLetter;
    if (this.settings.rejectedRecords === 'skip' || !deadLetter) {
      this.output.log('WARN', `Skipped ${reason}.`);
      this.emitStates(this.checkpoints.acknowledged(token));
      return undefined;
    }
    const { route } = stream.lane;
    const head =
      `{"reason":${JSON.stringify(reason)},"stream":${route.streamJson},"namespace":${route.namespace === undefined ? 'null' : JSON.stringify(route.namespace)}` +
      `,"line":${line},"record_id":${recordId === undefined ? 'null' : JSON.stringify(recordId)}`;
    const channel = this.channels[this.router.connectionFor(route, undefined)] as Channel;
    let report = `${head},${body}}`;
    let bytes = Buffer.byteLength(report, 'utf8');
    if (channel.publisher.oversize(deadLetter, bytes, []) > 0) {
      // Too large for the broker with the record in it: the report says how large the record was instead.
      const name = body.startsWith('"data"') ? 'data_bytes' : 'message_bytes';
      report = `${head},"${name}":${bodyBytes}}`;
      bytes = Buffer.byteLength(report, 'utf8');
    }
    channel.publisher.send(deadLetter, report, bytes, [], token, line);
    return { channel, bytes };
  }

  private emitStates(lines: readonly string[]): void {
    for (const line of lines) this.output.state(line);
    this.statesEmitted += lines.length;
  }

  /**
   * SIGTERM or SIGINT: read no more input, give the broker `shutdown_grace_seconds` to acknowledge what was sent (each
   * acknowledgement still releases its states), then stop. A second signal stops at once.
   */
  interrupt(signal: string): void {
    if (this.failure) return;
    const stopNow = (): void => this.fail(this.interruptedError(signal));
    if (this.interruptedBy) return stopNow();
    this.interruptedBy = signal;
    this.lines?.pause();
    const graceMs = this.settings.shutdownGraceMs;
    this.output.log(
      'WARN',
      `Received ${signal}: reading no more input; waiting up to ${graceMs / 1000} s for the broker to acknowledge ${this.unacknowledged} message(s) in flight.`,
    );
    const timer = setTimeout(stopNow, graceMs);
    this.drainAll().then(
      () => {
        clearTimeout(timer);
        if (this.failure) return;
        const error = this.interruptedError(signal);
        this.stop(error, async () => {
          await this.closeAll();
          return error;
        });
      },
      () => clearTimeout(timer),
    );
  }

  private interruptedError(signal: string): ConnectorError {
    return new InterruptedError(
      `The sync was interrupted by ${signal} before its input was complete: ${this.checkpoints.recordsAcknowledged} of ${this.checkpoints.recordsReceived} record(s) acknowledged by the broker, ` +
        `${this.statesEmitted} state message(s) emitted, ${this.checkpoints.statesHeld} withheld. The next sync resumes from the last state emitted.`,
    );
  }

  /** Resolves once every connection's messages are acknowledged; rejects if the sync stops first. */
  private async drainAll(): Promise<void> {
    await Promise.all(this.channels.map((channel) => channel.publisher.drain()));
  }

  /** Publishes a zero-byte retained message to each topic, which removes it from the broker, as room allows. */
  private async clearKeys(route: StreamRoute, topics: readonly string[]): Promise<void> {
    const lane = this.lanes.get(streamKey(route.namespace, route.name))?.lane;
    if (!lane) return;
    const channel = this.channels[this.router.connectionFor(route, undefined)] as Channel;
    for (const topic of topics) {
      if (this.failure) return;
      if (!channel.publisher.hasRoom) await new Promise<void>((resume) => channel.publisher.whenRoom(resume));
      // Clearing counts against the rate limit like any message: a quota does not care why a message was sent.
      const wait = this.rateLimit?.spend(0) ?? 0;
      if (wait > 0) await new Promise((resume) => setTimeout(resume, Math.ceil(wait)));
      channel.publisher.send(lane.tombstone(topic), '', 0, [], this.nextOwnToken--, this.lineNumber);
    }
  }

  /** Ends every connection with a DISCONNECT. */
  private async closeAll(): Promise<void> {
    await Promise.all(this.channels.map((channel) => channel.keeper.close()));
  }

  private async finish(): Promise<void> {
    await this.drainAll();
    if (this.failure) return;
    if (this.truncation) {
      await this.truncation.cleanup(
        this.completed,
        (key) => this.lanes.get(key)?.totals.rejected ?? 0,
        (route, topics) => this.clearKeys(route, topics),
      );
      await this.drainAll();
      if (this.failure) return;
    }
    this.progress.stop();
    await this.closeAll();
    for (const { lane, totals } of this.lanes.values()) {
      if (totals.records === 0) continue;
      const { route } = lane;
      const unheard = this.channels.reduce(
        (sum, channel) => sum + (channel.publisher.noSubscribers.get(route.topicName) ?? 0),
        0,
      );
      const extras = [
        totals.tombstones > 0 ? `${totals.tombstones} of them deletes (empty retained messages)` : '',
        totals.rejected > 0
          ? `${totals.rejected} rejected (${this.settings.rejectedRecords === 'skip' ? 'skipped' : 'reported on the dead letter topic'})`
          : '',
        unheard ? `the broker reported no matching subscribers for ${unheard} of them` : '',
      ].filter(Boolean);
      this.output.log(
        'INFO',
        `Stream ${describeStream(route.namespace, route.name)}: ${totals.records} record(s), ${totals.bytes} payload bytes, published ${route.retained ? 'retained ' : ''}to "${route.topicName}"` +
          `${extras.length > 0 ? `; ${extras.join('; ')}` : ''}.`,
      );
    }
    this.output.log(
      'INFO',
      `Sync complete: ${this.checkpoints.recordsAcknowledged} record(s) acknowledged from ${this.lineNumber} input line(s).`,
    );
  }

  private fail(error: ConnectorError): void {
    this.stop(error, () => {
      for (const channel of this.channels) channel.keeper.abort();
      return Promise.resolve(error);
    });
  }

  /** Ends the sync with `error`, once: nothing more is published or acknowledged, and no further state goes out. */
  private stop(error: ConnectorError, close: () => Promise<ConnectorError>): void {
    if (this.failure) return;
    this.failure = error;
    this.progress.stop();
    clearTimeout(this.rateTimer);
    for (const channel of this.channels) channel.stop(error);
    this.lines?.pause();
    const held = this.checkpoints.statesHeld;
    this.output.log(
      'WARN',
      `Stopping after ${this.lineNumber} input line(s): ${this.checkpoints.recordsAcknowledged} of ${this.checkpoints.recordsReceived} record(s) acknowledged; ${held} state message(s) withheld because the records before them were not all acknowledged.`,
    );
    // Closing reports the error to end the run with; if closing itself fails, the run ends with the original error.
    close().then(
      (e) => this.rejectRun?.(e),
      () => this.rejectRun?.(error),
    );
  }
}
