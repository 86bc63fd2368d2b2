/**
 * The process cannot start for a reason its operator can fix (a port taken, a directory another
 * account cannot reach): its message is one line that says what to do, and src/main.ts prints it
 * without a stack.
 */
export class StartupError extends Error {
  override name = "StartupError";
}
