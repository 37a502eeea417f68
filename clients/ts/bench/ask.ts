// What the idiomatic layer costs: N warm asks through iris.teams.alpha.ask and N through the plain generated
// connect client with the same request, metadata and deadline, interleaved, then the p50 of each.
//
//   IRIS_ADDRESS=127.0.0.1:50051 IRIS_API_KEY=iris_sk_... node dist/bench/ask.js [N]
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Iris, IrisClient } from "../src/index.js";

const address = process.env.IRIS_ADDRESS ?? "127.0.0.1:50051";
const apiKey = process.env.IRIS_API_KEY ?? "";
const fromTeam = process.env.IRIS_FROM_TEAM ?? "";
const n = Number(process.argv[2] ?? 200);
const warmup = 20;
const question = "say hi";
const team = process.env.IRIS_BENCH_TEAM ?? "alpha";
const askTimeoutMs = 300_000; // the layer's default ask timeout; its call deadline is that plus 10 s

const iris = new IrisClient({ address, apiKey, fromTeam });
const raw = createClient(Iris, createGrpcTransport({ baseUrl: `http://${address}` }));
const headers = { authorization: `Bearer ${apiKey}` };

const viaLayer = async (): Promise<void> => {
  await iris.teams.team(team).ask(question);
};
const viaRaw = async (): Promise<void> => {
  await raw.ask(
    { team, question, timeout: BigInt(askTimeoutMs), fromTeam },
    { headers, timeoutMs: askTimeoutMs + 10_000 },
  );
};

async function timed(call: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await call();
  return performance.now() - started;
}

function p50(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

try {
  for (let i = 0; i < warmup; i++) {
    await viaLayer();
    await viaRaw();
  }
  const layer: number[] = [];
  const plain: number[] = [];
  for (let i = 0; i < n; i++) {
    // Alternate which goes first, so that neither always follows the other.
    if (i % 2 === 0) {
      layer.push(await timed(viaLayer));
      plain.push(await timed(viaRaw));
    } else {
      plain.push(await timed(viaRaw));
      layer.push(await timed(viaLayer));
    }
  }
  console.log(`warm ask p50 over ${n} calls each (after ${warmup} warm-up pairs), team ${team}, "${question}":`);
  console.log(`  iris.teams.${team}.ask      ${p50(layer).toFixed(2)} ms`);
  console.log(`  generated client ask      ${p50(plain).toFixed(2)} ms`);
  // The last line is for make bench.
  console.log(JSON.stringify({ client_p50_ms: p50(layer), raw_p50_ms: p50(plain) }));
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  iris.close();
}
