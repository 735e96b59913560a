/**
 * The schema every stdout line of the connector is checked against in the tests (test/support/airbyte-protocol.ts):
 * it must take the lines the connector really prints, and refuse what the Airbyte protocol refuses from a destination,
 * naming where.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DESTINATION_SYNC_MODES,
  parseProtocolLine,
  parseProtocolLines,
  protocolProblems,
} from '../support/airbyte-protocol.js';
import { PROJECT_ROOT } from '../support/connector.js';

const SPEC = JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')) as Record<string, unknown>;

const LOG =
  '{"type":"LOG","log":{"level":"INFO","message":"Sync complete: 3 record(s) acknowledged from 5 input line(s)."}}';
const STATE =
  '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":"crm"},"stream_state":{"cursor":12345678901234567890}},' +
  '"sourceStats":{"recordCount":3.0},"id":7,"future_field":[1.50],"destinationStats":{"recordCount":2.0,"rejectedRecordCount":1.0}},"top_level_unknown":true}';
const CONNECTION_STATUS =
  '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED","message":"Connected to 127.0.0.1:1883 at QoS 1 accepted."}}';
const TRACE =
  '{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1700000000000,"error":{"message":"The broker refused the connection.",' +
  '"failure_type":"config_error","internal_message":"Connection refused: Not authorized","stack_trace":"ConfigError: ..."}}}';

/** The problems for `message`, which must include one naming `path` (followed by a space, so no longer path matches). */
function assertRefused(message: unknown, path: string): string[] {
  const problems = protocolProblems(message);
  assert.ok(problems.length > 0, `accepted: ${JSON.stringify(message)}`);
  assert.ok(
    problems.some((problem) => problem.startsWith(`${path} `)),
    `no problem names ${path}:\n${problems.join('\n')}`,
  );
  return problems;
}

describe('the Airbyte protocol schema for what a destination prints', () => {
  it('accepts the LOG, STATE, CONNECTION_STATUS and TRACE lines the connector prints', () => {
    for (const line of [LOG, STATE, CONNECTION_STATUS, TRACE])
      assert.deepEqual(protocolProblems(JSON.parse(line)), [], line);
    assert.deepEqual(
      parseProtocolLines(`${LOG}\n${STATE}\n\n${CONNECTION_STATUS}\n${TRACE}\n`).map((m) => m.type),
      ['LOG', 'STATE', 'CONNECTION_STATUS', 'TRACE'],
    );
  });

  it('accepts GLOBAL and LEGACY states, and a state without a type', () => {
    for (const state of [
      {
        type: 'GLOBAL',
        global: {
          shared_state: { lsn: 1 },
          stream_states: [{ stream_descriptor: { name: 'users' }, stream_state: {} }],
        },
      },
      { type: 'LEGACY', data: { cursor: 'c' } },
      { data: { cursor: 'c' }, destinationStats: { recordCount: 0.0, stagedBytes: 12 } },
    ]) {
      assert.deepEqual(protocolProblems({ type: 'STATE', state }), [], JSON.stringify(state));
    }
  });

  it('accepts spec.json as the connector prints it, as a SPEC message', () => {
    assert.deepEqual(protocolProblems({ type: 'SPEC', spec: SPEC }), []);
  });

  it('accepts spec.json in every other respect, whatever sync modes it declares', () => {
    const modes = (SPEC.supported_destination_sync_modes as string[]).filter((mode) =>
      (DESTINATION_SYNC_MODES as readonly string[]).includes(mode),
    );
    assert.deepEqual(
      protocolProblems({ type: 'SPEC', spec: { ...SPEC, supported_destination_sync_modes: modes } }),
      [],
    );
  });

  it('accepts every destination sync mode of protocol 0.18, and a SPEC with nothing but its connection specification', () => {
    assert.deepEqual(
      protocolProblems({
        type: 'SPEC',
        spec: { connectionSpecification: {}, supported_destination_sync_modes: DESTINATION_SYNC_MODES },
      }),
      [],
    );
  });

  it('refuses a SPEC declaring overwrite_dedup, which protocol 0.18 does not define', () => {
    const problems = assertRefused(
      { type: 'SPEC', spec: { ...SPEC, supported_destination_sync_modes: ['append', 'overwrite_dedup'] } },
      '$.spec.supported_destination_sync_modes[1]',
    );
    assert.match(
      problems.join('\n'),
      /"overwrite_dedup", not one of append, overwrite, append_dedup, update, soft_delete/,
    );
  });

  it('refuses a SPEC without its connection specification', () => {
    assertRefused(
      { type: 'SPEC', spec: { documentationUrl: 'https://example.com' } },
      '$.spec.connectionSpecification',
    );
  });

  it('refuses a TRACE without emitted_at', () => {
    const trace = JSON.parse(TRACE) as { trace: Record<string, unknown> };
    delete trace.trace.emitted_at;
    assertRefused(trace, '$.trace.emitted_at');
  });

  it('refuses a TRACE ERROR whose failure_type the protocol does not define', () => {
    const problems = assertRefused(
      JSON.parse(TRACE.replace('"config_error"', '"fatal"')),
      '$.trace.error.failure_type',
    );
    assert.match(problems.join('\n'), /"fatal", not one of system_error, config_error, transient_error/);
  });

  it('refuses a TRACE ERROR without its error', () => {
    assertRefused({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: 1 } }, '$.trace.error');
  });

  it('refuses a LOG with level WARNING (the protocol says WARN)', () => {
    assertRefused(JSON.parse(LOG.replace('"INFO"', '"WARNING"')), '$.log.level');
  });

  it('refuses a CONNECTION_STATUS of OK', () => {
    assertRefused(JSON.parse(CONNECTION_STATUS.replace('"SUCCEEDED"', '"OK"')), '$.connectionStatus.status');
  });

  it('refuses RECORD, CATALOG and CONTROL, which a destination does not print, saying so', () => {
    const record = { type: 'RECORD', record: { stream: 'users', data: {}, emitted_at: 1 } };
    const problems = assertRefused(record, '$.type');
    assert.match(problems.join('\n'), /a destination prints only STATE, LOG, SPEC, CONNECTION_STATUS and TRACE/);
    assertRefused({ type: 'CATALOG', catalog: { streams: [] } }, '$.type');
    assertRefused(
      { type: 'CONTROL', control: { type: 'CONNECTOR_CONFIG', emitted_at: 1, connectorConfig: { config: {} } } },
      '$.type',
    );
  });

  it('refuses a STATE whose stream descriptor has no name', () => {
    assertRefused(JSON.parse(STATE.replace('"name":"users",', '')), '$.state.stream.stream_descriptor.name');
  });

  it('refuses a message without a type, or with one the protocol does not define', () => {
    assertRefused({ log: { level: 'INFO', message: 'hello' } }, '$.type');
    assertRefused({ type: 'PING' }, '$.type');
    assertRefused({ type: 7 }, '$.type');
  });

  it('refuses a message without the body its type names', () => {
    assertRefused({ type: 'LOG' }, '$.log');
    assertRefused({ type: 'STATE' }, '$.state');
    assertRefused({ type: 'SPEC' }, '$.spec');
    assertRefused({ type: 'CONNECTION_STATUS' }, '$.connectionStatus');
    assertRefused({ type: 'TRACE' }, '$.trace');
  });

  it('refuses a GLOBAL state without stream_states and a LEGACY state whose data is not an object, naming the rule', () => {
    const global = assertRefused(
      { type: 'STATE', state: { type: 'GLOBAL', global: { shared_state: {} } } },
      '$.state.global.stream_states',
    );
    assert.match(global.join('\n'), /\[AirbyteGlobalState\/required\]/);
    const legacy = assertRefused({ type: 'STATE', state: { data: null } }, '$.state.data');
    // The same small schema sits at many places; the rule named must be this one.
    assert.match(legacy.join('\n'), /\[AirbyteStateMessage\/properties\/data\/type\]$/);
  });

  it('refuses counts that are not numbers', () => {
    assertRefused(
      JSON.parse(STATE.replace('"rejectedRecordCount":1.0', '"rejectedRecordCount":"1"')),
      '$.state.destinationStats.rejectedRecordCount',
    );
  });

  it('refuses what is not an object', () => {
    for (const value of [null, [], 'LOG', 3]) assertRefused(value, '$');
  });
});

describe('parseProtocolLine', () => {
  it('names the line, its number and every problem', () => {
    const line = JSON.stringify({
      type: 'TRACE',
      trace: { type: 'ERROR', error: { message: 'x'.repeat(1000), failure_type: 'fatal' } },
    });
    assert.throws(
      () => parseProtocolLines(`${LOG}\n${line}\n`),
      (err: Error) => {
        assert.match(err.message, /^stdout line 2 is not an Airbyte message a destination may print: \{"type":"TRACE"/);
        assert.match(err.message, /x\.\.\. \(\d+ characters\)\n/, 'the line shortened');
        assert.ok(err.message.length < 1000, err.message);
        assert.match(
          err.message,
          /\n {2}- \$\.trace\.emitted_at is required but missing \[AirbyteTraceMessage\/required\]/,
        );
        assert.match(err.message, /\n {2}- \$\.trace\.error\.failure_type is string "fatal"/);
        return true;
      },
    );
  });

  it('says when a line is not JSON', () => {
    assert.throws(() => parseProtocolLine('{"type":"LOG"', 4), {
      message: /^stdout line 4 is not JSON \(.*\): \{"type":"LOG"$/,
    });
  });
});
