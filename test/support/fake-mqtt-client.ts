/**
 * What MQTT.js's client is to a channel: events, a stream to write to, and `end`. The stream parses every packet the
 * channel writes (bytes that do not parse fail the test), and the test plays the broker by emitting what MQTT.js would
 * pass on (`packetreceive`, `close`). No broker, no sockets.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';

export class FakeMqttClient extends EventEmitter {
  readonly packets: Packet[] = [];
  connected = true;
  /** How many times the channel ended the client. */
  ends = 0;
  readonly stream: Writable;

  constructor() {
    super();
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (packet: Packet) => this.packets.push(packet));
    parser.on('error', (err: Error) => assert.fail(`the channel wrote bytes that do not parse: ${err.message}`));
    this.stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        parser.parse(chunk);
        done();
      },
    });
  }

  end(_force?: boolean, done?: () => void): this {
    this.ends++;
    this.connected = false;
    done?.();
    return this;
  }

  publishes(): IPublishPacket[] {
    return this.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
  }

  /** The broker answers PUBLISH `messageId` with PUBACK and `reasonCode`. */
  puback(messageId: number, reasonCode = 0): void {
    this.emit('packetreceive', { cmd: 'puback', messageId, reasonCode });
  }
}
