// The new part of a reply — what its author wrote, without the quoted history and the signature —
// found by maintained libraries rather than our own rules: email-reply-parser (Crisp) for text, which
// knows the quote headers of the common clients in many languages ("On … wrote:", Outlook's
// "-----Original Message-----" and "From: … Sent: …", Apple Mail's "On … at …, … wrote:"), and planer
// (a port of Mailgun's talon) for HTML, which removes the quote containers of Gmail, Outlook, Apple
// Mail, Thunderbird and Yahoo; planer needs a DOM, which jsdom provides (docs/mail.md, "Reading").
import EmailReplyParser from "email-reply-parser";
import { JSDOM } from "jsdom";
import { extractFromHtml } from "planer";

/**
 * Bodies larger than this are returned whole: the libraries' work grows with the size (HTML is parsed
 * into a DOM), and a reply an agent needs the new part of is never that long.
 */
export const MAX_EXTRACTED_BYTES = 512 * 1024;

const textParser = new EmailReplyParser();
/** One DOM for the process: planer makes a document of its own from it for every message. */
let dom: Document | undefined;

/** The text an author wrote in this message, quoted history and signature removed. */
export function extractedText(text: string): string {
  if (Buffer.byteLength(text) > MAX_EXTRACTED_BYTES) return text;
  const reply = textParser.parseReply(text).trim();
  // A message that is nothing but a quote (a bare forward) keeps its text rather than become empty.
  return reply === "" ? text : reply;
}

/** The HTML an author wrote in this message, quoted history removed, as a fragment (its body). */
export function extractedHtml(html: string): string {
  if (Buffer.byteLength(html) > MAX_EXTRACTED_BYTES) return html;
  dom ??= new JSDOM("<!doctype html><html><body></body></html>").window.document;
  const extracted = extractFromHtml(html, dom);
  const body = /^<html><body>([\s\S]*)<\/body><\/html>$/.exec(extracted)?.[1] ?? extracted;
  // Nothing of the author's left (a bottom-posted reply, cut at the quote): the whole HTML instead.
  const container = dom.createElement("div");
  container.innerHTML = body;
  return container.textContent?.trim() ? body : html;
}
