/**
 * TLS material as loadTls prepares it for the connection: which authorities are trusted (tls_ca_only decides between
 * exactly the given CA certificates and Node's system roots plus them), how PEM bundles are cut into certificates,
 * and the validity window of the client certificate at its exact edges. Certificates are generated with openssl.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, createServer, rootCertificates, type Server } from 'node:tls';
import { hasTlsMaterial, loadTls, type TlsConfig } from '../../../src/config/tls.js';
import { generateCertificates, opensslSkipReason, type TestCertificates } from '../../support/certs.js';

const NONE: TlsConfig = {
  caCertificate: undefined,
  caOnly: false,
  clientCertificate: undefined,
  clientKey: undefined,
  clientKeyPassphrase: undefined,
  insecureSkipVerify: false,
  serverName: undefined,
  alpnProtocols: undefined,
};

/** Loads `config` and returns the options with the problems reported, so each test can say which it expects. */
function load(config: Partial<TlsConfig>, now?: Date): { options: ReturnType<typeof loadTls>; problems: string[] } {
  const problems: string[] = [];
  const options = loadTls({ ...NONE, ...config }, problems, now);
  return { options, problems };
}

/** Certificates are compared by fingerprint: the PEM text may differ in line endings and wrapping. */
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

const skip = opensslSkipReason();

describe('loadTls', { skip }, () => {
  let certs: TestCertificates;
  before(() => {
    certs = generateCertificates();
  });
  after(() => rmSync(certs.dir, { recursive: true, force: true }));

  describe('trusted authorities (tls_ca_only)', () => {
    it('trusts exactly the given CA when tls_ca_only is on, none of the system roots', () => {
      const { options, problems } = load({ caCertificate: certs.caCert, caOnly: true });
      assert.deepEqual(problems, []);
      assert.deepEqual(options.ca?.map(fingerprint), [fingerprint(certs.caCert)]);
    });

    it('trusts every system root and the given CA when tls_ca_only is off', () => {
      const { options, problems } = load({ caCertificate: certs.caCert, caOnly: false });
      assert.deepEqual(problems, []);
      assert.ok(rootCertificates.length > 0, 'Node ships system roots');
      const trusted = new Set(options.ca);
      assert.equal(options.ca?.length, rootCertificates.length + 1, 'the roots and the CA, nothing else');
      assert.ok(
        rootCertificates.every((root) => trusted.has(root)),
        'every system root is kept',
      );
      assert.ok(
        options.ca?.some((pem) => !rootCertificates.includes(pem) && fingerprint(pem) === fingerprint(certs.caCert)),
        'the CA is added',
      );
    });

    it('keeps every certificate of a bundle, in order, and skips the blocks that are not certificates', () => {
      // A bundle as people paste it: two CAs, CRLF line ends, a private key and text in between.
      const bundle = `intermediate first\r\n${certs.otherCaCert.replace(/\n/g, '\r\n')}\r\n${certs.serverKey}\nthen the root:\n${certs.caCert}`;
      const expected = [fingerprint(certs.otherCaCert), fingerprint(certs.caCert)];
      const only = load({ caCertificate: bundle, caOnly: true });
      assert.deepEqual(only.problems, []);
      assert.deepEqual(only.options.ca?.map(fingerprint), expected);
      const both = load({ caCertificate: bundle, caOnly: false });
      assert.deepEqual(both.options.ca?.slice(rootCertificates.length).map(fingerprint), expected);
      assert.equal(both.options.ca?.length, rootCertificates.length + 2);
    });

    it('reads the CA from pasted PEM with literal \\n or \\r\\n, or from a file, with the same result', () => {
      for (const caCertificate of [
        certs.caCert.replace(/\n/g, '\\n'),
        certs.caCert.replace(/\n/g, '\\r\\n'),
        certs.path('ca.crt'),
      ]) {
        const { options, problems } = load({ caCertificate, caOnly: true });
        assert.deepEqual(problems, [], caCertificate.slice(0, 40));
        assert.deepEqual(options.ca?.map(fingerprint), [fingerprint(certs.caCert)]);
      }
    });

    it('leaves the trust store to Node when no CA is given, whatever tls_ca_only says', () => {
      for (const caOnly of [false, true]) assert.equal(load({ caOnly }).options.ca, undefined);
    });

    it('reports a CA field with no certificate, or with one that does not parse, and trusts nothing from it', () => {
      const truncated = certs.caCert.replace(/^(.{40}).*(\n-----END)/s, '$1$2');
      for (const caCertificate of [
        certs.serverKey,
        '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE REQUEST-----',
        truncated,
      ]) {
        const { options, problems } = load({ caCertificate, caOnly: true });
        assert.equal(problems.length, 1, caCertificate);
        assert.match(problems[0] ?? '', /tls_ca_certificate/);
        assert.deepEqual(options.ca, []);
      }
    });

    describe('in a real handshake', () => {
      let server: Server;
      before(async () => {
        server = createServer({ cert: certs.serverCert, key: certs.serverKey }, (socket) => socket.end());
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
      });
      after(() => new Promise<void>((resolve) => server.close(() => resolve())));

      async function handshake(ca: string[] | undefined): Promise<string> {
        const socket = connect({
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          servername: 'localhost',
          ca,
        });
        try {
          await once(socket, 'secureConnect');
          return 'trusted';
        } catch (err) {
          return (err as NodeJS.ErrnoException).code ?? String(err);
        } finally {
          socket.destroy();
        }
      }

      it('connects to a broker whose certificate the given CA signed, with tls_ca_only on or off', async () => {
        for (const caOnly of [true, false])
          assert.equal(await handshake(load({ caCertificate: certs.caCert, caOnly }).options.ca), 'trusted');
      });

      it('refuses a broker certificate the given CA did not sign when tls_ca_only is on', async () => {
        assert.notEqual(
          await handshake(load({ caCertificate: certs.otherCaCert, caOnly: true }).options.ca),
          'trusted',
        );
      });
    });
  });

  describe('client certificate validity, at the second it starts and the second it ends', () => {
    it('accepts the certificate from its first to its last second, and names the edge it is outside of', () => {
      const cert = new X509Certificate(certs.clientCert);
      const from = new Date(cert.validFrom);
      const to = new Date(cert.validTo);
      const config = { clientCertificate: certs.clientCert, clientKey: certs.clientKey };
      const at = (time: number): string[] => load(config, new Date(time)).problems;
      assert.deepEqual(at(from.getTime()), [], 'valid at notBefore');
      assert.deepEqual(at(to.getTime()), [], 'valid at notAfter');
      const early = at(from.getTime() - 1);
      assert.equal(early.length, 1);
      assert.match(early[0] ?? '', /tls_client_certificate.* is not valid before /);
      const late = at(to.getTime() + 1);
      assert.equal(late.length, 1);
      assert.match(late[0] ?? '', /tls_client_certificate.* expired on /);
    });

    it('reports the certificate generated already expired', () => {
      const { problems } = load({ clientCertificate: certs.expiredClientCert, clientKey: certs.clientKey });
      assert.ok(
        problems.some((p) => /tls_client_certificate.* expired on /.test(p)),
        problems.join('; '),
      );
    });
  });

  describe('client key', () => {
    it('passes on the key decrypted, and refuses a missing or wrong passphrase and a key of another certificate', () => {
      const plain = load({
        clientCertificate: certs.clientCert,
        clientKey: certs.clientKeyEncrypted,
        clientKeyPassphrase: certs.clientKeyPassphrase,
      });
      assert.deepEqual(plain.problems, []);
      assert.match(plain.options.key ?? '', /^-----BEGIN PRIVATE KEY-----/);
      assert.equal(plain.options.cert, certs.clientCert);
      assert.equal(
        load({ clientCertificate: certs.clientCert, clientKey: certs.clientKeyEncrypted }).problems.length,
        1,
      );
      assert.equal(
        load({ clientCertificate: certs.clientCert, clientKey: certs.clientKeyEncrypted, clientKeyPassphrase: 'wrong' })
          .problems.length,
        1,
      );
      const mismatch = load({ clientCertificate: certs.clientCert, clientKey: certs.untrustedClientKey }).problems;
      assert.equal(mismatch.length, 1);
      assert.match(mismatch[0] ?? '', /does not belong to/);
      assert.equal(load({ clientCertificate: certs.clientCert }).problems.length, 1, 'a certificate needs its key');
      assert.equal(load({ clientKey: certs.clientKey }).problems.length, 1, 'a key needs its certificate');
    });
  });
});

describe('TLS options without certificates', () => {
  it('turns verification off only when asked, and passes ALPN only when there is a protocol', () => {
    assert.equal(load({}).options.rejectUnauthorized, true);
    assert.equal(load({ insecureSkipVerify: true }).options.rejectUnauthorized, false);
    assert.equal(load({ alpnProtocols: [] }).options.ALPNProtocols, undefined, 'an empty list is no ALPN');
    const protocols = ['mqtt'];
    const alpn = load({ alpnProtocols: protocols }).options.ALPNProtocols;
    assert.deepEqual(alpn, ['mqtt']);
    assert.notEqual(alpn, protocols, 'a copy, not the configuration list');
    assert.equal(load({ serverName: 'broker.example' }).options.servername, 'broker.example');
  });

  it('counts an ALPN list as TLS material only when it has an entry', () => {
    assert.equal(hasTlsMaterial(NONE), false);
    assert.equal(hasTlsMaterial({ ...NONE, alpnProtocols: [] }), false);
    assert.equal(hasTlsMaterial({ ...NONE, alpnProtocols: ['mqtt'] }), true);
    assert.equal(hasTlsMaterial({ ...NONE, serverName: 'b' }), true);
    assert.equal(hasTlsMaterial({ ...NONE, caCertificate: 'x' }), true);
    // tls_ca_only and the skip-verify switch alone are no material: they only change how material is used.
    assert.equal(hasTlsMaterial({ ...NONE, caOnly: true, insecureSkipVerify: true }), false);
  });
});
