//! Heavy hitters in fixed memory: the Space-Saving algorithm (Metwally, Agrawal, El Abbadi,
//! "Efficient Computation of Frequent and Top-k Elements in Data Streams", 2005).
//!
//! A [`SpaceSaving`] of capacity `k` keeps at most `k` keys. A new key arriving when it is
//! full takes the place of the key with the smallest count and inherits that count as its
//! possible overestimate (`error`). Every key whose true count exceeds `total / k` is
//! guaranteed to be present, and for each kept key `count - error <= true <= count`. So a
//! scan from a million addresses costs the same memory as one from ten, and the real top
//! talkers stay on top.
//!
//! The minimum is found through a binary min-heap of slot numbers; a key's slot is found
//! through a hash map with a per-process random seed (addresses are chosen by strangers, so
//! the hash must not be predictable).

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// A fast keyed hasher (folded multiply, seeded per process). Not cryptographic; its only job
/// is to make collisions impossible to aim at from outside.
#[derive(Clone)]
pub struct SeededState {
    seed: [u64; 2],
}

impl Default for SeededState {
    fn default() -> Self {
        let rs = RandomState::new();
        SeededState {
            seed: [rs.hash_one(0x5eed_u64) | 1, rs.hash_one(0xfeed_u64)],
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            h: self.seed[1],
            k: self.seed[0],
        }
    }
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// See [`SeededState`].
pub struct SeededHasher {
    h: u64,
    k: u64,
}

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for SeededHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.h = fold(self.h ^ i, self.k ^ MIX);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.k).rotate_left(23)
    }
}

struct Slot<K> {
    key: K,
    count: u64,
    error: u64,
    heap_pos: u32,
}

/// A kept key with its estimated count; the true count is in `count - error ..= count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hitter<K> {
    pub key: K,
    pub count: u64,
    pub error: u64,
}

/// Top-k counter in memory bounded by its capacity (see the module docs).
pub struct SpaceSaving<K> {
    cap: usize,
    slots: Vec<Slot<K>>,
    /// Slot numbers, a min-heap on `slots[i].count`.
    heap: Vec<u32>,
    index: HashMap<K, u32, SeededState>,
    total: u64,
    /// The slot of the last key offered: runs of one key (one interface, one prefix) skip
    /// the hash lookup.
    last: u32,
}

impl<K: Hash + Eq + Clone> SpaceSaving<K> {
    /// A counter that keeps at most `cap` keys (at least 1).
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, u32::MAX as usize);
        SpaceSaving {
            cap,
            slots: Vec::with_capacity(cap),
            heap: Vec::with_capacity(cap),
            // Twice the keys: evictions leave tombstones, and at this size hashbrown always
            // rehashes in place instead of growing the table (memory stays flat).
            index: HashMap::with_capacity_and_hasher(cap * 2, SeededState::default()),
            total: 0,
            last: u32::MAX,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sum of all weights offered (exact).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Forgets everything, keeping the allocations (buckets are recycled this way).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.heap.clear();
        self.index.clear();
        self.total = 0;
        self.last = u32::MAX;
    }

    /// Counts `weight` occurrences of `key`. The key is cloned into the counter only when it
    /// is not kept yet.
    pub fn offer<Q>(&mut self, key: &Q, weight: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        self.total = self.total.saturating_add(weight);
        let last = self.last as usize;
        if let Some(s) = self.slots.get_mut(last) {
            if s.key.borrow() == key {
                s.count = s.count.saturating_add(weight);
                let pos = s.heap_pos as usize;
                self.sift_down(pos);
                return;
            }
        }
        if let Some(&slot) = self.index.get(key) {
            self.last = slot;
            let s = &mut self.slots[slot as usize];
            s.count = s.count.saturating_add(weight);
            let pos = s.heap_pos as usize;
            self.sift_down(pos);
            return;
        }
        if self.slots.len() < self.cap {
            let id = self.slots.len() as u32;
            self.slots.push(Slot {
                key: key.to_owned().into(),
                count: weight,
                error: 0,
                heap_pos: self.heap.len() as u32,
            });
            self.heap.push(id);
            self.index.insert(key.to_owned().into(), id);
            self.last = id;
            self.sift_up(self.heap.len() - 1);
            return;
        }
        // Full: the smallest key gives its place (and its count, as error) to the new one.
        let id = self.heap[0];
        let s = &mut self.slots[id as usize];
        let old = std::mem::replace(&mut s.key, key.to_owned().into());
        s.error = s.count;
        s.count = s.count.saturating_add(weight);
        self.index.remove::<K>(&old);
        self.index.insert(key.to_owned().into(), id);
        self.last = id;
        self.sift_down(0);
    }

    /// Adds another summary of a disjoint part of the stream (e.g. another part of a file),
    /// keeping this one's capacity. Errors add up, so the bounds stay valid.
    pub fn merge_from(&mut self, other: &SpaceSaving<K>) {
        let mut entries: Vec<&Slot<K>> = other.slots.iter().collect();
        // Smallest first, so the large counts are the ones that stay if this one is full.
        entries.sort_by_key(|s| s.count);
        let before = self.total;
        for s in entries {
            self.offer::<K>(&s.key, s.count);
            if let Some(&id) = self.index.get(&s.key) {
                let slot = &mut self.slots[id as usize];
                slot.error = slot.error.saturating_add(s.error).min(slot.count);
            }
        }
        // Keys the other one had evicted are in its total but not in its slots.
        self.total = before.saturating_add(other.total);
    }

    /// Every kept key, largest count first (ties in no particular order).
    pub fn top(&self, n: usize) -> Vec<Hitter<K>> {
        let mut v: Vec<Hitter<K>> = self
            .slots
            .iter()
            .map(|s| Hitter {
                key: s.key.clone(),
                count: s.count,
                error: s.error,
            })
            .collect();
        v.sort_by_key(|h| std::cmp::Reverse(h.count));
        v.truncate(n);
        v
    }

    /// Iterates over the kept keys in no order.
    pub fn iter(&self) -> impl Iterator<Item = Hitter<&K>> {
        self.slots.iter().map(|s| Hitter {
            key: &s.key,
            count: s.count,
            error: s.error,
        })
    }

    /// The smallest kept count when full (the most any unkept key may have been seen), else 0.
    pub fn floor(&self) -> u64 {
        if self.slots.len() < self.cap {
            0
        } else {
            self.heap
                .first()
                .map(|&i| self.slots[i as usize].count)
                .unwrap_or(0)
        }
    }

    #[inline]
    fn count_at(&self, pos: usize) -> u64 {
        self.slots[self.heap[pos] as usize].count
    }

    #[inline]
    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        let (sa, sb) = (self.heap[a] as usize, self.heap[b] as usize);
        self.slots[sa].heap_pos = a as u32;
        self.slots[sb].heap_pos = b as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.count_at(parent) <= self.count_at(pos) {
                break;
            }
            self.swap(parent, pos);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * pos + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let child = if r < n && self.count_at(r) < self.count_at(l) {
                r
            } else {
                l
            };
            if self.count_at(pos) <= self.count_at(child) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }
}

/// Sums several summaries of disjoint parts of a stream (e.g. time buckets) and returns the
/// `n` largest. A key missing from a full summary may have had up to that summary's floor
/// there, so that floor is added to its error.
pub fn merge_top<'a, K: Hash + Eq + Clone + 'a>(
    parts: impl IntoIterator<Item = &'a SpaceSaving<K>>,
    n: usize,
) -> Vec<Hitter<K>> {
    let parts: Vec<&SpaceSaving<K>> = parts.into_iter().collect();
    let mut acc: HashMap<&K, (u64, u64), SeededState> = HashMap::default();
    for p in &parts {
        for h in p.iter() {
            let e = acc.entry(h.key).or_insert((0, 0));
            e.0 += h.count;
            e.1 += h.error;
        }
    }
    let mut out: Vec<Hitter<K>> = acc
        .into_iter()
        .map(|(k, (count, mut error))| {
            for p in &parts {
                let floor = p.floor();
                if floor > 0 && !p.index.contains_key(k) {
                    error += floor;
                }
            }
            Hitter {
                key: k.clone(),
                count,
                error,
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.error.cmp(&b.error)));
    out.truncate(n);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_under_capacity() {
        let mut s = SpaceSaving::<u32>::new(10);
        for i in 0..5u32 {
            for _ in 0..=i {
                s.offer(&i, 1);
            }
        }
        let top = s.top(3);
        assert_eq!(
            top.iter()
                .map(|h| (h.key, h.count, h.error))
                .collect::<Vec<_>>(),
            vec![(4, 5, 0), (3, 4, 0), (2, 3, 0)]
        );
        assert_eq!(s.total(), 15);
        assert_eq!(s.floor(), 0);
    }

    #[test]
    fn heavy_hitters_survive_a_flood_of_distinct_keys() {
        let mut s = SpaceSaving::<u64>::new(50);
        // Three heavy keys interleaved with 100,000 keys seen once each.
        for i in 0..100_000u64 {
            s.offer(&(1_000_000 + i), 1);
            if i % 10 == 0 {
                s.offer(&1, 1);
            }
            if i % 20 == 0 {
                s.offer(&2, 1);
            }
            if i % 40 == 0 {
                s.offer(&3, 1);
            }
        }
        assert_eq!(s.len(), 50);
        let top = s.top(3);
        let keys: Vec<u64> = top.iter().map(|h| h.key).collect();
        assert_eq!(keys, vec![1, 2, 3]);
        // The guarantee: count - error <= true <= count.
        let truth = [10_000u64, 5_000, 2_500];
        for (h, t) in top.iter().zip(truth) {
            assert!(h.count - h.error <= t && t <= h.count, "{h:?} vs {t}");
        }
        assert_eq!(s.total(), 100_000 + 10_000 + 5_000 + 2_500);
    }

    #[test]
    fn heap_invariant_holds_under_weights() {
        let mut s = SpaceSaving::<u16>::new(16);
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            s.offer(&((x >> 16) as u16 % 64), u64::from(x % 7));
        }
        for pos in 1..s.heap.len() {
            assert!(s.count_at((pos - 1) / 2) <= s.count_at(pos));
        }
        for (i, slot) in s.slots.iter().enumerate() {
            assert_eq!(s.heap[slot.heap_pos as usize] as usize, i);
            assert_eq!(s.index[&slot.key] as usize, i);
        }
        assert_eq!(s.index.len(), s.slots.len());
    }

    #[test]
    fn merge_from_adds_counts() {
        let mut a = SpaceSaving::<u32>::new(8);
        let mut b = SpaceSaving::<u32>::new(8);
        for i in 0..5u32 {
            a.offer(&i, u64::from(i) + 1);
            b.offer(&(i + 3), 10);
        }
        a.merge_from(&b);
        assert_eq!(a.total(), 15 + 50);
        let top = a.top(3);
        assert_eq!(
            top.iter().map(|h| (h.key, h.count)).collect::<Vec<_>>()[..2],
            [(4, 15), (3, 14)]
        );
        assert_eq!(top[2].count, 10); // 5, 6 and 7 tie
                                      // Same key twice in a row takes the cached slot and stays exact.
        let mut c = SpaceSaving::<u32>::new(2);
        for k in [1, 1, 2, 2, 1, 3, 3] {
            c.offer(&k, 1);
        }
        let t = c.top(2);
        assert_eq!(t[0].key, 3);
        assert_eq!((t[0].count, t[0].error), (4, 2));
    }

    #[test]
    fn borrowed_keys_and_merge() {
        let mut a = SpaceSaving::<Box<str>>::new(4);
        let mut b = SpaceSaving::<Box<str>>::new(4);
        a.offer("wan0", 5);
        a.offer("lan0", 1);
        b.offer("wan0", 2);
        b.offer("ppp0", 3);
        let m = merge_top([&a, &b], 10);
        let got: Vec<(&str, u64)> = m.iter().map(|h| (&*h.key, h.count)).collect();
        assert_eq!(got, vec![("wan0", 7), ("ppp0", 3), ("lan0", 1)]);
        a.clear();
        assert!(a.is_empty());
        assert_eq!(a.total(), 0);
    }
}
