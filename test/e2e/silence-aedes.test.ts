/**
 * A broker that keeps the connection open but stops answering: a proxy in front of aedes holds back everything the
 * broker sends after the CONNACK. No acknowledgement is awaited without bound: after `ack_timeout_seconds` the
 * connector replaces the connection and sends the messages again, and fails with a transient error if they go
 * unanswered once more. `check` reports the same silence within its connect timeout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withAedes } from '../support/aedes.js';
import { type RunResult, logMessages, runCheck, runWrite } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';
import { startProxy } from '../support/proxy.js';

const CONNACK_BYTES = 4;
const STREAM = { name: 'events' };
const CATALOG = catalogOf([STREAM]);

const broker = withAedes();

/** `count` records, a STREAM state after every `every` of them. */
function input(count: number, every: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(recordLine(STREAM, { i }));
    if ((i + 1) % every === 0) lines.push(streamStateLine(STREAM, i + 1));
  }
  return `${lines.join('\n')}\n`;
}

function config(port: number, topic: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  // The proxy would hold the verifying subscription's answers too; delivery verification has tests of its own.
  return {
    broker_host: '127.0.0.1',
    broker_port: port,
    topic_pattern: `silence/${topic}/{stream}`,
    ack_timeout_seconds: 1,
    verify_delivery: false,
    ...overrides,
  };
}

function cursors(result: RunResult): number[] {
  return result.states().map((state) => (state.stream as { stream_state: { cursor: number } }).stream_state.cursor);
}

describe('a broker that stops answering', () => {
  for (const qos of ['AT_LEAST_ONCE', 'EXACTLY_ONCE'] as const) {
    it(`at ${qos}: reconnects after ack_timeout_seconds, sends the messages again and completes`, async () => {
      const proxy = await startProxy(broker.port);
      // Only the first connection goes silent.
      proxy.onConnection((connection) => {
        if (connection.index === 0) connection.holdAfter(CONNACK_BYTES);
      });
      try {
        const result = await runWrite(
          config(proxy.port, `once${qos.length}`, { message_qos: qos }),
          CATALOG,
          input(50, 10),
        );
        assert.equal(result.code, 0, result.stdout);
        assert.deepEqual(cursors(result), [10, 20, 30, 40, 50]);
        assert.equal(proxy.connections.length, 2);
        const [silent] = logMessages(result, /although the connection is up/);
        assert.match(
          silent ?? '',
          new RegExp(
            `the broker left \\d+ message\\(s\\) at QoS ${qos === 'EXACTLY_ONCE' ? 2 : 1} without .* for 1 s .*reconnecting to send them again`,
          ),
        );
      } finally {
        await proxy.close();
      }
    });
  }

  it('fails with a transient error naming the QoS and the silence when the messages go unanswered again', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    try {
      const started = Date.now();
      const result = await runWrite(config(proxy.port, 'twice'), CATALOG, input(50, 10), { timeoutMs: 20_000 });
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'transient_error');
      assert.match(
        String(error.message),
        /The broker left \d+ message\(s\) at QoS 1 without PUBACK for 1 s \("Acknowledgement timeout \(seconds\)" \(ack_timeout_seconds\)\).*again after the connector reconnected and sent them once more/,
      );
      assert.deepEqual(result.states(), []);
      assert.equal(proxy.connections.length, 2);
      assert.ok(Date.now() - started < 15_000, 'two timeouts and a reconnection, not the reconnect timeout');
    } finally {
      await proxy.close();
    }
  });

  it('with automatic_reconnect off, fails at the first silence', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    try {
      const result = await runWrite(
        config(proxy.port, 'noreconnect', { automatic_reconnect: false }),
        CATALOG,
        input(5, 5),
        { timeoutMs: 20_000 },
      );
      assert.equal(result.code, 1);
      const error = result.traceError();
      assert.equal(error.failure_type, 'transient_error');
      assert.match(
        String(error.message),
        /without PUBACK for 1 s .*"Automatic reconnect" \(automatic_reconnect\) is off/,
      );
      assert.equal(proxy.connections.length, 1);
    } finally {
      await proxy.close();
    }
  });

  it('check reports the silence within its connect timeout', async () => {
    const proxy = await startProxy(broker.port);
    proxy.holdDownstream(CONNACK_BYTES);
    try {
      const result = await runCheck({
        ...config(proxy.port, 'check'),
        topic_test: 'silence/check',
        connect_timeout: 2,
      });
      const [status] = result.ofType('CONNECTION_STATUS');
      const { status: outcome, message } = status?.connectionStatus as { status: string; message: string };
      assert.equal(outcome, 'FAILED');
      assert.match(
        message,
        /did not acknowledge the test message on "silence\/check" at QoS 1 within 2 s although the connection is up/,
      );
    } finally {
      await proxy.close();
    }
  });
});
