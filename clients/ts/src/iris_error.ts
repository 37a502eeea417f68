import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "./error_info.js";

/**
 * The one error every failed call of this client rejects with.
 *
 * Iris names its failures by reason (the google.rpc.ErrorInfo of the status: `TeamNotFoundError`,
 * `TimeoutError`, ...), which is finer than the gRPC code several reasons share; callers branch on
 * `reason` (constants in `errors.ts`). A failure that carries no ErrorInfo (the client aborted, a deadline
 * passed, the server was unreachable) gets a reason derived from its code, the way the Go and Python
 * clients name it: `UnavailableError`, `CancelledError`, `DeadlineExceededError`, ...
 */
export class IrisError extends Error {
  /** The ErrorInfo reason, else the code's name in PascalCase + "Error". */
  readonly reason: string;
  /** The gRPC status code (connect's Code enum). */
  readonly code: Code;
  /** The code's name as connect spells it, e.g. "NotFound". */
  readonly codeName: string;
  /** The ErrorInfo metadata, e.g. `messageId` of an Ask that timed out; empty without ErrorInfo. */
  readonly details: Record<string, string>;

  constructor(init: {
    reason: string;
    code: Code;
    message: string;
    details?: Record<string, string>;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "IrisError";
    this.reason = init.reason;
    this.code = init.code;
    this.codeName = Code[init.code] ?? String(init.code);
    this.details = init.details ?? {};
  }

  override toString(): string {
    return `${this.name} ${this.reason} (${this.codeName}): ${this.message}`;
  }
}

/** Reason of a call cancelled by its caller (an aborted signal, a stream left early). */
export const CancelledError = "CancelledError";
/** Reason of a call whose client-side deadline passed (a Job.wait that runs out is a TimeoutError). */
export const DeadlineExceededError = "DeadlineExceededError";
/** Reason of a call that could not reach Iris (down, restarting, refused connection). */
export const UnavailableError = "UnavailableError";

/**
 * The reason of a failure without ErrorInfo: the gRPC code's name + "Error", spelled as gRPC spells it
 * (Canceled is CANCELLED in gRPC, so "CancelledError", as in the Python and Go clients).
 */
export function reasonOfCode(code: Code): string {
  if (code === Code.Canceled) return CancelledError;
  return `${Code[code] ?? "Unknown"}Error`;
}

/**
 * Turns anything a call threw into an IrisError. When `signal` has been aborted the call was cancelled by
 * its caller, whatever the transport made of it, so it is reported as Canceled.
 */
export function toIrisError(err: unknown, signal?: AbortSignal): IrisError {
  if (err instanceof IrisError) return err;
  const ce = ConnectError.from(err);
  if (signal?.aborted && ce.code !== Code.Canceled) {
    return new IrisError({
      reason: reasonOfCode(Code.Canceled),
      code: Code.Canceled,
      message: "the call was aborted by its signal",
      cause: ce,
    });
  }
  const info = ce.findDetails(ErrorInfoSchema)[0];
  return new IrisError({
    reason: info?.reason || reasonOfCode(ce.code),
    code: ce.code,
    message: ce.rawMessage,
    details: info ? { ...info.metadata } : {},
    cause: ce,
  });
}

/**
 * @internal Whether a failure carries Iris's ErrorInfo, i.e. Iris decided it; without it the reason was
 * derived from the code (the transport, a deadline, a server stopping).
 */
export function carriesErrorInfo(err: IrisError): boolean {
  return err.cause instanceof ConnectError && err.cause.findDetails(ErrorInfoSchema).length > 0;
}
