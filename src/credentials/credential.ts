/**
 * A credential valid until a time, whatever made it (a static password, a SAS token, an OAuth2 access token, a
 * presigned URL), and when to replace it: early enough that the new one is in hand before the old one lapses, late
 * enough that a token of a few seconds is not replaced in a loop.
 */

/** What a connection logs in with. Each source sets the fields its broker reads; the rest stay undefined. */
export interface Credential {
  readonly username?: string;
  readonly password?: string;
  readonly clientId?: string;
  /** MQTT 5 enhanced authentication: the method (`OAUTH2-JWT`) and the data (the token's bytes). */
  readonly authenticationMethod?: string;
  readonly authenticationData?: Buffer;
  /** A URL to connect to instead of the configured one (a presigned WebSocket URL). */
  readonly url?: string;
  /** When the credential was made, in ms since the epoch: the start of its lifetime. */
  readonly issuedAt: number;
  /** When a connection that uses it stops working, in ms since the epoch; undefined when that never happens. */
  readonly expiresAt: number | undefined;
}

/** Makes credentials of one kind, each valid from the moment it is made. */
export interface CredentialSource {
  /** A credential made now (for an OAuth2 source, fetched now). */
  issue(): Promise<Credential>;
}

/**
 * Renew at least this long before expiry (when the lifetime allows): time for the identity provider to answer, for a
 * reconnect or an MQTT 5 re-authentication, and for one retry of either after a timeout of 10 to 20 s.
 */
export const RENEW_MARGIN_MS = 60_000;

/** At least this share of a lifetime is left when renewing, so a provider that is slow for once is survived. */
export const RENEW_SHARE = 0.2;

/**
 * Never renew before this share of the lifetime has passed. Without it a token shorter than the 60 s margin would be
 * due as soon as it is made and be replaced in a loop; with it a credential is used for at least half its life, so
 * renewals per lifetime stay at two at most. A 4 s token is renewed after 2 s, with 2 s to spare.
 */
export const RENEW_NOT_BEFORE_SHARE = 0.5;

/**
 * When to replace a credential, in ms since the epoch; undefined for one that never expires.
 *
 * The margin before expiry is 20 % of the lifetime or 60 s, whichever is more (a one-hour token is renewed after
 * 48 min, a day-long one after 19.2 h, a two-minute one after 1 min), but never more than half the lifetime (a 4 s
 * token after 2 s). The answer is never before `now`: a credential already past its time is due at once.
 */
export function renewAt(credential: Pick<Credential, 'issuedAt' | 'expiresAt'>, now: number): number | undefined {
  const { issuedAt, expiresAt } = credential;
  if (expiresAt === undefined) return undefined;
  const lifetime = Math.max(0, expiresAt - issuedAt);
  const margin = Math.min(Math.max(lifetime * RENEW_SHARE, RENEW_MARGIN_MS), lifetime * (1 - RENEW_NOT_BEFORE_SHARE));
  return Math.max(now, Math.floor(expiresAt - margin));
}

/**
 * A source that hands out the same credential until it is due for renewal, then a new one: the connections of a sync
 * share one OAuth2 token instead of each fetching its own (identity providers throttle clients that ask too often).
 * Callers that ask while a credential is being made wait for that one. A failed attempt is not kept: the next call
 * tries again.
 */
export class SharedCredential implements CredentialSource {
  private current: Credential | undefined;
  private pending: Promise<Credential> | undefined;

  constructor(
    private readonly source: CredentialSource,
    private readonly now: () => number = Date.now,
  ) {}

  /** The credential in use while it is not yet due for renewal, otherwise a new one. */
  issue(): Promise<Credential> {
    const current = this.current;
    if (current) {
      const now = this.now();
      const due = renewAt(current, now);
      if (due === undefined || now < due) return Promise.resolve(current);
    }
    return this.renew();
  }

  /**
   * A new credential even if the current one is not yet due: for when the broker refused the current one (it was
   * revoked, or the clocks disagree).
   */
  renew(): Promise<Credential> {
    if (!this.pending) {
      const pending = this.source.issue().then(
        (credential) => {
          this.current = credential;
          this.pending = undefined;
          return credential;
        },
        (err: unknown) => {
          this.pending = undefined;
          throw err;
        },
      );
      this.pending = pending;
    }
    return this.pending;
  }
}
