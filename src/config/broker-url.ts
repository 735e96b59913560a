/**
 * Broker URLs in the forms other MQTT tools use (Paho, mosquitto_pub, eKuiper, Dapr): the scheme says TLS or not and
 * TCP or WebSocket, and the URL may carry credentials and, for WebSocket, a path.
 */

interface BrokerAddress {
  readonly useTls: boolean;
  readonly transport: 'tcp' | 'websocket';
  readonly host: string;
  readonly port: number;
  /** Only for WebSocket URLs that name a path. */
  readonly path: string | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

const SCHEMES: Readonly<Record<string, { useTls: boolean; transport: 'tcp' | 'websocket'; port: number }>> = {
  tcp: { useTls: false, transport: 'tcp', port: 1883 },
  mqtt: { useTls: false, transport: 'tcp', port: 1883 },
  ssl: { useTls: true, transport: 'tcp', port: 8883 },
  tls: { useTls: true, transport: 'tcp', port: 8883 },
  mqtts: { useTls: true, transport: 'tcp', port: 8883 },
  tcps: { useTls: true, transport: 'tcp', port: 8883 },
  ws: { useTls: false, transport: 'websocket', port: 80 },
  wss: { useTls: true, transport: 'websocket', port: 443 },
};

const BROKER_URL_SCHEMES = Object.keys(SCHEMES);

function decode(component: string, what: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    throw new Error(`its ${what} is not correctly percent-encoded`);
  }
}

/** The address the URL names, or an Error whose message says what is wrong with it (never quoting the password). */
export function parseBrokerUrl(text: string): BrokerAddress | Error {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  const kind = scheme === undefined ? undefined : SCHEMES[scheme];
  if (!kind) return new Error(`it must start with one of ${BROKER_URL_SCHEMES.map((s) => `${s}://`).join(', ')}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return new Error('it is not a valid URL');
  }
  if (url.hostname === '') return new Error('it names no host');
  if (url.search !== '' || url.hash !== '') return new Error('it must not have a query (?) or fragment (#)');
  // WHATWG URLs give "/" both for "ws://h" and "ws://h/"; only the text tells whether a path was written.
  const explicitPath = /^[a-z][a-z0-9+.-]*:\/\/[^/]+(\/.*)$/i.exec(text)?.[1];
  if (kind.transport === 'tcp' && explicitPath !== undefined && explicitPath !== '/') {
    return new Error(`a path only applies to ws:// and wss:// URLs, not ${scheme}://`);
  }
  try {
    return {
      useTls: kind.useTls,
      transport: kind.transport,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? kind.port : Number(url.port),
      path: kind.transport === 'websocket' ? explicitPath : undefined,
      username: url.username === '' ? undefined : decode(url.username, 'user name'),
      password: url.password === '' ? undefined : decode(url.password, 'password'),
    };
  } catch (err) {
    return err as Error;
  }
}

/** What `brokerAddress` writes out: the parts of the broker settings that say where the broker is. */
interface Address {
  readonly transport: 'tcp' | 'websocket';
  readonly tls: unknown;
  readonly host: string;
  readonly port: number;
  readonly websocketPath: string;
}

/** The broker as a URL, for messages: `mqtts://broker.example.com:8883`, `wss://[::1]:443/mqtt`. */
export function brokerAddress(address: Address): string {
  const secure = address.tls !== undefined;
  const scheme = address.transport === 'websocket' ? (secure ? 'wss' : 'ws') : secure ? 'mqtts' : 'mqtt';
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${scheme}://${host}:${address.port}${address.transport === 'websocket' ? address.websocketPath : ''}`;
}
