// At most `size` holders at a time; the others wait in order. The informer shares
// one among its paths so a relist of many namespaces holds a bounded number of
// list pages at once.
export class Slots {
  private inUse = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly size: number;

  constructor(size: number) {
    this.size = Math.max(1, size);
  }

  /** Waits for a free slot; call the returned function to give it back. */
  async acquire(): Promise<() => void> {
    while (this.inUse >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      this.waiting.shift()?.();
    };
  }
}
