// What reading a large bytea in slices costs under PostgreSQL's two TOAST storages, the measurement
// behind db/migrations/2026_12_01_000010_file_storage.ts. Download links (src/files/) stream a file
// as `substring(content from offset for chunk)`, one statement per chunk. With the default storage
// (EXTENDED) a value that compressed is decompressed from its start for every slice, so a whole
// download costs time quadratic in its size; with EXTERNAL (stored uncompressed) a slice reads only
// the TOAST chunks it covers. Three kinds of 20 MiB value: random bytes (PDFs, images, archives:
// already compressed), base64 of random bytes (a raw MIME message carrying such attachments) and
// text (CSV, logs, plain-text mail: compressible).
//   npm run bench:toast -- [--mib 20] [--chunk-kib 256] [--record]
import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { ROOT } from "./lib/processes.ts";

const { values: flags } = parseArgs({
  options: {
    mib: { type: "string", default: "20" },
    "chunk-kib": { type: "string", default: "256" },
    record: { type: "boolean", default: false },
  },
});
const MIB = 1024 * 1024;
const SIZE = Math.round(Number(flags.mib) * MIB);
const CHUNK = Math.round(Number(flags["chunk-kib"]) * 1024);

/** Text that compresses like real text does: words drawn from a small vocabulary, in lines. */
function text(size: number): Buffer {
  const words = Array.from({ length: 200 }, () =>
    randomBytes(4)
      .toString("hex")
      .slice(0, 3 + ((Math.random() * 6) | 0)),
  );
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const line = `${Array.from({ length: 12 }, () => words[(Math.random() * words.length) | 0]).join(",")}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join("").slice(0, size));
}

const kinds: Record<string, () => Buffer> = {
  "random bytes (PDF, image, zip)": () => randomBytes(SIZE),
  "base64 of random bytes (raw MIME)": () => Buffer.from(randomBytes((SIZE * 3) / 4).toString("base64")),
  "text (CSV, logs)": () => text(SIZE),
};

const dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-bench-toast-"));
const embedded = await startEmbeddedPostgres({ dataDir });
const client = new pg.Client({ connectionString: embedded.url });
await client.connect();

interface Row {
  kind: string;
  storage: string;
  storedMiB: number;
  compression: string;
  slicedMs: number;
  wholeMs: number;
}

const rows: Row[] = [];
try {
  const compression = (await client.query("SHOW default_toast_compression")).rows[0]
    .default_toast_compression;
  for (const [kind, make] of Object.entries(kinds)) {
    const value = make();
    for (const storage of ["EXTENDED", "EXTERNAL"]) {
      await client.query("DROP TABLE IF EXISTS toast_bench");
      await client.query("CREATE TABLE toast_bench (id int PRIMARY KEY, content bytea NOT NULL)");
      await client.query(`ALTER TABLE toast_bench ALTER COLUMN content SET STORAGE ${storage}`);
      await client.query("INSERT INTO toast_bench VALUES (1, $1)", [value]);
      const stored = (
        await client.query(
          "SELECT pg_column_size(content) AS size, pg_column_compression(content) AS method FROM toast_bench",
        )
      ).rows[0];
      // Warm the cache: both reads below find the pages in shared buffers.
      await client.query("SELECT octet_length(content || ''::bytea) FROM toast_bench");
      let started = performance.now();
      let read = 0;
      for (let offset = 0; offset < SIZE; offset += CHUNK) {
        const { rows: slice } = await client.query(
          "SELECT substring(content from $1 for $2) AS chunk FROM toast_bench WHERE id = 1",
          [offset + 1, CHUNK],
        );
        read += (slice[0].chunk as Buffer).length;
      }
      const slicedMs = performance.now() - started;
      if (read !== value.length) throw new Error(`read ${read} of ${value.length} bytes`);
      started = performance.now();
      await client.query("SELECT content FROM toast_bench WHERE id = 1");
      const wholeMs = performance.now() - started;
      rows.push({
        kind,
        storage,
        storedMiB: Number(stored.size) / MIB,
        compression: stored.method ?? "none",
        slicedMs,
        wholeMs,
      });
      process.stdout.write(
        `${kind}, ${storage}: stored ${(Number(stored.size) / MIB).toFixed(2)} MiB (${stored.method ?? "uncompressed"}), ` +
          `${Math.ceil(SIZE / CHUNK)} slices ${slicedMs.toFixed(0)} ms, whole ${wholeMs.toFixed(0)} ms\n`,
      );
    }
  }
  const table = [
    `| value (${SIZE / MIB} MiB) | storage | stored MiB | compressed by | ${Math.ceil(SIZE / CHUNK)} slices of ${CHUNK / 1024} KiB, ms | whole value, ms |`,
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (row) =>
        `| ${row.kind} | ${row.storage} | ${row.storedMiB.toFixed(2)} | ${row.compression} | ${row.slicedMs.toFixed(0)} | ${row.wholeMs.toFixed(0)} |`,
    ),
  ].join("\n");
  process.stdout.write(`\ndefault_toast_compression: ${compression}\n${table}\n`);
  if (flags.record) {
    const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, Node ${process.version}, Linux ${os.release()}; load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")} at the start`;
    await appendFile(
      path.join(ROOT, "bench/RESULTS.md"),
      `\n## ${new Date().toISOString()} — reading a bytea in slices: EXTENDED vs EXTERNAL storage (issue 15)\n\n` +
        `Command: \`npm run bench:toast -- --mib ${SIZE / MIB} --chunk-kib ${CHUNK / 1024} --record\` (embedded PostgreSQL, ` +
        `default settings, default_toast_compression ${compression}; one client, the value in shared buffers).\n` +
        `Machine: ${machine}.\n\n${table}\n`,
    );
  }
} finally {
  await client.end();
  await embedded.stop();
  await rm(dataDir, { recursive: true, force: true });
}
