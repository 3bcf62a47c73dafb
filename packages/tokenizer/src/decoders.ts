// Decoders of tokenizer.json: each step maps the list of token strings to a new list (HF's
// `decode_chain`); the tokenizer joins the final list.
import { byteLevelToBytes } from './byte-level.js';
import { UnsupportedComponentError } from './errors.js';
import { escapeRegex, translateRegex } from './regex-translate.js';

type Json = Record<string, unknown>;

export type DecodeChain = (tokens: string[]) => string[];

/** UTF-8 decoding that replaces invalid sequences with U+FFFD and keeps a leading BOM. */
export const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

export function buildDecoder(json: unknown): DecodeChain | undefined {
  if (json === null || json === undefined) return undefined;
  const config = json as Json;
  const type = config.type;
  const component = `decoder ${String(type)}`;
  switch (type) {
    case 'ByteLevel': {
      // token -> its bytes (byte-level characters mapped back, or the token's own UTF-8 bytes).
      const cache = new Map<string, Uint8Array>();
      const encoder = new TextEncoder();
      return (tokens) => {
        let buffer = new Uint8Array(Math.max(64, tokens.length * 4));
        let length = 0;
        for (const token of tokens) {
          let bytes = cache.get(token);
          if (bytes === undefined) {
            const mapped = byteLevelToBytes(token);
            bytes = mapped ? Uint8Array.from(mapped) : encoder.encode(token);
            if (cache.size < 200_000) cache.set(token, bytes);
          }
          if (length + bytes.length > buffer.length) {
            const grown = new Uint8Array((length + bytes.length) * 2);
            grown.set(buffer.subarray(0, length));
            buffer = grown;
          }
          for (let i = 0; i < bytes.length; i++) buffer[length++] = bytes[i]!;
        }
        return [utf8Decoder.decode(buffer.subarray(0, length))];
      };
    }
    case 'ByteFallback':
      return (tokens) => {
        const out: string[] = [];
        let pending: number[] = [];
        const flush = () => {
          if (pending.length === 0) return;
          try {
            out.push(
              new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
                Uint8Array.from(pending),
              ),
            );
          } catch {
            out.push('\ufffd'.repeat(pending.length));
          }
          pending = [];
        };
        for (const token of tokens) {
          const match = BYTE_TOKEN.exec(token);
          if (match) pending.push(Number.parseInt(match[1]!, 16));
          else {
            flush();
            out.push(token);
          }
        }
        flush();
        return out;
      };
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content = String(config.content ?? ' ');
      const start = Number(config.start ?? 0);
      const stop = Number(config.stop ?? 0);
      return (tokens) =>
        tokens.map((token) => {
          const characters = [...token];
          let from = 0;
          while (from < start && characters[from] === content) from++;
          let to = characters.length;
          while (to > from && characters.length - to < stop && characters[to - 1] === content) to--;
          return characters.slice(from, to).join('');
        });
    }
    case 'Replace': {
      const pattern = config.pattern as { String?: string; Regex?: string } | undefined;
      let regex: RegExp;
      if (typeof pattern?.String === 'string')
        regex = new RegExp(escapeRegex(pattern.String), 'gu');
      else if (typeof pattern?.Regex === 'string')
        regex = new RegExp(translateRegex(pattern.Regex, component), 'gu');
      else throw new UnsupportedComponentError(component, 'pattern must be {String} or {Regex}');
      const content = String(config.content ?? '');
      return (tokens) => tokens.map((token) => token.replace(regex, () => content));
    }
    case 'Metaspace': {
      const replacement = String(config.replacement ?? '\u2581');
      let scheme = config.prepend_scheme as string | undefined;
      if (scheme === undefined) scheme = config.add_prefix_space === false ? 'never' : 'always';
      return (tokens) =>
        tokens.map((token, index) => {
          const text = token.replaceAll(replacement, ' ');
          return index === 0 && scheme !== 'never' && text.startsWith(' ') ? text.slice(1) : text;
        });
    }
    case 'BPEDecoder': {
      const suffix = String(config.suffix ?? '</w>');
      return (tokens) =>
        tokens.map((token, index) =>
          token.replaceAll(suffix, index === tokens.length - 1 ? '' : ' '),
        );
    }
    case 'Sequence': {
      const steps = ((config.decoders as unknown[]) ?? []).map((step) => buildDecoder(step)!);
      return (tokens) => {
        for (const step of steps) tokens = step(tokens);
        return tokens;
      };
    }
    default:
      throw new UnsupportedComponentError(
        `decoder ${JSON.stringify(type)}`,
        'supported: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, BPEDecoder, Sequence',
      );
  }
}
