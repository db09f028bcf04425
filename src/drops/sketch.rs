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
//! Counts are kept in the paper's stream summary (buckets of equal counts in count order),
//! so the smallest is always at hand; a key's slot is found through a hash table with a
//! per-process random seed (addresses are chosen by strangers, so the hash must not be
//! predictable).

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

/// No slot or bucket.
const NONE: u32 = u32::MAX;

struct Slot<K> {
    key: K,
    count: u64,
    error: u64,
    /// The key's hash, so evicting it never hashes it again.
    hash: u64,
    /// The bucket of this count, and the neighbours in its circular list of slots.
    bucket: u32,
    prev: u32,
    next: u32,
}

/// All slots with one count. Buckets form a list in ascending count order.
#[derive(Clone, Copy)]
struct Bucket {
    count: u64,
    /// The slot added last; its `prev` is the one that has waited longest.
    head: u32,
    prev: u32,
    next: u32,
}

/// A kept key with its estimated count; the true count is in `count - error ..= count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hitter<K> {
    pub key: K,
    pub count: u64,
    pub error: u64,
}

/// Top-k counter in memory bounded by its capacity (see the module docs).
///
/// Counts are kept in the paper's "stream summary": slots with equal counts share a bucket,
/// and buckets are listed in count order, so the common step of a flood, a new key taking the
/// place of one with the smallest count and counting one more, moves one slot to the next
/// bucket in O(1) (a binary heap needed a sift through log k levels for it). The key that
/// gives its place is the one that has had the smallest count the longest. The index holds
/// slot numbers only; keys live once, in their slot.
pub struct SpaceSaving<K> {
    cap: usize,
    slots: Vec<Slot<K>>,
    buckets: Vec<Bucket>,
    free_buckets: Vec<u32>,
    /// The bucket with the smallest count.
    min: u32,
    index: hashbrown::HashTable<u32>,
    hasher: SeededState,
    total: u64,
    /// The slot of the last key offered: runs of one key (one interface, one prefix) skip
    /// the hash lookup.
    last: u32,
}

impl<K: Hash + Eq + Clone> SpaceSaving<K> {
    /// A counter that keeps at most `cap` keys (at least 1). Everything it will use is
    /// allocated here.
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, (u32::MAX - 2) as usize);
        SpaceSaving {
            cap,
            slots: Vec::with_capacity(cap),
            // One bucket per distinct count, plus the one made before the old one empties.
            buckets: Vec::with_capacity(cap + 1),
            free_buckets: Vec::with_capacity(cap + 1),
            min: NONE,
            // Twice the keys: evictions leave tombstones, and at this size hashbrown always
            // rehashes in place instead of growing the table (memory stays flat).
            index: hashbrown::HashTable::with_capacity(cap * 2),
            hasher: SeededState::default(),
            total: 0,
            last: NONE,
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
        self.buckets.clear();
        self.free_buckets.clear();
        self.min = NONE;
        self.index.clear();
        self.total = 0;
        self.last = NONE;
    }

    /// Whether `key` is kept.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(self.hasher.hash_one(key), key).is_some()
    }

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.index
            .find(hash, |&id| slots[id as usize].key.borrow() == key)
            .copied()
    }

    /// Counts `weight` occurrences of `key`. The key is cloned into the counter only when it
    /// is not kept yet.
    #[inline]
    pub fn offer<Q>(&mut self, key: &Q, weight: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        self.total = self.total.saturating_add(weight);
        if let Some(s) = self.slots.get(self.last as usize) {
            if s.key.borrow() == key {
                self.bump(self.last, weight);
                return;
            }
        }
        let hash = self.hasher.hash_one(key);
        if let Some(id) = self.find(hash, key) {
            self.last = id;
            self.bump(id, weight);
            return;
        }
        let slots = &self.slots;
        if slots.len() < self.cap {
            let id = slots.len() as u32;
            self.slots.push(Slot {
                key: key.to_owned().into(),
                count: weight,
                error: 0,
                hash,
                bucket: NONE,
                prev: NONE,
                next: NONE,
            });
            let b = self.bucket_for(weight, NONE);
            self.link(id, b);
            self.index.insert_unique(hash, id, |_| hash);
            self.last = id;
            return;
        }
        // Full: the key that has had the smallest count longest gives its place (and its
        // count, as error) to the new one.
        let id = self.buckets[self.min as usize].head;
        let id = self.slots[id as usize].prev;
        let old_hash = self.slots[id as usize].hash;
        if let Ok(e) = self.index.find_entry(old_hash, |&x| x == id) {
            e.remove();
        }
        let slots = &self.slots;
        self.index
            .insert_unique(hash, id, |&x| slots[x as usize].hash);
        let s = &mut self.slots[id as usize];
        s.key = key.to_owned().into();
        s.hash = hash;
        s.error = s.count;
        self.last = id;
        self.bump(id, weight);
    }

    /// Adds `w` to a slot's count, moving it to the bucket of its new count.
    #[inline]
    fn bump(&mut self, id: u32, w: u64) {
        if w == 0 {
            return;
        }
        let s = &mut self.slots[id as usize];
        let (from, alone) = (s.bucket, s.next == id);
        let count = s.count.saturating_add(w);
        s.count = count;
        if alone {
            // Alone in its bucket, and no bucket in the way: the bucket moves with it.
            let next = self.buckets[from as usize].next;
            if next == NONE || self.buckets[next as usize].count > count {
                self.buckets[from as usize].count = count;
                return;
            }
        }
        let to = self.bucket_for(count, from);
        if to == from {
            return;
        }
        self.unlink(id);
        self.link(id, to);
    }

    /// The bucket for `count`, made if need be, searching upwards from bucket `from` (or
    /// from the smallest when `NONE`). `from` itself is returned only when it has `count`.
    #[inline]
    fn bucket_for(&mut self, count: u64, from: u32) -> u32 {
        let (mut after, mut next) = if from == NONE {
            (NONE, self.min)
        } else if self.buckets[from as usize].count == count {
            return from;
        } else {
            (from, self.buckets[from as usize].next)
        };
        while next != NONE && self.buckets[next as usize].count < count {
            after = next;
            next = self.buckets[next as usize].next;
        }
        if next != NONE && self.buckets[next as usize].count == count {
            return next;
        }
        let b = Bucket {
            count,
            head: NONE,
            prev: after,
            next,
        };
        let id = match self.free_buckets.pop() {
            Some(id) => {
                self.buckets[id as usize] = b;
                id
            }
            None => {
                self.buckets.push(b);
                (self.buckets.len() - 1) as u32
            }
        };
        match after {
            NONE => self.min = id,
            a => self.buckets[a as usize].next = id,
        }
        if next != NONE {
            self.buckets[next as usize].prev = id;
        }
        id
    }

    /// Makes slot `id` the head of bucket `b`.
    #[inline]
    fn link(&mut self, id: u32, b: u32) {
        let head = self.buckets[b as usize].head;
        if head == NONE {
            let s = &mut self.slots[id as usize];
            (s.prev, s.next) = (id, id);
        } else {
            let tail = self.slots[head as usize].prev;
            self.slots[tail as usize].next = id;
            self.slots[head as usize].prev = id;
            let s = &mut self.slots[id as usize];
            (s.prev, s.next) = (tail, head);
        }
        self.slots[id as usize].bucket = b;
        self.buckets[b as usize].head = id;
    }

    /// Takes slot `id` out of its bucket, dropping the bucket if it empties.
    #[inline]
    fn unlink(&mut self, id: u32) {
        let Slot {
            bucket, prev, next, ..
        } = self.slots[id as usize];
        if next == id {
            // The last slot of its bucket.
            let Bucket { prev, next, .. } = self.buckets[bucket as usize];
            match prev {
                NONE => self.min = next,
                p => self.buckets[p as usize].next = next,
            }
            if next != NONE {
                self.buckets[next as usize].prev = prev;
            }
            self.free_buckets.push(bucket);
        } else {
            self.slots[prev as usize].next = next;
            self.slots[next as usize].prev = prev;
            if self.buckets[bucket as usize].head == id {
                self.buckets[bucket as usize].head = next;
            }
        }
        let s = &mut self.slots[id as usize];
        (s.bucket, s.prev, s.next) = (NONE, NONE, NONE);
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
            if let Some(id) = self.find(self.hasher.hash_one(&s.key), &s.key) {
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
        if self.slots.len() < self.cap || self.min == NONE {
            0
        } else {
            self.buckets[self.min as usize].count
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
                if floor > 0 && !p.contains(k) {
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

    /// Every slot sits in the bucket of its count, buckets ascend from `min`, links agree,
    /// and the index finds every kept key at its slot.
    fn check<K: Hash + Eq + Clone + std::fmt::Debug>(s: &SpaceSaving<K>) {
        let mut seen = vec![false; s.slots.len()];
        let (mut b, mut prev_b, mut last_count) = (s.min, NONE, None);
        while b != NONE {
            let bk = s.buckets[b as usize];
            assert_eq!(bk.prev, prev_b);
            assert!(last_count < Some(bk.count), "buckets ascend");
            last_count = Some(bk.count);
            let head = bk.head;
            assert_ne!(head, NONE, "no empty bucket is listed");
            let mut id = head;
            loop {
                let sl = &s.slots[id as usize];
                assert!(!seen[id as usize], "slot {id} listed twice");
                seen[id as usize] = true;
                assert_eq!(sl.bucket, b);
                assert_eq!(sl.count, bk.count);
                assert_eq!(s.slots[sl.next as usize].prev, id);
                id = sl.next;
                if id == head {
                    break;
                }
            }
            (prev_b, b) = (b, bk.next);
        }
        assert!(seen.iter().all(|x| *x), "every slot is in a bucket");
        assert_eq!(s.index.len(), s.slots.len());
        for (i, sl) in s.slots.iter().enumerate() {
            assert_eq!(s.find(s.hasher.hash_one(&sl.key), &sl.key), Some(i as u32));
            assert_eq!(sl.hash, s.hasher.hash_one(&sl.key));
            assert!(sl.error <= sl.count);
        }
        assert!(s.buckets.len() <= s.cap + 1, "bucket pool bounded");
    }

    #[test]
    fn structure_and_guarantees_hold_under_random_weights() {
        for (cap, keys, max_w) in [(16usize, 64u32, 7u64), (8, 8, 3), (1, 5, 2), (50, 2000, 1)] {
            let mut s = SpaceSaving::<u32>::new(cap);
            let mut truth: HashMap<u32, u64> = HashMap::new();
            let mut x: u32 = 12345 + cap as u32;
            for i in 0..20_000 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                // Skewed keys: low numbers are much more common.
                let k = ((x >> 16) % keys).min((x >> 8) % keys);
                let w = u64::from(x % 97) % (max_w + 1);
                s.offer(&k, w);
                *truth.entry(k).or_default() += w;
                if i % 997 == 0 {
                    check(&s);
                }
            }
            check(&s);
            let total: u64 = truth.values().sum();
            assert_eq!(s.total(), total);
            for h in s.iter() {
                let t = truth[h.key];
                assert!(h.count - h.error <= t && t <= h.count, "{h:?} true {t}");
            }
            for (k, t) in &truth {
                if *t > total / cap as u64 {
                    assert!(s.contains(k), "{k} with {t} of {total} must be kept");
                }
                if !s.contains(k) {
                    assert!(*t <= s.floor(), "unkept {k} has {t} > floor {}", s.floor());
                }
            }
        }
    }

    #[test]
    fn the_key_at_the_minimum_longest_is_evicted_first() {
        let mut s = SpaceSaving::<u32>::new(3);
        for k in [1, 2, 3] {
            s.offer(&k, 1);
        }
        s.offer(&4, 1); // 1 has waited longest at count 1
        assert!(!s.contains(&1) && s.contains(&4));
        s.offer(&5, 1); // then 2
        assert!(!s.contains(&2));
        check(&s);
        let t = s.top(3);
        assert_eq!((t[0].count, t[0].error), (2, 1));
        assert_eq!(s.floor(), 1);
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
