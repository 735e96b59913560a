/**
 * `write`: the sync itself. The data path reads top to bottom:
 *
 *   stdin line -> message -> (route: topic, envelope) -> publish -> acknowledgement -> state out
 *
 * Input is read only while the publisher has room, so memory stays bounded however large the sync. A state goes out
 * only once the checkpoints say every record before it is acknowledged. While the connection is down, input waits and
 * the connection keeper reconnects; the publisher then sends again whatever was not acknowledged. When anything fails, reading
 * stops, the connection is dropped and the states still held are never emitted.
 */
import type { Readable } from 'node:stream';
import split2 from 'split2';
import { type Connection, brokerAddress, connectBroker, describeLimits } from '../mqtt/connect.js';
import { type StreamRoute, describeStream, readCatalog, routeStreams, streamKey } from '../airbyte/catalog.js';
import { Checkpoints } from '../airbyte/checkpoints.js';
import { mqttPort } from '../mqtt/connection-port.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { buildEnvelope } from '../payload/envelope.js';
import { type ConnectorError, InputError, InterruptedError, asConnectorError } from '../errors.js';
import { ConnectionKeeper } from '../mqtt/connection-keeper.js';
import { PublishEncoder, type PublishTarget, publishTarget } from '../mqtt/packets.js';
import { parseLine } from '../airbyte/input.js';
import type { Output } from '../airbyte/output.js';
import { Utf8Guard } from '../airbyte/utf8.js';
import { Publisher } from '../mqtt/publisher.js';
import { Progress, progressIntervalMs } from '../sync/progress.js';

const QOS_NAMES = ['0 (at most once)', '1 (at least once)', '2 (exactly once)'];
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export async function write(configPath: string, catalogPath: string, output: Output, input: Readable = process.stdin): Promise<void> {
  const settings = toSettings(await readConfigFile(configPath));
  output.redact(settings.secrets);
  output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
  for (const warning of settings.warnings) output.log('WARN', warning);
  const routes = routeStreams(await readCatalog(catalogPath), settings.topicPattern);
  const connection = await connectBroker(settings);
  output.log('DEBUG', `Connected; broker limits: ${describeLimits(connection.limits)}.`);
  if (connection.sessionPresent) output.log('INFO', `The broker resumed the session it kept for client ID "${settings.clientId}".`);
  const sync = new WriteSync(settings, routes, connection, output);
  const interrupt = (signal: NodeJS.Signals): void => sync.interrupt(signal);
  for (const signal of SIGNALS) process.on(signal, interrupt);
  try {
    await sync.run(input);
  } finally {
    for (const signal of SIGNALS) process.off(signal, interrupt);
    input.destroy();
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
  private readonly publisher: Publisher;
  private readonly keeper: ConnectionKeeper;
  private readonly progress: Progress;
  private readonly lanes = new Map<string, Lane>();
  private lineNumber = 0;
  private statesEmitted = 0;
  private failure: ConnectorError | undefined;
  private interruptedBy: string | undefined;
  private lines: Readable | undefined;
  private rejectRun: ((error: ConnectorError) => void) | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly routes: ReadonlyMap<string, StreamRoute>,
    connection: Connection,
    private readonly output: Output,
  ) {
    for (const [key, route] of routes) this.lanes.set(key, { route, target: laneTarget(settings, route), totals: { route, records: 0, bytes: 0 } });
    this.publisher = new Publisher(
      new PublishEncoder(settings.qos, settings.retain, settings.mqttVersion === '5'),
      { qos: settings.qos, maxInflight: settings.maxInflight, oneAtATime: settings.publisherSync, maxMessageBytes: settings.maxMessageBytes },
      {
        acknowledged: (token) => this.emitStates(this.checkpoints.acknowledged(token)),
        failed: (error) => this.fail(error),
      },
    );
    this.keeper = new ConnectionKeeper(
      settings,
      connection,
      {
        lost: (cause) => this.connectionLost(cause),
        restored: (restored, attempts, downtimeMs) => this.connectionRestored(restored, attempts, downtimeMs),
        failed: (error) => this.fail(error),
      },
      (level, message) => this.output.log(level, message),
    );
    this.useConnection(connection);
    this.progress = new Progress(
      progressIntervalMs(process.env.LOG_PROGRESS_SECONDS),
      () => ({
        received: this.checkpoints.recordsReceived,
        acknowledged: this.checkpoints.recordsAcknowledged,
        statesEmitted: this.statesEmitted,
        connected: this.keeper.connection !== undefined,
      }),
      (level, message) => this.output.log(level, message),
    );
  }

  run(input: Readable): Promise<void> {
    this.output.log(
      'INFO',
      `Publishing ${this.routes.size} stream(s) to ${brokerAddress(this.settings)} at QoS ${QOS_NAMES[this.settings.qos]}` +
        `${this.settings.retain ? ', retained' : ''}, up to ${this.publisher.window} message(s) in flight.`,
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
        try {
          this.handleLine(line);
        } catch (err) {
          this.fail(asConnectorError(err));
          return;
        }
        if (!this.publisher.hasRoom) {
          lines.pause();
          this.publisher.whenRoom(() => {
            if (!this.interruptedBy) lines.resume();
          });
        }
      });
      lines.on('end', () => {
        if (this.failure || this.interruptedBy) return;
        this.finish().then(resolve, (err: unknown) => this.fail(asConnectorError(err)));
      });
    });
  }

  private handleLine(line: string): void {
    if (line.length === 0 || (line.charCodeAt(0) <= 0x20 && line.trim() === '')) return;
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
      this.publisher.send(target, payload, bytes, message.emittedAtJson, this.checkpoints.recordReceived(key), this.lineNumber);
    } else if (message.kind === 'state') {
      this.emitStates(this.checkpoints.stateReceived(message));
    }
    // TRACE, LOG and any other message type carry nothing to publish.
  }

  private emitStates(lines: readonly string[]): void {
    for (const line of lines) this.output.state(line);
    this.statesEmitted += lines.length;
  }

  /** The publisher starts sending on a new connection; what belongs to that connection, it builds from it. */
  private useConnection(connection: Connection): void {
    this.publisher.attach(mqttPort(connection));
  }

  private connectionLost(cause: string): void {
    this.publisher.detach();
    this.output.log(
      'WARN',
      `The connection to the broker was lost (${cause}) with ${this.publisher.unacknowledged} message(s) not yet acknowledged. ` +
        `Input waits while the connector reconnects, for up to ${this.settings.reconnectTimeoutMs / 1000} s.`,
    );
  }

  private connectionRestored(connection: Connection, attempts: number, downtimeMs: number): void {
    if (this.failure) return;
    const session = connection.sessionPresent ? 'the broker resumed the session' : 'in a new session';
    this.output.log(
      'INFO',
      `Reconnected after ${attempts} attempt(s) and ${(downtimeMs / 1000).toFixed(1)} s, ${session}; sending the ${this.publisher.unacknowledged} unacknowledged message(s) again.`,
    );
    this.useConnection(connection);
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
      `Received ${signal}: reading no more input; waiting up to ${graceMs / 1000} s for the broker to acknowledge ${this.publisher.unacknowledged} message(s) in flight.`,
    );
    const timer = setTimeout(stopNow, graceMs);
    this.publisher.drain().then(
      () => {
        clearTimeout(timer);
        if (this.failure) return;
        const error = this.interruptedError(signal);
        this.stop(error, async () => {
          await this.keeper.close();
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

  private async finish(): Promise<void> {
    await this.publisher.drain();
    if (this.failure) return;
    this.progress.stop();
    await this.keeper.close();
    for (const { totals } of this.lanes.values()) {
      if (totals.records === 0) continue;
      const unheard = this.publisher.noSubscribers.get(totals.route.topic);
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
      this.keeper.abort();
      return Promise.resolve(error);
    });
  }

  /** Ends the sync with `error`, once: nothing more is published or acknowledged, and no further state goes out. */
  private stop(error: ConnectorError, close: () => Promise<ConnectorError>): void {
    if (this.failure) return;
    this.failure = error;
    this.progress.stop();
    this.publisher.stop(error);
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
