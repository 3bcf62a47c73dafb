// An open-addressing hash table from a pair of token ids to a merge rank, in typed arrays: the
// BPE hot path looks pairs up without allocating.

export class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly values: Int32Array;
  private readonly mask: number;
  size = 0;

  constructor(capacity: number) {
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.left = new Int32Array(slots).fill(-1);
    this.right = new Int32Array(slots);
    this.values = new Int32Array(slots);
    this.mask = slots - 1;
  }

  private slot(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
  }

  /** Stores `value` for (a, b), replacing an earlier value (later merges win, as in HF). */
  set(a: number, b: number, value: number): void {
    let index = this.slot(a, b) & this.mask;
    for (;;) {
      const current = this.left[index]!;
      if (current === -1) {
        this.left[index] = a;
        this.right[index] = b;
        this.values[index] = value;
        this.size++;
        return;
      }
      if (current === a && this.right[index] === b) {
        this.values[index] = value;
        return;
      }
      index = (index + 1) & this.mask;
    }
  }

  /** The value for (a, b), or -1. */
  get(a: number, b: number): number {
    let index = this.slot(a, b) & this.mask;
    for (;;) {
      const current = this.left[index]!;
      if (current === -1) return -1;
      if (current === a && this.right[index] === b) return this.values[index]!;
      index = (index + 1) & this.mask;
    }
  }
}
