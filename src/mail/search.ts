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
  return { tsquery: parsed.tsquery, anyWord: words.flatMap(writtenForms).map(quoteLexeme).join(" | ") };
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
      let lexeme = "";
      for (i++; i < tsquery.length; i++) {
        const d = tsquery[i] as string;
        if (d === "\\" && i + 1 < tsquery.length) lexeme += tsquery[++i];
        else if (d === "'" && tsquery[i + 1] === "'") {
          lexeme += "'";
          i++;
        } else if (d === "'") break;
        else lexeme += d;
      }
      if (!(not || negated.at(-1))) wanted.add(lexeme);
      not = false;
    }
  }
  return [...wanted];
}
