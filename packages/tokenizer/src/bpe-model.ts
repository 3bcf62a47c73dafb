// The BPE model of tokenizer.json: vocabulary, ranked merges (pair -> rank in a typed-array hash
// table, rank -> merged id in an Int32Array) and a bounded word cache. Byte-level words are
// encoded straight from their UTF-8 bytes, without building the byte-level string.
import { BYTE_TO_CHAR, toByteLevel } from './byte-level.js';
import { TokenizerError, UnsupportedComponentError } from './errors.js';
import type { IdBuffer } from './id-buffer.js';
import { PairTable } from './pair-table.js';

type Json = Record<string, unknown>;

const CACHE_CAPACITY = 50_000;
const encoder = new TextEncoder();

export class BpeModel {
  readonly vocab: Map<string, number>;
  readonly idToToken: (string | undefined)[] = [];
  /** Merges in rank order as [left, right] token strings. */
  readonly merges: [string, string][];
  readonly unkToken: string | undefined;
  readonly continuingSubwordPrefix: string | undefined;
  readonly endOfWordSuffix: string | undefined;
  readonly fuseUnk: boolean;
  readonly byteFallback: boolean;
  readonly ignoreMerges: boolean;
  private readonly ranks: PairTable;
  private readonly mergedIds: Int32Array;
  /** byte -> id of its byte-level character, -1 when absent from the vocabulary. */
  private readonly byteToId = new Int32Array(256);
  private readonly byteLevelFastPath: boolean;
  private readonly cache = new Map<string, Int32Array>();
  private readonly byteCache = new Map<string, Int32Array>();
  private scratchBytes = new Uint8Array(256);
  private symbols = new Int32Array(256);

  constructor(config: Json) {
    if (config.dropout !== null && config.dropout !== undefined && config.dropout !== 0) {
      throw new UnsupportedComponentError(
        'model BPE',
        `dropout ${String(config.dropout)} (only null)`,
      );
    }
    const vocabJson = config.vocab as Record<string, number> | undefined;
    if (vocabJson === null || typeof vocabJson !== 'object') {
      throw new TokenizerError('tokenizer.json: model.vocab must be an object of token -> id');
    }
    this.vocab = new Map(Object.entries(vocabJson));
    for (const [token, id] of this.vocab) {
      if (!Number.isInteger(id) || id < 0) {
        throw new TokenizerError(
          `tokenizer.json: model.vocab[${JSON.stringify(token)}] is not a valid id`,
        );
      }
      this.idToToken[id] = token;
    }
    this.unkToken = typeof config.unk_token === 'string' ? config.unk_token : undefined;
    this.continuingSubwordPrefix =
      typeof config.continuing_subword_prefix === 'string'
        ? config.continuing_subword_prefix
        : undefined;
    this.endOfWordSuffix =
      typeof config.end_of_word_suffix === 'string' ? config.end_of_word_suffix : undefined;
    this.fuseUnk = config.fuse_unk === true;
    this.byteFallback = config.byte_fallback === true;
    this.ignoreMerges = config.ignore_merges === true;

    const mergesJson = (config.merges as unknown[]) ?? [];
    this.merges = mergesJson.map((entry, index) => {
      if (typeof entry === 'string') {
        const parts = entry.split(' ');
        if (parts.length !== 2) {
          throw new TokenizerError(`tokenizer.json: model.merges[${index}] must be "left right"`);
        }
        return parts as [string, string];
      }
      if (Array.isArray(entry) && entry.length === 2 && entry.every((p) => typeof p === 'string')) {
        return entry as [string, string];
      }
      throw new TokenizerError(`tokenizer.json: model.merges[${index}] must be a pair of strings`);
    });
    this.ranks = new PairTable(this.merges.length);
    this.mergedIds = new Int32Array(this.merges.length);
    const prefixLength = this.continuingSubwordPrefix?.length ?? 0;
    this.merges.forEach(([left, right], rank) => {
      const leftId = this.vocab.get(left);
      const rightId = this.vocab.get(right);
      const merged = left + right.slice(prefixLength);
      const mergedId = this.vocab.get(merged);
      if (leftId === undefined || rightId === undefined || mergedId === undefined) {
        const missing = leftId === undefined ? left : rightId === undefined ? right : merged;
        throw new TokenizerError(
          `tokenizer.json: model.merges[${rank}] uses ${JSON.stringify(missing)}, which is not in model.vocab`,
        );
      }
      this.ranks.set(leftId, rightId, rank);
      this.mergedIds[rank] = mergedId;
    });
    for (let byte = 0; byte < 256; byte++)
      this.byteToId[byte] = this.vocab.get(BYTE_TO_CHAR[byte]!) ?? -1;
    this.byteLevelFastPath =
      this.continuingSubwordPrefix === undefined &&
      this.endOfWordSuffix === undefined &&
      this.byteToId.every((id) => id >= 0);
  }

  get size(): number {
    return this.vocab.size;
  }

  /** Encodes one pre-tokenized word given in raw form, byte-level mapping it first. */
  encodeByteLevelWord(word: string, out: IdBuffer): void {
    const cached = this.byteCache.get(word);
    if (cached !== undefined) {
      out.pushAll(cached);
      return;
    }
    let ids: Int32Array;
    if (!this.byteLevelFastPath || this.ignoreMerges) {
      ids = this.tokenizeChars(toByteLevel(word));
    } else {
      let length = 0;
      let bytes = this.scratchBytes;
      let ascii = true;
      for (let i = 0; i < word.length; i++) {
        if (word.charCodeAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        if (bytes.length < word.length) bytes = this.scratchBytes = new Uint8Array(word.length * 2);
        for (let i = 0; i < word.length; i++) bytes[i] = word.charCodeAt(i);
        length = word.length;
      } else {
        if (bytes.length < word.length * 3)
          bytes = this.scratchBytes = new Uint8Array(word.length * 3);
        length = encoder.encodeInto(word, bytes).written;
      }
      if (this.symbols.length < length) this.symbols = new Int32Array(length * 2);
      const symbols = this.symbols;
      const byteToId = this.byteToId;
      for (let i = 0; i < length; i++) symbols[i] = byteToId[bytes[i]!]!;
      ids = symbols.slice(0, this.mergeSymbols(symbols, length));
    }
    if (this.byteCache.size >= CACHE_CAPACITY) this.byteCache.clear();
    this.byteCache.set(word, ids);
    out.pushAll(ids);
  }

  /** Encodes one word already in model characters (e.g. after Metaspace). */
  encodeWord(word: string, out: IdBuffer): void {
    const cached = this.cache.get(word);
    if (cached !== undefined) {
      out.pushAll(cached);
      return;
    }
    const ids = this.tokenizeChars(word);
    if (this.cache.size >= CACHE_CAPACITY) this.cache.clear();
    this.cache.set(word, ids);
    out.pushAll(ids);
  }

  /** HF's BPE `tokenize` on a word of model characters: initial symbols, unk/byte fallback, merges. */
  private tokenizeChars(word: string): Int32Array {
    if (word.length === 0) return new Int32Array(0);
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) return Int32Array.of(id);
    }
    const symbols: number[] = [];
    let unkId = -1;
    const characters = [...word];
    const unkTokenId = this.unkToken === undefined ? undefined : this.vocab.get(this.unkToken);
    characters.forEach((character, index) => {
      let piece = character;
      if (index > 0 && this.continuingSubwordPrefix !== undefined)
        piece = this.continuingSubwordPrefix + piece;
      if (index === characters.length - 1 && this.endOfWordSuffix !== undefined)
        piece += this.endOfWordSuffix;
      const id = this.vocab.get(piece);
      if (id !== undefined) {
        if (unkId >= 0) {
          symbols.push(unkId);
          unkId = -1;
        }
        symbols.push(id);
        return;
      }
      if (this.byteFallback) {
        const fallback = [...encoder.encode(piece)].map((byte) =>
          this.vocab.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`),
        );
        if (fallback.every((id) => id !== undefined)) {
          if (unkId >= 0) {
            symbols.push(unkId);
            unkId = -1;
          }
          for (const id of fallback) symbols.push(id!);
          return;
        }
      }
      if (unkTokenId === undefined) {
        throw new TokenizerError(
          `cannot encode ${JSON.stringify(character)}: not in the vocabulary and the model has no unk_token`,
        );
      }
      if (unkId >= 0 && !this.fuseUnk) symbols.push(unkId);
      unkId = unkTokenId;
    });
    if (unkId >= 0) symbols.push(unkId);
    const array = Int32Array.from(symbols);
    return array.slice(0, this.mergeSymbols(array, array.length));
  }

  /**
   * Applies merges in place: repeatedly the lowest-ranked adjacent pair, leftmost first (HF's
   * order). All non-overlapping occurrences of that pair merge in one left-to-right pass, which
   * is the same result since a merge never recreates its own pair. Returns the new length.
   */
  mergeSymbols(symbols: Int32Array, length: number): number {
    const ranks = this.ranks;
    const mergedIds = this.mergedIds;
    while (length > 1) {
      let best = 0x7fffffff;
      for (let i = 0; i < length - 1; i++) {
        const rank = ranks.get(symbols[i]!, symbols[i + 1]!);
        if (rank >= 0 && rank < best) best = rank;
      }
      if (best === 0x7fffffff) break;
      const merged = mergedIds[best]!;
      let write = 0;
      let read = 0;
      while (read < length) {
        if (read < length - 1 && ranks.get(symbols[read]!, symbols[read + 1]!) === best) {
          symbols[write++] = merged;
          read += 2;
        } else {
          symbols[write++] = symbols[read++]!;
        }
      }
      length = write;
    }
    return length;
  }
}
