// WebSocket subscriptions served without a stream per subscriber (docs/events.md, "Fan-out"): the
// subscribers of one node whose results must be identical — the same operation and variables, the same
// visibility — form a group. Per event, the group executes the operation once, serializes the frame's
// payload once, and writes `{"id":<each subscriber's id>,"type":"next","payload":…}` to each of its
// subscribers' sockets: a subscriber costs one socket write per event. A subscriber replays from its
// cursor, or catches up to a group, alone (reading as Query.events does), and joins the group exactly
// where the group is, so that no event is missed or repeated at the hand-off. graphql-ws still runs
// the protocol: it waits on an iterator that yields nothing and ends when the subscription does.
import {
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  type OperationDefinitionNode,
} from "graphql";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { visibilityKey } from "../auth/visibility.ts";
import { comparePositions, type EventPosition, positionOf } from "../events/cursor.ts";
import { type DeliveredEvent, eventPage, withMessages } from "../events/page.ts";
import { latestPosition, settledEventsAfter } from "../events/repository.ts";
import { admits, followCredential, matches, REPLAY_PAGE, type StreamRequest } from "../events/stream.ts";
import { eventVisibilityOf } from "../events/visibility.ts";
import type { Context } from "./context.ts";
import type { SharedResults } from "./shared-results.ts";

/** Where a WebSocket subscription's frames go: its socket, written to directly. */
export interface FrameSink {
  /** The subscription's id, as its client chose it. */
  id: string;
  /** Sends one text frame (a whole graphql-ws message); `done` once it is handed to the socket. */
  send(frame: Buffer, done?: (error?: Error) => void): void;
  /** Bytes sent but not yet written to the socket. */
  buffered(): number;
  open(): boolean;
  /**
   * Holds this socket's writes until the matching uncork(), then writes them in one system call: a
   * replay writes a page of frames at once instead of one write per frame.
   */
  cork(): void;
  uncork(): void;
}

/**
 * A subscriber whose socket holds more than this unwritten leaves its group and catches up alone at
 * the pace its socket drains (then joins again), rather than the node buffering without bound for it.
 */
const MAX_BUFFERED_BYTES = 1 << 20;

type Request = StreamRequest<unknown, unknown>;
/** What decides a group's results: the operation (key, args), the stream request and the visibility. */
interface Template {
  args: ExecutionArgs;
  operationKey: string;
  operation: OperationDefinitionNode;
  request: Request;
}

const finished: IteratorReturnResult<undefined> = { value: undefined, done: true };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class FanOut {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly shared: SharedResults,
    /** Applies the server's error masking to a result (what yoga does to every other result). */
    private readonly present: (result: ExecutionResult) => ExecutionResult,
  ) {}

  /**
   * Serves a subscription from the fan-out: its frames go to `sink`; the iterator returned yields
   * nothing and ends (or fails) when the subscription does, and `return()` ends it.
   */
  serve(
    args: ExecutionArgs,
    operationKey: string,
    operation: OperationDefinitionNode,
    request: Request,
    sink: FrameSink,
  ): AsyncIterableIterator<ExecutionResult> {
    const member = new Member(this, { args, operationKey, operation, request }, sink);
    member.start();
    return {
      next: () => member.finished,
      return: () => {
        member.end();
        return Promise.resolve(finished);
      },
      throw: (error?: unknown) => {
        member.end();
        return Promise.reject(error);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Groups now (tests and metrics). */
  groupCount(): number {
    return this.groups.size;
  }

  /** The payload of a frame (`…}` closing the message) for one result. */
  payloadOf(result: ExecutionResult): Buffer {
    return Buffer.from(`${JSON.stringify(this.present(result))}}`);
  }

  /**
   * One event's result under `principal`'s visibility: executed once per (operation, visibility, event
   * object), through src/schema/shared-results.ts, in a context of that visibility alone.
   */
  async execute(template: Template, principal: AuthenticatedPrincipal, value: object): Promise<Buffer> {
    const contextValue = { services: (template.args.contextValue as Context).services, principal };
    const args = { ...template.args, contextValue };
    return this.payloadOf(await this.shared.resultFor(args, template.operationKey, value));
  }

  /** Executors for one page of a replay: one context per page (and per credential, if it changes). */
  pageExecutor(template: Template): (principal: AuthenticatedPrincipal, value: object) => Promise<Buffer> {
    const services = (template.args.contextValue as Context).services;
    let context: Context | undefined;
    let contextPrincipal: AuthenticatedPrincipal | undefined;
    return async (principal, value) => {
      if (!context || contextPrincipal !== principal) {
        context = this.shared.contextAlone(services, principal);
        contextPrincipal = principal;
      }
      return this.payloadOf(await this.shared.resultAlone(template.args, value, context));
    };
  }

  /**
   * Puts `member` in its group at its cursor: at once when the group is there, pending when the group
   * has yet to pass the member's cursor, after catching up alone when the group is ahead.
   */
  async join(member: Member): Promise<void> {
    for (;;) {
      if (member.ended) return;
      const key = `${member.template.operationKey}\n${visibilityKey(member.principal)}`;
      let group = this.groups.get(key);
      if (!group) {
        group = new Group(this, key, member.template, member.principal, member.cursor);
        this.groups.set(key, group);
        group.add(member);
        group.start();
        return;
      }
      const order = comparePositions(member.cursor, group.cursor);
      if (order === 0) return group.add(member);
      if (order > 0) return group.addPending(member);
      await member.alone(group.cursor);
    }
  }

  closed(group: Group): void {
    if (this.groups.get(group.key) === group) this.groups.delete(group.key);
  }
}

/** One subscription served by the fan-out. */
class Member {
  principal: AuthenticatedPrincipal;
  /** Where the member is when not in a group (in a group: the group's cursor). */
  cursor: EventPosition = { xid: "0", id: "0" };
  group: Group | undefined;
  ended = false;
  readonly finished: Promise<IteratorResult<ExecutionResult>>;
  private settle!: (result: IteratorResult<ExecutionResult>) => void;
  private reject!: (error: unknown) => void;
  private readonly prefix: Buffer;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    private readonly fanOut: FanOut,
    readonly template: Template,
    private readonly sink: FrameSink,
  ) {
    this.principal = template.request.subscriber.principal;
    this.prefix = Buffer.from(`{"id":${JSON.stringify(sink.id)},"type":"next","payload":`);
    this.finished = new Promise((resolve, reject) => {
      this.settle = resolve;
      this.reject = reject;
    });
    // graphql-ws waits on it; a failure before then must not be unhandled.
    this.finished.catch(() => {});
  }

  start(): void {
    const { services, subscriber } = this.template.request;
    this.cleanups.push(services.events.hold());
    this.cleanups.push(
      followCredential(
        services,
        subscriber,
        () => this.principal,
        (fresh) => this.refresh(fresh),
        () => this.end(),
      ),
    );
    this.run().catch((error: unknown) => this.fail(error));
  }

  private async run(): Promise<void> {
    const { services, after } = this.template.request;
    if (after === undefined) {
      // Live only: from the newest settled event; every event after it settles later.
      this.cursor = await latestPosition(services.db, eventVisibilityOf(this.principal));
    } else {
      this.cursor = after;
      await this.alone(undefined);
    }
    await this.fanOut.join(this);
  }

  /**
   * Delivers, alone and in order, the events this member may see after its cursor, up to `target`
   * (every event up to it has settled: it is a group's cursor) or, without one, up to the last: the
   * very read a page of Query.events makes (replay), so both deliver the same events after a cursor.
   */
  async alone(target: EventPosition | undefined): Promise<void> {
    const { services, loadMessages, filter } = this.template.request;
    const read = (after: EventPosition) =>
      eventPage(services.db, eventVisibilityOf(this.principal), loadMessages, after, filter, REPLAY_PAGE);
    let next = read(this.cursor);
    for (;;) {
      const page = await next;
      const last = page.at(-1);
      const full = page.length === REPLAY_PAGE && last !== undefined;
      // The next page is read while this one is delivered (each event is judged again as it goes out).
      if (full) {
        next = read(positionOf(last.event));
        next.catch(() => {});
      }
      this.sink.cork();
      try {
        if (await this.deliverAlone(page, target)) return;
      } finally {
        this.sink.uncork();
      }
      if (!full) {
        if (target) this.cursor = target;
        return;
      }
    }
  }

  /** One page of alone(): true when it is done (ended, or past `target`). */
  private async deliverAlone(
    page: DeliveredEvent<unknown>[],
    target: EventPosition | undefined,
  ): Promise<boolean> {
    const { select } = this.template.request;
    const execute = this.fanOut.pageExecutor(this.template);
    for (const delivered of page) {
      if (this.ended) return true;
      const position = positionOf(delivered.event);
      if (target && comparePositions(position, target) > 0) {
        this.cursor = target;
        return true;
      }
      // The page was read under the credential of then; a refresh since may have narrowed it.
      const principal = this.principal;
      const value = admits(principal, delivered.event)
        ? select(delivered, eventVisibilityOf(principal))
        : null;
      if (value !== null && typeof value === "object") {
        const payload = await execute(principal, value);
        if (this.ended) return true;
        await this.writeAlone(payload);
      }
      this.cursor = position;
    }
    return false;
  }

  /** A frame while alone: waits for the socket to drain when it holds too much. */
  private async writeAlone(payload: Buffer): Promise<void> {
    if (!this.sink.open()) return;
    const frame = Buffer.concat([this.prefix, payload]);
    if (this.sink.buffered() < MAX_BUFFERED_BYTES) return this.sink.send(frame);
    // Written only once uncorked: let the page so far go, and wait for it.
    this.sink.uncork();
    try {
      await new Promise<void>((resolve) => this.sink.send(frame, () => resolve()));
    } finally {
      this.sink.cork();
    }
  }

  /** A frame from the group. False: the socket holds too much, the member must leave the group. */
  write(payload: Buffer): boolean {
    if (!this.sink.open()) return true;
    this.sink.send(Buffer.concat([this.prefix, payload]));
    return this.sink.buffered() < MAX_BUFFERED_BYTES;
  }

  /** Left its group at `cursor` because its socket fell behind: catches up alone once it drains. */
  lagged(cursor: EventPosition): void {
    this.group = undefined;
    this.cursor = cursor;
    (async () => {
      while (!this.ended && this.sink.open() && this.sink.buffered() >= MAX_BUFFERED_BYTES / 2)
        await sleep(10);
      await this.fanOut.join(this);
    })().catch((error: unknown) => this.fail(error));
  }

  /** A refreshed credential: a different visibility belongs to another group. */
  private refresh(fresh: AuthenticatedPrincipal): void {
    const before = visibilityKey(this.principal);
    this.principal = fresh;
    const group = this.group;
    if (!group || visibilityKey(fresh) === before) return;
    this.cursor = group.remove(this);
    this.fanOut.join(this).catch((error: unknown) => this.fail(error));
  }

  end(): void {
    if (this.stop()) this.settle(finished);
  }

  /** The source failed (the database is away): like graphql-tools' executor, a located error. */
  fail(error: unknown): void {
    if (!this.stop()) return;
    const original = error instanceof Error ? error : new Error(String(error));
    this.reject(
      new GraphQLError(original.message, { nodes: [this.template.operation], originalError: original }),
    );
  }

  /** Leaves the group and lets go of the credential; false when it had ended already. */
  private stop(): boolean {
    if (this.ended) return false;
    this.ended = true;
    this.group?.remove(this);
    for (const cleanup of this.cleanups) cleanup();
    return true;
  }
}

/** Subscribers that receive the same frames, at one cursor. */
class Group {
  private readonly members = new Set<Member>();
  /** Members whose cursor is ahead of the group's: each joins when the group passes it. */
  private pending: Member[] = [];
  private wake: (() => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  private readonly orgId: string;

  constructor(
    private readonly fanOut: FanOut,
    readonly key: string,
    private readonly template: Template,
    /** A principal of the group's visibility (the first member's; equal in what decides results). */
    private readonly principal: AuthenticatedPrincipal,
    /** The last event the group has handled: every member has received all it may see up to there. */
    public cursor: EventPosition,
  ) {
    this.orgId = eventVisibilityOf(principal).orgId;
  }

  add(member: Member): void {
    member.group = this;
    this.members.add(member);
  }

  addPending(member: Member): void {
    member.group = this;
    this.pending.push(member);
  }

  /** Takes `member` out; returns where it is (the group's cursor, or its own while pending). */
  remove(member: Member): EventPosition {
    member.group = undefined;
    let cursor = this.cursor;
    if (!this.members.delete(member)) {
      this.pending = this.pending.filter((m) => m !== member);
      cursor = member.cursor;
    }
    if (this.members.size === 0 && this.pending.length === 0) this.close();
    return cursor;
  }

  start(): void {
    const notify = () => {
      this.wake?.();
      this.wake = undefined;
    };
    this.unsubscribe = this.template.request.services.events.subscribe(this.orgId, notify, {
      counted: false,
    });
    this.run().catch((error: unknown) => {
      for (const member of [...this.members, ...this.pending]) member.fail(error);
      this.close();
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.wake?.();
    this.fanOut.closed(this);
  }

  /** Like the live part of src/events/stream.ts, once for the whole group. */
  private async run(): Promise<void> {
    const { services, loadMessages } = this.template.request;
    const { events } = services;
    const orgId = this.orgId;
    let seen = -1;
    while (!this.closed) {
      const generation = events.generation(orgId);
      if (generation === seen) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.closed || events.generation(orgId) !== seen) resolve();
        });
        continue;
      }
      seen = generation;
      for (;;) {
        const from = this.cursor;
        // The read every subscriber of this node at this place shares (the bus keeps it briefly).
        const page = await events.shared(`${orgId}:${generation}:${from.xid}:${from.id}`, async () =>
          withMessages(loadMessages, orgId, await settledEventsAfter(services.db, orgId, from, REPLAY_PAGE)),
        );
        for (const delivered of page) {
          const payload = this.payloadFor(delivered);
          this.advance(positionOf(delivered.event), payload === undefined ? undefined : await payload);
          if (this.closed) return;
        }
        if (page.length < REPLAY_PAGE) break;
      }
    }
  }

  private payloadFor(delivered: DeliveredEvent<unknown>): Promise<Buffer> | undefined {
    const { filter, select } = this.template.request;
    if (!matches(delivered.event, filter) || !admits(this.principal, delivered.event)) return undefined;
    const value = select(delivered, eventVisibilityOf(this.principal));
    if (value === null || typeof value !== "object") return undefined;
    return this.fanOut.execute(this.template, this.principal, value);
  }

  /**
   * The group passes the event at `position` (synchronously, so a member joining meanwhile is either
   * before it and receives it, or after it and does not): pending members it passes join first, then
   * every member gets the frame.
   */
  private advance(position: EventPosition, payload: Buffer | undefined): void {
    if (this.pending.length > 0) {
      const passed = this.pending.filter((m) => comparePositions(m.cursor, position) < 0);
      if (passed.length > 0) {
        this.pending = this.pending.filter((m) => comparePositions(m.cursor, position) >= 0);
        for (const member of passed) this.members.add(member);
      }
    }
    const lagging: Member[] = [];
    if (payload) {
      for (const member of this.members) if (!member.write(payload)) lagging.push(member);
    }
    this.cursor = position;
    for (const member of lagging) {
      this.remove(member);
      member.lagged(position);
    }
  }
}
