// Tests that need no Iris: the shape of `iris.teams`, the reasons of failures without ErrorInfo, the options
// the client refuses, and what it sends and does against a fake Iris (connect's own gRPC server, in process)
// that answers as a real one does when it restarts or hangs.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { test } from "node:test";
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  CancelledError,
  ErrorInfoSchema,
  Iris,
  IrisClient,
  IrisError,
  Job,
  MessageNotFoundError,
  reasonOfCode,
  SERVER_REASONS,
  Team,
  TimeoutError,
  type MessageRecord,
} from "../src/index.js";

/** A fake Iris on 127.0.0.1: the given methods (the others answer Unimplemented), and the calls' headers. */
async function fakeIris(impl: Partial<ServiceImpl<typeof Iris>>): Promise<{
  address: string;
  headers: Array<{ method: string; header: Headers }>;
  close: () => Promise<void>;
}> {
  const headers: Array<{ method: string; header: Headers }> = [];
  const routes = (router: ConnectRouter): void => {
    router.service(Iris, impl, {
      interceptors: [
        (next) => async (req) => {
          headers.push({ method: req.method.name, header: new Headers(req.header) });
          return await next(req);
        },
      ],
    });
  };
  const server = createServer(connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    headers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What the fake Iris's GetMessage does on each call, in turn: a status to answer, or a failure to make. */
type Poll = string | "hang" | ConnectError;

/**
 * A client of a fake Iris whose GetMessage answers by `polls` (the last one repeats), and a Job on it, for
 * Job.wait. "hang" answers nothing, so the poll's deadline (the client's timeoutMs) passes.
 */
async function fakeJob(polls: Poll[], clientTimeoutMs = 30_000) {
  let calls = 0;
  const fake = await fakeIris({
    getMessage: async (req, ctx: HandlerContext) => {
      const poll = polls[Math.min(calls++, polls.length - 1)]!;
      if (poll instanceof ConnectError) throw poll;
      if (poll === "hang") {
        await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
      }
      return { message: { messageId: "msg_fake", jobId: req.messageId, status: poll } };
    },
  });
  const iris = new IrisClient({ address: fake.address, apiKey: "iris_sk_fake", timeoutMs: clientTimeoutMs });
  const job = new Job(iris, { jobId: "job_fake", messageId: "msg_fake" } as never);
  return {
    job,
    calls: () => calls,
    close: async () => {
      iris.close();
      await fake.close();
    },
  };
}

/** A failure as Iris sends it: a code with ErrorInfo. */
function irisFailure(code: Code, reason: string): ConnectError {
  return new ConnectError(`${reason} from the fake Iris`, code, undefined, [
    { desc: ErrorInfoSchema, value: { reason, domain: "iris", metadata: { messageId: "msg_fake" } } },
  ]);
}

/** Rejects when `promise` has not settled within `ms` (every wait here is bounded). */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that `promise` rejects with an IrisError of that reason, and returns it. */
async function rejectsWith(promise: Promise<unknown>, reason: string): Promise<IrisError> {
  try {
    await within(20_000, promise);
  } catch (err) {
    assert.ok(err instanceof IrisError, `expected an IrisError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return err;
  }
  assert.fail("it resolved; it should have rejected");
}

/** Asserts that `promise` rejects with a RangeError that names `option`. */
async function refusesOption(promise: Promise<unknown>, option: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof RangeError, `expected a RangeError, got ${String(err)}`);
    assert.match(err.message, option);
    return true;
  });
}

test("iris.teams: any name is a team, and it is no thenable and prints", async () => {
  const iris = new IrisClient({ address: "127.0.0.1:1", apiKey: "unused" });
  assert.ok(iris.teams.backend instanceof Team);
  assert.equal(iris.teams.backend.name, "backend");
  assert.equal(iris.teams.backend, iris.teams.backend);
  assert.equal(iris.teams.team("data-pipeline").name, "data-pipeline");
  assert.equal(iris.teams.team("then").name, "then");
  assert.equal((iris.teams as unknown as { then?: unknown }).then, undefined);
  assert.equal(await iris.teams, iris.teams);
  assert.match(inspect(iris.teams), /Teams/);
  assert.equal(String(iris.teams), "[object Teams]");
  assert.doesNotThrow(() => JSON.stringify(iris.teams));
});

test("iris.teams answers undefined to the names Jest, React and the DOM probe; team(name) reaches them", () => {
  const iris = new IrisClient({ address: "127.0.0.1:1", apiKey: "unused" });
  const probed = iris.teams as unknown as Record<string, unknown>;
  for (const name of ["$$typeof", "asymmetricMatch", "nodeType", "length", "then", "toJSON", "inspect"]) {
    assert.equal(probed[name], undefined, name);
    assert.equal(iris.teams.team(name).name, name);
    assert.ok(iris.teams.team(name) instanceof Team);
  }
  assert.ok(iris.teams.lengthy instanceof Team); // only those exact names
});

test("a failure without ErrorInfo is named after its gRPC code", () => {
  assert.equal(reasonOfCode(Code.Unavailable), "UnavailableError");
  assert.equal(reasonOfCode(Code.Canceled), "CancelledError");
  assert.equal(reasonOfCode(Code.DeadlineExceeded), "DeadlineExceededError");
  // Those are the client's own names: Iris never sends them, so they are not among the server's reasons.
  for (const own of ["UnavailableError", "CancelledError", "DeadlineExceededError"]) {
    assert.ok(!(SERVER_REASONS as readonly string[]).includes(own), own);
  }
});

test("an API key that no header can carry is refused by the constructor, without quoting it", () => {
  const saved = process.env.IRIS_API_KEY;
  try {
    const refused = (err: unknown): boolean => {
      assert.ok(err instanceof TypeError);
      assert.match(err.message, /API key/);
      assert.doesNotMatch(`${err.message} ${err.stack ?? ""}`, /SECRET|SECRÉT/);
      return true;
    };
    const bad = ["iris_sk_live_SECRET\n# comment", "iris_sk_live_SECRET\r\nX-Other: 1", "iris_sk_live_SECRÉT"];
    for (const key of [...bad, "iris_sk_live_\0SECRET", "iris_sk_live_\x7fSECRET"]) {
      assert.throws(() => new IrisClient({ address: "127.0.0.1:1", apiKey: key }), refused, JSON.stringify(key));
    }
    // An environment variable cannot hold a NUL, so those are tried as the argument only.
    for (const key of bad) {
      process.env.IRIS_API_KEY = key;
      assert.throws(() => new IrisClient({ address: "127.0.0.1:1" }), refused, JSON.stringify(key));
    }
  } finally {
    if (saved === undefined) delete process.env.IRIS_API_KEY;
    else process.env.IRIS_API_KEY = saved;
  }
  // Surrounding whitespace, such as the newline a key file ends with, is trimmed, not refused.
  assert.doesNotThrow(() => new IrisClient({ address: "127.0.0.1:1", apiKey: " iris_sk_live_ok\r\n" }));
  assert.doesNotThrow(() => new IrisClient({ address: "127.0.0.1:1", apiKey: "" }));
});

test("tls with an http:// address is refused, rather than sending the key in clear", () => {
  for (const tls of [true, {}, { serverName: "iris.example.com" }]) {
    for (const address of ["http://127.0.0.1:1", "HTTP://127.0.0.1:1"]) {
      assert.throws(() => new IrisClient({ address, apiKey: "unused", tls }), (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, /tls .*http:\/\//);
        return true;
      });
    }
    new IrisClient({ address: "https://127.0.0.1:1", apiKey: "unused", tls }).close();
    new IrisClient({ address: "127.0.0.1:1", apiKey: "unused", tls }).close();
  }
  new IrisClient({ address: "http://127.0.0.1:1", apiKey: "unused", tls: false }).close();
  new IrisClient({ address: "http://127.0.0.1:1", apiKey: "unused" }).close();
});

test("the client's timeoutMs must be a finite number above 0: every unary call has a deadline", () => {
  for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
    assert.throws(() => new IrisClient({ address: "127.0.0.1:1", apiKey: "unused", timeoutMs }), RangeError);
  }
  const iris = new IrisClient({ address: "127.0.0.1:1", apiKey: "unused", timeoutMs: 1500.2 });
  assert.equal(iris.timeoutMs, 1501);
  iris.close();
});

test("durations that are negative or not finite reject with a RangeError before any call", async () => {
  // Nothing listens on port 1: a call that went out would fail with UnavailableError instead.
  const iris = new IrisClient({ address: "127.0.0.1:1", apiKey: "unused" });
  try {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      await refusesOption(iris.teams.backend.ask("say x", { timeoutMs: bad }), /timeoutMs/);
      await refusesOption(iris.teams.backend.execute("say x", { jobTimeoutMs: bad }), /jobTimeoutMs/);
      await refusesOption(iris.teams.backend.execute("say x", { timeoutMs: bad }), /timeoutMs/);
      await refusesOption(iris.listTeams({ timeoutMs: bad }), /timeoutMs/);
      await refusesOption(iris.getMessage("msg_x", { timeoutMs: bad }), /timeoutMs/);
    }
    // A unary call's own deadline cannot be 0 either (connect would read it as none).
    await refusesOption(iris.cancelMessage("msg_x", { timeoutMs: 0 }), /timeoutMs/);
    await refusesOption(iris.teams.backend.execute("say x", { ttlDays: 1.5 }), /ttlDays/);
  } finally {
    iris.close();
  }
});

test("fractional durations are sent rounded up; ask's timeoutMs 0 still has a call deadline", async () => {
  const fake = await fakeIris({
    ask: (req) => ({ messageId: "msg_fake", response: `timeout=${req.timeout}`, status: "completed" }),
    execute: (req) => ({ jobId: "job_fake", messageId: "msg_fake", status: "queued", team: `timeout=${req.timeout}` }),
    listTeams: () => ({}),
  });
  const iris = new IrisClient({ address: fake.address, apiKey: "iris_sk_fake" });
  try {
    assert.equal((await iris.teams.backend.ask("q", { timeoutMs: 1500.2 })).response, "timeout=1501");
    assert.equal((await iris.teams.backend.ask("q", { timeoutMs: 0 })).response, "timeout=0");
    assert.equal((await iris.teams.backend.ask("q")).response, "timeout=300000");
    assert.equal((await iris.teams.backend.execute("t", { jobTimeoutMs: 0.5 })).response.team, "timeout=1");
    assert.equal((await iris.teams.backend.execute("t", { jobTimeoutMs: 0 })).response.team, "timeout=0");
    assert.equal((await iris.teams.backend.execute("t")).response.team, "timeout=undefined"); // not sent
    await iris.listTeams({ timeoutMs: 2500.5 });
    await iris.raw.listTeams({}, { timeoutMs: 3500.5 });
    await iris.raw.listTeams({});
    const timeouts = fake.headers.map((h) => `${h.method} ${h.header.get("grpc-timeout")}`);
    assert.deepEqual(timeouts, [
      "Ask 11501m", // Iris's wait plus the 10 s margin
      "Ask 3610000m", // until the turn ends: an hour (Iris's longest wait) plus the margin
      "Ask 310000m",
      "Execute 30000m",
      "Execute 30000m",
      "Execute 30000m",
      "ListTeams 2501m",
      "ListTeams 3501m", // a raw call's deadline is rounded up too
      "ListTeams 30000m", // and a raw call without one gets the client's default
    ]);
  } finally {
    iris.close();
    await fake.close();
  }
});

test("job.wait polls through an Iris restart: Unavailable, and Canceled without ErrorInfo", async () => {
  // grpc-python's graceful stop cancels the calls in flight: the client sees Canceled, no ErrorInfo,
  // while its own signal is not aborted; then the port refuses (Unavailable) until Iris is back.
  const canceled = new ConnectError("Cancelled", Code.Canceled);
  const unavailable = new ConnectError("connection refused", Code.Unavailable);
  const fake = await fakeJob(["processing", canceled, unavailable, canceled, "processing", "completed"]);
  try {
    const record: MessageRecord = await within(20_000, fake.job.wait({ timeoutMs: 15_000 }));
    assert.equal(record.status, "completed");
    assert.equal(fake.calls(), 6);
  } finally {
    await fake.close();
  }
});

test("job.wait polls again after a poll's deadline passes (a hung Iris) while its own time remains", async () => {
  const fake = await fakeJob(["hang", "hang", "completed"], 300);
  try {
    const record = await within(20_000, fake.job.wait({ timeoutMs: 15_000 }));
    assert.equal(record.status, "completed");
    assert.equal(fake.calls(), 3);
  } finally {
    await fake.close();
  }
  // Without a timeoutMs of its own too.
  const unbounded = await fakeJob(["hang", "completed"], 300);
  try {
    assert.equal((await within(20_000, unbounded.job.wait())).status, "completed");
    assert.equal(unbounded.calls(), 2);
  } finally {
    await unbounded.close();
  }
});

test("job.wait on a hung Iris gives up at its own timeoutMs with TimeoutError, not at a poll's deadline", async () => {
  const fake = await fakeJob(["hang"], 300);
  try {
    const started = Date.now();
    const err = await rejectsWith(fake.job.wait({ timeoutMs: 1_000 }), TimeoutError);
    const took = Date.now() - started;
    assert.ok(took >= 950 && took < 5_000, `gave up after ${took} ms`);
    assert.equal(err.code, Code.DeadlineExceeded);
    assert.equal(err.details.messageId, "msg_fake");
    assert.ok(fake.calls() >= 2, `${fake.calls()} polls`);
  } finally {
    await fake.close();
  }
});

test("job.wait rejects on a failure Iris names (ErrorInfo), even Canceled or DeadlineExceeded", async () => {
  for (const [failure, reason] of [
    [irisFailure(Code.NotFound, MessageNotFoundError), MessageNotFoundError],
    [irisFailure(Code.DeadlineExceeded, TimeoutError), TimeoutError],
    [irisFailure(Code.Canceled, "SomeFutureError"), "SomeFutureError"],
  ] as const) {
    const fake = await fakeJob(["processing", failure, "completed"]);
    try {
      const err = await rejectsWith(fake.job.wait({ timeoutMs: 15_000 }), reason);
      assert.equal(err.code, failure.code);
      assert.equal(fake.calls(), 2);
    } finally {
      await fake.close();
    }
  }
});

test("job.wait stops at once on its own signal, even while Iris is away", async () => {
  const fake = await fakeJob([new ConnectError("Cancelled", Code.Canceled)]);
  try {
    const err = await rejectsWith(fake.job.wait({ signal: AbortSignal.timeout(500) }), CancelledError);
    assert.equal(err.code, Code.Canceled);
    assert.ok(fake.calls() >= 2, `${fake.calls()} polls`);
  } finally {
    await fake.close();
  }
  const hung = await fakeJob(["hang"]);
  try {
    const started = Date.now();
    await rejectsWith(hung.job.wait({ signal: AbortSignal.timeout(300) }), CancelledError);
    assert.ok(Date.now() - started < 3_000, "the abort ended the hung poll");
    assert.equal(hung.calls(), 1);
  } finally {
    await hung.close();
  }
});

test("job.wait({ timeoutMs: 0 }) polls once: it resolves on an ended job, else rejects TimeoutError", async () => {
  const done = await fakeJob(["completed"]);
  try {
    assert.equal((await within(10_000, done.job.wait({ timeoutMs: 0 }))).status, "completed");
    assert.equal(done.calls(), 1);
  } finally {
    await done.close();
  }
  const running = await fakeJob(["processing"]);
  try {
    const err = await rejectsWith(running.job.wait({ timeoutMs: 0 }), TimeoutError);
    assert.equal(err.code, Code.DeadlineExceeded);
    assert.equal(err.details.messageId, "msg_fake");
    assert.equal(err.details.jobId, "job_fake");
    assert.equal(running.calls(), 1);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await refusesOption(running.job.wait({ timeoutMs: bad }), /timeoutMs/);
    }
    assert.equal(running.calls(), 1);
  } finally {
    await running.close();
  }
});

test("iris.raw sends the same key and default deadline, and fails with IrisError", async () => {
  const fake = await fakeIris({
    listTeams: () => ({}),
    getMessage: () => {
      throw irisFailure(Code.NotFound, MessageNotFoundError);
    },
    watchEvents: async function* () {
      yield { id: 1n };
      throw irisFailure(Code.PermissionDenied, "PermissionDeniedError");
    },
  });
  const iris = new IrisClient({ address: fake.address, apiKey: " iris_sk_fake\n", timeoutMs: 12_000 });
  try {
    await iris.raw.listTeams({});
    await iris.listTeams();
    const [raw, own] = fake.headers;
    assert.equal(raw?.header.get("authorization"), "Bearer iris_sk_fake");
    assert.equal(raw?.header.get("grpc-timeout"), "12000m");
    assert.equal(own?.header.get("authorization"), raw?.header.get("authorization"));

    // A unary failure Iris names, one it does not implement, and one of a stream as it is read.
    const notFound = await rejectsWith(iris.raw.getMessage({ messageId: "msg_x" }), MessageNotFoundError);
    assert.equal(notFound.code, Code.NotFound);
    assert.equal(notFound.details.messageId, "msg_fake");
    assert.ok(notFound.cause instanceof ConnectError);
    await rejectsWith(iris.raw.teamStatus({}), "UnimplementedError");
    const ids: bigint[] = [];
    const read = async (): Promise<void> => {
      for await (const e of iris.raw.watchEvents({})) ids.push(e.id);
    };
    await rejectsWith(read(), "PermissionDeniedError");
    assert.deepEqual(ids, [1n]);
    // An aborted raw call is CancelledError, as any other.
    const controller = new AbortController();
    controller.abort();
    await rejectsWith(iris.raw.listTeams({}, { signal: controller.signal }), CancelledError);
  } finally {
    iris.close();
    await fake.close();
  }
  // And one that could not reach Iris.
  const away = new IrisClient({ address: "127.0.0.1:1", apiKey: "unused" });
  try {
    await rejectsWith(away.raw.listTeams({}), "UnavailableError");
  } finally {
    away.close();
  }
});

// The lines the README and the other clients' docs show, type-checked with every build (not run here: the
// example and the live tests run them).
export async function documentedUsage(apiKey: string, url: string): Promise<void> {
  const iris = new IrisClient({ address: "127.0.0.1:50051", apiKey });
  const a = await iris.teams.backend.ask("What database do we use?"); // a.response
  for await (const chunk of iris.teams.backend.stream("Explain auth")) process.stdout.write(chunk.text);
  const job = await iris.teams.team("data-pipeline").execute("Generate the report", { callback: { url } });
  void [a.response, job.jobId, job.messageId, await job.wait(), await job.get(), await job.cancel()];
}
