/**
 * How the connector reaches the broker's address: directly, through a proxy (`proxy_url` and its credentials) or
 * through an SSH tunnel (`tunnel_method`). Configurations are built as the Airbyte form saves them
 * (test/support/form.ts: every spec default filled in, a picked tunnel variant with its own defaults); `reachOf` is
 * called on them directly, so that each rule is seen on its own, and through `toSettings` where the schema's
 * complaints about the tunnel's fields join in.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../../../src/config/config-values.js';
import { type Reach, describeReach, reachOf } from '../../../src/config/reach-settings.js';
import { toSettings } from '../../../src/config/settings.js';
import { connectorSpec } from '../../../src/config/spec.js';
import { ConfigError } from '../../../src/errors.js';
import { savedConfiguration, savedVariant } from '../../support/form.js';

const spec = connectorSpec() as unknown as { connectionSpecification: Record<string, unknown> };

const CONNECT_TIMEOUT_MS = 30_000;
const SSH_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----';
const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
const BASTION = { tunnel_host: 'bastion.example.com', tunnel_user: 'airbyte' };

/** What the form saves once the user has filled in `input`. */
function saved(input: Record<string, unknown> = {}): Config {
  return savedConfiguration(spec, { broker_host: 'broker.internal', topic_pattern: 'airbyte/{stream}', ...input });
}

/** What the form saves once the user has picked the `tunnel_method` variant `method` and filled in its `fields`. */
function withTunnel(method: string, fields: Record<string, unknown>, input: Record<string, unknown> = {}): Config {
  return saved({ ...input, tunnel_method: savedVariant(spec, 'tunnel_method', method, fields) });
}

function read(config: Config, connectTimeoutMs = CONNECT_TIMEOUT_MS): { reach: Reach; problems: string[] } {
  const problems: string[] = [];
  const reach = reachOf(config, problems, connectTimeoutMs);
  return { reach, problems };
}

/** The default spec.json declares for a field of one `tunnel_method` variant. */
function variantDefault(method: string, key: string): unknown {
  const tunnel = connectorSpec().connectionSpecification.properties.tunnel_method;
  const variant = tunnel?.oneOf?.find((v) => v.properties?.tunnel_method?.const === method);
  const value = variant?.properties?.[key]?.default;
  assert.notEqual(value, undefined, `spec.json declares a default for tunnel_method.${key} of ${method}`);
  return value;
}

function configError(config: Config): ConfigError {
  try {
    toSettings(config);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('reach: directly', () => {
  it('is what the form saves by default: no tunnel and no proxy', () => {
    const config = saved();
    assert.deepEqual(config.tunnel_method, { tunnel_method: 'NO_TUNNEL' });
    assert.equal(config.proxy_url, undefined);
    assert.deepEqual(read(config), { reach: { kind: 'direct' }, problems: [] });
    assert.deepEqual(toSettings(config).broker.reach, { kind: 'direct' });
  });

  it('is how a configuration saved before tunnels and proxies existed reaches the broker', () => {
    assert.deepEqual(read({ broker_host: 'h', topic_pattern: 't' }), { reach: { kind: 'direct' }, problems: [] });
  });

  it('is what a tunnel_method without a method, or that is no object, means', () => {
    for (const tunnel_method of [{}, { tunnel_method: '' }, 'SSH_KEY_AUTH', ['SSH_KEY_AUTH'], null]) {
      assert.deepEqual(read(saved({ tunnel_method })), { reach: { kind: 'direct' }, problems: [] });
    }
  });

  it('is what NO_TUNNEL means, whatever bastion fields come with it', () => {
    const config = saved({ tunnel_method: { tunnel_method: 'NO_TUNNEL', ...BASTION, ssh_key: SSH_KEY } });
    assert.deepEqual(read(config), { reach: { kind: 'direct' }, problems: [] });
  });

  it("is what an empty proxy URL means, as the form's cleared field saves it", () => {
    assert.deepEqual(read(saved({ proxy_url: '', proxy_username: '', proxy_password: '' })), {
      reach: { kind: 'direct' },
      problems: [],
    });
  });
});

describe('reach: SSH tunnel', () => {
  it('with a key: the bastion, its port as the form saves it from spec.json, the user and the key', () => {
    const config = withTunnel('SSH_KEY_AUTH', { ...BASTION, ssh_key: SSH_KEY });
    const port = variantDefault('SSH_KEY_AUTH', 'tunnel_port');
    assert.equal((config.tunnel_method as Config).tunnel_port, port);
    const { reach, problems } = read(config);
    assert.deepEqual(reach, {
      kind: 'ssh',
      tunnel: {
        host: 'bastion.example.com',
        port,
        user: 'airbyte',
        auth: { kind: 'key', privateKey: SSH_KEY },
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      },
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(toSettings(config).broker.reach, reach);
  });

  it('with a password: the password, and the port given', () => {
    const config = withTunnel('SSH_PASSWORD_AUTH', { ...BASTION, tunnel_port: 2222, tunnel_user_password: 'ssh-pa55' });
    assert.deepEqual(read(config).reach, {
      kind: 'ssh',
      tunnel: {
        host: 'bastion.example.com',
        port: 2222,
        user: 'airbyte',
        auth: { kind: 'password', password: 'ssh-pa55' },
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      },
    });
  });

  it('uses port 22, the default spec.json declares, when a configuration leaves the port out', () => {
    const handWritten = saved({ tunnel_method: { tunnel_method: 'SSH_KEY_AUTH', ...BASTION, ssh_key: SSH_KEY } });
    const { reach } = read(handWritten);
    assert.ok(reach.kind === 'ssh');
    assert.equal(reach.tunnel.port, 22);
    assert.equal(variantDefault('SSH_KEY_AUTH', 'tunnel_port'), 22);
    assert.equal(variantDefault('SSH_PASSWORD_AUTH', 'tunnel_port'), 22);
  });

  it("pins the bastion's host key when a fingerprint is given, and trusts on first use when it is empty", () => {
    const pinned = read(
      withTunnel('SSH_KEY_AUTH', { ...BASTION, ssh_key: SSH_KEY, tunnel_host_key_fingerprint: FINGERPRINT }),
    );
    assert.ok(pinned.reach.kind === 'ssh');
    assert.equal(pinned.reach.tunnel.pinnedFingerprint, FINGERPRINT);
    const unpinned = read(
      withTunnel('SSH_PASSWORD_AUTH', { ...BASTION, tunnel_user_password: 'p', tunnel_host_key_fingerprint: '' }),
    );
    assert.ok(unpinned.reach.kind === 'ssh');
    assert.ok(!('pinnedFingerprint' in unpinned.reach.tunnel));
  });

  it('waits for the SSH login and each forward as long as for a connection to the broker', () => {
    const { reach } = read(withTunnel('SSH_KEY_AUTH', { ...BASTION, ssh_key: SSH_KEY }), 5_000);
    assert.ok(reach.kind === 'ssh');
    assert.equal(reach.tunnel.connectTimeoutMs, 5_000);
    const settings = toSettings(withTunnel('SSH_KEY_AUTH', { ...BASTION, ssh_key: SSH_KEY }, { connect_timeout: 7 }));
    assert.ok(settings.broker.reach.kind === 'ssh');
    assert.equal(settings.broker.reach.tunnel.connectTimeoutMs, 7_000);
  });

  it('leaves a field that is missing empty, for the schema to report', () => {
    const { reach } = read(saved({ tunnel_method: { tunnel_method: 'SSH_PASSWORD_AUTH' } }));
    assert.deepEqual(reach, {
      kind: 'ssh',
      tunnel: { host: '', port: 22, user: '', auth: { kind: 'password', password: '' }, connectTimeoutMs: 30_000 },
    });
    const key = read(saved({ tunnel_method: { tunnel_method: 'SSH_KEY_AUTH' } })).reach;
    assert.ok(key.kind === 'ssh');
    assert.deepEqual(key.tunnel.auth, { kind: 'key', privateKey: '' });
  });

  it('refuses missing or malformed tunnel fields, naming each by its path', () => {
    const missing = configError(saved({ tunnel_method: { tunnel_method: 'SSH_KEY_AUTH', tunnel_host: 'b' } })).message;
    assert.match(missing, /"SSH user name" \(tunnel_method\.tunnel_user\) is required/);
    assert.match(missing, /"SSH private key" \(tunnel_method\.ssh_key\) is required/);
    assert.match(missing, /"Bastion SSH port" \(tunnel_method\.tunnel_port\) is required/);
    assert.doesNotMatch(missing, /tunnel_user_password/, 'only the chosen variant speaks');
    assert.match(
      configError(withTunnel('SSH_KEY_AUTH', { ...BASTION, ssh_key: SSH_KEY, tunnel_port: 0 })).message,
      /"Bastion SSH port" \(tunnel_method\.tunnel_port\) must be at least 1/,
    );
    assert.match(
      configError(
        withTunnel('SSH_KEY_AUTH', { ...BASTION, ssh_key: SSH_KEY, tunnel_host_key_fingerprint: 'MD5:ab:cd' }),
      ).message,
      /"Bastion host key fingerprint" \(tunnel_method\.tunnel_host_key_fingerprint\) must match pattern/,
    );
    assert.match(
      configError(saved({ tunnel_method: { tunnel_method: 'SSH_CERT_AUTH', ...BASTION } })).message,
      /"SSH tunnel" \(tunnel_method\) must have tunnel_method set to one of NO_TUNNEL, SSH_KEY_AUTH, SSH_PASSWORD_AUTH/,
    );
  });
});

describe('reach: proxy', () => {
  it('reads each scheme: socks5 and socks5h on 1080 unless told, http on the port it names', () => {
    const proxy = (proxy_url: string): Reach => read(saved({ proxy_url })).reach;
    assert.deepEqual(proxy('socks5://proxy.internal'), {
      kind: 'proxy',
      proxy: { scheme: 'socks5', host: 'proxy.internal', port: 1080 },
    });
    assert.deepEqual(proxy('socks5h://proxy.internal:1081'), {
      kind: 'proxy',
      proxy: { scheme: 'socks5h', host: 'proxy.internal', port: 1081 },
    });
    assert.deepEqual(proxy('http://proxy.corp.example:3128'), {
      kind: 'proxy',
      proxy: { scheme: 'http', host: 'proxy.corp.example', port: 3128 },
    });
    const settings = toSettings(saved({ proxy_url: 'http://proxy.corp.example:3128' }));
    assert.deepEqual(settings.broker.reach, proxy('http://proxy.corp.example:3128'));
  });

  it('takes the user name from its field or from the URL, and the password from its field', () => {
    const proxy = (input: Record<string, unknown>) => {
      const { reach, problems } = read(saved(input));
      assert.deepEqual(problems, [], JSON.stringify(input));
      assert.ok(reach.kind === 'proxy');
      return reach.proxy;
    };
    const fields = { proxy_username: 'alice', proxy_password: 'proxy-pa55' };
    assert.deepEqual(proxy({ proxy_url: 'socks5h://proxy.internal', ...fields }), {
      scheme: 'socks5h',
      host: 'proxy.internal',
      port: 1080,
      username: 'alice',
      password: 'proxy-pa55',
    });
    assert.deepEqual(proxy({ proxy_url: 'socks5h://alice@proxy.internal', proxy_password: 'proxy-pa55' }), {
      scheme: 'socks5h',
      host: 'proxy.internal',
      port: 1080,
      username: 'alice',
      password: 'proxy-pa55',
    });
    const same = proxy({ proxy_url: 'http://alice@proxy.corp.example:3128', ...fields });
    assert.equal(same.username, 'alice', 'the same name in both places is no contradiction');
    const bare = proxy({ proxy_url: 'http://proxy.corp.example:3128', proxy_username: '', proxy_password: '' });
    assert.ok(!('username' in bare) && !('password' in bare), 'empty fields are no credentials');
  });

  it('refuses a password in the URL, pointing to the field that keeps it secret, without quoting it', () => {
    const { problems } = read(saved({ proxy_url: 'http://alice:url-pa55w0rd@proxy.corp.example:3128' }));
    assert.deepEqual(problems, [
      '"Proxy URL" (proxy_url) carries a password, which Airbyte would store and show in clear: enter it in ' +
        '"Proxy password" (proxy_password) instead',
    ]);
    assert.doesNotMatch(
      configError(saved({ proxy_url: 'socks5://alice:url-pa55w0rd@proxy.internal' })).message,
      /url-pa55w0rd/,
    );
  });

  it('refuses two different user names, one in the URL and one in its field', () => {
    const { problems } = read(saved({ proxy_url: 'socks5://alice@proxy.internal', proxy_username: 'bob' }));
    assert.deepEqual(problems, [
      `give the proxy's user name either in "Proxy URL" (proxy_url) or in "Proxy user name" (proxy_username)`,
    ]);
  });

  it('refuses proxy credentials without a proxy URL, naming the fields', () => {
    for (const credentials of [
      { proxy_username: 'alice' },
      { proxy_password: 'p' },
      { proxy_url: '', proxy_password: 'p' },
    ]) {
      assert.deepEqual(
        read(saved(credentials)),
        {
          reach: { kind: 'direct' },
          problems: [
            '"Proxy user name" (proxy_username) or "Proxy password" (proxy_password) is set without a ' +
              '"Proxy URL" (proxy_url)',
          ],
        },
        JSON.stringify(credentials),
      );
    }
  });

  it('refuses a password without a user name, which no proxy takes, naming where the user name goes', () => {
    assert.deepEqual(read(saved({ proxy_url: 'socks5://proxy.internal', proxy_password: 'p' })).problems, [
      '"Proxy password" (proxy_password) is set without a user name: give it in "Proxy user name" ' +
        '(proxy_username) or in "Proxy URL" (proxy_url)',
    ]);
    assert.deepEqual(read(saved({ proxy_url: 'http://alice@proxy.internal:3128', proxy_password: 'p' })).problems, []);
  });

  it('refuses SOCKS5 credentials longer than its length byte can say, in UTF-8 bytes, without quoting them', () => {
    const long = 'é'.repeat(128); // 128 characters, 256 bytes
    const { problems } = read(
      saved({ proxy_url: 'socks5h://proxy.internal', proxy_username: long, proxy_password: `${long}x` }),
    );
    assert.deepEqual(problems, [
      '"Proxy user name" (proxy_username) is longer than the 255 bytes SOCKS5 can send',
      '"Proxy password" (proxy_password) is longer than the 255 bytes SOCKS5 can send',
    ]);
    const fits = 'é'.repeat(127) + 'x'; // 255 bytes
    assert.deepEqual(
      read(saved({ proxy_url: 'socks5://proxy.internal', proxy_username: fits, proxy_password: fits })).problems,
      [],
    );
    const fromUrl = read(saved({ proxy_url: `socks5://${'a'.repeat(256)}@proxy.internal`, proxy_password: 'p' }));
    assert.deepEqual(fromUrl.problems, [
      'the user name in "Proxy URL" (proxy_url) is longer than the 255 bytes SOCKS5 can send',
    ]);
    // HTTP Basic has no such limit.
    assert.deepEqual(read(saved({ proxy_url: 'http://proxy.internal:3128', proxy_username: long })).problems, []);
  });

  it('refuses a colon in an HTTP proxy user name, which Basic authentication would read as the password', () => {
    assert.deepEqual(
      read(saved({ proxy_url: 'http://proxy.internal:3128', proxy_username: 'corp:alice', proxy_password: 'p' }))
        .problems,
      ['"Proxy user name" (proxy_username) contains ":", which HTTP Basic authentication cannot send in a user name'],
    );
    assert.deepEqual(
      read(saved({ proxy_url: 'socks5://proxy.internal', proxy_username: 'corp:alice', proxy_password: 'p' })).problems,
      [],
      'SOCKS5 sends the user name apart from the password',
    );
  });

  it('refuses a URL it cannot use, naming the field and saying why, and goes nowhere through it', () => {
    const cases = [
      [
        'https://proxy.internal:443',
        /^"Proxy URL" \(proxy_url\) is not valid: https:\/\/ \(TLS to the proxy\) is not supported/,
      ],
      ['http://proxy.corp.example', /^"Proxy URL" \(proxy_url\) is not valid: it names no port/],
      [
        'proxy.internal:1080',
        /^"Proxy URL" \(proxy_url\) is not valid: it must start with socks5:\/\/, socks5h:\/\/, http:\/\//,
      ],
    ] as const;
    for (const [proxy_url, expected] of cases) {
      const { reach, problems } = read(saved({ proxy_url, proxy_username: 'alice' }));
      assert.deepEqual(reach, { kind: 'direct' }, proxy_url);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] ?? '', expected);
    }
  });
});

describe('reach: a proxy and a tunnel together', () => {
  it('are refused, naming both fields', () => {
    for (const method of ['SSH_KEY_AUTH', 'SSH_PASSWORD_AUTH']) {
      const config = withTunnel(
        method,
        { ...BASTION, ssh_key: SSH_KEY, tunnel_user_password: 'p' },
        {
          proxy_url: 'socks5h://proxy.internal',
        },
      );
      assert.deepEqual(read(config).problems, [
        '"Proxy URL" (proxy_url) and "SSH tunnel" (tunnel_method) are both set: the connector reaches the broker ' +
          'through one of them; choose the one that can reach it',
      ]);
    }
  });

  it('are not both set when the tunnel is NO_TUNNEL, as the form saves it beside a proxy', () => {
    const { reach, problems } = read(saved({ proxy_url: 'socks5h://proxy.internal' }));
    assert.equal(reach.kind, 'proxy');
    assert.deepEqual(problems, []);
  });
});

describe('reach: secrets', () => {
  it('never appear in a problem or the configuration error', () => {
    const secrets = [SSH_KEY, 'ssh-pa55w0rd', 'proxy-pa55w0rd'];
    const configs = [
      withTunnel(
        'SSH_KEY_AUTH',
        { ...BASTION, ssh_key: SSH_KEY, tunnel_port: 0 },
        { proxy_url: 'socks5://p', proxy_password: 'proxy-pa55w0rd' },
      ),
      withTunnel('SSH_PASSWORD_AUTH', { tunnel_user_password: 'ssh-pa55w0rd', tunnel_host_key_fingerprint: 'x' }),
      saved({ proxy_url: 'http://proxy', proxy_password: 'proxy-pa55w0rd' }),
      saved({ proxy_password: 'proxy-pa55w0rd' }),
    ];
    for (const config of configs) {
      const texts = [...read(config).problems, configError(config).message];
      for (const secret of secrets) assert.ok(!texts.join('\n').includes(secret), `${secret} in ${texts.join('\n')}`);
    }
  });
});

describe('describeReach', () => {
  it('names the way to the broker, never a credential', () => {
    assert.equal(describeReach(read(saved()).reach), 'direct');
    const proxy = read(saved({ proxy_url: 'socks5h://alice@proxy.internal', proxy_password: 'proxy-pa55' })).reach;
    assert.equal(describeReach(proxy), 'proxy socks5h://proxy.internal:1080');
    const ssh = read(
      withTunnel('SSH_PASSWORD_AUTH', { ...BASTION, tunnel_port: 2222, tunnel_user_password: 'ssh-pa55' }),
    );
    assert.equal(describeReach(ssh.reach), 'SSH tunnel through airbyte@bastion.example.com:2222');
    const v6 = read(withTunnel('SSH_PASSWORD_AUTH', { ...BASTION, tunnel_host: 'fd00::1', tunnel_user_password: 'x' }));
    assert.equal(describeReach(v6.reach), 'SSH tunnel through airbyte@[fd00::1]:22');
  });
});
