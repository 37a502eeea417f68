/**
 * The reasons Iris puts in a failed call's google.rpc.ErrorInfo, one constant each.
 *
 * They are the server's error classes (iris_core/errors.py) as they travel on the wire, so that a caller can
 * branch on `err.reason === TeamNotFoundError` instead of on a gRPC code that several reasons share. The
 * Python test suite reads this file and compares its quoted names with the server's list: keep here only the
 * server's reasons. The reasons the client derives itself from a gRPC code (for a call that failed without
 * an ErrorInfo, e.g. an aborted or timed-out call) live in iris_error.ts.
 *
 * @module
 */

/** Bad input; nothing was changed (gRPC InvalidArgument). */
export const ValidationError = "ValidationError";
/** No usable credentials: no API key, or an unknown, expired or revoked one (gRPC Unauthenticated). */
export const UnauthorizedError = "UnauthorizedError";
/** The API key lacks the permission the RPC needs (gRPC PermissionDenied). */
export const ForbiddenError = "ForbiddenError";
/** Something named by the request does not exist (gRPC NotFound). */
export const NotFoundError = "NotFoundError";
/** The team is not in the server's config (gRPC NotFound). */
export const TeamNotFoundError = "TeamNotFoundError";
/** The (calling team, team) pair has no session (gRPC NotFound). */
export const SessionNotFoundError = "SessionNotFoundError";
/** No message or job with that id (gRPC NotFound). */
export const MessageNotFoundError = "MessageNotFoundError";
/**
 * A bounded wait on the server ran out (gRPC DeadlineExceeded). For Ask the turn goes on: the error's
 * `details.messageId` names it, for a later getMessage.
 */
export const TimeoutError = "TimeoutError";
/** The key's rate limit or a full queue (gRPC ResourceExhausted). */
export const TooManyRequestsError = "TooManyRequestsError";
/** A team's or key's spending budget for the UTC day or month is used up (ResourceExhausted); details name
 * the budget, limitUsd, spentUsd and resetsAt (Unix ms). */
export const BudgetExceededError = "BudgetExceededError";
/** The operation needs something the server lacks, or the message has already ended (gRPC FailedPrecondition). */
export const PreconditionFailedError = "PreconditionFailedError";
/** A Claude Code process failed to start or died (gRPC Internal). */
export const ProcessError = "ProcessError";
/** The server's config file is wrong (gRPC Internal). */
export const ConfigurationError = "ConfigurationError";
/** Every process slot of the server is busy; try again later (gRPC Unavailable). */
export const ProcessPoolLimitError = "ProcessPoolLimitError";
/** An unexpected failure on the server; its log has the details (gRPC Internal). */
export const InternalError = "InternalError";

/** Every reason the server sends, for exhaustive checks and tests. */
export const SERVER_REASONS = [
  ValidationError,
  UnauthorizedError,
  ForbiddenError,
  NotFoundError,
  TeamNotFoundError,
  SessionNotFoundError,
  MessageNotFoundError,
  TimeoutError,
  TooManyRequestsError,
  BudgetExceededError,
  PreconditionFailedError,
  ProcessError,
  ConfigurationError,
  ProcessPoolLimitError,
  InternalError,
] as const;

/** One of the reasons the server sends. */
export type ServerReason = (typeof SERVER_REASONS)[number];
