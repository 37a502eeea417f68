// Tests that need no Iris: the shape of `iris.teams` and the reasons of failures without ErrorInfo.
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import { IrisClient, reasonOfCode, SERVER_REASONS, Team } from "../src/index.js";

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

test("a failure without ErrorInfo is named after its gRPC code", () => {
  assert.equal(reasonOfCode(Code.Unavailable), "UnavailableError");
  assert.equal(reasonOfCode(Code.Canceled), "CancelledError");
  assert.equal(reasonOfCode(Code.DeadlineExceeded), "DeadlineExceededError");
  assert.equal(SERVER_REASONS.length, 14);
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

// The lines the README and the other clients' docs show, type-checked with every build (not run here: the
// example and the live tests run them).
export async function documentedUsage(apiKey: string, url: string): Promise<void> {
  const iris = new IrisClient({ address: "127.0.0.1:50051", apiKey });
  const a = await iris.teams.backend.ask("What database do we use?"); // a.response
  for await (const chunk of iris.teams.backend.stream("Explain auth")) process.stdout.write(chunk.text);
  const job = await iris.teams.team("data-pipeline").execute("Generate the report", { callback: { url } });
  void [a.response, job.jobId, job.messageId, await job.wait(), await job.get(), await job.cancel()];
}
