//! Synthetic paragraph keys: reproducible, distinct and as uniform as
//! SHA-256 prefixes. Shared by the index unit tests and
//! `examples/index_bench.rs`, which includes this file by path.

/// SplitMix64: a bijective mixer of `u64`s.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `i`-th synthetic key.
pub fn key(i: u64) -> u128 {
    ((splitmix(2 * i) as u128) << 64) | splitmix(2 * i + 1) as u128
}
