/**
 * The TypeScript client of Iris: `new IrisClient({ address, apiKey })`, then `iris.teams.<name>.ask`,
 * `.stream` and `.execute`, with the contract's generated types crossing the boundary. Every failed call
 * rejects with {@link IrisError}; its `reason` is one of the constants of `errors.ts` (exported as `reasons`)
 * or a code-derived name such as "CancelledError".
 *
 * @module
 */
export {
  IrisClient,
  Job,
  Team,
  type AskOptions,
  type CallOpts,
  type ExecuteOptions,
  type IrisClientOptions,
  type RawIrisClient,
  type StreamEvent,
  type StreamEventKind,
  type StreamOptions,
  type Teams,
  type TlsOptions,
  type UnaryOpts,
  type WaitOptions,
  type WatchFilter,
} from "./client.js";
export {
  CancelledError,
  DeadlineExceededError,
  IrisError,
  reasonOfCode,
  UnavailableError,
} from "./iris_error.js";
export { ErrorInfoSchema, type ErrorInfo } from "./error_info.js";
export * as reasons from "./errors.js";
export * from "./errors.js";
/** The contract's generated messages and the Iris service descriptor. */
export * from "./gen/iris/v1/iris_pb.js";
