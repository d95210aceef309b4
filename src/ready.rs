//! A queue's visible messages, ordered by position. New messages take a position past every
//! other, and a returned message takes back its own, which is nearly always near the front, so
//! a sorted `VecDeque` makes the common cases O(1) where a `BTreeMap` pays a tree walk and an
//! allocation each. The rare middle insert or removal shifts elements, bounded by the queue.

use crate::trace::MsgId;
use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadySet {
    items: VecDeque<(u64, MsgId)>,
}

impl ReadySet {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `msg` at `pos`. Returns false (and changes nothing) if `pos` is taken.
    #[inline]
    pub fn insert(&mut self, pos: u64, msg: MsgId) -> bool {
        if self.items.back().is_none_or(|&(last, _)| pos > last) {
            self.items.push_back((pos, msg));
            return true;
        }
        self.insert_inside(pos, msg)
    }

    #[inline(never)]
    fn insert_inside(&mut self, pos: u64, msg: MsgId) -> bool {
        match self.items.binary_search_by_key(&pos, |&(p, _)| p) {
            Ok(_) => false,
            Err(i) => {
                self.items.insert(i, (pos, msg));
                true
            }
        }
    }

    /// Takes out whatever is at `pos`.
    #[inline]
    pub fn remove(&mut self, pos: u64) -> Option<MsgId> {
        if self.items.front().is_some_and(|&(p, _)| p == pos) {
            return self.items.pop_front().map(|(_, m)| m);
        }
        self.remove_inside(pos)
    }

    #[inline(never)]
    fn remove_inside(&mut self, pos: u64) -> Option<MsgId> {
        let i = self.items.binary_search_by_key(&pos, |&(p, _)| p).ok()?;
        self.items.remove(i).map(|(_, m)| m)
    }

    /// The message at the lowest position: the head of the queue.
    pub fn first(&self) -> Option<MsgId> {
        self.items.front().map(|&(_, m)| m)
    }

    /// Every (position, message), head first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, MsgId)> + '_ {
        self.items.iter().copied()
    }

    /// Every message, head first.
    pub fn values(&self) -> impl Iterator<Item = MsgId> + '_ {
        self.items.iter().map(|&(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Prng;
    use std::collections::BTreeMap;

    /// Model-based: random operations against a trivially correct BTreeMap.
    #[test]
    fn behaves_like_a_btreemap() {
        for seed in 0..50 {
            let mut r = Prng::from_seed(seed);
            let (mut set, mut model) = (ReadySet::default(), BTreeMap::new());
            let mut next = 0u64;
            for step in 0..2000u32 {
                match r.below(5) {
                    // Mostly new messages at the back, as in a queue.
                    0 | 1 => {
                        next += 1 + r.below(3);
                        assert_eq!(set.insert(next, MsgId(step)), model.insert(next, step).is_none());
                    }
                    // A return to an earlier position, maybe taken.
                    2 => {
                        let pos = r.below(next + 1);
                        let fresh = !model.contains_key(&pos);
                        assert_eq!(set.insert(pos, MsgId(step)), fresh, "seed {seed}");
                        if fresh {
                            model.insert(pos, step);
                        }
                    }
                    // Take the head, or anything.
                    3 => {
                        let head = model.keys().next().copied();
                        if let Some(pos) = head {
                            assert_eq!(set.remove(pos), (model.remove(&pos)).map(MsgId));
                        }
                    }
                    _ => {
                        let pos = r.below(next + 1);
                        assert_eq!(set.remove(pos), (model.remove(&pos)).map(MsgId), "seed {seed}");
                    }
                }
                assert_eq!(set.len(), model.len());
                assert_eq!(set.first(), model.values().next().copied().map(MsgId));
            }
            assert!(set.iter().eq(model.iter().map(|(&p, &m)| (p, MsgId(m)))), "seed {seed}: same order");
        }
    }
}
