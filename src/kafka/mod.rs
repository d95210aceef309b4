//! Kafka's pure functions, exactly as the Java client computes them: the keyed partitioner
//! (KP-*) and the four consumer-group assignors (KA-*). The stream engine calls them; so do
//! the CLI helpers `brokerlab partition` and `brokerlab assign`.

pub mod assignor;
pub mod partitioner;

use std::cmp::Ordering;

/// Java's `String.compareTo`: UTF-16 code units, which differs from Rust's byte order only
/// between supplementary characters and U+E000..U+FFFF (KA-1).
pub fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The order in which a `java.util.HashMap<String, _>` built by inserting `keys` in order
/// iterates them: by bucket `(h ^ (h >>> 16)) & (capacity - 1)`, then by insertion within a
/// bucket (resizes keep that order). The capacity starts at 16 and doubles whenever the size
/// passes three quarters of it. (Java also resizes early when one bucket reaches 8 keys in a
/// table under 64; ids that collide that much do not occur here.) The sticky assignors depend
/// on this order (KA-10, KA-14), so we emulate it rather than sort.
pub fn java_hashmap_order(keys: &[&str]) -> Vec<usize> {
    let mut capacity: usize = 16;
    while keys.len() > capacity / 4 * 3 {
        capacity *= 2;
    }
    let mask = capacity - 1;
    let bucket = |key: &str| {
        let h = java_string_hash(key);
        #[allow(clippy::cast_sign_loss)] // reinterpreting the bits, as Java's `>>>` does
        let h = h as u32;
        (h ^ (h >> 16)) as usize & mask
    };
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| (bucket(keys[i]), i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_and_order_match_java() {
        // "C0": 'C' * 31 + '0' = 67 * 31 + 48. "consumer1" wraps around.
        assert_eq!(java_string_hash("C0"), 2125);
        assert_eq!(java_string_hash("consumer1"), -421_004_549);
        assert_eq!(java_string_hash(""), 0);
        // KA-14: consumer1..consumer4 iterate in reverse.
        let ids = ["consumer1", "consumer2", "consumer3", "consumer4"];
        assert_eq!(java_hashmap_order(&ids), vec![3, 2, 1, 0]);
        assert_eq!(java_cmp("a", "b"), Ordering::Less);
        // U+FF5E sorts after U+1F600 by bytes and code points, before it by UTF-16 units.
        assert_eq!(java_cmp("\u{ff5e}", "\u{1f600}"), Ordering::Greater);
        assert_eq!("\u{ff5e}".cmp("\u{1f600}"), Ordering::Less);
    }
}
