/**
 * `write`: the sync itself. The data path reads top to bottom:
 *
 *   stdin line -> message -> (route: topic, envelope) -> publish -> acknowledgement -> state out
 *
 * Input is read only while the publisher has room, so memory stays bounded however large the sync. A state goes out
 * only once the checkpoints say every record before it is acknowledged; when anything fails, reading stops, the
 * connection is dropped and the states still held are never emitted.
 */
import type { Readable } from 'node:stream';
import split2 from 'split2';
import { type Connection, brokerAddress, connectBroker, describeLimits, disconnect } from '../broker.js';
import { type StreamRoute, describeStream, readCatalog, routeStreams, streamKey } from '../catalog.js';
import { Checkpoints } from '../checkpoints.js';
import { describeSettings, readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { buildEnvelope } from '../envelope.js';
import { ConfigError, type ConnectorError, InputError, asConnectorError } from '../errors.js';
import { PublishEncoder, type PublishTarget, publishTarget } from '../packets.js';
import { parseLine } from '../protocol/input.js';
import type { Output } from '../protocol/output.js';
import { Publisher } from '../publisher.js';

const QOS_NAMES = ['0 (at most once)', '1 (at least once)', '2 (exactly once)'];

export async function write(configPath: string, catalogPath: string, output: Output, input: Readable = process.stdin): Promise<void> {
  const settings = toSettings(await readConfigFile(configPath));
  output.redact(settings.secrets);
  output.log('INFO', `Effective configuration: ${describeSettings(settings)}`);
  for (const warning of settings.warnings) output.log('WARN', warning);
  const routes = routeStreams(await readCatalog(catalogPath), settings.topicPattern);
  const connection = await connectBroker(settings);
  output.log('DEBUG', `Connected; broker limits: ${describeLimits(connection.limits)}.`);
  const sync = new WriteSync(settings, routes, connection, output);
  try {
    await sync.run(input);
  } finally {
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

function laneTarget(settings: Settings, route: StreamRoute, alias: number): PublishTarget {
  const userProperties: Record<string, string> = { airbyte_stream: route.name };
  if (route.namespace !== undefined) userProperties.airbyte_namespace = route.namespace;
  return publishTarget(route.topic, {
    mqtt5: settings.protocol === '5',
    contentType: 'application/json',
    messageExpirySeconds: settings.messageExpirySeconds,
    userProperties: settings.mqtt5UserProperties ? userProperties : undefined,
    emittedAtProperty: settings.mqtt5UserProperties,
    alias,
  });
}

class WriteSync {
  private readonly checkpoints = new Checkpoints();
  private readonly publisher: Publisher;
  private readonly lanes = new Map<string, Lane>();
  private readonly encoder: PublishEncoder;
  private readonly maxPacketSize: number | undefined;
  private lineNumber = 0;
  private failure: ConnectorError | undefined;
  private rejectRun: ((error: ConnectorError) => void) | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly routes: ReadonlyMap<string, StreamRoute>,
    private readonly connection: Connection,
    private readonly output: Output,
  ) {
    // Topic aliases (MQTT 5) for as many streams as the broker allows; the rest send their topic every time.
    const aliases = connection.limits.topicAliasMaximum ?? 0;
    for (const [key, route] of routes) {
      const alias = this.lanes.size < aliases ? this.lanes.size + 1 : 0;
      this.lanes.set(key, { route, target: laneTarget(settings, route, alias), totals: { route, records: 0, bytes: 0 } });
    }
    this.encoder = new PublishEncoder(settings.qos, settings.retain, settings.protocol === '5');
    this.maxPacketSize = connection.limits.maximumPacketSize;
    this.publisher = new Publisher(
      connection.client,
      this.encoder,
      {
        qos: settings.qos,
        maxInflight: settings.maxInflight,
        oneAtATime: settings.publisherSync,
        brokerReceiveMaximum: connection.limits.receiveMaximum,
      },
      {
        acknowledged: (token) => this.emitStates(this.checkpoints.acknowledged(token)),
        failed: (error) => this.fail(error),
      },
    );
  }

  run(input: Readable): Promise<void> {
    this.output.log(
      'INFO',
      `Publishing ${this.routes.size} stream(s) to ${brokerAddress(this.settings)} at QoS ${QOS_NAMES[this.settings.qos]}` +
        `${this.settings.retain ? ', retained' : ''}, up to ${this.publisher.window} message(s) in flight.`,
    );
    return new Promise<void>((resolve, reject) => {
      this.rejectRun = reject;
      const lines = input.pipe(split2());
      input.on('error', (err) => this.fail(asConnectorError(err)));
      lines.on('error', (err) => this.fail(asConnectorError(err)));
      lines.on('data', (line: string) => {
        if (this.failure) return;
        this.lineNumber++;
        try {
          this.handleLine(line);
        } catch (err) {
          this.fail(asConnectorError(err));
          return;
        }
        if (!this.publisher.hasRoom) {
          lines.pause();
          this.publisher.whenRoom(() => lines.resume());
        }
      });
      lines.on('end', () => {
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
        throw new InputError(
          this.lineNumber,
          `record of stream ${describeStream(message.namespace, message.stream)}, which is not in the configured catalog`,
        );
      }
      const { route, target } = lane;
      const payload = buildEnvelope({ streamJson: route.streamJson, emittedAtJson: message.emittedAtJson, dataJson: message.dataJson });
      const bytes = Buffer.byteLength(payload, 'utf8');
      const size = this.encoder.size(target, bytes, message.emittedAtJson);
      if (this.maxPacketSize !== undefined && size > this.maxPacketSize) this.tooLarge(route, size, this.maxPacketSize);
      lane.totals.records++;
      lane.totals.bytes += bytes;
      this.publisher.send(target, payload, bytes, message.emittedAtJson, size, this.checkpoints.recordReceived(key));
    } else if (message.kind === 'state') {
      this.emitStates(this.checkpoints.stateReceived(message));
    }
    // TRACE, LOG and any other message type carry nothing to publish.
  }

  private tooLarge(route: StreamRoute, size: number, limit: number): never {
    throw new ConfigError(
      `Input line ${this.lineNumber}: the record of stream ${describeStream(route.namespace, route.name)} makes a ${size}-byte MQTT message, ` +
        `larger than the ${limit} bytes the broker accepts. Nothing larger can be published to this broker; raise its limit or leave out this record's large fields.`,
    );
  }

  private emitStates(lines: readonly string[]): void {
    for (const line of lines) this.output.state(line);
  }

  private async finish(): Promise<void> {
    await this.publisher.drain();
    if (this.failure) return;
    this.publisher.closingDeliberately();
    await disconnect(this.connection.client);
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
    if (this.failure) return;
    this.failure = error;
    this.publisher.closingDeliberately();
    this.connection.client.end(true);
    const held = this.checkpoints.statesHeld;
    this.output.log(
      'WARN',
      `Stopping after ${this.lineNumber} input line(s): ${this.checkpoints.recordsAcknowledged} of ${this.checkpoints.recordsReceived} record(s) acknowledged; ${held} state message(s) withheld because the records before them were not all acknowledged.`,
    );
    this.rejectRun?.(error);
  }
}
