/**
 * MQTT 5 re-authentication: a new token on the open connection, without closing it (MQTT 5.0, 4.12.1). The client
 * sends AUTH with reason code 0x19 (Re-authenticate), the same Authentication Method as its CONNECT and the new
 * Authentication Data; the broker answers AUTH 0x00 (Success), or DISCONNECT when it refuses. Azure Event Grid renews
 * Microsoft Entra tokens this way; messages keep flowing meanwhile.
 *
 * MQTT.js has no way to send AUTH itself, but it hands every AUTH it receives to `handleAuth`: the packet is written
 * here and the answer taken there. Exchanges of more than one step (0x18, Continue authentication) are not needed by
 * any method the connector offers and count as a refusal.
 */
import type { MqttClient } from 'mqtt';

type AuthHandler = MqttClient['handleAuth'];

const AUTH = 0xf0;
const REAUTHENTICATE = 0x19;
const AUTHENTICATION_METHOD = 0x15;
const AUTHENTICATION_DATA = 0x16;

function variableByteInteger(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

function withLength(data: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(data.length);
  return Buffer.concat([length, data]);
}

/** An AUTH packet asking to re-authenticate with `method` and `data`. */
export function reauthenticatePacket(method: string, data: Buffer): Buffer {
  const properties = Buffer.concat([
    Buffer.from([AUTHENTICATION_METHOD]),
    withLength(Buffer.from(method, 'utf8')),
    Buffer.from([AUTHENTICATION_DATA]),
    withLength(data),
  ]);
  const body = Buffer.concat([Buffer.from([REAUTHENTICATE]), variableByteInteger(properties.length), properties]);
  return Buffer.concat([Buffer.from([AUTH]), variableByteInteger(body.length), body]);
}

/** Why a re-authentication did not succeed: no answer in time, or the broker's reason code. */
export class ReauthenticationRefused extends Error {}

/**
 * Re-authenticates `client` with `method` and `data`; resolves when the broker answers AUTH Success, rejects when it
 * answers anything else or nothing within `timeoutMs` (a broker that refuses disconnects, and the connection's loss
 * is handled as any other).
 */
export function reauthenticate(client: MqttClient, method: string, data: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const previous = client.handleAuth.bind(client);
    const done = (error?: Error): void => {
      clearTimeout(timer);
      client.handleAuth = previous;
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(
      () => done(new ReauthenticationRefused(`no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const handle: AuthHandler = (packet, callback): void => {
      const code = packet.reasonCode ?? 0;
      if (code === 0) {
        done();
        callback();
        return;
      }
      const error = new ReauthenticationRefused(`the broker answered AUTH with reason code 0x${code.toString(16)}`);
      done(error);
      callback(error);
    };
    client.handleAuth = handle;
    client.stream.write(reauthenticatePacket(method, data));
  });
}
