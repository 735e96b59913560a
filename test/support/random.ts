/** Seeded randomness for tests: a failing case is replayed from its seed. */

export type Random = () => number;

/** mulberry32: a tiny deterministic generator, good enough to spread test data and cheap to replay. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
