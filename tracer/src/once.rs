//! A bounded "already said" set: what a long-running agent remembers so that a warning (or a
//! `container_start`) is given once, without growing for as long as it runs.
//!
//! Past its capacity the oldest entry is forgotten, and counted ([`OnceSet::forgotten`]). A
//! new problem is never hidden behind old ones; the cost of forgetting is at most that an old
//! warning, if its cause comes back, is said once more.

use std::{
    collections::{HashSet, VecDeque},
    hash::Hash,
};

/// How many warnings the resolver remembers having given.
pub const WARNINGS_MAX: usize = 1024;

#[derive(Debug, Clone)]
pub struct OnceSet<T> {
    seen: HashSet<T>,
    /// Insertion order, oldest first (the same entries as `seen`).
    order: VecDeque<T>,
    cap: usize,
    forgotten: u64,
}

impl<T: Hash + Eq + Clone> OnceSet<T> {
    /// A set of at most `cap` entries (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            forgotten: 0,
        }
    }

    /// `true` the first time `v` is given (or the first time since it was forgotten).
    pub fn insert(&mut self, v: T) -> bool {
        if self.seen.contains(&v) {
            return false;
        }
        if self.order.len() == self.cap {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
                self.forgotten += 1;
            }
        }
        self.seen.insert(v.clone());
        self.order.push_back(v);
        true
    }

    /// Forget `v` on purpose (it is over): not counted as forgotten.
    pub fn remove(&mut self, v: &T) {
        if self.seen.remove(v) {
            self.order.retain(|o| o != v);
        }
    }

    pub fn contains(&self, v: &T) -> bool {
        self.seen.contains(v)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Entries dropped at the bound since the start.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_until_forgotten_at_the_bound() {
        let mut s = OnceSet::new(3);
        assert!(s.insert("a"));
        assert!(!s.insert("a"), "once");
        assert!(s.insert("b") && s.insert("c"));
        assert_eq!((s.len(), s.forgotten()), (3, 0));
        // Full: the oldest goes, counted; a new warning is never swallowed.
        assert!(s.insert("d"));
        assert_eq!((s.len(), s.forgotten()), (3, 1));
        assert!(!s.contains(&"a") && s.contains(&"d"));
        assert!(s.insert("a"), "forgotten, so said again");
        assert_eq!(s.forgotten(), 2);
    }

    #[test]
    fn removal_is_not_forgetting() {
        let mut s = OnceSet::new(2);
        s.insert(1);
        s.insert(2);
        s.remove(&1);
        assert!(s.insert(3));
        assert_eq!((s.len(), s.forgotten()), (2, 0));
    }

    #[test]
    fn a_hundred_thousand_distinct_entries_stay_bounded() {
        let mut s = OnceSet::new(WARNINGS_MAX);
        for i in 0..100_000u32 {
            assert!(s.insert(format!("state root {i}: unreadable")));
        }
        assert_eq!(s.len(), WARNINGS_MAX);
        assert_eq!(s.order.len(), WARNINGS_MAX);
        assert_eq!(s.forgotten(), 100_000 - WARNINGS_MAX as u64);
    }
}
