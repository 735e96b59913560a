/**
 * SigV4 against AWS's published examples, then the AWS IoT WebSocket URL built from the same blocks.
 *
 * Pinned values, from AWS's documentation:
 * - General Reference, "Create a canonical request" / "Calculate the signature" (IAM ListUsers, 2015-08-30,
 *   secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY): canonical request hash f536975d…, signing key c4afb1cc…,
 *   signature 5d672d79….
 * - General Reference, "Examples of how to derive a signing key" (2012-02-15, us-east-1, iam): f4780e2d….
 * - Amazon S3 User Guide, "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", the GET Object
 *   example (examplebucket, AKIAIOSFODNN7EXAMPLE, secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 2013-05-24,
 *   X-Amz-Expires=86400): canonical request hash 3bfa2928…, signature aeeed9bb….
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CredentialConfigError } from '../../../src/credentials/errors.js';
import {
  EMPTY_PAYLOAD_SHA256,
  amzDate,
  canonicalRequest,
  credentialScope,
  presignedIotWebSocketUrl,
  presignedQuery,
  signature,
  signingKey,
  stringToSign,
  uriEncode,
} from '../../../src/credentials/sigv4.js';

const IAM_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const S3_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('SigV4 building blocks against the IAM example of the General Reference', () => {
  const canonical = canonicalRequest({
    method: 'GET',
    path: '/',
    query: [
      ['Version', '2010-05-08'],
      ['Action', 'ListUsers'],
    ],
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
      Host: 'iam.amazonaws.com',
      'X-Amz-Date': '20150830T123600Z',
    },
    payloadHash: EMPTY_PAYLOAD_SHA256,
  });

  it('builds the documented canonical request, sorted, with lower-case header names', () => {
    assert.equal(
      canonical.text,
      [
        'GET',
        '/',
        'Action=ListUsers&Version=2010-05-08',
        'content-type:application/x-www-form-urlencoded; charset=utf-8',
        'host:iam.amazonaws.com',
        'x-amz-date:20150830T123600Z',
        '',
        'content-type;host;x-amz-date',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ].join('\n'),
    );
    assert.equal(sha256(canonical.text), 'f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59');
    assert.equal(canonical.signedHeaders, 'content-type;host;x-amz-date');
  });

  it('derives the documented signing keys', () => {
    assert.equal(
      signingKey(IAM_SECRET, '20150830', 'us-east-1', 'iam').toString('hex'),
      'c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9',
    );
    assert.equal(
      signingKey(IAM_SECRET, '20120215', 'us-east-1', 'iam').toString('hex'),
      'f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d',
    );
  });

  it('builds the documented string to sign and signature', () => {
    const toSign = stringToSign('20150830T123600Z', credentialScope('20150830', 'us-east-1', 'iam'), canonical.text);
    assert.equal(
      toSign,
      'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n' +
        'f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59',
    );
    assert.equal(
      signature(signingKey(IAM_SECRET, '20150830', 'us-east-1', 'iam'), toSign),
      '5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    );
  });
});

describe('presigned query against the S3 example', () => {
  it('reproduces the documented signature', () => {
    const query = presignedQuery({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      path: '/test.txt',
      service: 's3',
      region: 'us-east-1',
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: S3_SECRET,
      now: new Date('2013-05-24T00:00:00Z'),
      expiresSeconds: 86400,
      payloadHash: 'UNSIGNED-PAYLOAD',
    });
    assert.equal(
      query,
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
        '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });
});

describe('SigV4 encoding and dates', () => {
  it('percent-encodes all but the unreserved characters, the ones encodeURIComponent misses included', () => {
    assert.equal(uriEncode("AZaz09-_.~ !'()*/+=&é"), 'AZaz09-_.~%20%21%27%28%29%2A%2F%2B%3D%26%C3%A9');
  });

  it('formats the signing time in UTC without separators or milliseconds', () => {
    assert.deepEqual(amzDate(new Date('2024-02-29T23:59:58.765Z')), {
      amzDate: '20240229T235958Z',
      dateStamp: '20240229',
    });
  });
});

describe('AWS IoT presigned WebSocket URL', () => {
  const base = {
    endpoint: 'abc123-ats.iot.eu-west-1.amazonaws.com',
    region: 'eu-west-1',
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: IAM_SECRET,
    now: new Date('2025-01-02T03:04:05Z'),
  };

  /** The signature recomputed from the documented steps for the IoT request, independently of presignedQuery. */
  function expectedSignature(query: string, host: string): string {
    const canonical = ['GET', '/mqtt', query, `host:${host}\n`, 'host', EMPTY_PAYLOAD_SHA256].join('\n');
    const toSign = ['AWS4-HMAC-SHA256', '20250102T030405Z', '20250102/eu-west-1/iotdevicegateway/aws4_request']
      .concat(sha256(canonical))
      .join('\n');
    return signature(signingKey(IAM_SECRET, '20250102', 'eu-west-1', 'iotdevicegateway'), toSign);
  }

  it('has the documented shape: wss, /mqtt, the signed parameters in order, then the signature', () => {
    const url = presignedIotWebSocketUrl(base);
    const signed =
      'X-Amz-Algorithm=AWS4-HMAC-SHA256' +
      '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250102%2Feu-west-1%2Fiotdevicegateway%2Faws4_request' +
      '&X-Amz-Date=20250102T030405Z&X-Amz-SignedHeaders=host';
    assert.equal(
      url,
      `wss://abc123-ats.iot.eu-west-1.amazonaws.com/mqtt?${signed}` +
        `&X-Amz-Signature=${expectedSignature(signed, base.endpoint)}`,
    );
  });

  it('appends the session token after signing: the signature is the same with or without it', () => {
    const token = 'IQoJb3JpZ2luX2VjE/+token==';
    const withToken = new URL(presignedIotWebSocketUrl({ ...base, sessionToken: token }));
    const without = new URL(presignedIotWebSocketUrl(base));
    assert.equal(withToken.searchParams.get('X-Amz-Signature'), without.searchParams.get('X-Amz-Signature'));
    assert.equal(withToken.searchParams.get('X-Amz-Security-Token'), token);
    assert.ok(withToken.search.endsWith(`&X-Amz-Security-Token=${uriEncode(token)}`), withToken.search);
    assert.deepEqual([...withToken.searchParams.keys()].slice(-2), ['X-Amz-Signature', 'X-Amz-Security-Token']);
  });

  it('signs X-Amz-Expires when asked, in sorted place', () => {
    const url = new URL(presignedIotWebSocketUrl({ ...base, expiresSeconds: 900 }));
    assert.deepEqual(
      [...url.searchParams.keys()],
      ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'],
    );
    const signed = url.search.slice(1, url.search.indexOf('&X-Amz-Signature='));
    assert.equal(url.searchParams.get('X-Amz-Signature'), expectedSignature(signed, base.endpoint));
  });

  it('signs the host in lower case, as it is sent', () => {
    const url = new URL(presignedIotWebSocketUrl({ ...base, endpoint: 'ABC123-ats.IOT.eu-west-1.amazonaws.com' }));
    assert.equal(url.host, base.endpoint);
    const signed = url.search.slice(1, url.search.indexOf('&X-Amz-Signature='));
    assert.equal(url.searchParams.get('X-Amz-Signature'), expectedSignature(signed, base.endpoint));
  });

  it('refuses an endpoint that is a URL and a region that is not a region code, naming the field', () => {
    for (const [input, key] of [
      [{ endpoint: 'wss://abc123-ats.iot.eu-west-1.amazonaws.com/mqtt' }, 'broker_host'],
      [{ region: 'Ireland' }, 'auth_method.region'],
    ] as const) {
      assert.throws(
        () => presignedIotWebSocketUrl({ ...base, ...input }),
        (err: unknown) => err instanceof CredentialConfigError && err.fieldKeys[0] === key,
      );
    }
  });
});
