// The informer's bound on list pages in flight.
import { describe, expect, it } from 'vitest';
import { Slots } from '../../src/kube/slots.ts';

describe('Slots', () => {
  it('lets at most `size` holders in, the next one as soon as one gives its slot back', async () => {
    const slots = new Slots(2);
    const a = await slots.acquire();
    const b = await slots.acquire();
    let third = false;
    const c = slots.acquire().then((release) => {
      third = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBe(false);
    a();
    a(); // a second release of the same slot frees nothing more
    const releaseC = await c;
    expect(third).toBe(true);
    let fourth = false;
    void slots.acquire().then(() => {
      fourth = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(fourth).toBe(false);
    b();
    releaseC();
    await new Promise((r) => setTimeout(r, 0));
    expect(fourth).toBe(true);
  });
});
