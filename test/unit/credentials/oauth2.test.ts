import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialConfigError, CredentialUnavailableError } from '../../../src/credentials/errors.js';
import { type HttpAnswer, type HttpPost, PostTimeoutError } from '../../../src/credentials/http-post.js';
import {
  type ClientCredentialsRequest,
  MAX_DESCRIPTION_CHARS,
  fetchClientCredentialsToken,
  tokenUrlProblem,
} from '../../../src/credentials/oauth2.js';

const SECRET = 'Sëcret +/=&:%2B';
const REQUEST: ClientCredentialsRequest = {
  tokenUrl: 'https://login.example.com/tenant/oauth2/v2.0/token?x=1',
  clientId: 'client:42',
  clientSecret: SECRET,
  scope: 'https://eventgrid.azure.net/.default',
  timeoutMs: 5_000,
};

interface Sent {
  url: URL;
  headers: Readonly<Record<string, string>>;
  body: string;
  timeoutMs: number;
}

/** An HTTP exchange that records what was sent and answers with `answer` (or throws it). */
function fakePost(answer: HttpAnswer | Error): { post: HttpPost; sent: Sent[] } {
  const sent: Sent[] = [];
  const post: HttpPost = (url, headers, body, options) => {
    sent.push({ url, headers, body, timeoutMs: options.timeoutMs });
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  };
  return { post, sent };
}

const json = (status: number, body: unknown): HttpAnswer => ({ status, body: JSON.stringify(body) });

/** Fetches with the fake and returns the error it failed with, checking that no message shows the secret. */
async function failure(answer: HttpAnswer | Error, request = REQUEST): Promise<Error> {
  const { post } = fakePost(answer);
  try {
    await fetchClientCredentialsToken(request, { post });
  } catch (err) {
    assert.ok(err instanceof Error);
    const texts = [err.message, (err as { internalMessage?: string }).internalMessage ?? ''];
    for (const text of texts) {
      for (const form of [SECRET, encodeURIComponent(SECRET), Buffer.from(SECRET).toString('base64')]) {
        assert.ok(!text.includes(form), `a message shows the secret: ${text}`);
      }
    }
    return err;
  }
  assert.fail('the token request succeeded');
}

describe('fetchClientCredentialsToken: the request', () => {
  it('posts the grant and scope as a form, the client in a Basic header, form-encoded before base64', async () => {
    const { post, sent } = fakePost(json(200, { access_token: 'tok', token_type: 'Bearer', expires_in: 3599 }));
    const token = await fetchClientCredentialsToken(REQUEST, { post });
    assert.deepEqual(token, { accessToken: 'tok', expiresInSeconds: 3599 });
    const [request] = sent;
    assert.ok(request);
    assert.equal(request.url.href, REQUEST.tokenUrl);
    assert.equal(request.timeoutMs, 5_000);
    assert.equal(request.headers['Content-Type'], 'application/x-www-form-urlencoded');
    assert.equal(request.headers.Accept, 'application/json');
    const basic = request.headers.Authorization?.replace(/^Basic /, '') ?? '';
    // RFC 6749 §2.3.1: each part application/x-www-form-urlencoded, then `id:secret` in base64.
    assert.equal(Buffer.from(basic, 'base64').toString('utf8'), 'client%3A42:S%C3%ABcret+%2B%2F%3D%26%3A%252B');
    const form = new URLSearchParams(request.body);
    assert.deepEqual(Object.fromEntries(form), {
      grant_type: 'client_credentials',
      scope: 'https://eventgrid.azure.net/.default',
    });
    assert.ok(!request.body.includes('client_secret') && !request.body.includes('client_id'), request.body);
  });

  it('leaves a blank scope out of the form', async () => {
    const { post, sent } = fakePost(json(200, { access_token: 'tok' }));
    await fetchClientCredentialsToken({ ...REQUEST, scope: '  ' }, { post });
    assert.equal(sent[0]?.body, 'grant_type=client_credentials');
  });

  it('reads expires_in as a number or digits in a string, and as unknown otherwise', async () => {
    const cases: [unknown, number | undefined][] = [
      [3600, 3600],
      ['3599', 3599],
      [undefined, undefined],
      [0, undefined],
      [-5, undefined],
      ['soon', undefined],
      [null, undefined],
    ];
    for (const [expiresIn, expected] of cases) {
      const { post } = fakePost(json(200, { access_token: 'tok', expires_in: expiresIn }));
      const token = await fetchClientCredentialsToken(REQUEST, { post });
      assert.equal(token.expiresInSeconds, expected, `expires_in ${JSON.stringify(expiresIn)}`);
    }
  });
});

describe('fetchClientCredentialsToken: the token endpoint URL', () => {
  it('must be https, except on loopback hosts', () => {
    assert.equal(tokenUrlProblem('https://idp.example.com/token'), undefined);
    for (const url of [
      'http://127.0.0.1:8080/token',
      'http://localhost/token',
      'http://[::1]:9/t',
      'http://127.9.9.9/',
    ]) {
      assert.equal(tokenUrlProblem(url), undefined, url);
    }
    assert.match(tokenUrlProblem('http://idp.example.com/token') ?? '', /must use https:\/\//);
    assert.match(tokenUrlProblem('http://127.0.0.1.example.com/token') ?? '', /must use https:\/\//);
    assert.match(tokenUrlProblem('ftp://idp.example.com/token') ?? '', /must be an https:\/\/ URL/);
    assert.match(tokenUrlProblem('idp.example.com/token') ?? '', /is not a URL/);
    assert.match(tokenUrlProblem('https://id:pw@idp.example.com/token') ?? '', /must not hold a user name/);
  });

  it('is checked before anything is sent, with the field named as the caller asks', async () => {
    const { post, sent } = fakePost(json(200, { access_token: 'tok' }));
    await assert.rejects(
      fetchClientCredentialsToken(
        { ...REQUEST, tokenUrl: 'http://idp.example.com/token' },
        { post, field: (key) => `<${key}>` },
      ),
      (err: unknown) =>
        err instanceof CredentialConfigError &&
        err.fieldKeys[0] === 'auth_method.token_url' &&
        err.message.startsWith('<auth_method.token_url> must use https://'),
    );
    assert.equal(sent.length, 0);
  });
});

describe('fetchClientCredentialsToken: refusals', () => {
  const refusals: [string, HttpAnswer, readonly string[], RegExp][] = [
    [
      'invalid_client with 401',
      json(401, { error: 'invalid_client' }),
      ['auth_method.client_secret', 'auth_method.client_id'],
      /"invalid_client".*check auth_method\.client_id and auth_method\.client_secret/,
    ],
    [
      'invalid_client with 400',
      json(400, { error: 'invalid_client', error_description: 'Client authentication failed' }),
      ['auth_method.client_secret', 'auth_method.client_id'],
      /"invalid_client" \(Client authentication failed\)/,
    ],
    ['a bare 401', { status: 401, body: '' }, ['auth_method.client_secret', 'auth_method.client_id'], /HTTP 401/],
    [
      'unauthorized_client',
      json(400, { error: 'unauthorized_client' }),
      ['auth_method.client_id'],
      /does not allow the client auth_method\.client_id names/,
    ],
    ['invalid_scope', json(400, { error: 'invalid_scope' }), ['auth_method.scope'], /check auth_method\.scope/],
    [
      'unsupported_grant_type',
      json(400, { error: 'unsupported_grant_type' }),
      ['auth_method.token_url'],
      /does not offer the client credentials grant/,
    ],
    [
      'invalid_request',
      json(400, { error: 'invalid_request', error_description: 'AADSTS90014: scope is missing' }),
      ['auth_method.token_url', 'auth_method.scope'],
      /AADSTS90014: scope is missing/,
    ],
    ['a 403', { status: 403, body: 'Forbidden' }, ['auth_method.client_id'], /forbade the request with HTTP 403/],
    ['a 404', { status: 404, body: '<html>Not Found</html>' }, ['auth_method.token_url'], /probably not the/],
    ['a redirect', { status: 302, body: '' }, ['auth_method.token_url'], /HTTP 302, not a token/],
  ];
  for (const [name, answer, fields, message] of refusals) {
    it(`${name} is a configuration error naming ${fields.join(' and ')}`, async () => {
      const err = await failure(answer);
      assert.ok(err instanceof CredentialConfigError, String(err));
      assert.equal(err.failureType, 'config_error');
      assert.deepEqual(err.fieldKeys, fields);
      assert.match(err.message, message);
      // The endpoint is named without its query.
      assert.match(err.message, /https:\/\/login\.example\.com\/tenant\/oauth2\/v2\.0\/token[ ,]/);
      assert.ok(!err.message.includes('?x=1'), err.message);
    });
  }

  it('never shows the raw answer, only the error code and the description', async () => {
    const err = await failure(
      json(400, { error: 'invalid_client', error_description: 'bad', trace_id: 'SHOULD-NOT-SHOW', echo: 'x' }),
    );
    assert.ok(!err.message.includes('SHOULD-NOT-SHOW'), err.message);
  });

  it('masks the secret in every form an endpoint may echo it, and keeps the rest of the description', async () => {
    const basic = Buffer.from(`client%3A42:${new URLSearchParams([['', SECRET]]).toString().slice(1)}`).toString(
      'base64',
    );
    for (const echoed of [SECRET, encodeURIComponent(SECRET), `Basic ${basic}`]) {
      const err = await failure(
        json(401, { error: 'invalid_client', error_description: `secret ${echoed} is wrong for client:42` }),
      );
      assert.match(err.message, /secret (Basic )?\*+ is wrong for client:42/);
    }
  });

  it('keeps a description to one shortened line, cut after masking so no part of a secret is left', async () => {
    const err = await failure(
      json(400, { error: 'invalid_scope', error_description: `line one\nline two\r\n${'x'.repeat(275)}${SECRET}` }),
    );
    const shown = /\((line one.*?)\): /.exec(err.message)?.[1] ?? '';
    assert.ok(shown.startsWith('line one line two x'), shown);
    assert.ok(!/[\r\n]/.test(err.message));
    assert.equal(shown.length, MAX_DESCRIPTION_CHARS);
    assert.ok(shown.endsWith('…'));
    assert.ok(!shown.includes('Sëc'), shown);
  });

  it('drops an error code that is not one RFC 6749 allows', async () => {
    const err = await failure(json(400, { error: 'bad"code\nwith lines', error_description: 'ignored' }));
    assert.ok(!err.message.includes('bad"code'), err.message);
    assert.ok(!err.message.includes('ignored'), err.message);
  });
});

describe('fetchClientCredentialsToken: answers that are no token', () => {
  for (const [name, answer] of [
    ['an HTML page', { status: 200, body: '<html><body>Sign in</body></html>' }],
    ['JSON without access_token', json(200, { token: 'x' })],
    ['an empty access_token', json(200, { access_token: '' })],
    ['a JSON array', json(200, [{ access_token: 'x' }])],
    ['an answer too long to read', { status: 200, body: undefined }],
  ] as const) {
    it(`${name} says the URL is probably not a token endpoint`, async () => {
      const err = await failure(answer);
      assert.ok(err instanceof CredentialConfigError, String(err));
      assert.deepEqual(err.fieldKeys, ['auth_method.token_url']);
      assert.match(err.message, /without an access token.*probably not the identity provider's token endpoint/);
      assert.ok(!err.message.includes('Sign in'), err.message);
    });
  }
});

describe('fetchClientCredentialsToken: passing trouble', () => {
  const transient: [string, HttpAnswer | Error, RegExp][] = [
    ['a 500', { status: 500, body: 'oops' }, /answered HTTP 500; it may be busy or down/],
    ['a 503 with temporarily_unavailable', json(503, { error: 'temporarily_unavailable' }), /HTTP 503/],
    ['a 400 with server_error', json(400, { error: 'server_error' }), /HTTP 400 "server_error"/],
    ['a 429', { status: 429, body: '' }, /HTTP 429/],
    ['a timeout', new PostTimeoutError(5_000), /did not answer within 5 s/],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      /Could not reach the token endpoint .* \(ECONNREFUSED\)/,
    ],
    [
      'a DNS server that did not answer',
      Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' }),
      /EAI_AGAIN/,
    ],
  ];
  for (const [name, answer, message] of transient) {
    it(`${name} is transient`, async () => {
      const err = await failure(answer);
      assert.ok(err instanceof CredentialUnavailableError, String(err));
      assert.equal(err.failureType, 'transient_error');
      assert.match(err.message, message);
    });
  }

  it('an unknown host and an untrusted certificate are configuration errors on the URL', async () => {
    for (const code of ['ENOTFOUND', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED']) {
      const err = await failure(Object.assign(new Error(code), { code }));
      assert.ok(err instanceof CredentialConfigError, `${code}: ${String(err)}`);
      assert.deepEqual(err.fieldKeys, ['auth_method.token_url']);
    }
  });
});
