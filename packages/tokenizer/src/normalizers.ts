// Normalizers of tokenizer.json: each becomes a function from string to string.
import { UnsupportedComponentError } from './errors.js';
import { escapeRegex, translateRegex } from './regex-translate.js';
import { HF_NORMALIZATION_INERT } from './unicode-tables.js';

export type Normalize = (text: string) => string;

type Json = Record<string, unknown>;

/**
 * Per-character lowercase as Rust's `char::to_lowercase` applies it: unlike
 * `String.prototype.toLowerCase`, capital sigma never becomes the final form.
 */
export function lowercaseCharacters(text: string): string {
  if (!text.includes('\u03a3')) return text.toLowerCase();
  return text
    .split('\u03a3')
    .map((part) => part.toLowerCase())
    .join('\u03c3');
}

const INERT = new RegExp(`[${HF_NORMALIZATION_INERT}]`, 'u');
const INERT_SPLIT = new RegExp(`([${HF_NORMALIZATION_INERT}])`, 'u');

/**
 * Unicode normalization as HF computes it. HF's tables are older than Node's ICU: characters
 * assigned since then are unassigned for HF, so they stay as they are and block reordering and
 * composition across them. Normalizing the stretches between them reproduces that exactly.
 */
export function normalizeLikeHf(text: string, form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD'): string {
  if (!INERT.test(text)) return text.normalize(form);
  return text
    .split(INERT_SPLIT)
    .map((part, index) => (index % 2 === 1 ? part : part.normalize(form)))
    .join('');
}

const COMBINING_MARK = /\p{M}/gu;

function patternOf(value: unknown, component: string): RegExp {
  const pattern = value as { String?: string; Regex?: string } | undefined;
  if (typeof pattern?.String === 'string') return new RegExp(escapeRegex(pattern.String), 'gu');
  if (typeof pattern?.Regex === 'string') {
    return new RegExp(translateRegex(pattern.Regex, component), 'gu');
  }
  throw new UnsupportedComponentError(component, 'pattern must be {String} or {Regex}');
}

/** Builds the normalizer function for a tokenizer.json `normalizer` entry (null -> undefined). */
export function buildNormalizer(json: unknown): Normalize | undefined {
  if (json === null || json === undefined) return undefined;
  const config = json as Json;
  const type = config.type;
  const component = `normalizer ${String(type)}`;
  switch (type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (text) => normalizeLikeHf(text, type);
    case 'Lowercase':
      return lowercaseCharacters;
    case 'Sequence': {
      const steps = ((config.normalizers as unknown[]) ?? []).map((step) => buildNormalizer(step));
      const defined = steps.filter((step): step is Normalize => step !== undefined);
      return (text) => {
        for (const step of defined) text = step(text);
        return text;
      };
    }
    case 'Strip': {
      const left = config.strip_left !== false;
      const right = config.strip_right !== false;
      return (text) => {
        if (left) text = text.replace(/^\p{White_Space}+/u, '');
        if (right) text = text.replace(/\p{White_Space}+$/u, '');
        return text;
      };
    }
    case 'StripAccents':
      // Marks newer than HF's tables are not marks for HF.
      return (text) => text.replace(COMBINING_MARK, (mark) => (INERT.test(mark) ? mark : ''));
    case 'Prepend': {
      const prefix = String(config.prepend ?? '');
      return (text) => (text.length > 0 ? prefix + text : text);
    }
    case 'Replace': {
      const pattern = patternOf(config.pattern, component);
      const content = String(config.content ?? '');
      return (text) => text.replace(pattern, () => content);
    }
    default:
      throw new UnsupportedComponentError(
        `normalizer ${JSON.stringify(type)}`,
        'supported: NFC, NFD, NFKC, NFKD, Lowercase, Sequence, Strip, StripAccents, Prepend, Replace',
      );
  }
}
