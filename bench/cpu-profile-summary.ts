// Where a V8 CPU profile (node --cpu-prof, e.g. from `npm run bench:events -- --profile DIR`) spends
// its time: self time by package (or our own source file) and by function, busiest first.
//   node --import tsx bench/cpu-profile-summary.ts DIR/CPU.….cpuprofile [--top 25] [--from S] [--to S]
// --from/--to keep only that window, in seconds since the process started: the bench's JSON line gives
// the one in which mail was sent as profileWindow.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  options: {
    top: { type: "string", default: "25" },
    from: { type: "string", default: "0" },
    to: { type: "string", default: "Infinity" },
  },
  allowPositionals: true,
});
const top = Number(values.top);
const [fromMicros, toMicros] = [Number(values.from) * 1e6, Number(values.to) * 1e6];

/** `graphql`, `@pothos/core`, `src/schema/event.ts`, `(garbage collector)`, `node:internal`… */
function ownerOf(url: string, functionName: string): string {
  if (!url) return `(${functionName || "native"})`.replace(/^\(\((.*)\)\)$/, "($1)");
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const [first = "", second = ""] = url.slice(modules + "/node_modules/".length).split("/");
    return first.startsWith("@") ? `${first}/${second}` : first;
  }
  if (url.startsWith("node:")) return url.split("/").slice(0, 2).join("/");
  const source = url.indexOf("/src/");
  return source >= 0 ? url.slice(source + 1) : url;
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  // Sample times count from the profile's start, which is within milliseconds of the process's.
  let elapsed = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    elapsed += delta;
    if (elapsed >= fromMicros && elapsed < toMicros) selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
  });
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const { callFrame } = byId.get(id) as ProfileNode;
    const owner = ownerOf(callFrame.url, callFrame.functionName);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + micros);
    if (owner === "(idle)") continue;
    const name = `${callFrame.functionName || "(anonymous)"}  ${owner}:${callFrame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  }
  const idle = byOwner.get("(idle)") ?? 0;
  const print = (title: string, rows: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [name, micros] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      const share = ((micros / Math.max(1, total - idle)) * 100).toFixed(1).padStart(5);
      console.log(`${share}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}`);
    }
  };
  console.log(
    `${file}: ${(total / 1e6).toFixed(1)} s sampled, ${((total - idle) / 1e6).toFixed(1)} s busy (shares are of busy time)`,
  );
  byOwner.delete("(idle)");
  print("self time by package / source file", byOwner);
  print("self time by function", byFunction);
}
