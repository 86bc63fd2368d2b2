import { defineConfig } from "vitest/config";

/**
 * Files that measure the test process itself (its resident memory) or install process-wide state
 * (OpenTelemetry's global providers): each runs in a fresh process. Every other file shares its
 * worker's module cache with the files before it, which saves loading the application's module
 * graph once per file (about 2.5 s each, 200 s a run on 2 cores); each still starts its own server
 * on a database of its own.
 */
const ISOLATED = ["test/memory.test.ts", "test/downloads-memory.test.ts", "test/tracing.test.ts"];

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS entry for dependencies; our transformed sources must load the same
    // copy, or the two "realms" refuse each other's types.
    alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
  },
  test: {
    globalSetup: ["test/helpers/global-setup.ts"],
    pool: "forks",
    // Each file gets its own database cloned from a migrated template, so files run in parallel.
    fileParallelism: true,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "shared", include: ["test/**/*.test.ts"], exclude: ISOLATED, isolate: false },
      },
      { extends: true, test: { name: "isolated", include: ISOLATED, isolate: true } },
    ],
  },
});
