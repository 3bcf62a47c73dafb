// Added tokens (special and not): found in the input before pre-tokenization, leftmost-longest,
// with the lstrip / rstrip / single_word / normalized flags of HF's AddedVocabulary.
import type { Normalize } from './normalizers.js';
import { escapeRegex, UNICODE_WHITESPACE, WORD } from './regex-translate.js';

export interface AddedToken {
  id: number;
  content: string;
  /** What the id decodes to: the content, normalized when `normalized` is set (as HF does). */
  text: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

/** A piece of input: either plain text (`id === -1`) or one added token. */
export interface Segment {
  text: string;
  id: number;
}

const ENDS_WITH_WORD = new RegExp(`[${WORD}]$`, 'u');
const STARTS_WITH_WORD = new RegExp(`^[${WORD}]`, 'u');
const TRAILING_SPACE = new RegExp(`[${UNICODE_WHITESPACE}]*$`, 'u');
const LEADING_SPACE = new RegExp(`^[${UNICODE_WHITESPACE}]*`, 'u');

/** Finds one set of added tokens (the raw or the normalized set) in a string. */
class TokenMatcher {
  private readonly pattern: RegExp | undefined;
  private readonly idByPattern = new Map<string, number>();

  constructor(
    entries: { pattern: string; id: number }[],
    private readonly flags: ReadonlyMap<number, AddedToken>,
  ) {
    for (const { pattern, id } of entries) {
      if (pattern.length > 0 && !this.idByPattern.has(pattern)) this.idByPattern.set(pattern, id);
    }
    // Longest alternatives first: at the leftmost position the regex then takes the longest.
    const patterns = [...this.idByPattern.keys()].sort((a, b) => b.length - a.length);
    this.pattern =
      patterns.length > 0 ? new RegExp(patterns.map(escapeRegex).join('|'), 'gu') : undefined;
  }

  /** Splits `text`, appending plain pieces (non-empty) and token pieces to `out`. */
  split(text: string, out: Segment[]): void {
    const pattern = this.pattern;
    if (pattern === undefined || text.length === 0) {
      if (text.length > 0) out.push({ text, id: -1 });
      return;
    }
    let offset = 0;
    pattern.lastIndex = 0;
    for (;;) {
      const match = pattern.exec(text);
      if (match === null) break;
      let start = match.index;
      let stop = start + match[0].length;
      const id = this.idByPattern.get(match[0])!;
      const token = this.flags.get(id)!;
      if (token.singleWord) {
        const startSpace = start === 0 || !ENDS_WITH_WORD.test(text.slice(0, start));
        const stopSpace = stop === text.length || !STARTS_WITH_WORD.test(text.slice(stop));
        if (!startSpace || !stopSpace) continue;
      }
      if (token.lstrip) {
        const before = text.slice(0, start);
        const spaces = TRAILING_SPACE.exec(before)![0].length;
        start = Math.max(start - spaces, offset);
      }
      if (token.rstrip) stop += LEADING_SPACE.exec(text.slice(stop))![0].length;
      if (offset < start) out.push({ text: text.slice(offset, start), id: -1 });
      out.push({ text: text.slice(start, stop), id });
      offset = stop;
    }
    if (offset < text.length) out.push({ text: text.slice(offset), id: -1 });
  }
}

/** An added token as tokenizer.json lists it; its `id` there is advisory (see AddedVocabulary). */
export type AddedTokenEntry = Omit<AddedToken, 'id' | 'text'>;

/**
 * All added tokens of a tokenizer and the two matchers (raw, normalized) built from them.
 * Ids are assigned as HF does when it loads the file: a token already in the model vocabulary
 * (or added before) keeps that id; a new one gets the model's vocabulary size, or one more than
 * the largest added id once that is beyond the model's vocabulary. Files HF saved agree with this.
 */
export class AddedVocabulary {
  /** Special tokens first, then the others, each in file order. */
  readonly tokens: readonly AddedToken[];
  private readonly raw: TokenMatcher;
  private readonly normalizedMatcher: TokenMatcher;
  private readonly normalize: Normalize | undefined;
  readonly byId = new Map<number, AddedToken>();
  readonly byContent = new Map<string, AddedToken>();

  constructor(
    entries: AddedTokenEntry[],
    modelVocab: ReadonlyMap<string, number>,
    normalize: Normalize | undefined,
  ) {
    this.normalize = normalize;
    const specials: AddedToken[] = [];
    const others: AddedToken[] = [];
    const specialContents = new Set<string>();
    for (const entry of entries) {
      if (entry.special && entry.content.length > 0) specialContents.add(entry.content);
    }
    let largest = -1;
    for (const entry of entries) {
      if (entry.content.length === 0) continue;
      let id = this.byContent.get(entry.content)?.id ?? modelVocab.get(entry.content);
      if (id === undefined) {
        const size = modelVocab.size;
        id = largest < 0 ? size : largest >= size || size === 0 ? largest + 1 : size;
      }
      largest = Math.max(largest, id);
      const text = entry.normalized && normalize ? normalize(entry.content) : entry.content;
      const token: AddedToken = { ...entry, id, text };
      this.byContent.set(token.content, token);
      this.byId.set(id, token);
      if (token.special) specials.push(token);
      else if (!specialContents.has(token.content)) others.push(token);
    }
    this.tokens = [...specials, ...others];
    this.raw = new TokenMatcher(
      this.tokens.filter((t) => !t.normalized).map((t) => ({ pattern: t.content, id: t.id })),
      this.byId,
    );
    this.normalizedMatcher = new TokenMatcher(
      this.tokens
        .filter((t) => t.normalized)
        .map((t) => ({ pattern: normalize ? normalize(t.content) : t.content, id: t.id })),
      this.byId,
    );
  }

  /**
   * Splits the input on raw added tokens, normalizes the remaining text pieces, then splits them
   * on normalized added tokens. Plain pieces in the result are normalized and non-empty.
   */
  extractAndNormalize(text: string): Segment[] {
    const first: Segment[] = [];
    this.raw.split(text, first);
    const out: Segment[] = [];
    for (const segment of first) {
      if (segment.id >= 0) out.push(segment);
      else {
        const normalized = this.normalize ? this.normalize(segment.text) : segment.text;
        this.normalizedMatcher.split(normalized, out);
      }
    }
    return out;
  }

  isSpecial(id: number): boolean {
    return this.byId.get(id)?.special === true;
  }
}
