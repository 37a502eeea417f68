// Tests of the client against a live Iris (`make test` starts one and sets IRIS_ADDRESS and IRIS_API_KEY).
// The live Iris runs Claude Code against an offline scripted model: `say TEXT` answers TEXT, `chunks a|b|c`
// streams those chunks, `slow N MS` streams "chunk 1 " .. "chunk N " waiting MS ms before each.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  CancelledError,
  IrisClient,
  IrisError,
  MessageRecord,
  TeamNotFoundError,
  TimeoutError,
  UnauthorizedError,
  type StreamEvent,
} from "../src/index.js";

const address = process.env.IRIS_ADDRESS;
const apiKey = process.env.IRIS_API_KEY;
// Optional: another calling team, so that runs against a shared development Iris use pairs of their own.
const fromTeam = process.env.IRIS_FROM_TEAM;
const skip = address ? false : "IRIS_ADDRESS is not set: `make test` runs these tests against a live Iris";
const nonce = `${process.pid}-${Date.now().toString(36)}`;

/** Rejects when `promise` has not settled within `ms` (every wait of these tests is bounded). */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A test that needs the live Iris; each one is skipped, with the reason, when there is none. */
function live(name: string, fn: () => Promise<void>): void {
  test(name, { skip, timeout: 90_000 }, fn);
}

async function rejection(promise: Promise<unknown>, ms = 30_000): Promise<IrisError> {
  try {
    await within(ms, promise, "the call");
  } catch (err) {
    assert.ok(err instanceof IrisError, `expected an IrisError, got ${String(err)}`);
    return err;
  }
  assert.fail("the call resolved; it should have rejected");
}

describe("IrisClient against a live Iris", () => {
  const iris = new IrisClient({ address, apiKey, fromTeam });
  after(() => iris.close());

  live("ask resolves to the generated AskResponse with the answer and its message id", async () => {
    const text = `hello from ts ${nonce}`;
    const a = await iris.teams.backend.ask(`say ${text}`, { timeoutMs: 60_000 });
    assert.equal(a.response, text);
    assert.match(a.messageId, /^msg_/);
    assert.equal(a.status, "completed");
    assert.equal(a.team, "backend");
  });

  live("stream yields start, the chunks in order, and complete with the whole answer", async () => {
    const events: StreamEvent[] = [];
    const parts = ["alpha ", "beta ", `gamma-${nonce}`];
    for await (const e of iris.teams.backend.stream(`chunks ${parts.join("|")}`)) events.push(e);
    assert.equal(events[0]?.kind, "start");
    assert.equal(events.at(-1)?.kind, "complete");
    const chunks = events.filter((e) => e.kind === "chunk");
    assert.equal(chunks.map((e) => e.text).join(""), parts.join(""));
    for (const e of events) if (e.kind !== "chunk") assert.equal(e.text, "");
    const complete = events.at(-1)?.event.event;
    assert.ok(complete?.case === "complete");
    assert.equal(complete.value.response, parts.join(""));
    assert.equal(complete.value.status, "completed");
  });

  live("breaking out of a stream early cancels it, and Iris still answers", async () => {
    let messageId = "";
    let chunks = 0;
    const started = Date.now();
    for await (const e of iris.teams.backend.stream(`slow 8 400`)) {
      if (e.event.event.case === "start") messageId = e.event.event.value.messageId;
      if (e.kind === "chunk" && ++chunks === 1) break;
    }
    assert.ok(Date.now() - started < 3_000, "the loop ended at the first chunk, not with the turn");
    assert.match(messageId, /^msg_/);
    // The turn goes on without its stream; end it so the pair is free, then ask on the same pair.
    await iris.cancelMessage(messageId);
    const text = `after the break ${nonce}`;
    const a = await iris.teams.backend.ask(`say ${text}`, { timeoutMs: 60_000 });
    assert.equal(a.response, text);
  });

  live("aborting a stream's signal cancels it promptly with reason CancelledError", async () => {
    const controller = new AbortController();
    let messageId = "";
    let abortedAt = 0;
    const consume = (async () => {
      for await (const e of iris.teams.backend.stream(`slow 10 1000`, { signal: controller.signal })) {
        if (e.event.event.case === "start") {
          messageId = e.event.event.value.messageId;
          abortedAt = Date.now();
          controller.abort();
        }
      }
    })();
    const err = await rejection(consume, 30_000);
    assert.equal(err.reason, CancelledError);
    assert.equal(err.code, Code.Canceled);
    assert.ok(Date.now() - abortedAt < 1_000, "the stream ended right after the abort");
    if (messageId) await iris.cancelMessage(messageId);
  });

  live("an unknown team rejects with reason TeamNotFoundError and code NotFound", async () => {
    const err = await rejection(iris.teams.team(`no-such-team-${nonce}`).ask("say x"));
    assert.equal(err.reason, TeamNotFoundError);
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.codeName, "NotFound");
    assert.ok(err.message.length > 0);
  });

  live("iris.raw's failures are IrisErrors too, unary and streamed", async () => {
    const team = `no-such-team-${nonce}`;
    const unary = await rejection(iris.raw.ask({ team, question: "say x", fromTeam: fromTeam ?? "" }));
    assert.equal(unary.reason, TeamNotFoundError);
    const read = async (): Promise<void> => {
      for await (const _ of iris.raw.tell({ toTeam: team, message: "say x", fromTeam: fromTeam ?? "" })) void _;
    };
    const streamed = await rejection(read());
    assert.equal(streamed.reason, TeamNotFoundError);
    assert.equal(streamed.code, Code.NotFound);
  });

  live("a bad API key rejects with reason UnauthorizedError", async () => {
    const bad = new IrisClient({ address, apiKey: "iris_sk_live_not-a-real-key" });
    try {
      const err = await rejection(bad.teams.backend.ask("say x"));
      assert.equal(err.reason, UnauthorizedError);
      assert.equal(err.code, Code.Unauthenticated);
    } finally {
      bad.close();
    }
  });

  live("an API key with surrounding whitespace (a key file's newline) is trimmed and works", async () => {
    const padded = new IrisClient({ address, apiKey: ` ${apiKey}\r\n`, fromTeam });
    try {
      const teams = await padded.listTeams();
      assert.ok(teams.teams.some((t) => t.name === "backend"));
    } finally {
      padded.close();
    }
  });

  live("without the apiKey option the key comes from IRIS_API_KEY", async () => {
    const saved = process.env.IRIS_API_KEY;
    try {
      process.env.IRIS_API_KEY = apiKey;
      const fromEnv = new IrisClient({ address });
      const teams = await fromEnv.listTeams();
      assert.ok(teams.teams.some((t) => t.name === "backend"));
      fromEnv.close();
      delete process.env.IRIS_API_KEY;
      const none = new IrisClient({ address });
      assert.equal((await rejection(none.listTeams())).reason, UnauthorizedError);
      none.close();
    } finally {
      if (saved === undefined) delete process.env.IRIS_API_KEY;
      else process.env.IRIS_API_KEY = saved;
    }
  });

  live("execute: the signed webhook arrives and job.wait() resolves to the completed record", async () => {
    type Delivery = { headers: IncomingHttpHeaders; body: Record<string, unknown> };
    let delivered!: (d: Delivery) => void;
    const delivery = new Promise<Delivery>((resolve) => (delivered = resolve));
    const server = createServer((req, res) => {
      let raw = "";
      req.setEncoding("utf8");
      req.on("data", (part: string) => (raw += part));
      req.on("end", () => {
        res.writeHead(204).end();
        delivered({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const text = `job done ${nonce}`;
      const job = await iris.teams.team("data-pipeline").execute(`say ${text}`, { callback: { url } });
      assert.match(job.jobId, /^job_/);
      assert.match(job.messageId, /^msg_/);
      assert.equal(job.response.team, "data-pipeline");
      const record: MessageRecord = await job.wait({ timeoutMs: 60_000 });
      assert.equal(record.status, "completed");
      assert.equal(record.response, text);
      assert.equal(record.jobId, job.jobId);
      const { headers, body } = await within(30_000, delivery, "the webhook");
      assert.equal(body.jobId, job.jobId);
      assert.equal(body.messageId, job.messageId);
      assert.equal(body.status, "completed");
      assert.ok(headers["webhook-id"], "webhook-id header");
      assert.ok(headers["webhook-signature"], "webhook-signature header");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  live("job.wait({ timeoutMs: 0 }) on an ended job resolves to its record (it polls once)", async () => {
    const text = `ended ${nonce}`;
    const job = await iris.teams.team("data-pipeline").execute(`say ${text}`);
    assert.equal((await job.wait({ timeoutMs: 60_000 })).status, "completed");
    const record = await within(30_000, job.wait({ timeoutMs: 0 }), "the wait");
    assert.equal(record.status, "completed");
    assert.equal(record.response, text);
  });

  live("job.cancel() on a slow job ends it cancelled", async () => {
    const job = await iris.teams.team("data-pipeline").execute(`slow 30 500`);
    // Let it start, so that the cancel interrupts a running turn (a queued one would simply never start).
    const deadline = Date.now() + 30_000;
    while ((await job.get()).status === "queued" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const cancelled = await job.cancel();
    assert.equal(cancelled.jobId, job.jobId);
    const record = await job.wait({ timeoutMs: 30_000 });
    assert.equal(record.status, "cancelled");
  });

  live("job.wait() stops on its signal with reason CancelledError", async () => {
    const job = await iris.teams.team("data-pipeline").execute(`slow 20 500`);
    try {
      const err = await rejection(job.wait({ signal: AbortSignal.timeout(300) }), 10_000);
      assert.equal(err.reason, CancelledError);
    } finally {
      await job.cancel();
    }
  });

  live("job.wait() past its timeoutMs rejects with reason TimeoutError naming the message that goes on", async () => {
    const job = await iris.teams.team("data-pipeline").execute(`slow 20 500`);
    try {
      const err = await rejection(job.wait({ timeoutMs: 500 }), 10_000);
      assert.equal(err.reason, TimeoutError);
      assert.equal(err.code, Code.DeadlineExceeded);
      assert.equal(err.details.messageId, job.messageId);
      assert.notEqual((await job.get()).status, "cancelled");
    } finally {
      await job.cancel();
    }
  });

  live("fractional deadlines are rounded up, and leave the connection usable for later calls", async () => {
    const text = `fractional ${nonce}`;
    const a = await iris.teams.backend.ask(`say ${text}`, { timeoutMs: 60_000.5 });
    assert.equal(a.response, text);
    // Iris's gRPC server fails a call whose grpc-timeout is no integer, and every later one on the
    // connection that sends another; the raw client's deadlines are rounded up too.
    await iris.raw.listTeams({}, { timeoutMs: 20_000.5 });
    await iris.listTeams({ timeoutMs: 20_001.5 });
    assert.ok((await iris.listTeams({ timeoutMs: 20_002 })).teams.length > 0);
    const job = await iris.teams.team("data-pipeline").execute(`say ${text}`, { jobTimeoutMs: 60_000.5 });
    const record = await job.wait({ timeoutMs: 60_000.5 });
    assert.equal(record.status, "completed");
    assert.equal(record.response, text);
  });

  live("ask with timeoutMs 0 waits until the turn ends", async () => {
    const started = Date.now();
    const a = await within(30_000, iris.teams.backend.ask(`slow 3 300`, { timeoutMs: 0 }), "ask");
    assert.equal(a.status, "completed");
    assert.equal(a.response, "chunk 1 chunk 2 chunk 3 ");
    assert.ok(Date.now() - started >= 900, "it waited for the three chunks");
  });

  live("ask past its timeoutMs rejects with reason TimeoutError and the message id in details", async () => {
    const err = await rejection(iris.teams.backend.ask(`slow 5 1000`, { timeoutMs: 1000 }));
    assert.equal(err.reason, TimeoutError);
    assert.equal(err.code, Code.DeadlineExceeded);
    assert.match(err.details.messageId ?? "", /^msg_/);
    // The turn went on; its record is there under that id.
    const record = await iris.getMessage(err.details.messageId!);
    assert.equal(record.messageId, err.details.messageId);
    await iris.cancelMessage(record.messageId).catch(() => undefined);
  });
});
