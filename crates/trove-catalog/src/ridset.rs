//! Sets of catalog row ids as plain bitmaps: the currency of query execution. Each filter condition reads
//! its matching rows from one index into a set; `and`, `or` and `not` are then word-wise operations, which
//! cost microseconds where SQLite's own intersection of large subqueries costs a second at a million rows.

/// A set of row ids (`datasets.rid`), one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RidSet {
    words: Vec<u64>,
}

impl RidSet {
    pub fn new() -> RidSet {
        RidSet::default()
    }

    /// Adds a row id. Ids are SQLite rowids: positive, and dense enough in practice for a bitmap.
    pub fn insert(&mut self, rid: i64) {
        let Ok(rid) = usize::try_from(rid) else { return };
        let word = rid / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (rid % 64);
    }

    pub fn remove(&mut self, rid: i64) {
        if let Ok(rid) = usize::try_from(rid)
            && let Some(word) = self.words.get_mut(rid / 64)
        {
            *word &= !(1 << (rid % 64));
        }
    }

    pub fn contains(&self, rid: i64) -> bool {
        usize::try_from(rid).is_ok_and(|rid| self.words.get(rid / 64).is_some_and(|w| w & (1 << (rid % 64)) != 0))
    }

    /// The number of ids in the set.
    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Keeps the ids that are also in `other`.
    pub fn intersect_with(&mut self, other: &RidSet) {
        self.words.truncate(other.words.len());
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// Adds every id of `other`.
    pub fn union_with(&mut self, other: &RidSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Removes every id of `other`.
    pub fn difference_with(&mut self, other: &RidSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// The ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some((i * 64 + bit) as i64)
            })
        })
    }
}

/// The answer to a filter: a set of row ids, or every visible dataset in scope but a set (`not exists(x)`),
/// kept that way so that nobody lists every dataset just to leave a few out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matches {
    pub set: RidSet,
    /// True when the answer is everything in scope except `set`.
    pub complement: bool,
}

impl Matches {
    pub fn contains(&self, rid: i64) -> bool {
        self.set.contains(rid) != self.complement
    }

    pub fn insert(&mut self, rid: i64) {
        if self.complement { self.set.remove(rid) } else { self.set.insert(rid) }
    }

    pub fn remove(&mut self, rid: i64) {
        if self.complement { self.set.insert(rid) } else { self.set.remove(rid) }
    }

    /// These matches less `other`.
    pub fn without(&self, other: &RidSet) -> Matches {
        let mut set = self.set.clone();
        if self.complement {
            set.union_with(other)
        } else {
            set.difference_with(other)
        }
        Matches { set, complement: self.complement }
    }
}

impl FromIterator<i64> for RidSet {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> RidSet {
        let mut set = RidSet::new();
        for rid in iter {
            set.insert(rid);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn behaves_like_a_set(a in proptest::collection::btree_set(0i64..500, 0..60),
                              b in proptest::collection::btree_set(0i64..700, 0..60)) {
            let (sa, sb): (RidSet, RidSet) = (a.iter().copied().collect(), b.iter().copied().collect());
            prop_assert_eq!(sa.iter().collect::<Vec<_>>(), a.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(sa.len(), a.len() as u64);
            let mut i = sa.clone();
            i.intersect_with(&sb);
            prop_assert_eq!(i.iter().collect::<BTreeSet<_>>(), a.intersection(&b).copied().collect());
            let mut u = sa.clone();
            u.union_with(&sb);
            prop_assert_eq!(u.iter().collect::<BTreeSet<_>>(), a.union(&b).copied().collect());
            let mut d = sa.clone();
            d.difference_with(&sb);
            prop_assert_eq!(d.iter().collect::<BTreeSet<_>>(), a.difference(&b).copied().collect());
            for x in 0..700 {
                prop_assert_eq!(sa.contains(x), a.contains(&x));
            }
        }
    }
}
