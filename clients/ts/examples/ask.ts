// Asks a team a question, then streams the answer to a second one.
//
//   IRIS_ADDRESS=127.0.0.1:50051 IRIS_API_KEY=iris_sk_... node dist/examples/ask.js [team]
//
// From an installed package, import from "@iris-dev/client" instead of "../src/index.js".
import { IrisClient, IrisError } from "../src/index.js";

const address = process.env.IRIS_ADDRESS ?? "127.0.0.1:50051";
const apiKey = process.env.IRIS_API_KEY;
const iris = new IrisClient({ address, apiKey });
const team = process.argv[2] ? iris.teams.team(process.argv[2]) : iris.teams.backend;

try {
  const a = await team.ask("What database do we use?");
  console.log(`${team.name}: ${a.response}`);

  for await (const chunk of team.stream("Explain auth")) process.stdout.write(chunk.text);
  process.stdout.write("\n");
} catch (err) {
  if (err instanceof IrisError) console.error(`Iris said ${err.reason} (${err.codeName}): ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
} finally {
  iris.close();
}
