// searchMessages' rules (docs/search.md): what a search text may be, and the query its highlights use.
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { badUserInput } from "../errors.ts";
import { parseSearchQuery } from "./search-repository.ts";

/** Characters of a search text. Web-search syntax needs few; a bound keeps the parse and plan small. */
export const MAX_QUERY_LENGTH = 500;

export interface PreparedSearch {
  /** The tsquery the search runs, as text. */
  tsquery: string;
  /** A tsquery matching any word the search looks for (not the excluded ones): for highlights. */
  anyWord: string;
  /**
   * The adjacent word pairs every match must hold, as a tsquery over mail_search_pairs() (`'invoice
   * payment'`), or null when the query requires no phrase (docs/search.md, "Phrases").
   */
  pairs: string | null;
}

/**
 * The search text as a tsquery, or BAD_USER_INPUT naming `query`: empty, too long, holding NUL,
 * without a word, or only excluding words (`-word` alone would match nearly every message).
 */
export async function prepareSearch(db: Db, scope: TenantScope, text: string): Promise<PreparedSearch> {
  const trimmed = text.trim();
  if (trimmed === "") throw badUserInput("query must not be empty.", "query");
  if (trimmed.length > MAX_QUERY_LENGTH)
    throw badUserInput(`query must be at most ${MAX_QUERY_LENGTH} characters.`, "query");
  if (trimmed.includes("\u0000")) throw badUserInput("query must not contain NUL characters.", "query");
  const parsed = await parseSearchQuery(db, scope, trimmed);
  if (parsed.empty) throw badUserInput("query has no words to search for.", "query");
  if (parsed.onlyExcludes)
    throw badUserInput("query must contain a word to find, not only words to exclude.", "query");
  const words = wantedLexemes(parsed.tsquery);
  if (words.length === 0) throw badUserInput("query has no words to search for.", "query");
  const pairs = requiredPairs(parsed.tsquery).map(quoteLexeme);
  return {
    tsquery: parsed.tsquery,
    anyWord: words.flatMap(writtenForms).map(quoteLexeme).join(" | "),
    pairs: pairs.length > 0 ? pairs.join(" & ") : null,
  };
}

/**
 * The forms a folded word takes in a highlight's source text. ts_headline parses the text as it
 * stands and lower-cases only ASCII on a database with locale C (embedded), so "Übermorgen" is the
 * lexeme übermorgen only once folded: the query for highlights carries the word as folded, with its
 * first letter and with all its letters in upper case (non-ASCII letters only: ASCII is lowered by
 * the parser anyway). Mixed-case non-ASCII words (rare) are found but not marked.
 */
export function writtenForms(word: string): string[] {
  const upperNonAscii = (text: string) =>
    [...text].map((c) => (c.charCodeAt(0) > 0x7f ? c.toUpperCase() : c)).join("");
  const [first = "", ...rest] = [...word];
  return [...new Set([word, upperNonAscii(first) + rest.join(""), upperNonAscii(word)])];
}

const quoteLexeme = (lexeme: string) => `'${lexeme.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;

/**
 * The quoted lexeme starting at `start` (a single quote) of a tsquery's text, with '' and backslash
 * escapes as PostgreSQL writes them, and the index of its closing quote.
 */
function readLexeme(tsquery: string, start: number): [lexeme: string, end: number] {
  let lexeme = "";
  let i = start + 1;
  for (; i < tsquery.length; i++) {
    const d = tsquery[i] as string;
    if (d === "\\" && i + 1 < tsquery.length) lexeme += tsquery[++i];
    else if (d === "'" && tsquery[i + 1] === "'") {
      lexeme += "'";
      i++;
    } else if (d === "'") break;
    else lexeme += d;
  }
  return [lexeme, i];
}

/**
 * The lexemes of a tsquery's text that are looked for, not excluded: `'a' & !'b' & !( 'c' <-> 'd' )`
 * gives [a]. Lexemes are single-quoted, with '' and backslash escapes, as PostgreSQL writes them.
 */
export function wantedLexemes(tsquery: string): string[] {
  const wanted = new Set<string>();
  const negated: boolean[] = [false];
  let not = false;
  for (let i = 0; i < tsquery.length; i++) {
    const c = tsquery[i];
    if (c === "!") not = true;
    else if (c === "(") {
      negated.push(not || (negated.at(-1) as boolean));
      not = false;
    } else if (c === ")") negated.pop();
    else if (c === "'") {
      const [lexeme, end] = readLexeme(tsquery, i);
      i = end;
      if (!(not || negated.at(-1))) wanted.add(lexeme);
      not = false;
    }
  }
  return [...wanted];
}

/**
 * Bytes of the longest pair mail_search_pairs() indexes (db/migrations/…_search_phrases.ts): a pair
 * of two words and the space between them. Longer pairs are neither indexed nor asked for.
 */
export const MAX_PAIR_BYTES = 47;

type Token = { lexeme: string } | { op: string };

/** A tsquery's text as lexemes and operators (`&`, `|`, `!`, `(`, `)`, `<->`, `<N>`). */
function tokens(tsquery: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tsquery.length; i++) {
    const c = tsquery[i] as string;
    if (c === " ") continue;
    if (c === "'") {
      const [lexeme, end] = readLexeme(tsquery, i);
      i = end;
      // A weight or prefix mark (`'word':*`) makes it more than a plain lexeme.
      if (tsquery[i + 1] === ":") {
        out.push({ op: "?" });
        while (i + 1 < tsquery.length && tsquery[i + 1] !== " ") i++;
      } else out.push({ lexeme });
    } else if (c === "<") {
      const end = tsquery.indexOf(">", i);
      out.push({ op: tsquery.slice(i, end + 1) });
      i = end;
    } else out.push({ op: c });
  }
  return out;
}

/**
 * The adjacent word pairs every match of a tsquery must hold: those of each phrase (`'a' <-> 'b' <->
 * 'c'` gives "a b", "b c") that is a term of the query's top-level AND. A query with a top-level OR,
 * or whose phrases are negated or nested, requires none (its phrases are still checked exactly).
 */
export function requiredPairs(tsquery: string): string[] {
  const all = tokens(tsquery);
  let depth = 0;
  const terms: Token[][] = [[]];
  for (const token of all) {
    if ("op" in token && token.op === "(") depth++;
    if ("op" in token && token.op === ")") depth--;
    if (depth === 0 && "op" in token && token.op === "|") return [];
    if (depth === 0 && "op" in token && token.op === "&") terms.push([]);
    else terms.at(-1)?.push(token);
  }
  const pairs = new Set<string>();
  for (const term of terms) {
    // A phrase term is lexeme (<-> lexeme)+ and nothing else.
    if (term.length < 3 || term.length % 2 === 0) continue;
    const phrase = term.every((token, index) =>
      index % 2 === 0 ? "lexeme" in token : "op" in token && token.op === "<->",
    );
    if (!phrase) continue;
    for (let index = 0; index + 2 < term.length; index += 2) {
      const pair = `${(term[index] as { lexeme: string }).lexeme} ${(term[index + 2] as { lexeme: string }).lexeme}`;
      if (Buffer.byteLength(pair) <= MAX_PAIR_BYTES) pairs.add(pair);
    }
  }
  return [...pairs];
}
