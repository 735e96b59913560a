/**
 * A connection for unit tests of the publisher: it parses every chunk written to it with mqtt-packet (the parser
 * MQTT.js and aedes use), records the packets, and lets the test play the broker: acknowledge, refuse, fill up the
 * transport's buffer, fail a write.
 */
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { Acknowledgement, ConnectionPort, PortListener, SendLimits } from '../../src/mqtt/connection-port.js';

export interface FakePortOptions {
  readonly protocolVersion?: 4 | 5;
  readonly receiveMaximum?: number;
  readonly topicAliasMaximum?: number;
  readonly maximumPacketSize?: number;
  readonly sessionPresent?: boolean;
  /** Hold write callbacks until `completeWrites` (default: call them in the next turn, as a socket does). */
  readonly holdWrites?: boolean;
}

export class FakePort implements ConnectionPort {
  readonly limits: SendLimits;
  readonly sessionPresent: boolean;
  needsDrain = false;
  /** Every chunk written, in order. */
  readonly chunks: Buffer[] = [];
  /** Every packet parsed from the chunks, in order. */
  readonly packets: Packet[] = [];
  private listener: PortListener | undefined;
  private readonly parser;
  private readonly heldWrites: ((error?: Error | null) => void)[] = [];
  private readonly holdWrites: boolean;

  constructor(options: FakePortOptions = {}) {
    this.limits = {
      receiveMaximum: options.receiveMaximum,
      topicAliasMaximum: options.topicAliasMaximum,
      maximumPacketSize: options.maximumPacketSize,
    };
    this.sessionPresent = options.sessionPresent ?? false;
    this.holdWrites = options.holdWrites ?? false;
    this.parser = mqttPacket.parser({ protocolVersion: options.protocolVersion ?? 4 });
    this.parser.on('packet', (packet: Packet) => this.packets.push(packet));
    this.parser.on('error', (err: Error) => assert.fail(`the publisher wrote bytes that do not parse: ${err.message}`));
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  write(chunk: Buffer, written?: (error?: Error | null) => void): void {
    // Copied: the publisher hands the chunk over, but a test that kept a view of a reused buffer would see it change.
    const copy = Buffer.from(chunk);
    this.chunks.push(copy);
    const left = this.parser.parse(copy);
    // A write carries whole packets: a packet split across writes would be one the batch cut in two.
    assert.equal(left, 0, `chunk ${this.chunks.length} ends inside a packet (${left} bytes left over)`);
    if (!written) return;
    if (this.holdWrites) this.heldWrites.push(written);
    else setImmediate(() => written(null));
  }

  listen(listener: PortListener): () => void {
    this.listener = listener;
    return () => {
      if (this.listener === listener) this.listener = undefined;
    };
  }

  /** Calls the held write callbacks, with `error` if given. */
  completeWrites(error?: Error): void {
    for (const written of this.heldWrites.splice(0)) written(error ?? null);
  }

  acknowledge(kind: Acknowledgement['kind'], packetId: number, reasonCode = 0): void {
    this.listener?.acknowledged({ kind, packetId, reasonCode });
  }

  drained(): void {
    this.needsDrain = false;
    this.listener?.drained();
  }

  /** The PUBLISH packets written so far. */
  publishes(): mqttPacket.IPublishPacket[] {
    return this.packets.filter((p): p is mqttPacket.IPublishPacket => p.cmd === 'publish');
  }
}

/** Lets the publisher's scheduled work (the batch flush, the refill wake-up, write callbacks) run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
