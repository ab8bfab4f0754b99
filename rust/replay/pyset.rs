//! CPython 3.11's `set` table (`Objects/setobject.c`), enough to reproduce the iteration order
//! of the sets `PenguinStyleBaseline` builds: elements are small indices carrying their Python
//! `hash()`, and every operation places them in the table exactly as CPython does (linear
//! probes of 9, perturbation shift 5, growth at 3/5 full, dummies left by discards). The order
//! in which the baseline meets its partners depends on it (subset ties, shuffles, the split of
//! future offers), so the Rust replay must iterate them in the same order as Python.

const MIN_SIZE: usize = 8;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;

/// CPython's probe sequence of a hash in a table of `mask + 1` slots: windows of up to ten
/// slots `i ..= i + 9` (one slot near the end of the table), then `i = 5 i + 1 + perturb`
/// with `perturb` the hash shifted right by 5 more each time.
struct Probe {
    i: usize,
    perturb: u64,
    mask: usize,
}

impl Probe {
    fn new(hash: i64, mask: usize) -> Self {
        Self {
            i: (hash as u64 as usize) & mask,
            perturb: hash as u64,
            mask,
        }
    }

    fn window(&mut self) -> std::ops::RangeInclusive<usize> {
        let i = self.i;
        let probes = if i + LINEAR_PROBES <= self.mask {
            LINEAR_PROBES
        } else {
            0
        };
        self.perturb >>= PERTURB_SHIFT;
        self.i = i
            .wrapping_mul(5)
            .wrapping_add(1)
            .wrapping_add(self.perturb as usize)
            & self.mask;
        i..=i + probes
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Unused,
    Dummy,
    Active(usize),
}

/// A set of element ids (`0 .. hashes.len()`), laid out like a CPython set of objects whose
/// `hash()` are `hashes[id]`.
#[derive(Clone)]
pub struct PySet<'h> {
    hashes: &'h [i64],
    table: Vec<Slot>,
    fill: usize,
    used: usize,
}

impl<'h> PySet<'h> {
    /// `set()`.
    pub fn new(hashes: &'h [i64]) -> Self {
        Self {
            hashes,
            table: vec![Slot::Unused; MIN_SIZE],
            fill: 0,
            used: 0,
        }
    }

    /// `{x for x in items}` (one `add` per item, in order).
    pub fn from_adds(hashes: &'h [i64], items: impl IntoIterator<Item = usize>) -> Self {
        let mut s = Self::new(hashes);
        for x in items {
            s.add(x);
        }
        s
    }

    /// `set(d)` of a dict whose keys are `keys` (in insertion order): presized, then added.
    pub fn from_dict_keys(hashes: &'h [i64], keys: &[usize]) -> Self {
        let mut s = Self::new(hashes);
        if (s.fill + keys.len()) * 5 >= s.mask() * 3 {
            s.resize((s.used + keys.len()) * 2);
        }
        for &x in keys {
            s.add(x);
        }
        s
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    fn hash(&self, x: usize) -> i64 {
        self.hashes[x]
    }

    /// The elements in iteration order.
    pub fn items(&self) -> Vec<usize> {
        self.table
            .iter()
            .filter_map(|s| match s {
                Slot::Active(x) => Some(*x),
                _ => None,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub fn contains(&self, x: usize) -> bool {
        self.find(x).is_some()
    }

    /// The slot holding `x` (`set_lookkey`).
    fn find(&self, x: usize) -> Option<usize> {
        let mut probe = Probe::new(self.hash(x), self.mask());
        loop {
            for j in probe.window() {
                match self.table[j] {
                    Slot::Unused => return None,
                    Slot::Active(y) if y == x => return Some(j),
                    _ => {}
                }
            }
        }
    }

    /// `set.add` (`set_add_entry`) on a set without dummies (the baseline adds only to sets
    /// it has just made; CPython would reuse the first dummy on the probe path).
    pub fn add(&mut self, x: usize) {
        debug_assert_eq!(self.fill, self.used, "add on a set with dummies");
        if self.contains(x) {
            return;
        }
        Self::insert_clean(&mut self.table, self.hashes[x], x);
        self.fill += 1;
        self.used += 1;
        if self.fill * 5 >= self.mask() * 3 {
            let minused = if self.used > 50_000 {
                self.used * 2
            } else {
                self.used * 4
            };
            self.resize(minused);
        }
    }

    /// `set_insert_clean`: place `x` in the first unused slot of its probe path.
    fn insert_clean(table: &mut [Slot], hash: i64, x: usize) {
        let mut probe = Probe::new(hash, table.len() - 1);
        loop {
            let window = probe.window();
            if let Some(slot) = table[window].iter_mut().find(|s| **s == Slot::Unused) {
                *slot = Slot::Active(x);
                return;
            }
        }
    }

    /// `set_table_resize`: a table of the smallest power of two above `minused` (at least 8),
    /// the active elements re-inserted in their old table order.
    fn resize(&mut self, minused: usize) {
        let mut size = MIN_SIZE;
        while size <= minused {
            size <<= 1;
        }
        let mut table = vec![Slot::Unused; size];
        for s in &self.table {
            if let Slot::Active(x) = *s {
                Self::insert_clean(&mut table, self.hash(x), x);
            }
        }
        self.table = table;
        self.fill = self.used;
    }

    /// `set(other)` / `other.copy()` (`set_merge` into an empty set): the table is copied as is
    /// when it has the same size and no dummies, else re-inserted in its order.
    pub fn copy(other: &PySet<'h>) -> Self {
        let mut s = Self::new(other.hashes);
        if other.used == 0 {
            return s;
        }
        if (s.fill + other.used) * 5 >= s.mask() * 3 {
            s.resize((s.used + other.used) * 2);
        }
        if s.mask() == other.mask() && other.fill == other.used {
            s.table = other.table.clone();
        } else {
            for slot in &other.table {
                if let Slot::Active(x) = *slot {
                    Self::insert_clean(&mut s.table, s.hashes[x], x);
                }
            }
        }
        s.fill = other.used;
        s.used = other.used;
        s
    }

    /// `set.discard(x)`: the slot becomes a dummy.
    pub fn discard(&mut self, x: usize) {
        if let Some(j) = self.find(x) {
            self.table[j] = Slot::Dummy;
            self.used -= 1;
        }
    }

    /// `set_difference_update_internal`: discard every item, then, when over a quarter of the
    /// table is dummies, re-insert into a fresh table (`used * 4`).
    fn discard_all(&mut self, items: impl IntoIterator<Item = usize>) {
        for x in items {
            self.discard(x);
        }
        if self.fill - self.used > self.mask() / 4 {
            let minused = if self.used > 50_000 {
                self.used * 2
            } else {
                self.used * 4
            };
            self.resize(minused);
        }
    }

    /// `self.difference(items)` with `items` a tuple or list: a copy with the items discarded.
    pub fn difference_seq(&self, items: &[usize]) -> Self {
        let mut s = Self::copy(self);
        s.discard_all(items.iter().copied());
        s
    }

    /// `self - other` (`set_difference` with a set): a discarding copy when `self` is over
    /// four times larger, else a new set of `self`'s elements not in `other`, in order.
    pub fn minus(&self, other: &PySet<'h>) -> Self {
        if (self.used >> 2) > other.used {
            let mut s = Self::copy(self);
            s.discard_all(other.items());
            return s;
        }
        Self::from_adds(
            self.hashes,
            self.items().into_iter().filter(|&x| !other.contains(x)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(field: &str) -> Vec<usize> {
        field
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect()
    }

    /// `pyset_cases.txt`: 1000 random cases printed by CPython 3.11.7 with ints as elements
    /// (`hash(i) == i`; mostly large values as string hashes are, some small and colliding
    /// ones). Per line, `;`-separated: the hashes, then as element indices: `L`,
    /// `A = {x for x in L}`, `sub` (a tuple of A's elements), `B = A.difference(sub)`,
    /// `C = set(B)`, dict keys `K`, `D = set(dict.fromkeys(K))`, `C - D`, `A - D`, and
    /// `(B | {extra}) - B'` with `B'` a small subset (the discarding copy of `minus`).
    #[test]
    fn iteration_orders_match_cpython() {
        for (n, line) in include_str!("pyset_cases.txt").lines().enumerate() {
            let f: Vec<&str> = line.split(';').collect();
            let hashes: Vec<i64> = f[0].split(',').map(|s| s.parse().unwrap()).collect();
            let a = PySet::from_adds(&hashes, ids(f[1]));
            assert_eq!(a.items(), ids(f[2]), "case {n}: A");
            let b = a.difference_seq(&ids(f[3]));
            assert_eq!(b.items(), ids(f[4]), "case {n}: B");
            let c = PySet::copy(&b);
            assert_eq!(c.items(), ids(f[5]), "case {n}: C");
            let d = PySet::from_dict_keys(&hashes, &ids(f[6]));
            assert_eq!(d.items(), ids(f[7]), "case {n}: D");
            assert_eq!(c.minus(&d).items(), ids(f[8]), "case {n}: C - D");
            assert_eq!(a.minus(&d).items(), ids(f[9]), "case {n}: A - D");
            let small = PySet::from_adds(&hashes, ids(f[10]));
            assert_eq!(a.minus(&small).items(), ids(f[11]), "case {n}: A - small");
        }
    }
}
