// The BPE model of tokenizer.json: vocabulary, ranked merges (pair -> rank in a typed-array hash
// table, rank -> merged id in an Int32Array) and a bounded word cache. Byte-level words are
// encoded straight from their UTF-8 bytes, without building the byte-level string.
import { BYTE_TO_CHAR, toByteLevel } from './byte-level.js';
import { TokenizerError, UnsupportedComponentError } from './errors.js';
import type { IdBuffer } from './id-buffer.js';
import { PairTable } from './pair-table.js';
import { MAX_CACHED_WORD, WordCache, hashSpan } from './word-cache.js';

type Json = Record<string, unknown>;

const CACHE_CAPACITY = 50_000;
/** Words with more symbols than this merge through the heap (O(n log n)). */
const LONG_WORD = 96;
/** Heap keys are rank * POSITION_BASE + position. */
const POSITION_BASE = 2 ** 26;

/** A binary min-heap of numbers. */
class MinHeap {
  private items: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.items = new Float64Array(Math.max(16, capacity));
  }

  push(value: number): void {
    if (this.size === this.items.length) {
      const grown = new Float64Array(this.items.length * 2);
      grown.set(this.items);
      this.items = grown;
    }
    const items = this.items;
    let index = this.size++;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (items[parent]! <= value) break;
      items[index] = items[parent]!;
      index = parent;
    }
    items[index] = value;
  }

  pop(): number {
    const items = this.items;
    const top = items[0]!;
    const last = items[--this.size]!;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= this.size) break;
      const right = left + 1;
      const child = right < this.size && items[right]! < items[left]! ? right : left;
      if (items[child]! >= last) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = last;
    return top;
  }
}
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
  private readonly spanCache = new WordCache();
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
    this.encodeByteLevelSpan(word, 0, word.length, out);
  }

  /**
   * Encodes the word `text[start, end)` (raw, not byte-level mapped): a cache hit copies ids
   * without allocating; a miss maps its UTF-8 bytes to byte-token ids and merges them.
   */
  encodeByteLevelSpan(text: string, start: number, end: number, out: IdBuffer): void {
    const cacheable = end - start <= MAX_CACHED_WORD;
    let hash = 0;
    if (cacheable) {
      hash = hashSpan(text, start, end);
      const entry = this.spanCache.find(text, start, end, hash);
      if (entry >= 0) {
        const count = this.spanCache.idCount(entry);
        if (out.length + count > out.data.length) out.reserve(count);
        out.length = this.spanCache.copyIds(entry, out.data, out.length);
        return;
      }
    }
    let ids: Int32Array;
    let count: number;
    if (!this.byteLevelFastPath || this.ignoreMerges) {
      ids = this.tokenizeChars(toByteLevel(text.slice(start, end)));
      count = ids.length;
    } else {
      const length = this.utf8Symbols(text, start, end);
      ids = this.symbols;
      count =
        length > LONG_WORD ? this.mergeSymbolsLong(ids, length) : this.mergeSymbols(ids, length);
    }
    if (cacheable) this.spanCache.insert(text, start, end, hash, ids, count);
    if (out.length + count > out.data.length) out.reserve(count);
    const data = out.data;
    let offset = out.length;
    for (let i = 0; i < count; i++) data[offset++] = ids[i]!;
    out.length = offset;
  }

  /** Writes the byte-token ids of the UTF-8 bytes of `text[start, end)` to `this.symbols`. */
  private utf8Symbols(text: string, start: number, end: number): number {
    if (this.symbols.length < (end - start) * 3) this.symbols = new Int32Array((end - start) * 3);
    const symbols = this.symbols;
    const byteToId = this.byteToId;
    let length = 0;
    for (let i = start; i < end; i++) {
      let code = text.charCodeAt(i);
      if (code < 0x80) {
        symbols[length++] = byteToId[code]!;
      } else if (code < 0x800) {
        symbols[length++] = byteToId[0xc0 | (code >> 6)]!;
        symbols[length++] = byteToId[0x80 | (code & 0x3f)]!;
      } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < end) {
        code = ((code - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00) + 0x10000;
        symbols[length++] = byteToId[0xf0 | (code >> 18)]!;
        symbols[length++] = byteToId[0x80 | ((code >> 12) & 0x3f)]!;
        symbols[length++] = byteToId[0x80 | ((code >> 6) & 0x3f)]!;
        symbols[length++] = byteToId[0x80 | (code & 0x3f)]!;
      } else {
        symbols[length++] = byteToId[0xe0 | (code >> 12)]!;
        symbols[length++] = byteToId[0x80 | ((code >> 6) & 0x3f)]!;
        symbols[length++] = byteToId[0x80 | (code & 0x3f)]!;
      }
    }
    return length;
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
    const length =
      array.length > LONG_WORD
        ? this.mergeSymbolsLong(array, array.length)
        : this.mergeSymbols(array, array.length);
    return array.slice(0, length);
  }

  /**
   * Same result as `mergeSymbols` in O(n log n) for long words: a linked list of symbols and a
   * min-heap of (rank, position) keys, stale entries skipped when popped — HF's own procedure.
   */
  mergeSymbolsLong(symbols: Int32Array, length: number): number {
    const ranks = this.ranks;
    const mergedIds = this.mergedIds;
    const next = new Int32Array(length);
    const previous = new Int32Array(length);
    const alive = new Uint8Array(length).fill(1);
    for (let i = 0; i < length; i++) {
      next[i] = i + 1 < length ? i + 1 : -1;
      previous[i] = i - 1;
    }
    const heap = new MinHeap(length);
    for (let i = 0; i + 1 < length; i++) {
      const rank = ranks.get(symbols[i]!, symbols[i + 1]!);
      if (rank >= 0) heap.push(rank * POSITION_BASE + i);
    }
    while (heap.size > 0) {
      const key = heap.pop();
      const rank = Math.floor(key / POSITION_BASE);
      const position = key - rank * POSITION_BASE;
      const right = next[position]!;
      if (!alive[position] || right < 0) continue;
      if (ranks.get(symbols[position]!, symbols[right]!) !== rank) continue;
      symbols[position] = mergedIds[rank]!;
      alive[right] = 0;
      const after = next[right]!;
      next[position] = after;
      if (after >= 0) previous[after] = position;
      const before = previous[position]!;
      if (before >= 0) {
        const leftRank = ranks.get(symbols[before]!, symbols[position]!);
        if (leftRank >= 0) heap.push(leftRank * POSITION_BASE + before);
      }
      if (after >= 0) {
        const rightRank = ranks.get(symbols[position]!, symbols[after]!);
        if (rightRank >= 0) heap.push(rightRank * POSITION_BASE + position);
      }
    }
    let write = 0;
    for (let i = 0; i >= 0 && i < length; i = next[i]!) symbols[write++] = symbols[i]!;
    return write;
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
