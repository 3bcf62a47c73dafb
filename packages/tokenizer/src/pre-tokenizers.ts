// Pre-tokenizers of tokenizer.json: split a (normalized) piece of text into words for the model.
// Words stay in their raw form; when the chain ends in ByteLevel, `byteLevel` is set and the model
// maps each word's UTF-8 bytes to byte-level characters itself (without building that string).
import { UnsupportedComponentError } from './errors.js';
import { gpt2TokenEnd } from './gpt2-scanner.js';
import { HF_DIGIT, HF_PUNCTUATION } from './unicode-tables.js';
import {
  escapeRegex,
  LETTER,
  NUMBER,
  translateRegex,
  UNICODE_WHITESPACE,
  WHITESPACE,
  WORD,
} from './regex-translate.js';

type Json = Record<string, unknown>;

export type SplitBehavior =
  | 'Removed'
  | 'Isolated'
  | 'MergedWithPrevious'
  | 'MergedWithNext'
  | 'Contiguous';

export interface PreTokenizer {
  /** Appends the words of `text` to `out`; `atStart` is true when `text` begins the input. */
  split(text: string, out: string[], atStart: boolean): void;
  /** True when the words are to be mapped to byte-level characters before the model. */
  readonly byteLevel: boolean;
  /**
   * Set when this is exactly ByteLevel with its regex: the tokenizer then scans word boundaries
   * with `gpt2TokenEnd` and hands spans to the model, without making word strings.
   */
  readonly byteLevelScan?: { addPrefixSpace: boolean };
}

/** Appends the words of the GPT-2 pattern in `text` to `out`. */
function pushGpt2Words(text: string, out: string[]): void {
  for (let start = 0; start < text.length; ) {
    const end = gpt2TokenEnd(text, start);
    out.push(text.slice(start, end));
    start = end;
  }
}

/**
 * The GPT-2 split pattern with HF's (Oniguruma's) `\s`, `\p{L}` and `\p{N}`: the reference for
 * the hand-written scanner in gpt2-scanner.ts (tested to agree).
 */
export const GPT2_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?[${LETTER}]+| ?[${NUMBER}]+| ?[^${WHITESPACE}${LETTER}${NUMBER}]+|[${WHITESPACE}]+(?![^${WHITESPACE}])|[${WHITESPACE}]+`,
  'gu',
);

/**
 * Splits `text` at the matches of `pattern` as HF's `NormalizedString::split` does for each
 * delimiter behavior; empty pieces are dropped.
 */
export function splitWithBehavior(
  text: string,
  pattern: RegExp,
  behavior: SplitBehavior,
  invert: boolean,
  out: string[],
): void {
  // Pieces covering the whole text: [start, end, isMatch].
  const starts: number[] = [];
  const ends: number[] = [];
  const isMatch: boolean[] = [];
  let previous = 0;
  pattern.lastIndex = 0;
  for (;;) {
    const match = pattern.exec(text);
    if (match === null) break;
    const start = match.index;
    const end = start + match[0].length;
    if (end === start) {
      pattern.lastIndex += (text.codePointAt(pattern.lastIndex) ?? 0) > 0xffff ? 2 : 1;
      if (pattern.lastIndex > text.length) break;
    }
    if (previous !== start) {
      starts.push(previous);
      ends.push(start);
      isMatch.push(invert);
    }
    starts.push(start);
    ends.push(end);
    isMatch.push(!invert);
    previous = end;
  }
  if (previous !== text.length) {
    starts.push(previous);
    ends.push(text.length);
    isMatch.push(invert);
  }
  const pieces: [number, number][] = [];
  const count = starts.length;
  switch (behavior) {
    case 'Removed':
      for (let i = 0; i < count; i++) if (!isMatch[i]) pieces.push([starts[i]!, ends[i]!]);
      break;
    case 'Isolated':
      for (let i = 0; i < count; i++) pieces.push([starts[i]!, ends[i]!]);
      break;
    case 'MergedWithPrevious': {
      let previousMatch = false;
      for (let i = 0; i < count; i++) {
        const last = pieces[pieces.length - 1];
        if (isMatch[i] && !previousMatch && last) last[1] = ends[i]!;
        else pieces.push([starts[i]!, ends[i]!]);
        previousMatch = isMatch[i]!;
      }
      break;
    }
    case 'MergedWithNext': {
      let previousMatch = false;
      for (let i = count - 1; i >= 0; i--) {
        const last = pieces[pieces.length - 1];
        if (isMatch[i] && !previousMatch && last) last[0] = starts[i]!;
        else pieces.push([starts[i]!, ends[i]!]);
        previousMatch = isMatch[i]!;
      }
      pieces.reverse();
      break;
    }
    case 'Contiguous': {
      let previousMatch = false;
      for (let i = 0; i < count; i++) {
        const last = pieces[pieces.length - 1];
        if (isMatch[i] === previousMatch && last) last[1] = ends[i]!;
        else pieces.push([starts[i]!, ends[i]!]);
        previousMatch = isMatch[i]!;
      }
      break;
    }
  }
  for (const [start, end] of pieces) if (end > start) out.push(text.slice(start, end));
}

const BEHAVIORS = new Set([
  'Removed',
  'Isolated',
  'MergedWithPrevious',
  'MergedWithNext',
  'Contiguous',
]);

function behaviorOf(config: Json, component: string, fallback?: SplitBehavior): SplitBehavior {
  const value = config.behavior ?? fallback;
  if (typeof value !== 'string' || !BEHAVIORS.has(value)) {
    throw new UnsupportedComponentError(component, `behavior ${JSON.stringify(value)}`);
  }
  return value as SplitBehavior;
}

function regexPreTokenizer(pattern: RegExp, behavior: SplitBehavior, invert = false): PreTokenizer {
  return {
    byteLevel: false,
    split(text, out) {
      splitWithBehavior(text, pattern, behavior, invert, out);
    },
  };
}

function sequence(steps: PreTokenizer[]): PreTokenizer {
  const byteLevelIndex = steps.findIndex((step) => step.byteLevel);
  if (byteLevelIndex >= 0 && byteLevelIndex !== steps.length - 1) {
    throw new UnsupportedComponentError(
      'pre_tokenizer Sequence',
      'a ByteLevel pre-tokenizer is supported only as the last step',
    );
  }
  return {
    byteLevel: byteLevelIndex >= 0,
    split(text, out, atStart) {
      let pieces = [text];
      for (const step of steps) {
        const next: string[] = [];
        pieces.forEach((piece, index) => {
          step.split(piece, next, atStart && index === 0);
        });
        pieces = next;
      }
      for (const piece of pieces) out.push(piece);
    },
  };
}

/** Builds the pre-tokenizer for a tokenizer.json `pre_tokenizer` entry (null -> undefined). */
export function buildPreTokenizer(json: unknown): PreTokenizer | undefined {
  if (json === null || json === undefined) return undefined;
  const config = json as Json;
  const type = config.type;
  const component = `pre_tokenizer ${String(type)}`;
  switch (type) {
    case 'ByteLevel': {
      const addPrefixSpace = config.add_prefix_space === true;
      const useRegex = config.use_regex !== false;
      return {
        byteLevel: true,
        ...(useRegex ? { byteLevelScan: { addPrefixSpace } } : {}),
        split(text, out) {
          if (addPrefixSpace && !text.startsWith(' ')) text = ` ${text}`;
          if (useRegex) pushGpt2Words(text, out);
          else if (text.length > 0) out.push(text);
        },
      };
    }
    case 'Sequence': {
      const steps = ((config.pretokenizers as unknown[]) ?? []).map((step) => {
        const built = buildPreTokenizer(step);
        if (!built) throw new UnsupportedComponentError(component, 'null step');
        return built;
      });
      return sequence(steps);
    }
    case 'Split': {
      const pattern = config.pattern as { String?: string; Regex?: string } | undefined;
      let regex: RegExp;
      if (typeof pattern?.String === 'string') {
        regex = new RegExp(escapeRegex(pattern.String), 'gu');
        if (pattern.String.length === 0) regex = /(?!)/gu;
      } else if (typeof pattern?.Regex === 'string') {
        regex = new RegExp(translateRegex(pattern.Regex, component), 'gu');
      } else {
        throw new UnsupportedComponentError(component, 'pattern must be {String} or {Regex}');
      }
      return regexPreTokenizer(regex, behaviorOf(config, component), config.invert === true);
    }
    case 'Whitespace':
      return regexPreTokenizer(
        new RegExp(`[${WORD}]+|[^${WORD}${UNICODE_WHITESPACE}]+`, 'gu'),
        'Removed',
        true,
      );
    case 'WhitespaceSplit':
      return regexPreTokenizer(new RegExp(`[${UNICODE_WHITESPACE}]`, 'gu'), 'Removed');
    case 'CharDelimiterSplit': {
      const delimiter = config.delimiter;
      if (typeof delimiter !== 'string' || [...delimiter].length !== 1) {
        throw new UnsupportedComponentError(component, 'delimiter must be one character');
      }
      return regexPreTokenizer(new RegExp(escapeRegex(delimiter), 'gu'), 'Removed');
    }
    case 'BertPreTokenizer': {
      const whitespace = new RegExp(`[${UNICODE_WHITESPACE}]`, 'gu');
      const punctuation = new RegExp(`[${HF_PUNCTUATION}]`, 'gu');
      return sequence([
        regexPreTokenizer(whitespace, 'Removed'),
        regexPreTokenizer(punctuation, 'Isolated'),
      ]);
    }
    case 'Digits':
      return regexPreTokenizer(
        new RegExp(`[${HF_DIGIT}]`, 'gu'),
        config.individual_digits === true ? 'Isolated' : 'Contiguous',
      );
    case 'Punctuation':
      return regexPreTokenizer(
        new RegExp(`[${HF_PUNCTUATION}]`, 'gu'),
        behaviorOf(config, component, 'Isolated'),
      );
    case 'Metaspace': {
      const replacement = String(config.replacement ?? '\u2581');
      if ([...replacement].length !== 1) {
        throw new UnsupportedComponentError(component, 'replacement must be one character');
      }
      let scheme = config.prepend_scheme as string | undefined;
      if (scheme === undefined) scheme = config.add_prefix_space === false ? 'never' : 'always';
      if (scheme !== 'always' && scheme !== 'never' && scheme !== 'first') {
        throw new UnsupportedComponentError(component, `prepend_scheme ${JSON.stringify(scheme)}`);
      }
      const splitWords = config.split !== false;
      const splitter = new RegExp(escapeRegex(replacement), 'gu');
      return {
        byteLevel: false,
        split(text, out, atStart) {
          text = text.replaceAll(' ', replacement);
          const prepend = scheme === 'always' || (scheme === 'first' && atStart);
          if (prepend && !text.startsWith(replacement)) text = replacement + text;
          if (splitWords) splitWithBehavior(text, splitter, 'MergedWithNext', false, out);
          else if (text.length > 0) out.push(text);
        },
      };
    }
    default:
      throw new UnsupportedComponentError(
        `pre_tokenizer ${JSON.stringify(type)}`,
        'supported: ByteLevel, Sequence, Split, Whitespace, WhitespaceSplit, CharDelimiterSplit, BertPreTokenizer, Digits, Punctuation, Metaspace',
      );
  }
}
