/**
 * The byte stream a connection runs over when the broker is not reached directly: a socket through the proxy
 * (reach/proxy.ts), or a forward through the SSH tunnel (reach/ssh-tunnel.ts), over which the transport then speaks
 * MQTT, TLS with the broker's own name, or WebSocket. Every connection of the process shares one SSH connection.
 */
import type { Duplex } from 'node:stream';
import type { BrokerSettings } from '../config/settings.js';
import type { Reach } from '../config/reach-settings.js';
import { openThroughProxy } from '../reach/proxy.js';
import { type HostKey, SshTunnel, type SshTunnelSettings } from '../reach/ssh-tunnel.js';

const tunnels = new Map<SshTunnelSettings, SshTunnel>();

function tunnelFor(settings: SshTunnelSettings): SshTunnel {
  let tunnel = tunnels.get(settings);
  if (!tunnel) {
    tunnel = new SshTunnel(settings);
    tunnels.set(settings, tunnel);
  }
  return tunnel;
}

/** The stream to `broker`'s host and port the configured way; undefined when the transport opens its own socket. */
export async function openReach(broker: BrokerSettings, timeoutMs: number): Promise<Duplex | undefined> {
  const reach: Reach = broker.reach;
  switch (reach.kind) {
    case 'direct':
      return undefined;
    case 'proxy':
      return openThroughProxy(reach.proxy, { host: broker.host, port: broker.port }, { timeoutMs });
    case 'ssh':
      return tunnelFor(reach.tunnel).forward(broker.host, broker.port);
  }
}

/** The host key the bastion showed, once a connection went through the tunnel. */
export function bastionHostKey(broker: BrokerSettings): HostKey | undefined {
  return broker.reach.kind === 'ssh' ? tunnels.get(broker.reach.tunnel)?.hostKey() : undefined;
}

/** Ends every SSH connection, so that the process can exit once its MQTT connections are closed. */
export async function closeTunnels(): Promise<void> {
  const open = [...tunnels.values()];
  tunnels.clear();
  await Promise.all(open.map((tunnel) => tunnel.close()));
}
