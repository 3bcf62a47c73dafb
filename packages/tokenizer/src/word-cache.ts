// A bounded cache from words (spans of an input string) to their token ids, in typed arrays:
// lookups hash and compare the span's UTF-16 code units in place, so a cache hit allocates
// nothing. When full it starts over.

const SLOT_BITS = 17;
const SLOTS = 1 << SLOT_BITS;
const MAX_ENTRIES = SLOTS >> 1;
/** Longer words are not cached. */
export const MAX_CACHED_WORD = 64;

export function hashSpan(text: string, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash | 0;
}

export class WordCache {
  private readonly slots = new Int32Array(SLOTS).fill(-1);
  private readonly hashes = new Int32Array(MAX_ENTRIES);
  private readonly keyStarts = new Int32Array(MAX_ENTRIES);
  private readonly keyLengths = new Int32Array(MAX_ENTRIES);
  private readonly idStarts = new Int32Array(MAX_ENTRIES);
  private readonly idLengths = new Int32Array(MAX_ENTRIES);
  private readonly keys = new Uint16Array(MAX_ENTRIES * 16);
  private ids = new Uint32Array(MAX_ENTRIES * 4);
  private count = 0;
  private keysUsed = 0;
  private idsUsed = 0;

  /** The entry for `text[start, end)` with hash `hash`, or -1. */
  find(text: string, start: number, end: number, hash: number): number {
    const length = end - start;
    const mask = SLOTS - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]!;
      if (entry < 0) return -1;
      if (this.hashes[entry] !== hash || this.keyLengths[entry] !== length) continue;
      const keyStart = this.keyStarts[entry]!;
      let equal = true;
      for (let i = 0; i < length; i++) {
        if (this.keys[keyStart + i] !== text.charCodeAt(start + i)) {
          equal = false;
          break;
        }
      }
      if (equal) return entry;
    }
  }

  /** Appends the ids of `entry` to `out` starting at `offset`; returns the new offset. */
  copyIds(entry: number, out: Uint32Array, offset: number): number {
    const start = this.idStarts[entry]!;
    const length = this.idLengths[entry]!;
    const ids = this.ids;
    for (let i = 0; i < length; i++) out[offset + i] = ids[start + i]!;
    return offset + length;
  }

  idCount(entry: number): number {
    return this.idLengths[entry]!;
  }

  /** Stores the ids of `text[start, end)` (at most MAX_CACHED_WORD code units). */
  insert(
    text: string,
    start: number,
    end: number,
    hash: number,
    ids: Int32Array,
    idCount: number,
  ): void {
    const length = end - start;
    if (this.count >= MAX_ENTRIES || this.keysUsed + length > this.keys.length) this.clear();
    if (this.idsUsed + idCount > this.ids.length) {
      if (this.ids.length >= MAX_ENTRIES * MAX_CACHED_WORD) this.clear();
      else {
        const grown = new Uint32Array(this.ids.length * 2);
        grown.set(this.ids.subarray(0, this.idsUsed));
        this.ids = grown;
      }
    }
    const entry = this.count++;
    this.hashes[entry] = hash;
    this.keyStarts[entry] = this.keysUsed;
    this.keyLengths[entry] = length;
    for (let i = 0; i < length; i++) this.keys[this.keysUsed + i] = text.charCodeAt(start + i);
    this.keysUsed += length;
    this.idStarts[entry] = this.idsUsed;
    this.idLengths[entry] = idCount;
    for (let i = 0; i < idCount; i++) this.ids[this.idsUsed + i] = ids[i]!;
    this.idsUsed += idCount;
    const mask = SLOTS - 1;
    let slot = hash & mask;
    while (this.slots[slot]! >= 0) slot = (slot + 1) & mask;
    this.slots[slot] = entry;
  }

  clear(): void {
    this.slots.fill(-1);
    this.count = 0;
    this.keysUsed = 0;
    this.idsUsed = 0;
  }
}
