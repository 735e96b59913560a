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
import split2 from 'split2';
import { type StreamRoute, describeStream, readCatalog, routeStreams, streamKey } from '../airbyte/catalog.js';
import { Checkpoints } from '../airbyte/checkpoints.js';
import { parseLine } from '../airbyte/input.js';
import type { LogLevel, Output } from '../airbyte/output.js';
import { Utf8Guard } from '../airbyte/utf8.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { type ConnectorError, InputError, InterruptedError, asConnectorError } from '../errors.js';
import { type Connection, brokerAddress } from '../mqtt/connect.js';
import { type PublishTarget, publishTarget } from '../mqtt/packets.js';
import { buildEnvelope } from '../payload/envelope.js';
import { Channel, connectChannels } from '../sync/channel.js';
import { DeliveryCheck, streamFilters } from '../sync/delivery-check.js';
import { Progress, progressIntervalMs } from '../sync/progress.js';
import { type RateLimit, rateLimit } from '../sync/rate-limit.js';
import { Router } from '../sync/router.js';

const QOS_NAMES = ['0 (at most once)', '1 (at least once)', '2 (exactly once)'];
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export async function write(configPath: string, catalogPath: string, output: Output, input: Readable = process.stdin): Promise<void> {
  const settings = toSettings(await readConfigFile(configPath));
  output.redact(settings.secrets);
  output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
  for (const warning of settings.warnings) output.log('WARN', warning);
  const routes = routeStreams(await readCatalog(catalogPath), settings.topicPattern);
  const connections = await connectChannels(settings);
  // MQTT 3.1.x cannot refuse a message: the first of each topic must come back to a subscription (delivery-check.ts).
  const delivery = await DeliveryCheck.open(settings, streamFilters(routes), (warning) => output.log('WARN', warning));
  const sync = new WriteSync(settings, routes, connections, output, delivery);
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

interface StreamTotals {
  readonly route: StreamRoute;
  records: number;
  bytes: number;
}

/** Everything needed to publish a stream's records, worked out once per stream. */
interface Lane {
  readonly route: StreamRoute;
  readonly target: PublishTarget;
  readonly totals: StreamTotals;
}

function laneTarget(settings: Settings, route: StreamRoute): PublishTarget {
  const userProperties: Record<string, string> = { airbyte_stream: route.name };
  if (route.namespace !== undefined) userProperties.airbyte_namespace = route.namespace;
  return publishTarget(route.topic, {
    mqtt5: settings.mqttVersion === '5',
    contentType: 'application/json',
    messageExpirySeconds: settings.messageExpirySeconds,
    userProperties: settings.mqtt5UserProperties ? userProperties : undefined,
    emittedAtProperty: settings.mqtt5UserProperties,
    label: `the record of stream ${describeStream(route.namespace, route.name)}`,
  });
}

class WriteSync {
  private readonly checkpoints = new Checkpoints();
  private readonly channels: Channel[];
  private readonly router: Router;
  private readonly rateLimit: RateLimit | undefined;
  private readonly progress: Progress;
  private readonly lanes = new Map<string, Lane>();
  private lineNumber = 0;
  private statesEmitted = 0;
  private failure: ConnectorError | undefined;
  private interruptedBy: string | undefined;
  private lines: Readable | undefined;
  private rateTimer: NodeJS.Timeout | undefined;
  private rejectRun: ((error: ConnectorError) => void) | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly routes: ReadonlyMap<string, StreamRoute>,
    connections: readonly Connection[],
    private readonly output: Output,
    private readonly delivery?: DeliveryCheck,
  ) {
    for (const [key, route] of routes) this.lanes.set(key, { route, target: laneTarget(settings, route), totals: { route, records: 0, bytes: 0 } });
    const events = {
      acknowledged: (token: number) => this.emitStates(this.checkpoints.acknowledged(token)),
      failed: (error: ConnectorError) => this.fail(error),
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
      connections === 1 ? '' : ` over ${connections} connections (client IDs "${this.channels[0]?.clientId}" to "${this.channels.at(-1)?.clientId}")`;
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
      const guard = new Utf8Guard();
      const lines = input.pipe(guard).pipe(split2());
      this.lines = lines;
      for (const stream of [input, guard, lines]) stream.on('error', (err: unknown) => this.fail(asConnectorError(err)));
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
      const lane = this.lanes.get(key);
      if (!lane) {
        throw new InputError(this.lineNumber, `record of stream ${describeStream(message.namespace, message.stream)}, which is not in the configured catalog`);
      }
      const { route, target } = lane;
      const payload = buildEnvelope({ streamJson: route.streamJson, emittedAtJson: message.emittedAtJson, dataJson: message.dataJson });
      const bytes = Buffer.byteLength(payload, 'utf8');
      lane.totals.records++;
      lane.totals.bytes += bytes;
      const channel = this.channels[this.router.connectionFor(route, message.dataJson)] as Channel;
      channel.publisher.send(target, payload, bytes, message.emittedAtJson, this.checkpoints.recordReceived(key), this.lineNumber);
      // The first record of a topic being verified holds input back until it has come back (or fails the sync).
      const verifying = this.delivery?.published(key, payload);
      if (verifying) channel.publisher.holdUntil(verifying);
      return { channel, bytes };
    }
    if (message.kind === 'state') this.emitStates(this.checkpoints.stateReceived(message));
    // TRACE, LOG and any other message type carry nothing to publish.
    return undefined;
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

  /** Ends every connection with a DISCONNECT. */
  private async closeAll(): Promise<void> {
    await Promise.all(this.channels.map((channel) => channel.keeper.close()));
  }

  private async finish(): Promise<void> {
    await this.drainAll();
    if (this.failure) return;
    this.progress.stop();
    await this.closeAll();
    for (const { totals } of this.lanes.values()) {
      if (totals.records === 0) continue;
      const unheard = this.channels.reduce((sum, channel) => sum + (channel.publisher.noSubscribers.get(totals.route.topic) ?? 0), 0);
      this.output.log(
        'INFO',
        `Stream ${describeStream(totals.route.namespace, totals.route.name)}: ${totals.records} record(s), ${totals.bytes} payload bytes, published to "${totals.route.topic}"` +
          `${unheard ? `; the broker reported no matching subscribers for ${unheard} of them` : ''}.`,
      );
    }
    this.output.log('INFO', `Sync complete: ${this.checkpoints.recordsAcknowledged} record(s) acknowledged from ${this.lineNumber} input line(s).`);
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
