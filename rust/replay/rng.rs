//! Bit-exact ports of the random draws `hrl.safety.replay` seeds per call, so the Rust replay
//! makes the same random choices as the Python baseline:
//!
//! - [`PyRandom`]: CPython's `random.Random(seed)` (MT19937 seeded by `init_by_array` with the
//!   seed's 32-bit words) and its `shuffle` (`_randbelow` by rejection on `getrandbits`);
//! - [`NpChoice`]: NumPy's `default_rng(seed).choice(n, size)` with replacement (a
//!   `SeedSequence` seeding PCG64 XSL-RR 128/64, then Lemire's bounded 32-bit integers on the
//!   buffered 32-bit stream);
//! - [`crc32`]: zlib's CRC-32 (the per-call seed of `zlib.crc32`).
//!
//! Tested against values printed by CPython 3.11 and NumPy 2 (the unit tests below).

/// CPython's Mersenne Twister (`random.Random`), seeded with a non-negative integer below 2^32.
pub struct PyRandom {
    mt: [u32; 624],
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for `0 <= seed < 2^32` (one key word; 0 is the key `[0]`).
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = 19_650_218;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        // init_by_array with key = [seed] (key_length = 1, so k = 624 rounds).
        let key = [seed];
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Self { mt, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `_randbelow(n)` for `1 <= n < 2^32`: `getrandbits(n.bit_length())` until below `n`.
    fn below(&mut self, n: u32) -> u32 {
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.next_u32() >> (32 - k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle(items)` (in place, the same swaps).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const PCG_MULT: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> 16)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> 16)
}

/// `numpy.random.default_rng(seed)` (PCG64) for `0 <= seed < 2^32`, drawing as `choice(n, size)`.
pub struct NpChoice {
    state: u128,
    inc: u128,
    spare: Option<u32>,
}

impl NpChoice {
    pub fn new(seed: u32) -> Self {
        // SeedSequence(seed): entropy [seed], pool of 4 words.
        let mut hash_const = INIT_A;
        let mut pool = [0u32; 4];
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(if i == 0 { seed } else { 0 }, &mut hash_const);
        }
        for src in 0..4 {
            for dst in 0..4 {
                if src != dst {
                    let h = hashmix(pool[src], &mut hash_const);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        // generate_state(4, uint64): 8 words, paired little-endian.
        let mut hash_const = INIT_B;
        let mut words = [0u32; 8];
        for (i, slot) in words.iter_mut().enumerate() {
            let mut v = pool[i % 4] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            v = v.wrapping_mul(hash_const);
            *slot = v ^ (v >> 16);
        }
        let w64 = |k: usize| u64::from(words[2 * k]) | (u64::from(words[2 * k + 1]) << 32);
        let init_state = (u128::from(w64(0)) << 64) | u128::from(w64(1));
        let init_seq = (u128::from(w64(2)) << 64) | u128::from(w64(3));
        let mut rng = Self {
            state: 0,
            inc: (init_seq << 1) | 1,
            spare: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    fn next_u64(&mut self) -> u64 {
        self.step();
        let s = self.state;
        (((s >> 64) as u64) ^ (s as u64)).rotate_right((s >> 122) as u32)
    }

    fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let next = self.next_u64();
        self.spare = Some((next >> 32) as u32);
        next as u32
    }

    /// One draw of `integers(0, n)` for `1 <= n < 2^32` (Lemire's rejection).
    fn below(&mut self, n: u32) -> u32 {
        let rng = n - 1;
        if rng == 0 {
            return 0;
        }
        let excl = n;
        let mut m = u64::from(self.next_u32()) * u64::from(excl);
        let mut leftover = m as u32;
        if leftover < excl {
            let threshold = (u32::MAX - rng) % excl;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * u64::from(excl);
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// `choice(n, size)` (with replacement): `size` indices in `0 .. n`.
    pub fn choice(&mut self, n: u32, size: usize) -> Vec<u32> {
        (0..size).map(|_| self.below(n)).collect()
    }
}

/// zlib's CRC-32 of `bytes` (`zlib.crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    // Printed by CPython 3.11.7 / NumPy 2.4.6:
    // r = random.Random(seed); x = list(range(10)); r.shuffle(x); y = list(range(3)); r.shuffle(y)
    // np.random.default_rng(seed).choice(7, 12), np.random.default_rng(seed).choice(1000, 3)
    #[allow(clippy::type_complexity)]
    const CASES: [(u32, [u32; 10], [u32; 3], [u32; 12], [u32; 3]); 5] = [
        (
            0,
            [7, 8, 1, 5, 3, 4, 2, 0, 9, 6],
            [2, 0, 1],
            [5, 4, 3, 1, 2, 0, 0, 0, 1, 5, 4, 6],
            [850, 636, 511],
        ),
        (
            1,
            [6, 8, 9, 7, 5, 3, 0, 4, 1, 2],
            [1, 2, 0],
            [3, 3, 5, 6, 0, 1, 5, 6, 1, 2, 6, 2],
            [473, 511, 755],
        ),
        (
            12345,
            [8, 7, 3, 5, 1, 2, 9, 4, 0, 6],
            [2, 1, 0],
            [4, 1, 5, 2, 1, 5, 4, 4, 6, 2, 5, 2],
            [699, 227, 788],
        ),
        (
            4294967295,
            [0, 7, 1, 5, 2, 6, 4, 8, 3, 9],
            [0, 2, 1],
            [1, 1, 5, 1, 6, 2, 1, 4, 4, 6, 0, 2],
            [190, 251, 724],
        ),
        (
            3203142824,
            [8, 9, 0, 4, 3, 6, 1, 2, 7, 5],
            [2, 1, 0],
            [4, 4, 2, 1, 6, 4, 5, 1, 2, 5, 5, 5],
            [619, 575, 308],
        ),
    ];

    #[test]
    fn draws_match_cpython_and_numpy() {
        for (seed, ten, three, seven, thousand) in CASES {
            let mut r = PyRandom::new(seed);
            let mut x: Vec<u32> = (0..10).collect();
            r.shuffle(&mut x);
            let mut y: Vec<u32> = (0..3).collect();
            r.shuffle(&mut y);
            assert_eq!(x, ten, "shuffle of 10, seed {seed}");
            assert_eq!(y, three, "second shuffle, seed {seed}");
            assert_eq!(
                NpChoice::new(seed).choice(7, 12),
                seven,
                "choice(7), seed {seed}"
            );
            assert_eq!(
                NpChoice::new(seed).choice(1000, 3),
                thousand,
                "choice(1000), seed {seed}"
            );
        }
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"hello world"), 222_957_957);
        assert_eq!(crc32(b"w|a|3|5"), 3_203_142_824);
    }
}
