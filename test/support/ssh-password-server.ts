/**
 * An SSH bastion inside the test process, for password logins (SSH_PASSWORD_AUTH). OpenSSH checks passwords against
 * the system's users, and these tests neither create users nor set passwords on the machine; so this server is built
 * with ssh2's own `Server` class instead: real SSH (key exchange, encryption, user authentication) over a real
 * loopback socket. It lets in one user with one password, asked as `password` or as `keyboard-interactive` (as PAM
 * bastions ask), and honours `direct-tcpip` as sshd does: it connects to the target, and refuses the channel with
 * CONNECT_FAILED when that fails.
 */
import { createConnection } from 'node:net';
import type { AddressInfo } from 'node:net';
import ssh2, { type AuthenticationType, type Connection } from 'ssh2';

export interface PasswordServerOptions {
  readonly user: string;
  readonly password: string;
  /** The methods offered for the password; both by default. */
  readonly methods?: readonly ('password' | 'keyboard-interactive')[];
}

export interface PasswordServer {
  readonly port: number;
  /** SSH connections accepted, logins that succeeded, logins refused. */
  readonly connections: number;
  readonly logins: number;
  readonly refusals: number;
  /** Every forward asked for, as host:port. */
  readonly forwards: readonly string[];
  /** Ends every SSH connection, as a bastion that restarts or a network that drops them would; keeps listening. */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startPasswordServer(options: PasswordServerOptions): Promise<PasswordServer> {
  const methods: AuthenticationType[] = [...(options.methods ?? ['password', 'keyboard-interactive'])];
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  const clients = new Set<Connection>();
  const forwards: string[] = [];
  let connections = 0;
  let logins = 0;
  let refusals = 0;

  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    connections++;
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (context) => {
      const verdict = (password: string | undefined): void => {
        if (context.username === options.user && password === options.password) {
          logins++;
          context.accept();
        } else {
          refusals++;
          context.reject(methods);
        }
      };
      if (!methods.includes(context.method)) {
        context.reject(methods);
      } else if (context.method === 'password') {
        verdict(context.password);
      } else if (context.method === 'keyboard-interactive') {
        context.prompt([{ prompt: 'Password: ', echo: false }], (answers) => verdict(answers[0]));
      } else {
        context.reject(methods);
      }
    });
    client.on('tcpip', (accept, reject, info) => {
      forwards.push(`${info.destIP}:${info.destPort}`);
      const socket = createConnection({ host: info.destIP, port: info.destPort });
      socket.once('error', () => reject());
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        const channel = accept();
        socket.pipe(channel).pipe(socket);
        socket.on('error', () => channel.destroy());
        channel.on('close', () => socket.destroy());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    get logins() {
      return logins;
    },
    get refusals() {
      return refusals;
    },
    forwards,
    dropConnections: () => {
      for (const client of clients) client.end();
    },
    close: async () => {
      for (const client of clients) client.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
