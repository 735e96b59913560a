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
import type { MqttClient } from 'mqtt';
import split2 from 'split2';
import { brokerAddress, connectBroker, disconnect } from '../broker.js';
import { type StreamRoute, describeStream, readCatalog, routeStreams, streamKey } from '../catalog.js';
import { Checkpoints } from '../checkpoints.js';
import { readConfigFile, type Settings, toSettings } from '../config/settings.js';
import { buildEnvelope } from '../envelope.js';
import { type ConnectorError, InputError, asConnectorError } from '../errors.js';
import { parseLine } from '../protocol/input.js';
import type { Output } from '../protocol/output.js';
import { Publisher } from '../publisher.js';

const QOS_NAMES = ['0 (at most once)', '1 (at least once)', '2 (exactly once)'];

export async function write(configPath: string, catalogPath: string, output: Output, input: Readable = process.stdin): Promise<void> {
  const settings = toSettings(await readConfigFile(configPath));
  output.redact([settings.password]);
  const routes = routeStreams(await readCatalog(catalogPath), settings.topicPattern);
  const client = await connectBroker(settings);
  const sync = new WriteSync(settings, routes, client, output);
  try {
    await sync.run(input);
  } finally {
    input.destroy();
  }
}

interface StreamTotals {
  readonly route: StreamRoute;
  records: number;
}

class WriteSync {
  private readonly checkpoints = new Checkpoints();
  private readonly publisher: Publisher;
  private readonly totals = new Map<string, StreamTotals>();
  private lineNumber = 0;
  private failure: ConnectorError | undefined;
  private rejectRun: ((error: ConnectorError) => void) | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly routes: ReadonlyMap<string, StreamRoute>,
    private readonly client: MqttClient,
    private readonly output: Output,
  ) {
    this.publisher = new Publisher(
      client,
      { qos: settings.qos, retain: settings.retain, maxInflight: settings.maxInflight, oneAtATime: settings.publisherSync },
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
      const route = this.routes.get(key);
      if (!route) {
        throw new InputError(
          this.lineNumber,
          `record of stream ${describeStream(message.namespace, message.stream)}, which is not in the configured catalog`,
        );
      }
      this.countRecord(key, route);
      const payload = buildEnvelope({ streamJson: route.streamJson, emittedAtJson: message.emittedAtJson, dataJson: message.dataJson });
      this.publisher.send(route.topic, payload, this.checkpoints.recordReceived(key));
    } else if (message.kind === 'state') {
      this.emitStates(this.checkpoints.stateReceived(message));
    }
    // TRACE, LOG and any other message type carry nothing to publish.
  }

  private countRecord(key: string, route: StreamRoute): void {
    const totals = this.totals.get(key);
    if (totals) totals.records++;
    else this.totals.set(key, { route, records: 1 });
  }

  private emitStates(lines: readonly string[]): void {
    for (const line of lines) this.output.state(line);
  }

  private async finish(): Promise<void> {
    await this.publisher.drain();
    if (this.failure) return;
    this.publisher.closingDeliberately();
    await disconnect(this.client);
    for (const { route, records } of this.totals.values()) {
      this.output.log('INFO', `Stream ${describeStream(route.namespace, route.name)}: ${records} record(s) published to "${route.topic}".`);
    }
    this.output.log('INFO', `Sync complete: ${this.checkpoints.recordsAcknowledged} record(s) acknowledged from ${this.lineNumber} input line(s).`);
  }

  private fail(error: ConnectorError): void {
    if (this.failure) return;
    this.failure = error;
    this.publisher.closingDeliberately();
    this.client.end(true);
    const held = this.checkpoints.statesHeld;
    this.output.log(
      'WARN',
      `Stopping after ${this.lineNumber} input line(s): ${this.checkpoints.recordsAcknowledged} of ${this.checkpoints.recordsReceived} record(s) acknowledged; ${held} state message(s) withheld because the records before them were not all acknowledged.`,
    );
    this.rejectRun?.(error);
  }
}
