//! Every string the inventory's keys and records hold, once; they hold its ids. A lookup then
//! hashes and compares a few words in the tables' own memory instead of following string
//! pointers (the inventory's largest cost was those cache misses).

use std::sync::Arc;

use super::Map;

#[derive(Default)]
pub(super) struct Strings {
    ids: Map<Arc<str>, u32>,
    all: Vec<Arc<str>>,
}

impl Strings {
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The id of `s`, added when new; none once ids run out.
    pub fn intern(&mut self, s: &str) -> Option<u32> {
        if let Some(id) = self.get(s) {
            return Some(id);
        }
        let id = u32::try_from(self.all.len()).ok()?;
        let s: Arc<str> = s.into();
        self.all.push(s.clone());
        self.ids.insert(s, id);
        Some(id)
    }

    pub fn str(&self, id: u32) -> &str {
        &self.all[id as usize]
    }

    /// The shared string of `id`, for owned output without copying it.
    pub fn arc(&self, id: u32) -> Arc<str> {
        self.all[id as usize].clone()
    }

    /// Each id's position in the sorted order of all strings.
    pub fn ranks(&self) -> Vec<u32> {
        let mut by_text: Vec<u32> = (0..self.all.len() as u32).collect();
        by_text.sort_unstable_by_key(|&id| self.str(id));
        let mut rank = vec![0; by_text.len()];
        for (r, id) in by_text.into_iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        rank
    }
}
