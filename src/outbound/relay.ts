// One attempt at handing a message to SMTP_RELAY_URL, bounded: each step (setting the session up,
// each command's reply, the message data) and the whole attempt have a deadline, so a relay that
// accepts TCP and never greets, or answers one byte at a time, holds a job slot for a bounded time.
// nodemailer's own timeouts bound the session's setup; its socket timeout is an idle timeout, which
// a relay that drips resets forever, so commands and data are timed here from its transaction log.
import { createTransport } from "nodemailer";
import type { Config } from "../config.ts";
import type { DkimKey } from "./repository.ts";

export interface RelayDeadlines {
  /** Setting the session up (connect, greeting, STARTTLS), and each command's reply. */
  stepMs: number;
  /** The message data, from the relay's 354 to its final reply. */
  dataMs: number;
  /** The whole attempt. */
  attemptMs: number;
}

export interface RelayOutcome {
  /** Recipients the relay refused, with its replies; the others it took. */
  rejected: string[];
  reasons: string[];
  /** Each refusal with its recipient and reply code (for suppressions). */
  refusals: {
    recipient?: string | undefined;
    responseCode?: number | undefined;
    response?: string | undefined;
    message?: string;
  }[];
}

/** The deadlines configured for relay attempts (RELAY_*_TIMEOUT_MS). */
export function relayDeadlines(
  config: Pick<Config, "relayStepTimeoutMs" | "relayDataTimeoutMs" | "relayAttemptTimeoutMs">,
): RelayDeadlines {
  return {
    stepMs: config.relayStepTimeoutMs,
    dataMs: config.relayDataTimeoutMs,
    attemptMs: config.relayAttemptTimeoutMs,
  };
}

/** A deadline passed: the attempt was cut off. Temporary: the relay may answer next time. */
export class RelayTimeout extends Error {
  override name = "RelayTimeout";
}

export async function relayAttempt(
  url: string,
  envelope: { from: string; to: string[] },
  raw: Buffer,
  dkim: DkimKey | undefined,
  deadlines: RelayDeadlines,
): Promise<RelayOutcome> {
  const controller = new AbortController();
  const expire = (what: string) => {
    if (!controller.signal.aborted) controller.abort(new RelayTimeout(what));
  };
  const watchdog = new StepWatchdog(deadlines, expire);
  const attempt = setTimeout(
    () => expire(`the relay attempt took longer than ${deadlines.attemptMs} ms`),
    deadlines.attemptMs,
  );
  const transport = createTransport({
    url,
    // Setting the session up: nodemailer bounds connecting and the greeting (and a STARTTLS
    // handshake) together by connectionTimeout.
    connectionTimeout: deadlines.stepMs,
    greetingTimeout: deadlines.stepMs,
    // An idle timeout: the deadlines here end a stalled step first, and name it; this only keeps
    // nodemailer's ten-minute default from outliving the attempt.
    socketTimeout: deadlines.attemptMs,
    logger: watchdog.logger,
    transactionLog: true,
  });
  try {
    const info = await transport.sendMail({
      envelope,
      raw,
      signal: controller.signal,
      ...(dkim ? { dkim } : {}),
    });
    return {
      rejected: (info.rejected ?? []).map(String),
      reasons: (info.rejectedErrors ?? []).map((error) => error.response ?? error.message),
      refusals: (info.rejectedErrors ?? []).map((error) => ({
        recipient: (error as { recipient?: string }).recipient,
        responseCode: (error as { responseCode?: number }).responseCode,
        response: error.response,
        message: error.message,
      })),
    };
  } catch (error) {
    // nodemailer reports the abort; the deadline that caused it says more.
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(attempt);
    watchdog.stop();
    transport.close();
  }
}

/**
 * Times each step from nodemailer's transaction log, which names every command sent and every
 * complete reply received (after STARTTLS too, where the socket carries only ciphertext): a step
 * begins when a command goes out with none outstanding, or with the relay's 354 (the message data),
 * and ends with the reply that answers it.
 */
class StepWatchdog {
  private outstanding = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly deadlines: RelayDeadlines,
    private readonly expire: (what: string) => void,
  ) {}

  readonly logger = {
    trace: () => {},
    debug: (entry: { tnx?: string }, message?: unknown) => {
      if (entry?.tnx === "client") this.sent(String(message ?? ""));
      else if (entry?.tnx === "server") this.received(String(message ?? ""));
    },
    info: () => {},
    warn: () => {},
    error: () => {},
    fatal: () => {},
  };

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private sent(command: string): void {
    this.outstanding++;
    if (this.timer === undefined) this.arm(this.deadlines.stepMs, `the reply to ${verb(command)}`);
  }

  private received(reply: string): void {
    this.outstanding = Math.max(0, this.outstanding - 1);
    this.disarm();
    if (/^354/.test(reply)) this.arm(this.deadlines.dataMs, "the message data");
    else if (this.outstanding > 0) this.arm(this.deadlines.stepMs, "the reply to the next command");
  }

  private arm(ms: number, what: string): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.expire(`${what} took longer than ${ms} ms`);
    }, ms);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The command's name, never its arguments (AUTH's carry credentials). */
function verb(command: string): string {
  return command.trim().split(/\s+/)[0]?.toUpperCase() || "a command";
}
