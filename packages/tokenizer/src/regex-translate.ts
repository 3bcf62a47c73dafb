// Translates the Oniguruma/Rust-regex patterns found in tokenizer.json files into JavaScript
// RegExp source with the `u` flag, keeping Hugging Face's character classes: `\s` is HF's
// whitespace (U+0085 included, U+FEFF excluded — unlike JavaScript's `\s`), and `\p{L}`, `\p{N}`
// use HF's (older) Unicode tables rather than Node's. Constructs JavaScript cannot express throw,
// naming `component`.
import { TokenizerError, UnsupportedComponentError } from './errors.js';
import { HF_LETTER, HF_NUMBER, HF_WHITESPACE, HF_WORD } from './unicode-tables.js';

/** HF's whitespace class (Oniguruma `\s`), as a class body. */
export const WHITESPACE = HF_WHITESPACE;
/** HF's letter class (Oniguruma `\p{L}`), as a class body. */
export const LETTER = HF_LETTER;
/** HF's number class (Oniguruma `\p{N}`), as a class body. */
export const NUMBER = HF_NUMBER;
/** Unicode White_Space: Rust's `char::is_whitespace` and the `regex` crate's `\s`. */
export const UNICODE_WHITESPACE = '\\p{White_Space}';
const HF_CLASSES: Record<string, string> = {
  L: HF_LETTER,
  Letter: HF_LETTER,
  N: HF_NUMBER,
  Number: HF_NUMBER,
};
/** Unicode word characters as the Rust `regex` crate defines `\w` (Oniguruma's is HF_WORD). */
export const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
const DIGIT = '\\p{Nd}';

const SYNTAX_CHARACTERS = new Set('^$\\.*+?()[]{}|/'.split(''));

function expandCaseInsensitive(char: string): string {
  // Only ASCII letters are expanded; other characters match as written.
  if (!/[A-Za-z]/.test(char)) return char;
  const lower = char.toLowerCase();
  const upper = char.toUpperCase();
  if (lower === upper || lower.length !== 1 || upper.length !== 1) return char;
  return `[${lower}${upper}]`;
}

/** Returns JavaScript RegExp source (for the `u` flag) equivalent to an Oniguruma pattern. */
export function translateRegex(pattern: string, component: string): string {
  let out = '';
  let inClass = false;
  let classStart = false;
  // Stack of open groups; true when the group is a case-insensitive `(?i:` group.
  const groups: boolean[] = [];
  const caseInsensitive = (): boolean => groups.includes(true);
  // Per open group: whether a quantifier occurs inside it. Repeating such a group without bound
  // (`(a+)+`, `(?:\s*x?)*`) can backtrack exponentially on a string that almost matches, which
  // would hang encoding; JavaScript has no time limit for a match, so it is refused at load.
  const repeatsInside: boolean[] = [];
  let closedGroupRepeats = false;
  let quantifierAt = 0;
  const checkRepeatedGroup = (quantifier: string): void => {
    if (!closedGroupRepeats) return;
    throw new TokenizerError(
      `${component}: the regex /${pattern}/ repeats a group that itself contains a quantifier ` +
        `(a nested quantifier, ')${quantifier}' at offset ${quantifierAt}), which can backtrack catastrophically and hang; ` +
        'rewrite it so that no repeated group contains a repetition',
    );
  };
  const fail = (what: string): never => {
    throw new UnsupportedComponentError(component, `regex construct ${what} in /${pattern}/`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) fail('trailing backslash');
      i++;
      switch (next) {
        case 's':
          out += inClass ? WHITESPACE : `[${WHITESPACE}]`;
          break;
        case 'w':
          out += inClass ? HF_WORD : `[${HF_WORD}]`;
          break;
        case 'd':
          out += inClass ? DIGIT : `[${DIGIT}]`;
          break;
        case 'S':
          if (inClass) fail('\\S inside a character class');
          out += `[^${WHITESPACE}]`;
          break;
        case 'W':
          if (inClass) fail('\\W inside a character class');
          out += `[^${HF_WORD}]`;
          break;
        case 'D':
          if (inClass) fail('\\D inside a character class');
          out += `[^${DIGIT}]`;
          break;
        case 'p':
        case 'P': {
          const close = pattern.indexOf('}', i);
          if (pattern[i + 1] !== '{' || close < 0) fail(`\\${next} without {name}`);
          const name = pattern.slice(i + 2, close);
          if (!/^\^?[A-Za-z_]+$/.test(name)) fail(`\\${next}{${name}}`);
          const negated = (next === 'P') !== name.startsWith('^');
          const bare = name.replace(/^\^/, '');
          const table = HF_CLASSES[bare];
          if (table !== undefined) {
            if (negated && inClass) fail(`negated \\p{${bare}} inside a character class`);
            out += inClass ? table : `[${negated ? '^' : ''}${table}]`;
          } else {
            out += `\\${negated ? 'P' : 'p'}{${bare}}`;
          }
          i = close;
          break;
        }
        case 'r':
        case 'n':
        case 't':
        case 'f':
        case 'v':
        case 'b':
        case 'B':
        case '0':
          out += `\\${next}`;
          break;
        case 'x':
        case 'u':
          out += `\\${next}`;
          break;
        case 'A':
          out += '^';
          break;
        case 'z':
          out += '$';
          break;
        default:
          if (/[A-Za-z0-9]/.test(next!)) fail(`\\${next}`);
          if (SYNTAX_CHARACTERS.has(next!) || (inClass && next === '-')) out += `\\${next}`;
          else out += next;
      }
      classStart = false;
      continue;
    }
    if (inClass) {
      if (char === ']' && !classStart) inClass = false;
      if (char === '[' && !classStart) fail('nested character class');
      classStart = classStart && char === '^';
      out += char;
      continue;
    }
    switch (char) {
      case '[':
        inClass = true;
        classStart = true;
        out += char;
        break;
      case '(':
        repeatsInside.push(false);
        if (pattern[i + 1] === '?') {
          const rest = pattern.slice(i + 2);
          if (rest.startsWith('i:')) {
            groups.push(true);
            out += '(?:';
            i += 3;
          } else if (rest.startsWith(':') || rest.startsWith('=') || rest.startsWith('!')) {
            groups.push(false);
            out += `(?${rest[0]}`;
            i += 2;
          } else if (rest.startsWith('<=') || rest.startsWith('<!')) {
            groups.push(false);
            out += `(?${rest.slice(0, 2)}`;
            i += 3;
          } else {
            fail(`(?${rest.slice(0, 2)}`);
          }
        } else {
          groups.push(false);
          out += '(?:';
        }
        break;
      case ')':
        groups.pop();
        closedGroupRepeats = repeatsInside.pop() ?? false;
        out += char;
        if (closedGroupRepeats) {
          const next = pattern[i + 1];
          quantifierAt = i + 1;
          const bound = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i + 1));
          if (next === '+' || next === '*') checkRepeatedGroup(next);
          if (bound && bound[2] !== undefined && (bound[3] === '' || Number(bound[3]) > 1)) {
            checkRepeatedGroup(bound[0]);
          }
        }
        continue;
      case '+':
      case '*':
      case '?':
      case '{':
      case '}':
        if (char === '}' && pattern[i + 1] === '+') fail(`possessive quantifier ${char}+`);
        if (char !== '{' && char !== '}' && pattern[i + 1] === '+') {
          fail(`possessive quantifier ${char}+`);
        }
        repeatsInside.fill(true);
        out += char;
        break;
      default:
        out += caseInsensitive() ? expandCaseInsensitive(char) : char;
    }
  }
  if (inClass) fail('unterminated character class');
  return out;
}

/** Escapes a literal string for use inside a RegExp. */
export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
