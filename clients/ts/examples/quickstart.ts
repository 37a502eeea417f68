// The README's quick start, as a program: ask, stream, then fire off a job and wait for it.
//
//   IRIS_ADDRESS=127.0.0.1:50051 IRIS_API_KEY=iris_sk_... IRIS_CALLBACK_URL=https://… node dist/examples/quickstart.js
import { IrisClient } from "@iris-dev/client";

const apiKey = process.env.IRIS_API_KEY;
const url = process.env.IRIS_CALLBACK_URL ?? "https://example.com/iris-hook";

const iris = new IrisClient({ address: process.env.IRIS_ADDRESS ?? "127.0.0.1:50051", apiKey });
const a = await iris.teams.backend.ask("What database do we use?");    // a.response
console.log(a.response);
for await (const chunk of iris.teams.backend.stream("Explain auth")) process.stdout.write(chunk.text);
console.log();
const job = await iris.teams.team("data-pipeline").execute("Generate the report", { callback: { url } });
const record = await job.wait({ timeoutMs: 600_000 });
console.log(`${job.jobId}: ${record.status}: ${record.response}`);
iris.close();
