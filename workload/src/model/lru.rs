//! Exact LRU replacement with O(1) operations.

use std::fmt;

use hashbrown::HashMap;

use super::HitStats;

/// Marks the absence of a neighbour in the recency list.
const NIL: usize = usize::MAX;

/// One resident key and its neighbours in recency order.
#[derive(Clone)]
struct Node {
    key: u64,
    /// The next more recently used node, or [`NIL`] for the head.
    newer: usize,
    /// The next less recently used node, or [`NIL`] for the tail.
    older: usize,
}

/// An exact least-recently-used cache of `u64` keys (no values).
///
/// Resident keys form a doubly linked recency list whose nodes live in a
/// `Vec` and link to each other by index; a hash map finds a key's node. Every
/// operation is O(1), and memory is allocated only up to the number of
/// distinct keys seen (at most the capacity), never for the capacity up front.
///
/// ```
/// use workload::model::Lru;
///
/// let mut lru = Lru::new(2);
/// assert!(!lru.access(1)); // miss
/// assert!(!lru.access(2)); // miss
/// assert!(lru.access(1)); // hit; 2 is now least recently used
/// assert!(!lru.access(3)); // miss, evicts 2
/// assert!(!lru.contains(2));
/// assert_eq!(lru.iter().collect::<Vec<_>>(), [3, 1]);
/// ```
#[derive(Clone)]
pub struct Lru {
    capacity: usize,
    map: HashMap<u64, usize>,
    nodes: Vec<Node>,
    /// Most recently used node.
    head: usize,
    /// Least recently used node.
    tail: usize,
}

impl fmt::Debug for Lru {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lru")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Lru {
    /// Creates an empty cache holding at most `capacity` keys.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// The maximum number of resident keys.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of resident keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is resident.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `key` is resident, without changing its recency.
    #[must_use]
    pub fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// Accesses `key`: returns `true` on a hit. A hit makes the key the most
    /// recently used; a miss inserts it as the most recently used, evicting
    /// the least recently used key if the cache is full. With capacity 0
    /// nothing is ever inserted.
    pub fn access(&mut self, key: u64) -> bool {
        if let Some(&index) = self.map.get(&key) {
            self.unlink(index);
            self.push_front(index);
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        let index = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key,
                newer: NIL,
                older: NIL,
            });
            self.nodes.len() - 1
        } else {
            // Full (and non-empty, as capacity > 0): reuse the tail's node.
            let index = self.tail;
            self.unlink(index);
            let evicted = std::mem::replace(&mut self.nodes[index].key, key);
            self.map.remove(&evicted);
            index
        };
        self.push_front(index);
        self.map.insert(key, index);
        false
    }

    /// The resident keys, from most to least recently used.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let mut next = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(next)?;
            next = node.older;
            Some(node.key)
        })
    }

    /// Removes node `index` from the recency list (it stays in `nodes`).
    fn unlink(&mut self, index: usize) {
        let Node { newer, older, .. } = self.nodes[index];
        match self.nodes.get_mut(newer) {
            Some(n) => n.older = older,
            None => self.head = older,
        }
        match self.nodes.get_mut(older) {
            Some(n) => n.newer = newer,
            None => self.tail = newer,
        }
    }

    /// Links node `index` in as the most recently used.
    fn push_front(&mut self, index: usize) {
        let old_head = self.head;
        {
            let node = &mut self.nodes[index];
            node.newer = NIL;
            node.older = old_head;
        }
        match self.nodes.get_mut(old_head) {
            Some(n) => n.newer = index,
            None => self.tail = index,
        }
        self.head = index;
    }
}

/// Replays `keys` against an [`Lru`] of the given capacity.
#[must_use]
pub fn simulate_lru(keys: &[u64], capacity: usize) -> HitStats {
    let mut lru = Lru::new(capacity);
    let mut stats = HitStats::default();
    for &key in keys {
        stats.record(lru.access(key));
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// An obviously correct O(capacity) LRU: a vector ordered from least to
    /// most recently used.
    fn naive_lru(keys: &[u64], capacity: usize) -> (HitStats, Vec<u64>) {
        let mut order: Vec<u64> = Vec::new();
        let mut stats = HitStats::default();
        for &key in keys {
            let hit = if let Some(pos) = order.iter().position(|&k| k == key) {
                order.remove(pos);
                true
            } else {
                if order.len() == capacity && capacity > 0 {
                    order.remove(0);
                }
                false
            };
            if capacity > 0 {
                order.push(key);
            }
            stats.record(hit);
        }
        order.reverse();
        (stats, order)
    }

    #[test]
    fn evicts_the_least_recently_used_key() {
        let mut lru = Lru::new(3);
        for key in [1, 2, 3] {
            assert!(!lru.access(key));
        }
        assert!(lru.access(1)); // order (MRU first): 1 3 2
        assert!(!lru.access(4)); // evicts 2
        assert_eq!(lru.iter().collect::<Vec<_>>(), [4, 1, 3]);
        assert!(!lru.contains(2));
        assert!(lru.contains(3));
        assert_eq!(lru.len(), 3);
        assert!(!lru.access(2)); // evicts 3
        assert_eq!(lru.iter().collect::<Vec<_>>(), [2, 4, 1]);
    }

    #[test]
    fn capacity_zero_and_one() {
        let mut empty = Lru::new(0);
        assert!(!empty.access(1));
        assert!(!empty.access(1));
        assert!(empty.is_empty());
        assert_eq!(simulate_lru(&[1, 1, 1], 0).hits, 0);

        assert_eq!(
            simulate_lru(&[1, 1, 2, 2, 1], 1),
            HitStats {
                hits: 2,
                accesses: 5
            }
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under miri")]
    fn matches_a_naive_implementation_on_random_sequences() {
        let mut rng = Rng::new(99);
        for capacity in [1, 2, 3, 7, 16, 50] {
            let keys: Vec<u64> = (0..3000).map(|_| rng.below(60)).collect();
            let (expected, expected_order) = naive_lru(&keys, capacity);
            let mut lru = Lru::new(capacity);
            let mut stats = HitStats::default();
            for &key in &keys {
                stats.record(lru.access(key));
            }
            assert_eq!(stats, expected, "capacity {capacity}");
            assert_eq!(lru.iter().collect::<Vec<_>>(), expected_order);
            assert_eq!(simulate_lru(&keys, capacity), expected);
        }
    }

    #[test]
    fn a_cyclic_scan_larger_than_the_cache_never_hits() {
        let keys: Vec<u64> = (0..10).cycle().take(1000).collect();
        assert_eq!(simulate_lru(&keys, 9).hits, 0);
        assert_eq!(simulate_lru(&keys, 10).hits, 990);
    }

    #[test]
    fn huge_capacity_does_not_preallocate() {
        let stats = simulate_lru(&[1, 2, 1], usize::MAX);
        assert_eq!(stats.hits, 1);
        assert!(format!("{:?}", Lru::new(usize::MAX)).contains("capacity"));
    }
}
