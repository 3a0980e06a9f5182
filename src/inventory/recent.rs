//! A bounded memory of observation record ids, so a redelivered record is counted once.

use std::collections::HashSet;

/// Two generations, the older dropped when the newer fills, so the last `window / 2` to
/// `window` ids are always remembered in O(1) per id.
pub(super) struct RecentIds {
    current: HashSet<u128, foldhash::fast::RandomState>,
    previous: HashSet<u128, foldhash::fast::RandomState>,
    generation: usize,
}

impl RecentIds {
    pub fn new(window: usize) -> Self {
        RecentIds {
            current: Default::default(),
            previous: Default::default(),
            generation: (window / 2).max(1),
        }
    }

    /// True when `id` is new.
    pub fn insert(&mut self, id: u128) -> bool {
        if self.previous.contains(&id) || !self.current.insert(id) {
            return false;
        }
        if self.current.len() >= self.generation {
            self.previous = std::mem::take(&mut self.current);
        }
        true
    }
}
