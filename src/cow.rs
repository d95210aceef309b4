//! A vector whose clones share storage: the items live in fixed-size chunks behind `Rc`, and a
//! chunk is copied only when a clone writes to it. A run's snapshots (one per stretch of
//! events, for seeking) then cost what changed since the last one, not the whole run: old
//! messages and records sit in chunks no one writes any more, shared by every snapshot.
//! This is the persistent-vector idea of Clojure's and `im`'s vectors, at one level.

use std::ops::{Index, IndexMut};
use std::rc::Rc;

/// Items per chunk: a write after a snapshot copies at most this many.
const CHUNK: usize = 256;

#[derive(Clone, Debug)]
pub struct CowVec<T> {
    chunks: Vec<Rc<Vec<T>>>,
    len: usize,
}

impl<T> Default for CowVec<T> {
    fn default() -> Self {
        CowVec { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone> CowVec<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Rc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.last_mut().expect("a chunk was just ensured");
        writable(last).push(item);
        self.len += 1;
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i / CHUNK).and_then(|c| writable(c).get_mut(i % CHUNK))
    }

    /// Grows to `len` items, filling with `value` (never shrinks).
    pub fn grow_to(&mut self, len: usize, value: T) {
        while self.len < len {
            self.push(value.clone());
        }
    }

    pub fn iter(&self) -> Iter<'_, T> {
        self.chunks.iter().flat_map(chunk_iter)
    }
}

type Iter<'a, T> = std::iter::FlatMap<std::slice::Iter<'a, Rc<Vec<T>>>, std::slice::Iter<'a, T>, ChunkIter<'a, T>>;
type ChunkIter<'a, T> = fn(&'a Rc<Vec<T>>) -> std::slice::Iter<'a, T>;

fn chunk_iter<T>(c: &Rc<Vec<T>>) -> std::slice::Iter<'_, T> {
    c.iter()
}

impl<T: Clone> Index<usize> for CowVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T: Clone> IndexMut<usize> for CowVec<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut writable(&mut self.chunks[i / CHUNK])[i % CHUNK]
    }
}

/// The chunk to write to: itself when no snapshot shares it (nearly always, and a few
/// instructions inline), else a private copy made out of line.
#[inline]
fn writable<T: Clone>(chunk: &mut Rc<Vec<T>>) -> &mut Vec<T> {
    if Rc::get_mut(chunk).is_none() {
        unshare(chunk);
    }
    Rc::get_mut(chunk).expect("unshared just now")
}

#[cold]
#[inline(never)]
fn unshare<T: Clone>(chunk: &mut Rc<Vec<T>>) {
    Rc::make_mut(chunk);
}

impl<'a, T: Clone> IntoIterator for &'a CowVec<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_until_written_and_never_see_each_others_writes() {
        let mut a: CowVec<u32> = CowVec::new();
        for i in 0..1000 {
            a.push(i);
        }
        let snapshot = a.clone();
        assert!(Rc::ptr_eq(&a.chunks[0], &snapshot.chunks[0]), "a clone shares its chunks");
        a[5] += 100;
        a.push(1000);
        assert_eq!((a[5], snapshot[5]), (105, 5));
        assert_eq!((a.len(), snapshot.len()), (1001, 1000));
        assert!(!Rc::ptr_eq(&a.chunks[0], &snapshot.chunks[0]), "the written chunk was copied");
        assert!(Rc::ptr_eq(&a.chunks[1], &snapshot.chunks[1]), "the others are still shared");
        assert_eq!(a.iter().copied().sum::<u32>(), (0..=1000).sum::<u32>() + 100);
        assert_eq!((a.get(1000), a.get(1001), snapshot.get(1000)), (Some(&1000), None, None));
        *a.get_mut(0).expect("item 0") = 7;
        a.grow_to(1003, 9);
        assert_eq!((a[0], a[1002], a.len(), snapshot[0]), (7, 9, 1003, 0));
    }
}
