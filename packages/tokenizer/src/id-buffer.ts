/** A growable list of token ids backed by a Uint32Array. */
export class IdBuffer {
  data: Uint32Array;
  length = 0;

  constructor(capacity = 1024) {
    this.data = new Uint32Array(capacity);
  }

  push(id: number): void {
    if (this.length === this.data.length) this.grow(this.length + 1);
    this.data[this.length++] = id;
  }

  pushAll(ids: ArrayLike<number>): void {
    const count = ids.length;
    if (this.length + count > this.data.length) this.grow(this.length + count);
    const data = this.data;
    let length = this.length;
    for (let i = 0; i < count; i++) data[length++] = ids[i]!;
    this.length = length;
  }

  /** Makes room for `extra` more ids. */
  reserve(extra: number): void {
    if (this.length + extra > this.data.length) this.grow(this.length + extra);
  }

  private grow(minimum: number): void {
    let capacity = this.data.length * 2;
    while (capacity < minimum) capacity *= 2;
    const data = new Uint32Array(capacity);
    data.set(this.data.subarray(0, this.length));
    this.data = data;
  }

  /** A copy of the ids pushed so far. */
  toArray(): Uint32Array {
    return this.data.slice(0, this.length);
  }
}
