//! The flow table's index: a key's 32-bit hash to the slot holding its flow.
//!
//! One array of 8-byte cells probed linearly from a hash-chosen home. A lookup's first probe is
//! one cache line; a table that keeps its control bytes apart from its entries (hashbrown) reads
//! two, and with 100 k flows open, lines the flow state pushes out of the cache between two
//! packets of a flow, each is a miss the packet waits for before it can even reach its flow.
//! Kept at most three-quarters full, so a probe ends within a few cells, almost always in the
//! home's line. Removal shifts the cells behind back into the hole (no tombstones), so probes
//! stay short however many flows come and go.

/// A cell: `hash << 32 | (slot + 1)`; 0 is empty.
type Cell = u64;

/// Cells of the first table.
const FIRST: usize = 1024;

/// The index.
#[derive(Default)]
pub struct Index {
    cells: Vec<Cell>,
    len: usize,
    /// `32 - log2(cells.len())`: the home is the top bits of the scrambled hash.
    shift: u32,
}

fn cell(hash: u32, slot: u32) -> Cell {
    (u64::from(hash) << 32) | (u64::from(slot) + 1)
}

fn hash_of(c: Cell) -> u32 {
    (c >> 32) as u32
}

fn slot_of(c: Cell) -> usize {
    ((c & 0xffff_ffff) - 1) as usize
}

impl Index {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.cells.len().wrapping_sub(1)
    }

    /// Where the probe for `hash` starts. Fibonacci scrambling: the folded FxHash's low bits
    /// alone would crowd similar 4-tuples together.
    fn home(&self, hash: u32) -> usize {
        (hash.wrapping_mul(0x9E37_79B9) >> self.shift) as usize & self.mask()
    }

    /// Starts loading the cell where the probe for `hash` starts.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        if let Some(c) = self.cells.get(self.home(hash)) {
            super::prefetch(c);
        }
    }

    /// The slot of the entry with `hash` for which `is(slot)` holds.
    #[inline]
    pub fn find(&self, hash: u32, is: impl FnMut(usize) -> bool) -> Option<usize> {
        self.probe(hash, is).and_then(|i| self.cells.get(i)).map(|c| slot_of(*c))
    }

    /// The cell of the entry with `hash` for which `is(slot)` holds.
    #[inline]
    fn probe(&self, hash: u32, mut is: impl FnMut(usize) -> bool) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(hash);
        // Never more probes than cells: the table is never full, but a bound costs nothing.
        for _ in 0..self.cells.len() {
            let c = *self.cells.get(i)?;
            if c == 0 {
                return None;
            }
            if hash_of(c) == hash && is(slot_of(c)) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Adds an entry (the caller knows `slot` is not in the index).
    pub fn insert(&mut self, hash: u32, slot: u32) {
        if (self.len + 1) * 4 > self.cells.len() * 3 {
            self.grow();
        }
        self.place(cell(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, c: Cell) {
        let mask = self.mask();
        let mut i = self.home(hash_of(c));
        for _ in 0..self.cells.len() {
            match self.cells.get_mut(i) {
                Some(x) if *x == 0 => {
                    *x = c;
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let n = (self.cells.len() * 2).max(FIRST);
        let old = std::mem::replace(&mut self.cells, vec![0; n]);
        self.shift = 32 - n.trailing_zeros();
        for c in old.into_iter().filter(|c| *c != 0) {
            self.place(c);
        }
    }

    /// Removes the entry of `slot` (with `hash`); false if there is none.
    pub fn remove(&mut self, hash: u32, slot: usize) -> bool {
        let Some(mut hole) = self.probe(hash, |s| s == slot) else { return false };
        let mask = self.mask();
        let mut j = hole;
        // Backward shift: each later cell of the run moves into the hole unless its home lies
        // cyclically after the hole (it would then be found before reaching the hole's place).
        loop {
            j = (j + 1) & mask;
            let c = self.cells.get(j).copied().unwrap_or(0);
            if c == 0 {
                break;
            }
            let home = self.home(hash_of(c));
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                if let Some(h) = self.cells.get_mut(hole) {
                    *h = c;
                }
                hole = j;
            }
        }
        if let Some(h) = self.cells.get_mut(hole) {
            *h = 0;
        }
        self.len -= 1;
        true
    }

    /// Removes every entry (the cells stay allocated).
    pub fn clear(&mut self) {
        self.cells.fill(0);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn slots_of(ix: &Index, hash: u32) -> Vec<usize> {
        let mut found = Vec::new();
        // Every slot with this hash: ask for each in turn by refusing the ones already seen.
        while let Some(s) = ix.find(hash, |s| !found.contains(&s)) {
            found.push(s);
        }
        found.sort_unstable();
        found
    }

    #[test]
    fn an_entry_is_found_by_its_hash_and_slot_until_removed() {
        let mut ix = Index::default();
        assert_eq!(ix.find(7, |_| true), None);
        ix.insert(7, 3);
        assert_eq!(ix.find(7, |s| s == 3), Some(3));
        assert_eq!(ix.find(7, |s| s == 4), None);
        assert_eq!(ix.find(8, |_| true), None);
        assert!(ix.remove(7, 3));
        assert!(!ix.remove(7, 3));
        assert_eq!(ix.find(7, |_| true), None);
        assert!(ix.is_empty());
    }

    #[test]
    fn entries_sharing_a_hash_are_told_apart_by_their_slot() {
        let mut ix = Index::default();
        for slot in 0..50 {
            ix.insert(42, slot);
        }
        assert_eq!(slots_of(&ix, 42), (0..50).collect::<Vec<_>>());
        assert!(ix.remove(42, 17));
        assert_eq!(ix.find(42, |s| s == 17), None);
        assert_eq!(ix.find(42, |s| s == 49), Some(49));
        assert_eq!(ix.len(), 49);
    }

    #[test]
    fn removal_keeps_entries_that_probed_past_it_reachable_across_the_table_end() {
        let mut ix = Index::default();
        ix.insert(0, 0);
        // Hashes whose home is the last cell: the run wraps to the front.
        let last = (0..u32::MAX).find(|h| ix.home(*h) == ix.mask()).unwrap_or(0);
        for slot in 1..6 {
            ix.insert(last, slot);
        }
        assert!(ix.remove(last, 1));
        for slot in 2..6 {
            assert_eq!(ix.find(last, |s| s == slot), Some(slot), "slot {slot}");
        }
        assert_eq!(ix.find(0, |s| s == 0), Some(0));
    }

    proptest! {
        #[test]
        fn behaves_as_a_map_through_growth_and_removals(
            ops in proptest::collection::vec((any::<bool>(), 0u32..64, 0u32..3000), 1..3000)
        ) {
            // Few distinct hashes: long runs, shared hashes, wrap-around and growth all happen.
            let mut ix = Index::default();
            let mut model: HashMap<u32, u32> = HashMap::new();
            for (add, hash, slot) in ops {
                match (add, model.get(&slot).copied()) {
                    (true, None) => {
                        ix.insert(hash, slot);
                        model.insert(slot, hash);
                    }
                    (_, Some(h)) if !add => {
                        prop_assert!(ix.remove(h, slot as usize));
                        model.remove(&slot);
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(ix.len(), model.len());
            for (slot, hash) in &model {
                prop_assert_eq!(ix.find(*hash, |s| s == *slot as usize), Some(*slot as usize));
            }
        }
    }
}
