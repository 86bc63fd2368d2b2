// planer ships no types: the two functions Mailroom calls (src/mail/reply.ts).
declare module "planer" {
  /** The reply's own text: quoted history removed from a plain-text message. */
  export function extractFromPlain(body: string): string;
  /** The reply's own HTML, as a serialised document; `document` provides the DOM to parse with. */
  export function extractFromHtml(body: string, document: Document): string;
}
