// The request body limit (maxRequestBodyBytes), enforced without wrapping every body in a stream.
// graphql-yoga's own maxRequestBodySize pipes each body through a TransformStream, and Node's
// stream pipeline aborts an AbortController (building a DOMException) as each one finishes: a sixth
// of the CPU of a small authenticated request. A body with a Content-Length needs none of that:
// Node's HTTP parser never reads past the declared length, so checking the header is the whole
// check. Only a body without one (chunked) is counted as it streams in.
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

const tooLarge = () =>
  new GraphQLError("Request body too large", {
    extensions: { http: { status: 413 }, code: "REQUEST_ENTITY_TOO_LARGE" },
  });

/** One non-negative integer: anything else (lists, signs, text) may be a smuggling attempt. */
const CONTENT_LENGTH = /^\d+$/;

export function useRequestBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const length = request.headers.get("content-length");
      if (length !== null) {
        if (!CONTENT_LENGTH.test(length)) {
          throw new GraphQLError("Content-Length header is invalid.", {
            extensions: { http: { status: 400 }, code: "BAD_REQUEST" },
          });
        }
        if (Number(length) > limit) throw tooLarge();
        return;
      }
      const body = request.body;
      if (!requestParser || !body) return;
      const parse = requestParser;
      setRequestParser((original) => {
        let bytes = 0;
        // The native ReadableStream (Node's fetch) pairs with the native TransformStream only.
        const Transform =
          body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
        const counted = body.pipeThrough(
          new Transform({
            transform(chunk: Uint8Array, controller) {
              bytes += chunk.byteLength;
              if (bytes > limit) controller.error(tooLarge());
              else controller.enqueue(chunk);
            },
          }),
        );
        return parse(
          new fetchAPI.Request(original.url, {
            method: original.method,
            headers: original.headers,
            signal: original.signal,
            body: counted,
            duplex: "half",
          } as RequestInit),
        );
      });
    },
  };
}
