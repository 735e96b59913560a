/**
 * Credential renewal on its own: when it happens, which way (MQTT 5 re-authentication on the open connection, or
 * quiesce and replace), and the fall-back from a re-authentication that fails to a planned reconnect. The connection
 * is a fake whose client writes into the fake connection of the publisher's tests (it parses every packet), and the
 * test plays the broker's AUTH answer through the client's `handleAuth`; quiesce and replace are recorded steps whose
 * quiesce the test settles. Time is node:test's mocked clock and setTimeout. New credentials come from an Azure IoT
 * Hub SAS method, which makes them locally from the mocked clock.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { IAuthPacket, Packet } from 'mqtt-packet';
import type { BrokerSettings, MqttVersion } from '../../../src/config/settings.js';
import type { Credential } from '../../../src/credentials/credential.js';
import type { AzureSasMethod } from '../../../src/credentials/sources.js';
import type { LogLevel } from '../../../src/log.js';
import type { Connection } from '../../../src/mqtt/connect.js';
import { CredentialRenewal } from '../../../src/mqtt/credential-renewal.js';
import { FakePort } from '../../support/fake-port.js';

const START = 1_700_000_000_000;
const CONNECT_TIMEOUT_MS = 5000;
/** A 100 s credential is renewed 50 s into its life (the 60 s margin is capped at half the lifetime). */
const LIFETIME_MS = 100_000;
const DUE_MS = 50_000;
const NAME = 'The connection of client "airbyte-1"';

function sasMethod(deviceKey = 'c2VjcmV0LWRldmljZS1rZXk='): AzureSasMethod {
  // A new object each time: the credential shared by the connections of a sync is kept per configured method.
  return {
    authType: 'azure_iot_hub_sas',
    hubHostname: 'hub.azure-devices.net',
    deviceId: 'dev-1',
    deviceKey,
    tokenTtlSeconds: LIFETIME_MS / 1000,
  };
}

function broker(mqttVersion: MqttVersion, auth: AzureSasMethod): BrokerSettings {
  return {
    transport: 'tcp',
    host: 'broker.example.com',
    port: 1883,
    websocketPath: '/mqtt',
    mqttVersion,
    username: undefined,
    password: undefined,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    tls: undefined,
    clientId: 'airbyte-1',
    cleanSession: true,
    sessionExpirySeconds: 0,
    automaticReconnect: true,
    reconnectTimeoutMs: 1000,
    auth,
    reach: { kind: 'direct' },
  };
}

/** A credential made now that lives `LIFETIME_MS`, signed in with MQTT 5 enhanced authentication if `enhanced`. */
function credential(
  enhanced: boolean,
  issuedAt = Date.now(),
  lifetimeMs: number | undefined = LIFETIME_MS,
): Credential {
  return {
    ...(enhanced
      ? { authenticationMethod: 'OAUTH2-JWT', authenticationData: Buffer.from('first-token') }
      : { password: 'first-token' }),
    issuedAt,
    expiresAt: lifetimeMs === undefined ? undefined : issuedAt + lifetimeMs,
  };
}

interface FakeClient {
  connected: boolean;
  readonly stream: FakePort;
  handleAuth(packet: IAuthPacket, callback: (error?: Error, packet?: Packet) => void): void;
}

interface Harness {
  readonly renewal: CredentialRenewal;
  /** A connection over a new fake client, signed in with `signedIn`. */
  readonly connect: (signedIn: Credential) => { connection: Connection; client: FakeClient };
  /** Every step taken, in order: `quiesce:<timeout>`, `replace:<connection number>`, `log:<level>`. */
  readonly steps: string[];
  readonly logs: string[];
  /** Settles the pending quiesce. */
  readonly quiesced: () => void;
}

function harness(options: { mqttVersion?: MqttVersion; auth?: AzureSasMethod } = {}): Harness {
  const steps: string[] = [];
  const logs: string[] = [];
  const connections: Connection[] = [];
  let settle: (() => void) | undefined;
  const renewal = new CredentialRenewal(broker(options.mqttVersion ?? '5', options.auth ?? sasMethod()), NAME, {
    quiesce: (timeoutMs) => {
      steps.push(`quiesce:${timeoutMs}`);
      return new Promise<void>((resolve) => (settle = resolve));
    },
    replace: (connection) => void steps.push(`replace:${connections.indexOf(connection) + 1}`),
    log: (level: LogLevel, message: string) => {
      steps.push(`log:${level}`);
      logs.push(message);
    },
  });
  const connect = (signedIn: Credential): { connection: Connection; client: FakeClient } => {
    const client: FakeClient = {
      connected: true,
      stream: new FakePort({ protocolVersion: 5 }),
      handleAuth: (_packet, callback) => callback(),
    };
    const connection: Connection = {
      client: client as unknown as MqttClient,
      credential: signedIn,
      limits: {},
      sessionPresent: false,
      tls: undefined,
    };
    connections.push(connection);
    return { connection, client };
  };
  return { renewal, connect, steps, logs, quiesced: () => settle?.() };
}

/** The AUTH packets a client wrote. */
function auths(client: FakeClient): IAuthPacket[] {
  return client.stream.packets.filter((packet): packet is IAuthPacket => packet.cmd === 'auth');
}

/** Plays the broker's AUTH answer. */
function answer(client: FakeClient, reasonCode: number): void {
  client.handleAuth({ cmd: 'auth', reasonCode }, () => undefined);
}

/** Lets promise callbacks run (setImmediate is not mocked). */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('CredentialRenewal by a planned reconnect', () => {
  afterEach(() => mock.timers.reset());

  it('at the renewal time holds new messages for up to the connect timeout, then replaces the connection', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness({ mqttVersion: '3.1.1' });
    const { connection, client } = h.connect(credential(false));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS - 1);
    await settled();
    assert.deepEqual(h.steps, [], 'not before it is due');
    mock.timers.tick(1);
    await settled();
    assert.deepEqual(h.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`], 'the connection is replaced only once quiet');
    h.quiesced();
    await settled();
    assert.deepEqual(h.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`, 'log:INFO', 'replace:1']);
    assert.deepEqual(h.logs, [`${NAME}: its credential is due for renewal; reconnecting with a new one.`]);
    assert.equal(h.renewal.reconnected, 1);
    assert.equal(h.renewal.reauthenticated, 0);
    assert.deepEqual(client.stream.packets, [], 'nothing is sent on the old connection');
  });

  it('reconnects when the connection did not sign in with enhanced authentication, or MQTT 5 is not in use', async () => {
    const cases: [MqttVersion, boolean][] = [
      ['5', false],
      ['3.1.1', true],
      ['3.1', true],
    ];
    for (const [mqttVersion, enhanced] of cases) {
      mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
      const h = harness({ mqttVersion });
      const { connection, client } = h.connect(credential(enhanced));
      h.renewal.watch(connection);
      mock.timers.tick(DUE_MS);
      await settled();
      h.quiesced();
      await settled();
      const what = `MQTT ${mqttVersion}, ${enhanced ? '' : 'no '}enhanced authentication`;
      assert.deepEqual(h.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`, 'log:INFO', 'replace:1'], what);
      assert.deepEqual(auths(client), [], what);
      mock.timers.reset();
    }
  });

  it('does not renew a credential that never expires', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness();
    const { connection } = h.connect(credential(true, START, undefined));
    h.renewal.watch(connection);
    mock.timers.tick(365 * 24 * 3600 * 1000);
    await settled();
    assert.deepEqual(h.steps, []);
  });

  it('renews at once a credential already past its renewal time', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness({ mqttVersion: '3.1.1' });
    const { connection } = h.connect(credential(false, START - 2 * LIFETIME_MS));
    h.renewal.watch(connection);
    mock.timers.tick(0);
    await settled();
    assert.deepEqual(h.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`]);
  });

  it('follows only the connection it was told about last', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness({ mqttVersion: '3.1.1' });
    h.renewal.watch(h.connect(credential(false)).connection);
    mock.timers.tick(DUE_MS / 2);
    // The replacement signed in 25 s later: its credential is due 25 s after the first one's.
    h.renewal.watch(h.connect(credential(false)).connection);
    mock.timers.tick(DUE_MS / 2);
    await settled();
    assert.deepEqual(h.steps, [], "the first connection's schedule was dropped");
    mock.timers.tick(DUE_MS / 2);
    await settled();
    h.quiesced();
    await settled();
    assert.deepEqual(h.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`, 'log:INFO', 'replace:2']);
  });

  it('does nothing once stopped, before the renewal or while the connection quiesces', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const before = harness({ mqttVersion: '3.1.1' });
    before.renewal.watch(before.connect(credential(false)).connection);
    before.renewal.stop();
    mock.timers.tick(DUE_MS);
    await settled();
    assert.deepEqual(before.steps, []);
    before.renewal.watch(before.connect(credential(false)).connection);
    mock.timers.tick(DUE_MS);
    await settled();
    assert.deepEqual(before.steps, [], 'nor does watching again start it');

    const during = harness({ mqttVersion: '3.1.1' });
    during.renewal.watch(during.connect(credential(false)).connection);
    mock.timers.tick(DUE_MS);
    await settled();
    during.renewal.stop();
    during.quiesced();
    await settled();
    assert.deepEqual(during.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`], 'no replacement once stopped');
    assert.equal(during.renewal.reconnected, 0);
  });

  it('leaves a connection that closed while it quiesced to the reconnect of any lost connection', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness({ mqttVersion: '3.1.1' });
    const { connection, client } = h.connect(credential(false));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS);
    await settled();
    client.connected = false;
    h.quiesced();
    await settled();
    assert.deepEqual(h.steps, [`quiesce:${CONNECT_TIMEOUT_MS}`]);
    assert.equal(h.renewal.reconnected, 0);
  });

  it('does not keep the process alive with its timer alone', () => {
    const h = harness();
    const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    h.renewal.watch(h.connect(credential(false)).connection);
    assert.equal(timers(), before);
    h.renewal.stop();
  });
});

describe('CredentialRenewal by MQTT 5 re-authentication', () => {
  afterEach(() => mock.timers.reset());

  it('sends AUTH 0x19 on the open connection, stops nothing, and watches the new credential', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness();
    const { connection, client } = h.connect(credential(true));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS - 1);
    await settled();
    assert.deepEqual(auths(client), []);
    mock.timers.tick(1);
    await settled();
    assert.deepEqual(
      auths(client).map((packet) => packet.reasonCode),
      [0x19],
    );
    assert.deepEqual(h.steps, [], 'nothing is held while the broker answers');
    answer(client, 0);
    await settled();
    assert.deepEqual(h.steps, ['log:INFO']);
    assert.deepEqual(h.logs, [`${NAME} re-authenticated with a new token (MQTT 5 AUTH).`]);
    assert.equal(h.renewal.reauthenticated, 1);
    assert.equal(h.renewal.reconnected, 0);
    // The new credential was made at the renewal and lives as long: it is due half its life later, not at once.
    mock.timers.tick(DUE_MS - 1);
    await settled();
    assert.equal(auths(client).length, 1);
    mock.timers.tick(1);
    await settled();
    assert.equal(auths(client).length, 2, 'the new credential is renewed in turn');
    answer(client, 0);
    await settled();
    assert.equal(h.renewal.reauthenticated, 2);
    assert.deepEqual(h.steps, ['log:INFO', 'log:INFO']);
  });

  it('falls back to a planned reconnect when the broker refuses the re-authentication', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness();
    const { connection, client } = h.connect(credential(true));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS);
    await settled();
    answer(client, 0x18);
    await settled();
    assert.deepEqual(h.steps, ['log:WARN', `quiesce:${CONNECT_TIMEOUT_MS}`]);
    assert.equal(
      h.logs[0],
      `${NAME} could not re-authenticate (the broker answered AUTH with reason code 0x18); reconnecting with a new ` +
        'credential.',
    );
    h.quiesced();
    await settled();
    assert.deepEqual(h.steps.slice(2), ['log:INFO', 'replace:1']);
    assert.equal(h.renewal.reauthenticated, 0);
    assert.equal(h.renewal.reconnected, 1);
  });

  it('falls back to a planned reconnect when the broker does not answer within the connect timeout', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness();
    const { connection, client } = h.connect(credential(true));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS);
    await settled();
    mock.timers.tick(CONNECT_TIMEOUT_MS - 1);
    await settled();
    assert.deepEqual(h.steps, []);
    mock.timers.tick(1);
    await settled();
    assert.deepEqual(h.steps, ['log:WARN', `quiesce:${CONNECT_TIMEOUT_MS}`]);
    assert.match(h.logs[0] ?? '', /could not re-authenticate \(no answer within 5 s\); reconnecting/);
    answer(client, 0);
    h.quiesced();
    await settled();
    assert.deepEqual(h.steps.slice(2), ['log:INFO', 'replace:1'], 'a late answer changes nothing');
    assert.equal(h.renewal.reauthenticated, 0);
  });

  it('falls back to a planned reconnect when no new credential can be made', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness({ auth: sasMethod('not base64 at all!') });
    const { connection, client } = h.connect(credential(true));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS);
    await settled();
    assert.deepEqual(auths(client), []);
    assert.deepEqual(h.steps, ['log:WARN', `quiesce:${CONNECT_TIMEOUT_MS}`]);
    assert.match(
      h.logs[0] ?? '',
      /^The connection of client "airbyte-1" could not re-authenticate \("Device key" \(auth_method\.device_key\) is not base64 text;.*\); reconnecting with a new credential\.$/,
    );
  });

  it('leaves a connection the broker closed on refusing to the reconnect of any lost connection', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness();
    const { connection, client } = h.connect(credential(true));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS);
    await settled();
    client.connected = false;
    answer(client, 0x18);
    await settled();
    mock.timers.tick(CONNECT_TIMEOUT_MS);
    await settled();
    assert.deepEqual(h.steps, [], 'no warning, no planned reconnect');
  });

  it('sends nothing when stopped, or when the connection closed, while the new credential was made', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const stopped = harness();
    const first = stopped.connect(credential(true));
    stopped.renewal.watch(first.connection);
    mock.timers.tick(DUE_MS);
    stopped.renewal.stop();
    await settled();
    assert.deepEqual(auths(first.client), []);
    assert.deepEqual(stopped.steps, []);

    const closed = harness();
    const second = closed.connect(credential(true));
    closed.renewal.watch(second.connection);
    mock.timers.tick(DUE_MS);
    second.client.connected = false;
    await settled();
    assert.deepEqual(auths(second.client), []);
    assert.deepEqual(closed.steps, []);
  });

  it('neither warns nor reconnects when stopped during a re-authentication that then fails', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    const h = harness();
    const { connection, client } = h.connect(credential(true));
    h.renewal.watch(connection);
    mock.timers.tick(DUE_MS);
    await settled();
    h.renewal.stop();
    answer(client, 0x18);
    await settled();
    assert.deepEqual(h.steps, []);
  });
});
