import type { JsonObject } from "@bufbuild/protobuf";
import {
  Code,
  createClient,
  type CallOptions,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";
import {
  Iris,
  type AskResponse,
  type ExecuteResponse,
  type ListTeamsResponse,
  type MessageRecord,
  type TellResponse,
  type WatchEventsResponse,
} from "./gen/iris/v1/iris_pb.js";
import { TimeoutError } from "./errors.js";
import { carriesErrorInfo, IrisError, reasonOfCode, toIrisError } from "./iris_error.js";

/** The raw generated client: every RPC of the contract, with the generated request and reply types. */
export type RawIrisClient = Client<typeof Iris>;

/** TLS settings; giving any (even `{}`) switches the connection to https with the system's CAs. */
export interface TlsOptions {
  /** CA certificate(s) to trust instead of the system's, e.g. for a self-signed Iris. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to verify the server's certificate against, when it differs from the address's host. */
  serverName?: string;
}

/** How to reach Iris and who calls it. */
export interface IrisClientOptions {
  /**
   * Iris's gRPC address, "host:port" (or a full http:// or https:// URL). Default: the IRIS_ADDRESS
   * environment variable, else 127.0.0.1:50051.
   */
  address?: string;
  /**
   * The API key, sent as `authorization: Bearer <key>`. Default: the IRIS_API_KEY environment variable.
   * Surrounding whitespace is trimmed (a key read from a file ends with a newline); what is left must be
   * printable ASCII, else the constructor throws a TypeError that does not quote the key.
   */
  apiKey?: string;
  /**
   * The calling team (request from_team). Empty (the default) means the API key's own name; another name
   * needs the team:impersonate permission. Each (calling team, team) pair has its own Claude Code session.
   */
  fromTeam?: string;
  /**
   * Deadline in milliseconds of every unary call that names none (default 30 000). Streams have none. It
   * must be a finite number above 0 (a fraction is rounded up): every unary call has a deadline.
   */
  timeoutMs?: number;
  /**
   * Use TLS (https); `true` for the system's CAs. Without it the connection is plaintext HTTP/2, unless the
   * address is an https:// URL. With an http:// address the constructor throws (that would be plaintext).
   */
  tls?: boolean | TlsOptions;
  /** Extra connect interceptors (logging, tracing), run after the one that adds the API key. */
  interceptors?: Interceptor[];
}

/** Options every call takes: cancel it with `signal`. */
export interface CallOpts {
  /** Aborting it cancels the call; the call then rejects with reason "CancelledError". */
  signal?: AbortSignal;
}

/** Options of a unary call: a signal and a deadline. */
export interface UnaryOpts extends CallOpts {
  /**
   * Deadline of this call in milliseconds (default: the client's timeoutMs): a finite number above 0, rounded
   * up to a whole millisecond; anything else rejects with a RangeError before the call is made.
   */
  timeoutMs?: number;
}

/** Options of {@link Team.ask}. */
export interface AskOptions extends CallOpts {
  /**
   * How long Iris waits for the whole answer, in milliseconds (default 300 000; Iris takes at most an hour).
   * Past it the call rejects with reason TimeoutError and `details.messageId`, while the turn goes on. The
   * call's own deadline is this plus 10 s, so that Iris's answer, not the transport, ends it. 0 asks Iris
   * to wait until the turn ends (which settings.turnTimeout bounds, an hour by default); the call's deadline
   * is then an hour and 10 s. A fraction is rounded up; a negative or non-finite value rejects with a
   * RangeError before the call is made.
   */
  timeoutMs?: number;
  /** Where the question comes from; kept with the message. */
  context?: { source?: string; metadata?: JsonObject };
}

/** Options of {@link Team.stream}. */
export type StreamOptions = CallOpts;

/** Options of {@link Team.execute}. */
export interface ExecuteOptions extends UnaryOpts {
  /** Where Iris POSTs the result when the job ends (signed the Standard Webhooks way). */
  callback?: { url: string; method?: string; headers?: Record<string, string> };
  /** low | normal | high (default normal). */
  priority?: "low" | "normal" | "high";
  /** The same key from the same API key within 24 hours returns the same job and starts nothing. */
  idempotencyKey?: string;
  /**
   * Milliseconds the job may run once started (default, and 0: the server's settings.turnTimeout alone;
   * Iris takes at most an hour). A fraction is rounded up; a negative or non-finite value rejects with a
   * RangeError before the call is made.
   */
  jobTimeoutMs?: number;
  /** Days the job may wait in the queue before it expires (default 30); a whole number, else a RangeError. */
  ttlDays?: number;
}

/** Options of {@link Job.wait}. */
export interface WaitOptions extends CallOpts {
  /**
   * Give up after this many milliseconds, rejecting with reason "TimeoutError" (code DeadlineExceeded,
   * `details.messageId` and `details.jobId`); the job goes on. It polls at least once (with the client's
   * deadline when no time is left), so 0 looks once and resolves if the job has ended. A negative or
   * non-finite value rejects with a RangeError.
   */
  timeoutMs?: number;
}

/** Filters of {@link IrisClient.watchEvents}; every one is optional. */
export interface WatchFilter {
  team?: string;
  sessionId?: string;
  /** Kinds such as "turn.chunk", or a family such as "turn.". */
  kinds?: string[];
  /** Resume after this event id (0: live events only). */
  afterId?: bigint;
}

/** The kinds of event a streamed answer has, named as in the contract's TellResponse oneof. */
export type StreamEventKind = "start" | "chunk" | "tool_use" | "permission_request" | "complete";

/**
 * One event of a streamed answer. `text` is there so that the common loop needs no oneof switch
 * (`process.stdout.write(chunk.text)`); `event` is the contract's own TellResponse for everything else.
 */
export interface StreamEvent {
  kind: StreamEventKind;
  /** The chunk's text; "" for every other kind. */
  text: string;
  /** The generated TellResponse this event came from. */
  event: TellResponse;
}

const ENDED = new Set(["completed", "failed", "cancelled"]);
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_ASK_TIMEOUT_MS = 300_000;
const ASK_DEADLINE_MARGIN_MS = 10_000;
/** The longest wait Iris accepts (an hour), which is also settings.turnTimeout's default. */
const IRIS_MAX_TIMEOUT_MS = 3_600_000;
/** The longest delay a Node timer holds (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 2_000;

const KIND_OF_CASE: Record<string, StreamEventKind> = {
  start: "start",
  chunk: "chunk",
  toolUse: "tool_use",
  permissionRequest: "permission_request",
  complete: "complete",
};

/**
 * A client of Iris: `iris.teams.<name>` for the common calls (ask, stream, execute), `iris.raw` for every
 * other RPC of the contract.
 *
 * It holds one HTTP/2 connection, opened on the first call; an idle connection does not keep the process
 * alive, and {@link IrisClient.close} ends it at once.
 */
export class IrisClient {
  /**
   * The generated client, for every RPC: the same API key, the client's default deadline on unary calls,
   * and failures that are IrisErrors (their `cause` the ConnectError), as the client's own calls.
   */
  readonly raw: RawIrisClient;
  /** The teams, by name: `iris.teams.backend`, or `iris.teams.team("data-pipeline")`. */
  readonly teams: Teams;
  /** The calling team sent as from_team ("" = the API key's own name). */
  readonly fromTeam: string;
  /** Default deadline of unary calls, in milliseconds. */
  readonly timeoutMs: number;
  readonly #session: Http2SessionManager;

  constructor(options: IrisClientOptions = {}) {
    const address = options.address ?? process.env.IRIS_ADDRESS ?? "127.0.0.1:50051";
    const apiKey = checkedApiKey(options.apiKey ?? process.env.IRIS_API_KEY ?? "");
    this.fromTeam = options.fromTeam ?? "";
    this.timeoutMs =
      options.timeoutMs === undefined
        ? DEFAULT_TIMEOUT_MS
        : millis("IrisClient timeoutMs", options.timeoutMs, ABOVE_ZERO);
    const tls = options.tls === true ? {} : options.tls || undefined;
    // An http:// URL is plaintext whatever `tls` says: refuse the pair rather than send the key in clear.
    if (tls && /^http:\/\//i.test(address)) {
      throw new TypeError("IrisClient: tls was given with an http:// address; use https:// or host:port");
    }
    const baseUrl = /^https?:\/\//i.test(address) ? address : `${tls ? "https" : "http"}://${address}`;
    const nodeOptions: SecureClientSessionOptions = tls
      ? { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.serverName }
      : {};
    this.#session = new Http2SessionManager(baseUrl, {}, nodeOptions);
    const auth: Interceptor = (next) => async (req) => {
      if (apiKey) req.header.set("authorization", `Bearer ${apiKey}`);
      return await next(req);
    };
    const transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.#session,
      interceptors: [auth, ...(options.interceptors ?? [])],
    });
    this.raw = createClient(Iris, irisTransport(transport, this.timeoutMs));
    this.teams = teamsProxy(this);
  }

  /** Lists the configured teams with their settings. */
  async listTeams(opts: UnaryOpts = {}): Promise<ListTeamsResponse> {
    return await this.unaryCall(opts, (options) => this.raw.listTeams({}, options));
  }

  /** Looks a message up by its id (msg_...) or its job's id (job_...). */
  async getMessage(messageId: string, opts: UnaryOpts = {}): Promise<MessageRecord> {
    const reply = await this.unaryCall(opts, (options) => this.raw.getMessage({ messageId }, options));
    return reply.message ?? missing("GetMessage");
  }

  /**
   * Cancels a message or job: a queued one never starts, a running one is interrupted. The record returned
   * may still say "processing" for a moment; {@link Job.wait} sees it end.
   */
  async cancelMessage(messageId: string, opts: UnaryOpts = {}): Promise<MessageRecord> {
    const reply = await this.unaryCall(opts, (options) => this.raw.cancelMessage({ messageId }, options));
    return reply.message ?? missing("CancelMessage");
  }

  /**
   * What happens inside Iris, as it happens (processes, turns, jobs, webhooks, health). It runs until the
   * signal aborts or the loop breaks; to resume after a reconnect, pass the last event's id as `afterId`.
   */
  watchEvents(filter: WatchFilter = {}, opts: CallOpts = {}): AsyncIterable<WatchEventsResponse> {
    return this.serverStream(opts.signal, (signal) =>
      this.raw.watchEvents(
        {
          team: filter.team ?? "",
          sessionId: filter.sessionId ?? "",
          kinds: filter.kinds ?? [],
          afterId: filter.afterId ?? 0n,
        },
        { signal },
      ),
    );
  }

  /** Closes the HTTP/2 connection; calls after it open a new one. */
  close(): void {
    this.#session.abort();
  }

  /**
   * @internal Runs one unary call with the options' signal and deadline (else the client's default),
   * rejecting with an IrisError; a deadline that is no positive finite number rejects with a RangeError.
   */
  async unaryCall<T>(opts: UnaryOpts, run: (options: CallOptions) => Promise<T>): Promise<T> {
    const timeoutMs =
      opts.timeoutMs === undefined ? this.timeoutMs : millis("timeoutMs", opts.timeoutMs, ABOVE_ZERO);
    return await this.call(opts.signal, (signal) => run({ signal, timeoutMs }));
  }

  /** @internal Runs one call, rejecting with an IrisError. */
  async call<T>(signal: AbortSignal | undefined, run: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    try {
      return await run(signal);
    } catch (err) {
      throw toIrisError(err, signal);
    }
  }

  /**
   * @internal A server stream as an AsyncIterable that fails with IrisError and is cancelled when its
   * consumer stops early (break, return, throw) as well as by the caller's signal.
   */
  async *serverStream<T>(
    signal: AbortSignal | undefined,
    open: (signal: AbortSignal) => AsyncIterable<T>,
  ): AsyncGenerator<T, void, undefined> {
    const own = new AbortController();
    const linked = signal ? AbortSignal.any([signal, own.signal]) : own.signal;
    try {
      for await (const item of open(linked)) yield item;
    } catch (err) {
      throw toIrisError(err, signal);
    } finally {
      own.abort();
    }
  }
}

/**
 * The teams of an Iris, by name. Any property is a team (`iris.teams.backend`); `team(name)` reaches the
 * names that are not identifiers (`iris.teams.team("data-pipeline")`) or that an object already uses or
 * tools look up (`then`, `toString`, `constructor`, `length`, `$$typeof`, ...). Nothing is checked
 * locally: an unknown team fails on its first call with reason TeamNotFoundError.
 */
export type Teams = { readonly [name: string]: Team } & {
  /** The team of that name. */
  team(name: string): Team;
};

/**
 * Properties of `iris.teams` that are not teams, because tools look them up on any object they are given:
 * `then` (await), `toJSON` (JSON.stringify), `inspect`, `prototype`, and the ones that test runners,
 * React and pretty-printers probe to tell what an object is: `$$typeof` (React elements), `asymmetricMatch`
 * (Jest's and Vitest's matchers), `nodeType` (DOM nodes), `length` (array-likes). A team of such a name is
 * reached with `team(name)`.
 */
const NOT_TEAMS = new Set([
  "then",
  "toJSON",
  "inspect",
  "prototype",
  "$$typeof",
  "asymmetricMatch",
  "nodeType",
  "length",
]);

function teamsProxy(client: IrisClient): Teams {
  const cache = new Map<string, Team>();
  const team = (name: string): Team => {
    let t = cache.get(name);
    if (!t) {
      t = new Team(client, name);
      cache.set(name, t);
    }
    return t;
  };
  // A class instance, so that console.log shows "Teams {}" (Node inspects a proxy's target, not its traps).
  const target = new (class Teams {})();
  return new Proxy(target, {
    get(_target, prop) {
      if (prop === "team") return team;
      if (typeof prop === "symbol") {
        if (prop === Symbol.toStringTag) return "Teams";
        return undefined;
      }
      if (NOT_TEAMS.has(prop)) return undefined;
      if (prop in Object.prototype) return Reflect.get(target, prop) as unknown; // toString, valueOf, ...
      return team(prop);
    },
  }) as unknown as Teams;
}

/** One team of Iris, as seen by this client's calling team. */
export class Team {
  constructor(
    private readonly client: IrisClient,
    /** The team's name. */
    readonly name: string,
  ) {}

  /**
   * Asks the team a question and resolves to the whole answer (`a.response`) once its turn ends. Iris
   * waits `opts.timeoutMs` (default 300 000); past it this rejects with reason TimeoutError and
   * `details.messageId`, and the turn goes on.
   */
  async ask(question: string, opts: AskOptions = {}): Promise<AskResponse> {
    const timeout =
      opts.timeoutMs === undefined ? DEFAULT_ASK_TIMEOUT_MS : millis("timeoutMs", opts.timeoutMs, ZERO_OR_MORE);
    // 0: Iris waits until the turn ends, which settings.turnTimeout (an hour by default) bounds; the call
    // still gets a deadline, the longest explicit wait Iris takes plus the margin.
    const deadline = Math.min((timeout || IRIS_MAX_TIMEOUT_MS) + ASK_DEADLINE_MARGIN_MS, MAX_TIMER_MS);
    return await this.client.call(opts.signal, (signal) =>
      this.client.raw.ask(
        {
          team: this.name,
          question,
          timeout: BigInt(timeout),
          fromTeam: this.client.fromTeam,
          context: opts.context,
        },
        { signal, timeoutMs: deadline },
      ),
    );
  }

  /**
   * Streams the team's answer as it is produced: a start event, the text chunks in order, tool-use notices,
   * and a complete event with the whole answer. Breaking out of the loop, or aborting `opts.signal`,
   * cancels the stream (the turn itself goes on; CancelMessage ends it).
   */
  stream(message: string, opts: StreamOptions = {}): AsyncIterable<StreamEvent> {
    const events = this.client.serverStream(opts.signal, (signal) =>
      this.client.raw.tell({ toTeam: this.name, message, fromTeam: this.client.fromTeam }, { signal }),
    );
    return toStreamEvents(events);
  }

  /**
   * Queues a task as a durable job and resolves at once to its {@link Job}; the job survives an Iris
   * restart and, with `opts.callback`, its result is POSTed there when it ends.
   */
  async execute(task: string, opts: ExecuteOptions = {}): Promise<Job> {
    const jobTimeout =
      opts.jobTimeoutMs === undefined ? undefined : millis("jobTimeoutMs", opts.jobTimeoutMs, ZERO_OR_MORE);
    if (opts.ttlDays !== undefined && !Number.isSafeInteger(opts.ttlDays)) {
      throw new RangeError(`ttlDays must be a whole number of days, not ${String(opts.ttlDays)}`);
    }
    const response = await this.client.unaryCall(opts, (options) =>
      this.client.raw.execute(
        {
          team: this.name,
          task,
          priority: opts.priority ?? "",
          callback: opts.callback,
          idempotencyKey: opts.idempotencyKey ?? "",
          timeout: jobTimeout === undefined ? undefined : BigInt(jobTimeout),
          ttlDays: opts.ttlDays,
          fromTeam: this.client.fromTeam,
        },
        options,
      ),
    );
    return new Job(this.client, response);
  }
}

async function* toStreamEvents(events: AsyncIterable<TellResponse>): AsyncGenerator<StreamEvent, void, undefined> {
  for await (const event of events) {
    const kind = event.event.case === undefined ? undefined : KIND_OF_CASE[event.event.case];
    if (!kind) continue; // an event kind newer than this client
    yield { kind, text: event.event.case === "chunk" ? event.event.value.text : "", event };
  }
}

/**
 * A job queued by {@link Team.execute}: the generated ExecuteResponse (`response`) and the calls that follow
 * it by id. Each resolves to the generated MessageRecord.
 */
export class Job {
  constructor(
    private readonly client: IrisClient,
    /** Execute's reply: job and message ids, status and place in the queue at acceptance. */
    readonly response: ExecuteResponse,
  ) {}

  /** The job's id (job_...). */
  get jobId(): string {
    return this.response.jobId;
  }

  /** The id of the message the job sends (msg_...). */
  get messageId(): string {
    return this.response.messageId;
  }

  /** The job's message as Iris keeps it now: status, progress, response. */
  async get(opts: UnaryOpts = {}): Promise<MessageRecord> {
    return await this.client.getMessage(this.jobId, opts);
  }

  /** Cancels the job: queued, it never starts; running, it is interrupted. */
  async cancel(opts: UnaryOpts = {}): Promise<MessageRecord> {
    return await this.client.cancelMessage(this.jobId, opts);
  }

  /**
   * Resolves to the job's record once it has ended (completed, failed or cancelled; check `status`).
   * It polls GetMessage, 100 ms doubling to 2 s. A poll that fails without Iris's ErrorInfo because Iris
   * could not be reached or went away (Unavailable, or Canceled or DeadlineExceeded while `opts.signal` has
   * not aborted: Iris restarting cancels its calls, a hung Iris lets a poll's deadline pass) is polled
   * through, since jobs survive a restart; any other failure rejects with it. It stops, rejecting, when
   * `opts.signal` aborts (reason "CancelledError") or `opts.timeoutMs` passes (reason "TimeoutError", with
   * `details.messageId`), after one poll at least; the job goes on.
   */
  async wait(opts: WaitOptions = {}): Promise<MessageRecord> {
    const budget = opts.timeoutMs === undefined ? undefined : millis("timeoutMs", opts.timeoutMs, ZERO_OR_MORE);
    const deadline = budget === undefined ? undefined : Date.now() + budget;
    const gaveUp = (): IrisError =>
      new IrisError({
        // Iris's own name for a bounded wait that ran out while the work goes on (as Ask's timeout).
        reason: TimeoutError,
        code: Code.DeadlineExceeded,
        message: `job ${this.jobId} had not ended within ${budget} ms; it goes on`,
        details: { jobId: this.jobId, messageId: this.messageId },
      });
    let pause = POLL_FIRST_MS;
    for (let first = true; ; first = false) {
      if (opts.signal?.aborted) throw toIrisError(opts.signal.reason, opts.signal);
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0 && !first) throw gaveUp();
      try {
        // The first poll is made even when no time is left (timeoutMs 0), with the client's own deadline.
        const timeoutMs = left === undefined || left <= 0 ? undefined : Math.min(left, this.client.timeoutMs);
        const record = await this.get({ signal: opts.signal, timeoutMs });
        if (ENDED.has(record.status)) return record;
      } catch (err) {
        const e = toIrisError(err, opts.signal);
        if (opts.signal?.aborted || !irisWentAway(e)) throw e;
      }
      if (deadline !== undefined && Date.now() >= deadline) throw gaveUp();
      const sleep = deadline === undefined ? pause : Math.min(pause, Math.max(0, deadline - Date.now()));
      await delay(sleep, opts.signal);
      pause = Math.min(pause * 2, POLL_MAX_MS);
    }
  }
}

/**
 * Whether a failed poll says only that Iris was not there to answer: Unavailable (down, restarting), or,
 * without ErrorInfo, Canceled (a server stopping gracefully cancels its calls) or DeadlineExceeded (the
 * poll's own deadline passed). The caller checks its own signal first: then Canceled is the caller's.
 */
function irisWentAway(e: IrisError): boolean {
  if (e.code === Code.Unavailable) return true;
  return (e.code === Code.Canceled || e.code === Code.DeadlineExceeded) && !carriesErrorInfo(e);
}

/** Waits ms, or rejects with CancelledError when the signal aborts first. */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(toIrisError(signal.reason, signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(toIrisError(signal?.reason, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The key as it is sent: trimmed of surrounding whitespace (as HTTP trims a header value, and as a key read
 * from a file needs), then printable ASCII only, the characters gRPC metadata carries. Anything else would
 * make the call fail with an error quoting the header, key included, so it is refused here, without it.
 */
function checkedApiKey(raw: string): string {
  const key = raw.trim();
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      // The character's code is shown only for a control character, which no key really contains.
      const what =
        c < 0x20 || c === 0x7f
          ? `a control character (U+${c.toString(16).toUpperCase().padStart(4, "0")})`
          : "a character that is not ASCII";
      throw new TypeError(
        `IrisClient: the API key (apiKey or IRIS_API_KEY) contains ${what} at index ${i}; a key is printable ASCII`,
      );
    }
  }
  return key;
}

/** Whether a duration may be 0, and its largest value. */
interface MillisRange {
  zero: boolean;
  max: number;
  /** Why there is a largest value. */
  why: string;
}
/** A deadline: above 0, and no longer than a timer holds. */
const ABOVE_ZERO: MillisRange = { zero: false, max: MAX_TIMER_MS, why: "the longest a Node timer holds" };
/** A duration sent to Iris (which refuses more than an hour itself) or a wait's: 0 or more. */
const ZERO_OR_MORE: MillisRange = { zero: true, max: Number.MAX_SAFE_INTEGER, why: "the largest safe integer" };

/**
 * A duration option as a whole number of milliseconds (a fraction rounded up, since the request's int64 and
 * gRPC's grpc-timeout header take whole ones); anything else is the caller's mistake: a RangeError naming
 * the option, before any call.
 */
function millis(name: string, value: number, range: MillisRange): number {
  const ok = typeof value === "number" && Number.isFinite(value) && (range.zero ? value >= 0 : value > 0);
  if (!ok) {
    const wanted = range.zero ? "0 or more" : "above 0";
    throw new RangeError(`${name} must be a finite number of milliseconds, ${wanted}, not ${String(value)}`);
  }
  if (value > range.max) {
    throw new RangeError(`${name} must be at most ${range.max} ms (${range.why}), not ${value}`);
  }
  return Math.ceil(value);
}

/**
 * The transport of every call, `iris.raw`'s included: its unary calls get `timeoutMs` when they name no
 * deadline (streams get none); deadlines are whole milliseconds (gRPC's grpc-timeout header takes an
 * integer, and Iris's gRPC server, given "1.5m", fails that call and every later one on the connection that
 * sends another timeout); and every failure is an IrisError, a stream's while it is read too.
 */
function irisTransport(inner: Transport, timeoutMs: number): Transport {
  return {
    unary: async (method, signal, callTimeoutMs, header, input, contextValues) => {
      const deadline = wholeMillis(callTimeoutMs ?? timeoutMs);
      try {
        return await inner.unary(method, signal, deadline, header, input, contextValues);
      } catch (err) {
        throw toIrisError(err, signal);
      }
    },
    stream: async (method, signal, callTimeoutMs, header, input, contextValues) => {
      const deadline = wholeMillis(callTimeoutMs);
      try {
        const response = await inner.stream(method, signal, deadline, header, input, contextValues);
        return { ...response, message: withIrisErrors(response.message, signal) };
      } catch (err) {
        throw toIrisError(err, signal);
      }
    },
  };
}

/** The messages of a stream, failing with an IrisError. */
async function* withIrisErrors<T>(messages: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw toIrisError(err, signal);
  }
}

/**
 * A raw call's deadline as connect reads it (undefined: the default; 0 or less: none), in whole milliseconds
 * no longer than a timer holds; NaN, which connect would send as "NaNm", is no deadline anyone means.
 */
function wholeMillis(ms: number | undefined): number | undefined {
  if (ms === undefined || ms <= 0) return ms;
  if (Number.isNaN(ms)) throw new RangeError("timeoutMs must be a number of milliseconds, not NaN");
  return Math.min(Math.ceil(ms), MAX_TIMER_MS);
}

function missing(rpc: string): never {
  throw new IrisError({
    reason: reasonOfCode(Code.Internal),
    code: Code.Internal,
    message: `${rpc} answered without a message`,
  });
}
