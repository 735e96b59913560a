/**
 * A broker that does not speak the configured MQTT version and says nothing: it closes the connection on the CONNECT,
 * as RabbitMQ 3.x does for MQTT 5 and NATS for MQTT 3.1. Played by a front that reads the CONNECT's protocol level,
 * closes on anything but the levels it is given, and passes the rest to aedes. The diagnosis names protocol_version,
 * is confirmed by one MQTT 3.1.1 connection, and is a config_error only when confirmed.
 */
import assert from 'node:assert/strict';
import { type Server, type Socket, connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { runCheck, runWrite, checkStatus as status } from '../support/connector.js';
import { catalogOf, recordLine } from '../support/messages.js';

const broker = withAedes();

/** The protocol level of the CONNECT at the start of `data` (3 for MQTT 3.1, 4 for 3.1.1, 5), if it is all there. */
function protocolLevel(data: Buffer): number | undefined {
  let at = 1;
  while (at < data.length && ((data[at] as number) & 0x80) !== 0) at++;
  at++;
  if (at + 2 > data.length) return undefined;
  const nameLength = data.readUInt16BE(at);
  return data[at + 2 + nameLength];
}

/** Listens on a free port; closes each connection whose CONNECT is not of one of `levels`, passes the rest to aedes. */
async function front(levels: readonly number[]): Promise<{ port: number; refused: number[]; close(): Promise<void> }> {
  const refused: number[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.once('data', (first: Buffer) => {
      const level = protocolLevel(first) ?? 0;
      if (!levels.includes(level)) {
        refused.push(level);
        client.destroy();
        return;
      }
      const upstream = connect(broker.port, '127.0.0.1', () => {
        upstream.write(first);
        client.pipe(upstream).pipe(client);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    refused,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a broker that closes the connection on an MQTT version it does not speak', () => {
  for (const [version, level] of [
    ['5', 5],
    ['3.1', 3],
  ] as const) {
    it(`check with MQTT ${version} names protocol_version, confirmed by an MQTT 3.1.1 connection`, async () => {
      const only311 = await front([4]);
      try {
        const { status: outcome, message } = status(
          await runCheck({
            broker_host: '127.0.0.1',
            broker_port: only311.port,
            topic_pattern: 't',
            protocol_version: version,
          }),
        );
        assert.equal(outcome, 'FAILED');
        assert.match(
          message,
          new RegExp(
            `closed the connection without answering the MQTT ${version.replace('.', '\\.')} CONNECT, and accepted an MQTT 3\\.1\\.1 connection the connector made to confirm it: it does not speak MQTT ${version.replace('.', '\\.')}\\. Set "MQTT protocol version" \\(protocol_version\\) to 3\\.1\\.1\\.`,
          ),
        );
        assert.doesNotMatch(message, /TLS/);
        assert.deepEqual(only311.refused, [level]);
      } finally {
        await only311.close();
      }
    });
  }

  it('write fails with a config_error once confirmed', async () => {
    const only311 = await front([4]);
    try {
      const stream = { name: 'orders' };
      const result = await runWrite(
        { broker_host: '127.0.0.1', broker_port: only311.port, topic_pattern: 'v/{stream}', protocol_version: '5' },
        catalogOf([stream]),
        recordLine(stream, { i: 1 }),
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'config_error');
      assert.match(
        String(error.message),
        /it does not speak MQTT 5\. Set "MQTT protocol version" \(protocol_version\) to 3\.1\.1\./,
      );
    } finally {
      await only311.close();
    }
  });

  it('stays a transient_error naming protocol_version first when MQTT 3.1.1 is closed too', async () => {
    const none = await front([]);
    try {
      const stream = { name: 'orders' };
      const result = await runWrite(
        { broker_host: '127.0.0.1', broker_port: none.port, topic_pattern: 'v/{stream}', protocol_version: '5' },
        catalogOf([stream]),
        recordLine(stream, { i: 1 }),
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'transient_error');
      assert.match(
        String(error.message),
        /closed the connection without answering the MQTT 5 CONNECT\. Most likely it does not speak MQTT 5 .*set "MQTT protocol version" \(protocol_version\) to 3\.1\.1\. Otherwise, if it expects TLS/,
      );
      assert.deepEqual(none.refused, [5, 4], 'one MQTT 3.1.1 attempt to confirm');
    } finally {
      await none.close();
    }
  });

  it('keeps the TLS hint first for MQTT 3.1.1, which almost every broker speaks', async () => {
    const none = await front([]);
    try {
      const { status: outcome, message } = status(
        await runCheck({ broker_host: '127.0.0.1', broker_port: none.port, topic_pattern: 't' }),
      );
      assert.equal(outcome, 'FAILED');
      assert.match(
        message,
        /closed the connection without accepting it\. If it expects TLS, turn on "Use TLS" \(use_tls\)/,
      );
      assert.deepEqual(none.refused, [4], 'nothing to confirm');
    } finally {
      await none.close();
    }
  });
});
