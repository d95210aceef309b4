//! Kafka's built-in partitioner for keyed records (KP-1..KP-4): murmur2 over the serialized
//! key, the sign bit cleared (not `abs`), modulo the topic's partition count.

/// `Utils.murmur2` (KP-3): 32-bit wrapping arithmetic, little-endian 4-byte blocks, logical
/// shifts, tail bytes unsigned. Returns Java's signed `int`.
#[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)] // Java's int arithmetic
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// `Utils.toPositive` (KP-2): clears the sign bit.
pub fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// The partition of a keyed record (KP-1 step 3): every partition counts, available or not.
/// `partitions` must be at least 1.
#[allow(clippy::cast_sign_loss)] // to_positive is never negative
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    to_positive(murmur2(key)) as u32 % partitions.max(1)
}
