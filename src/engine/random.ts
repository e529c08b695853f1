/**
 * Seeded random numbers for parameter init and tests: SplitMix64-seeded xoshiro128** for
 * uniforms, Box-Muller for normals. Same seed, same numbers, on every platform.
 */
export class Rng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed))
      throw new Error(`Rng seed must be a safe integer, got ${seed}`);
    let z = BigInt.asUintN(64, BigInt(seed));
    for (let i = 0; i < 4; i += 2) {
      // SplitMix64 step (Steele et al. 2014)
      z = BigInt.asUintN(64, z + 0x9e3779b97f4a7c15n);
      let x = z;
      x = BigInt.asUintN(64, (x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n);
      x = BigInt.asUintN(64, (x ^ (x >> 27n)) * 0x94d049bb133111ebn);
      x ^= x >> 31n;
      this.s[i] = Number(x & 0xffffffffn);
      this.s[i + 1] = Number(x >> 32n);
    }
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**, Blackman & Vigna 2018). */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  normalArray(n: number, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
