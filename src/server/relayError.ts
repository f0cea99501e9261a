// The relay's one error type: a TRPCError whose cause carries a stable RelayReason (SPEC.md E1). The router's
// errorFormatter copies the reason into `error.data.reason`; clients switch on it and never on text.
import { TRPCError } from '@trpc/server';
import { RelayReason } from '../shared/protocol/relay';

type TRPCCode = ConstructorParameters<typeof TRPCError>[0]['code'];

const CODE: Record<RelayReason, TRPCCode> = {
  BAD_INPUT: 'BAD_REQUEST',
  PROTOCOL_MISMATCH: 'BAD_REQUEST',
  NOT_LOGGED_IN: 'UNAUTHORIZED',
  ALREADY_LOGGED_IN: 'CONFLICT',
  NO_CHALLENGE: 'UNAUTHORIZED',
  CHALLENGE_EXPIRED: 'UNAUTHORIZED',
  CHALLENGE_REPLAYED: 'UNAUTHORIZED',
  BAD_KEY: 'BAD_REQUEST',
  BAD_SIGNATURE: 'UNAUTHORIZED',
  WRONG_AUTHOR: 'FORBIDDEN',
  UNKNOWN_CHANNEL: 'NOT_FOUND',
  BAD_ATTACHMENT: 'BAD_REQUEST',
  DUPLICATE_CLIENT_ID: 'CONFLICT',
  RATE_LIMITED: 'TOO_MANY_REQUESTS',
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_REQUESTS',
  TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  SHUTTING_DOWN: 'SERVICE_UNAVAILABLE',
  WRONG_RELAY: 'FORBIDDEN',
  STALE_POST: 'BAD_REQUEST',
  CLOCK_SKEW: 'BAD_REQUEST',
  ROOM_FULL: 'CONFLICT',
  NOT_IN_VOICE: 'CONFLICT',
  NO_SIGNAL_STREAM: 'PRECONDITION_FAILED',
  INTERNAL: 'INTERNAL_SERVER_ERROR',
};

/** Carried as the TRPCError's cause; `instanceof` tells the formatter the reason is ours. */
export class ReasonCause extends Error {
  constructor(readonly reason: RelayReason) {
    super(reason);
    this.name = 'ReasonCause';
  }
}

export function relayError(reason: RelayReason, message: string = reason): TRPCError {
  return new TRPCError({ code: CODE[reason], message, cause: new ReasonCause(reason) });
}

/** The reason for any error tRPC hands the formatter: ours, a zod failure, or tRPC's own. */
export function reasonOf(error: TRPCError): RelayReason {
  if (error.cause instanceof ReasonCause) return error.cause.reason;
  switch (error.code) {
    case 'PARSE_ERROR':
    case 'BAD_REQUEST':
    case 'NOT_FOUND': // unknown procedure path
    case 'METHOD_NOT_SUPPORTED':
    case 'UNPROCESSABLE_CONTENT':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return RelayReason.BAD_INPUT;
    case 'PAYLOAD_TOO_LARGE':
      return RelayReason.TOO_LARGE;
    case 'TOO_MANY_REQUESTS':
      return RelayReason.RATE_LIMITED;
    default:
      return RelayReason.INTERNAL;
  }
}

/** A short, bounded summary of zod issues, for humans (clients switch on `reason`, not on this). */
export function issuesOf(error: TRPCError): string[] | undefined {
  const issues = (error.cause as { issues?: unknown } | undefined)?.issues;
  if (!Array.isArray(issues)) return undefined;
  return issues.slice(0, 5).map((i: { path?: PropertyKey[]; message?: string }) => {
    const path = Array.isArray(i.path) ? i.path.map(String).join('.') : '';
    return `${path || '(input)'}: ${String(i.message ?? 'invalid').slice(0, 120)}`;
  });
}
