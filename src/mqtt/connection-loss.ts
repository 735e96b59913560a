/**
 * What a lost connection means, decided from what is known when it closes: the broker's DISCONNECT reason (MQTT 5),
 * the socket's error, how long the connection lived, and how many connections before it were lost just as quickly.
 *
 * - A broker that took the session over for another client, or that disconnected us for something sending again
 *   would repeat (a packet too large, a topic it refuses), fails the sync at once: reconnecting would only loop.
 * - A connection that keeps being closed right after the broker accepted it is, most of the time, another client with
 *   the same client ID (MQTT 3.1.1 brokers say nothing, they just close), and fails too.
 * - Anything else is a fault of the network or the broker: reconnect, unless `automatic_reconnect` is off.
 */
import { field } from '../config/spec.js';
import { ConfigError, type ConnectorError, TransientError } from '../errors.js';
import { SESSION_TAKEN_OVER, describeReason, isFailure, wouldRepeat } from './reason-codes.js';

/** A connection lost this soon after the broker accepted it counts towards suspecting a session takeover. */
export const QUICK_LOSS_MS = 2000;
/** This many quick losses in a row end the sync: two clients with one ID would otherwise push each other off forever. */
export const QUICK_LOSSES_TO_FAIL = 3;

export interface Loss {
  /** The reason code of the broker's DISCONNECT, when it sent one. */
  readonly reasonCode: number | undefined;
  /** The socket's error code or message, when there was one. */
  readonly problem: string | undefined;
  /** How long the connection lived after the broker accepted it. */
  readonly livedMs: number;
  /** Connections lost quickly, in a row, before this one. */
  readonly quickLossesBefore: number;
}

interface LossPolicy {
  readonly automaticReconnect: boolean;
  readonly clientId: string;
}

type LossDecision =
  | { readonly action: 'reconnect'; readonly cause: string; readonly quickLosses: number }
  | { readonly action: 'fail'; readonly error: ConnectorError; readonly quickLosses: number };

export function decideOnLoss(loss: Loss, policy: LossPolicy): LossDecision {
  const { reasonCode } = loss;
  const disconnected = reasonCode !== undefined && reasonCode !== 0;
  const cause = disconnected ? `the broker disconnected: ${describeReason(reasonCode)}` : (loss.problem ?? 'closed by the broker or the network');
  const quickLosses = loss.livedMs < QUICK_LOSS_MS ? loss.quickLossesBefore + 1 : 0;
  const fail = (error: ConnectorError): LossDecision => ({ action: 'fail', error, quickLosses });
  if (reasonCode === SESSION_TAKEN_OVER) {
    return fail(
      new ConfigError(
        `Another client connected with client ID "${policy.clientId}" and the broker handed it this connection's session (${describeReason(reasonCode)}). ` +
          `Give this connector a client ID no other client uses (${field('client')}), or leave it empty for a random one.`,
      ),
    );
  }
  if (disconnected && isFailure(reasonCode) && wouldRepeat(reasonCode)) {
    return fail(
      new ConfigError(
        `The broker closed the connection: ${describeReason(reasonCode)}. Sending the same messages again would meet the same answer, so the sync stops; check the broker's log and its limits for this client.`,
      ),
    );
  }
  if (quickLosses >= QUICK_LOSSES_TO_FAIL) {
    return fail(
      new ConfigError(
        `The broker closed the connection ${quickLosses} times in a row within ${QUICK_LOSS_MS / 1000} s of accepting it (last: ${cause}). ` +
          `Most likely another client is connected with client ID "${policy.clientId}" and each connection takes the session over from the other: give this connector a client ID of its own (${field('client')}). ` +
          `If no other client uses it, the broker rejects what is sent: check its log, lower ${field('max_inflight')} or set ${field('max_message_bytes')}.`,
        cause,
      ),
    );
  }
  if (!policy.automaticReconnect) {
    return fail(
      new TransientError(
        `The connection to the broker was lost (${cause}) and ${field('automatic_reconnect')} is off. If the broker limits messages in flight per client, lower ${field('max_inflight')}.`,
        cause,
      ),
    );
  }
  return { action: 'reconnect', cause, quickLosses };
}
