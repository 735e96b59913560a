/**
 * What a lost connection means, decided from what is known when it closes: the broker's DISCONNECT reason (MQTT 5),
 * the socket's error, how long the connection lived, and how many connections before it were lost just as quickly.
 *
 * - A broker that took the session over for another client, or that disconnected us for something sending again
 *   would repeat (a packet too large, a topic it refuses), fails the sync at once: reconnecting would only loop.
 * - A connection that keeps being closed right after the broker accepted it fails too. If it closed while messages it
 *   had received were unacknowledged, the broker most likely refuses something about them (MQTT 3.1.1 brokers can only
 *   close): the error names the first of them and the likely causes for that evidence (close-causes.ts). If nothing
 *   was awaiting an answer, it is most likely another client with the same client ID taking the session over.
 * - Anything else is a fault of the network or the broker: reconnect, unless `automatic_reconnect` is off.
 */
import { field } from '../config/spec.js';
import { ConfigError, type ConnectorError, TransientError } from '../errors.js';
import { type SendEvidence, describeSuspect, listCauses } from './close-causes.js';
import { SESSION_TAKEN_OVER, describeReason, isFailure, wouldRepeat } from './reason-codes.js';

/** A connection lost this soon after the broker accepted it counts towards suspecting a session takeover. */
export const QUICK_LOSS_MS = 2000;
/**
 * This many quick losses in a row end the sync: two clients with one ID would otherwise push each other off forever.
 */
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
  /** What the connection carried when it closed; unknown when nothing was published over it. */
  readonly evidence?: SendEvidence;
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
  const cause = disconnected
    ? `the broker disconnected: ${describeReason(reasonCode)}`
    : (loss.problem ?? 'closed by the broker or the network');
  const { evidence } = loss;
  const suspect = evidence?.suspect;
  // The first message the broker had not acknowledged is the one it most likely closed the connection over.
  const received =
    evidence && suspect
      ? evidence.qos === 0
        ? `right after receiving ${describeSuspect(evidence, suspect)}`
        : `with ${evidence.unacknowledged} message(s) unacknowledged, the first ${describeSuspect(evidence, suspect)}`
      : undefined;
  const quickLosses = loss.livedMs < QUICK_LOSS_MS ? loss.quickLossesBefore + 1 : 0;
  const fail = (error: ConnectorError): LossDecision => ({ action: 'fail', error, quickLosses });
  if (reasonCode === SESSION_TAKEN_OVER) {
    return fail(
      new ConfigError(
        `Another client connected with client ID "${policy.clientId}" ` +
          `and the broker handed it this connection's session (${describeReason(reasonCode)}). ` +
          `Give this connector a client ID no other client uses (${field('client')}), ` +
          'or leave it empty for a random one.',
      ),
    );
  }
  if (disconnected && isFailure(reasonCode) && wouldRepeat(reasonCode)) {
    return fail(
      new ConfigError(
        `The broker closed the connection: ${describeReason(reasonCode)}. ` +
          'Sending the same messages again would meet the same answer, so the sync stops; ' +
          "check the broker's log and its limits for this client.",
      ),
    );
  }
  if (quickLosses >= QUICK_LOSSES_TO_FAIL && evidence && received) {
    return fail(
      new ConfigError(
        `The broker closed the connection ${quickLosses} times in a row ` +
          `within ${QUICK_LOSS_MS / 1000} s of accepting it, ` +
          `each time after receiving messages it did not acknowledge (last: ${cause}, ${received}). ` +
          `It refuses something about them rather than another client taking the session over. ${listCauses(evidence)}`,
        `${cause}, ${received}`,
      ),
    );
  }
  if (quickLosses >= QUICK_LOSSES_TO_FAIL) {
    return fail(
      new ConfigError(
        `The broker closed the connection ${quickLosses} times in a row ` +
          `within ${QUICK_LOSS_MS / 1000} s of accepting it (last: ${cause}). ` +
          `Most likely another client is connected with client ID "${policy.clientId}" ` +
          'and each connection takes the session over from the other: give this connector a client ID of its own ' +
          `(${field('client')}). ` +
          "Nothing was awaiting the broker's answer when it closed, so it did not refuse a message; " +
          "if no other client uses the ID, check the broker's log.",
        cause,
      ),
    );
  }
  if (!policy.automaticReconnect) {
    const causes =
      evidence && received ? ` It closed ${received}; if it did so over what it received: ${listCauses(evidence)}` : '';
    return fail(
      new TransientError(
        `The connection to the broker was lost (${cause}) and ${field('automatic_reconnect')} is off.${causes}`,
        cause,
      ),
    );
  }
  return { action: 'reconnect', cause, quickLosses };
}
