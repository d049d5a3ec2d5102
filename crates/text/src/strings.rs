//! The vocabulary's strings in one buffer, with an open-addressing index.
//!
//! A 262k-token vocabulary as `Vec<String>` plus a `HashMap<String, u32>` costs
//! half a million allocations at startup; here it is two buffers and a table
//! of ids, and lookups by `&str` need no allocation either.

use crate::hash::FxHasher;
use std::hash::Hasher;

const EMPTY: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(crate) struct StringTable {
    arena: String,
    /// `ends[i]` is where string i ends in `arena`; it starts where i-1 ends
    ends: Vec<u32>,
    /// ids by hash, `EMPTY` where free; length is a power of two
    slots: Vec<u32>,
}

fn hash(s: &str) -> usize {
    let mut h = FxHasher::default();
    h.write(s.as_bytes());
    h.finish() as usize
}

impl StringTable {
    pub(crate) fn with_capacity(strings: usize, bytes: usize) -> StringTable {
        let slots = (strings * 2).next_power_of_two().max(16);
        StringTable {
            arena: String::with_capacity(bytes),
            ends: Vec::with_capacity(strings),
            slots: vec![EMPTY; slots],
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        let i = id as usize;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.arena.get(start..end)
    }

    /// The slot holding `s`, or the free slot where it would go.
    fn probe(&self, s: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = hash(s) & mask;
        loop {
            let id = self.slots[i];
            if id == EMPTY || self.get(id) == Some(s) {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `s` (the last one pushed, if pushed twice).
    pub(crate) fn find(&self, s: &str) -> Option<u32> {
        let id = self.slots[self.probe(s)];
        (id != EMPTY).then_some(id)
    }

    /// Appends `s` as a new id; a later duplicate takes over lookups, as in
    /// llama.cpp's `token_to_id[text] = id`.
    pub(crate) fn push(&mut self, s: &str) -> u32 {
        if (self.ends.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let id = self.ends.len() as u32;
        self.arena.push_str(s);
        self.ends.push(self.arena.len() as u32);
        let slot = self.probe(s);
        self.slots[slot] = id;
        id
    }

    /// The id of `s`, pushing it first if it is new.
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        match self.find(s) {
            Some(id) => id,
            None => self.push(s),
        }
    }

    fn grow(&mut self) {
        let bigger = vec![EMPTY; (self.slots.len() * 2).max(16)];
        let old = std::mem::replace(&mut self.slots, bigger);
        for id in old.into_iter().filter(|&id| id != EMPTY) {
            let Some(s) = self.get(id) else { continue };
            let slot = self.probe(s);
            self.slots[slot] = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_resolve_to_the_last_and_growth_keeps_everything() {
        let mut t = StringTable::with_capacity(1, 0);
        let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
        for w in &words {
            t.push(w);
        }
        let dup = t.push("w7");
        assert_eq!(t.find("w7"), Some(dup));
        assert_eq!(t.get(7), Some("w7"));
        for (i, w) in words.iter().enumerate().filter(|(i, _)| *i != 7) {
            assert_eq!(t.find(w), Some(i as u32));
        }
        assert_eq!(t.find("nope"), None);
        assert_eq!(t.intern("w3"), 3);
        assert_eq!(t.intern("new"), 1001);
        assert_eq!(t.get(5000), None);
    }
}
