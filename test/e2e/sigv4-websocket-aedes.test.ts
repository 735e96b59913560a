/**
 * AWS IoT Core over WebSocket with an IAM user's keys, end to end against an aedes wss:// listener: the connector
 * opens the WebSocket at the SigV4-presigned URL (service iotdevicegateway), the signature the broker sees is the one
 * the documented algorithm gives for that time (credentials/sigv4.ts, itself checked against AWS's published
 * examples), a session token follows the signature unsigned, and the records arrive. Nothing secret reaches stdout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { presignedIotWebSocketUrl } from '../../src/credentials/sigv4.js';
import { withAedes } from '../support/aedes.js';
import { generateCertificates, opensslSkipReason } from '../support/certs.js';
import { runWrite } from '../support/connector.js';
import { catalogOf, recordLine, streamStateLine } from '../support/messages.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const SESSION = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN';
const ORDERS = { name: 'orders' };

describe('AWS IoT over WebSocket, signed with SigV4', { skip: opensslSkipReason() }, () => {
  const certs = generateCertificates();
  const broker = withAedes({}, { path: '/mqtt', tls: { cert: certs.serverCert, key: certs.serverKey } });

  for (const sessionToken of [undefined, SESSION]) {
    it(`connects at the presigned URL${sessionToken ? ' with a session token after the signature' : ''}`, async () => {
      const before = broker.wsRequests.length;
      const receivedBefore = broker.received.length;
      const result = await runWrite(
        {
          broker_url: `wss://localhost:${broker.wsPort}/mqtt`,
          tls_ca_certificate: certs.caCert,
          topic_pattern: 'aws/{stream}',
          auth_method: {
            auth_type: 'aws_sigv4_websocket',
            region: 'eu-west-1',
            access_key_id: ACCESS_KEY,
            secret_access_key: SECRET,
            ...(sessionToken ? { session_token: sessionToken } : {}),
          },
        },
        catalogOf([ORDERS]),
        `${recordLine(ORDERS, { id: 1 })}\n${recordLine(ORDERS, { id: 2 })}\n${streamStateLine(ORDERS, 2)}\n`,
      );
      assert.equal(result.code, 0, result.stdout);
      assert.equal(result.states().length, 1);
      const requests = broker.wsRequests.slice(before);
      assert.ok(requests.length >= 1);
      for (const request of requests) {
        const url = new URL(request, `https://localhost:${broker.wsPort}`);
        assert.equal(url.pathname, '/mqtt');
        const query = url.searchParams;
        assert.equal(query.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
        const date = query.get('X-Amz-Date') ?? '';
        assert.match(date, /^\d{8}T\d{6}Z$/);
        assert.equal(
          query.get('X-Amz-Credential'),
          `${ACCESS_KEY}/${date.slice(0, 8)}/eu-west-1/iotdevicegateway/aws4_request`,
        );
        assert.equal(query.get('X-Amz-SignedHeaders'), 'host');
        // The same signature as the documented algorithm gives for that time and host.
        const at = new Date(
          `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
        );
        const expected = new URL(
          presignedIotWebSocketUrl({
            endpoint: 'localhost',
            region: 'eu-west-1',
            accessKeyId: ACCESS_KEY,
            secretAccessKey: SECRET,
            now: at,
            ...(sessionToken ? { sessionToken } : {}),
          }),
        );
        assert.equal(query.get('X-Amz-Signature'), expected.searchParams.get('X-Amz-Signature'));
        assert.match(query.get('X-Amz-Signature') ?? '', /^[0-9a-f]{64}$/);
        const keys = [...query.keys()];
        assert.equal(keys.at(-1), sessionToken ? 'X-Amz-Security-Token' : 'X-Amz-Signature');
        if (sessionToken) assert.equal(query.get('X-Amz-Security-Token'), sessionToken);
      }
      assert.equal(broker.received.slice(receivedBefore).filter((p) => p.topic === 'aws/orders').length, 2);
      assert.ok(!result.stdout.includes(SECRET));
      assert.ok(!result.stdout.includes(SESSION));
    });
  }

  it('is refused unless the broker is reached over wss://', async () => {
    const result = await runWrite(
      {
        broker_host: 'localhost',
        broker_port: broker.port,
        topic_pattern: 'aws/{stream}',
        auth_method: {
          auth_type: 'aws_sigv4_websocket',
          region: 'eu-west-1',
          access_key_id: ACCESS_KEY,
          secret_access_key: SECRET,
        },
      },
      catalogOf([ORDERS]),
      '',
    );
    assert.equal(result.code, 1);
    const error = result.traceError();
    assert.equal(error.failure_type, 'config_error');
    assert.match(String(error.message), /signs a WebSocket URL: the broker must be wss:\/\//);
  });
});
