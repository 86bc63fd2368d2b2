// graphql-ws on the HTTP port: a connection authenticates once at connection_init, each operation then
// runs through the same yoga pipeline (plugins, limits, context) as HTTP, and a connection whose key
// is revoked or expires is closed, on every node (docs/permissions.md, "Failing authentication").
import type { Server } from "node:http";
import { GraphQLError } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { type WebSocket, WebSocketServer } from "ws";
import { ADDRESS_NOT_ALLOWED_MESSAGE, addressAllowed } from "../auth/allowed-ips.ts";
import { type AuthInvalidation, concerns } from "../auth/authenticator.ts";
import { InvalidCredential, resolvePrincipal } from "../auth/credentials.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import type { Config } from "../config.ts";
import { isDatabaseUnavailable } from "../db/errors.ts";
import type { Logger } from "../logger.ts";
import type { FrameSink } from "../schema/fan-out.ts";
import type { Services } from "../services.ts";
import { maxRequestBodyBytes } from "./armor.ts";
import { baseUrlOf } from "./base-url.ts";
import type { Observability } from "./observability.ts";
import { clientAddress, limitOperation } from "./rate-limit.ts";
import { limitUnauthenticatedFrames, setFrameLimit } from "./websocket-frames.ts";
import type { ServerContext, Yoga } from "./yoga.ts";

/** graphql-ws close code for a refused or revoked credential. */
export const WS_UNAUTHORIZED = 4401;
/** graphql-ws close code for a key used from an address its allow-list does not hold (like HTTP 403). */
export const WS_FORBIDDEN_ADDRESS = 4403;
/** graphql-ws close code when the database is away: like HTTP 503, and clients retry it (4401 they do not). */
export const WS_SERVICE_UNAVAILABLE = 4503;

type WsExtra = {
  principal?: AuthenticatedPrincipal;
  /** The client's address, as the allow-lists and rate limits see it (TRUST_PROXY applied). */
  clientIp?: string;
  expiryTimer?: NodeJS.Timeout;
};

export interface WebSockets {
  /** Closes every open connection (server shutdown) and stops taking new ones. */
  close(): void;
}

export function attachWebSockets(
  server: Server,
  yoga: Yoga,
  services: Services,
  config: Config,
  logger: Logger,
  observability: Observability,
): WebSockets {
  const sockets = new Map<WebSocket, WsExtra>();
  // A frame is a request: the HTTP body limit holds (ws's own default is 100 MiB).
  const wsServer = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: maxRequestBodyBytes(config),
  });
  // Like every HTTP request, an upgrade gets its X-Request-Id and one access-log line (observability.ts).
  wsServer.on("headers", (headers, request) => observability.beginUpgrade(request, headers));
  wsServer.on("connection", (socket, request) => observability.upgraded(request, socket));
  const refuse = (socket: WebSocket) => socket.close(WS_UNAUTHORIZED, "Unauthorized");
  const refuseAddress = (socket: WebSocket) =>
    socket.close(WS_FORBIDDEN_ADDRESS, ADDRESS_NOT_ALLOWED_MESSAGE);
  const unavailable = (socket: WebSocket) => socket.close(WS_SERVICE_UNAVAILABLE, "Service unavailable");

  const scheduleExpiry = (socket: WebSocket, extra: WsExtra) => {
    clearTimeout(extra.expiryTimer);
    const expiresAt = extra.principal?.expiresAt;
    if (!expiresAt) return;
    const delay = Math.min(Math.max(expiresAt.getTime() - Date.now(), 0), 2 ** 31 - 1);
    extra.expiryTimer = setTimeout(() => {
      if (extra.principal?.expiresAt && extra.principal.expiresAt.getTime() <= Date.now()) refuse(socket);
      else scheduleExpiry(socket, extra);
    }, delay);
  };

  /** A revocation on any node: re-check the open connections it may concern, close those now invalid. */
  const onRevoked = (change: AuthInvalidation) => {
    for (const [socket, extra] of sockets) {
      const principal = extra.principal;
      if (!principal || !concerns(change, principal)) continue;
      services.authenticator.refresh(principal).then(
        (fresh) => {
          if (!fresh) return refuse(socket);
          // An allow-list set or narrowed since: the connection's address must still be on it.
          if (!addressAllowed(fresh.allowedIps, extra.clientIp ?? "")) return refuseAddress(socket);
          extra.principal = fresh;
          scheduleExpiry(socket, extra);
        },
        // Unknown is not revoked: the client reconnects and is asked again, rather than told its key is bad.
        (error: unknown) => (isDatabaseUnavailable(error) ? unavailable(socket) : refuse(socket)),
      );
    }
  };
  services.authenticator.on("revoked", onRevoked);

  useServer<Record<string, unknown> | undefined, WsExtra>(
    {
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const authorization = params.Authorization ?? params.authorization;
        try {
          const principal =
            typeof authorization === "string"
              ? await resolvePrincipal(services.authenticator, { authorization })
              : undefined;
          if (!principal || principal.kind === "anonymous") throw new InvalidCredential();
          const clientIp = clientAddress(ctx.extra.request, config.trustProxy);
          if (!addressAllowed(principal.allowedIps, clientIp)) {
            refuseAddress(ctx.extra.socket);
            return false;
          }
          ctx.extra.principal = principal;
          ctx.extra.clientIp = clientIp;
          setFrameLimit(ctx.extra.socket, maxRequestBodyBytes(config));
          sockets.set(ctx.extra.socket, ctx.extra);
          scheduleExpiry(ctx.extra.socket, ctx.extra);
          return true;
        } catch (error) {
          if (isDatabaseUnavailable(error)) unavailable(ctx.extra.socket);
          else refuse(ctx.extra.socket);
          return false;
        }
      },
      onClose: (ctx) => {
        clearTimeout(ctx.extra.expiryTimer);
        sockets.delete(ctx.extra.socket);
      },
      execute: (args) => (args.rootValue as { execute: typeof import("graphql").execute }).execute(args),
      subscribe: (args) =>
        (args.rootValue as { subscribe: typeof import("graphql").subscribe }).subscribe(args),
      onSubscribe: async (ctx, id, payload) => {
        const clientIp = ctx.extra.clientIp ?? clientAddress(ctx.extra.request, config.trustProxy);
        const limited = await limitOperation(services.rateLimiter, ctx.extra.principal ?? null, clientIp);
        if (limited) return [limited];
        const { request } = ctx.extra;
        const secure = "encrypted" in request.socket || request.headers["x-forwarded-proto"] === "https";
        const enveloped = yoga.getEnveloped({
          wsPrincipal: ctx.extra.principal,
          wsClientIp: clientIp,
          wsBaseUrl: baseUrlOf(config, request.headers.host, secure),
          wsFrames: framesOf(ctx.extra.socket, id),
        } as ServerContext);
        let document: ReturnType<typeof enveloped.parse>;
        try {
          document = enveloped.parse(payload.query);
        } catch (error) {
          // A syntax error or an over-long query fails this operation, not the whole connection.
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const args = {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
        const errors = enveloped.validate(args.schema, args.document);
        return errors.length > 0 ? errors : args;
      },
    },
    wsServer,
  );
  limitUnauthenticatedFrames(wsServer, logger);

  return {
    close() {
      services.authenticator.off("revoked", onRevoked);
      for (const socket of sockets.keys()) socket.close(1001, "Server shutting down");
      wsServer.close();
    },
  };
}

/** A subscription's frames, written to its socket as graphql-ws would write them (src/schema/fan-out.ts). */
function framesOf(socket: WebSocket, id: string): FrameSink {
  return {
    id,
    send: (frame, done) => socket.send(frame, { binary: false }, done),
    buffered: () => socket.bufferedAmount,
    open: () => socket.readyState === socket.OPEN,
    // ws keeps its TCP socket private; ws's own sender corks it around each frame, and corks nest.
    cork: () => tcpSocketOf(socket)?.cork(),
    uncork: () => tcpSocketOf(socket)?.uncork(),
  };
}

/** ws's TCP socket, checked rather than assumed: without it frames are written one by one, as before. */
function tcpSocketOf(socket: WebSocket): { cork(): void; uncork(): void } | undefined {
  const tcp = (socket as unknown as { _socket?: { cork?: unknown; uncork?: unknown } })._socket;
  return tcp && typeof tcp.cork === "function" && typeof tcp.uncork === "function"
    ? (tcp as { cork(): void; uncork(): void })
    : undefined;
}
