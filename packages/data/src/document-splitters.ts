// Pure splitters from a stream of lines or text into documents. Each keeps every character, so
// the documents concatenated give back the input (except `splitOnSeparator`, which drops the
// separators themselves).

/**
 * A wikitext top-level heading: ` = Title = ` (one '=' each side). Section headings such as
 * ` = = History = = ` have '=' right inside the outer pair and do not match.
 */
export function isWikitextTitle(line: string): boolean {
  const trimmed = line.trim();
  return /^= [^=](?:.*[^=])? =$/.test(trimmed);
}

/**
 * Splits wikitext lines into articles. An article starts at its top-level title line and runs to
 * the next one (the blank lines before a title end the previous article); lines before the first
 * title are prepended to the first article.
 */
export async function* wikitextArticles(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let current: string[] = [];
  let hasTitle = false;
  for await (const line of lines) {
    if (isWikitextTitle(line) && hasTitle) {
      yield current.join('');
      current = [];
    }
    if (isWikitextTitle(line)) hasTitle = true;
    current.push(line);
  }
  if (current.length > 0) yield current.join('');
}

/**
 * Groups blank-line-separated paragraphs (e.g. the speeches of a play) into documents of at least
 * `linesPerDocument` lines: a document ends at the first blank line after it has that many lines.
 * The last document takes what is left.
 */
export async function* groupParagraphs(
  lines: AsyncIterable<string>,
  linesPerDocument: number,
): AsyncGenerator<string> {
  let current: string[] = [];
  for await (const line of lines) {
    current.push(line);
    if (current.length >= linesPerDocument && line.trim() === '') {
      yield current.join('');
      current = [];
    }
  }
  if (current.length > 0) yield current.join('');
}

/** Splits a text stream at every occurrence of `separator` (dropped); empty pieces are skipped. */
export async function* splitOnSeparator(
  chunks: AsyncIterable<string>,
  separator: string,
): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of chunks) {
    // Only the tail of the carry can hold the start of a separator not yet found.
    let searchFrom = Math.max(0, carry.length - separator.length + 1);
    carry += chunk;
    let start = 0;
    for (;;) {
      const at = carry.indexOf(separator, Math.max(start, searchFrom));
      if (at < 0) break;
      const piece = carry.slice(start, at);
      if (piece) yield piece;
      start = at + separator.length;
      searchFrom = start;
    }
    carry = carry.slice(start);
  }
  if (carry) yield carry;
}
