//! Customer ids to dense codes, in one pass over the batches in input order.

use crate::base::transactions::{CustomerIds, Transactions};

use super::{hash_bytes, Batch, Skips};

/// Customer ids are interned in shards chosen by hash bits. Each shard's
/// table is small enough to stay in cache while a window of batches is
/// interned shard by shard, and shards run in parallel: a single global
/// table made every lookup a cache miss and interning the slowest stage.
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
/// How many rows ahead of the one interned its table slot is prefetched.
const PREFETCH_ROWS: usize = 16;

/// The shard comes from bits 40 to 45 of the id's hash: the top bits pick
/// the streaming engine's partition, and a shard taken from them would get
/// a whole partition's ids.
#[inline]
fn shard_of(hash: u64) -> usize {
    ((hash >> 40) as usize) & (SHARDS - 1)
}

/// The hash a shard's table sees: within one shard (and one streaming
/// partition) some hash bits are the same for every id, so they are mixed
/// before the table takes its slot from the low bits.
#[inline]
fn table_hash(hash: u64) -> u64 {
    let x = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// One shard: ids in first-seen order within the shard.
struct Shard {
    table: IdTable,
    ids: CustomerIds,
    /// The hash of an id, recomputed when the table grows rather than kept
    /// (8 bytes a customer, for a growth or two per shard); the readers'
    /// [`hash_bytes`] but for tests that make hashes collide.
    hash_of: fn(&[u8]) -> u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { table: IdTable::default(), ids: CustomerIds::default(), hash_of: hash_bytes }
    }
}

/// An open-addressing table (linear probing) from id to code. With millions
/// of customers nearly every lookup misses the cache; here the slot a
/// lookup will read is known from the id's hash alone, so the interning
/// loop prefetches it rows ahead and the misses overlap, which a general
/// hash map's API does not allow.
///
/// A slot keeps the id's first eight bytes and length beside its code, so
/// an id of up to eight bytes (most customer ids) compares in the slot
/// itself: comparing against the stored id bytes cost two more cache
/// misses and a `memcmp` call per row. A slot is two words:
/// `[head, (len + 1) << 32 | code]`. A zero second word is thus a free slot,
/// whatever the id, and a new table is zeroed memory, which the allocator
/// need not touch.
#[derive(Default)]
struct IdTable {
    slots: Vec<[u64; 2]>,
    used: usize,
}

impl IdTable {
    /// At most this share of slots (7/10) is used before the table grows.
    fn capacity_for(entries: usize) -> usize {
        (entries * 10 / 7 + 1).next_power_of_two().max(16)
    }

    /// Grows the table if `more` ids would fill it past its share.
    #[inline]
    fn reserve(&mut self, more: usize, hash_of: impl Fn(u32) -> u64) {
        let wanted = self.used + more;
        if wanted * 10 > self.slots.len() * 7 {
            self.rebuild(Self::capacity_for(wanted), hash_of);
        }
    }

    fn rebuild(&mut self, capacity: usize, hash_of: impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![[0u64; 2]; capacity]);
        let mask = capacity - 1;
        for slot in old.into_iter().filter(|s| s[1] != 0) {
            let mut i = table_hash(hash_of(slot[1] as u32)) as usize & mask;
            while self.slots[i][1] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Asks for the slot where a lookup of `hash` starts.
    #[inline]
    fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            crate::base::prefetch(&self.slots, table_hash(hash) as usize & (self.slots.len() - 1));
        }
    }

    /// The code of the id with this `hash`, first eight bytes `head` and
    /// length `len` for which `rest_equal(code)` holds (it compares the
    /// bytes past the eighth); if there is none, `Err` with the free slot
    /// for [`IdTable::fill`].
    #[inline]
    fn find(
        &self,
        hash: u64,
        head: u64,
        len: u32,
        rest_equal: impl Fn(u32) -> bool,
    ) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut i = table_hash(hash) as usize & mask;
        loop {
            let [h, meta] = self.slots[i];
            if meta == 0 {
                return Err(i);
            }
            let code = meta as u32;
            if h == head && meta >> 32 == u64::from(len) + 1 && (len <= 8 || rest_equal(code)) {
                return Ok(code);
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts a new id's code into the free slot `find` gave.
    #[inline]
    fn fill(&mut self, slot: usize, head: u64, len: u32, code: u32) {
        debug_assert!((self.used + 1) * 10 <= self.slots.len() * 7, "reserve first");
        self.slots[slot] = [head, (u64::from(len) + 1) << 32 | u64::from(code)];
        self.used += 1;
    }
}

/// The first eight bytes of `key`, zero-padded.
#[inline]
pub(super) fn head_of(key: &[u8]) -> u64 {
    if key.len() >= 8 {
        u64::from_le_bytes(key[..8].try_into().unwrap())
    } else {
        let mut b = [0u8; 8];
        b[..key.len()].copy_from_slice(key);
        u64::from_le_bytes(b)
    }
}

impl Shard {
    /// The code of `key`, whose hash is `hash` and whose [`head_of`] is `head`.
    /// `hash` must be the shard's `hash_of(key)`: growing the table places
    /// every id again by that function.
    #[inline]
    fn intern(&mut self, key: &[u8], hash: u64, head: u64) -> u32 {
        let Shard { table, ids, hash_of } = self;
        debug_assert_eq!(hash, hash_of(key), "the shard's hash of the id");
        let len = u32::try_from(key.len()).expect("a customer id shorter than 4 GiB");
        table.reserve(1, |code| hash_of(ids.get_bytes(code)));
        match table.find(hash, head, len, |code| ids.get_bytes(code)[8..] == key[8..]) {
            Ok(code) => code,
            Err(slot) => {
                let code = ids.push(key);
                table.fill(slot, head, len, code);
                code
            }
        }
    }
}

impl Batch {
    /// Groups row indices by shard (a counting sort), so each shard's worker
    /// visits only its rows.
    pub(crate) fn index_shards(&mut self) {
        let mut starts = std::mem::take(&mut self.shard_starts);
        starts.clear();
        starts.resize(SHARDS + 1, 0);
        for &h in &self.key_hash {
            starts[shard_of(h) + 1] += 1;
        }
        for s in 0..SHARDS {
            starts[s + 1] += starts[s];
        }
        let mut fill = starts.clone();
        let mut rows = std::mem::take(&mut self.shard_rows);
        rows.clear();
        rows.resize(self.key_hash.len(), 0);
        for (i, &h) in self.key_hash.iter().enumerate() {
            let s = shard_of(h);
            rows[fill[s] as usize] = i as u32;
            fill[s] += 1;
        }
        self.shard_rows = rows;
        self.shard_starts = starts;
    }

    fn rows_of_shard(&self, s: usize) -> &[u32] {
        &self.shard_rows[self.shard_starts[s] as usize..self.shard_starts[s + 1] as usize]
    }
}

/// Accumulates batches in input order. Customer codes are provisional
/// (shard-local index and shard) until [`Builder::finish`] makes them dense.
pub(crate) struct Builder {
    shards: Vec<Shard>,
    tx: Transactions,
    row_hash: Vec<u64>,
    skipped: Skips,
    /// `--keep` values of every row, row-major.
    kept: CustomerIds,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            tx: Transactions::default(),
            row_hash: Vec::new(),
            skipped: Skips::default(),
            kept: CustomerIds::default(),
        }
    }

    fn push_window(&mut self, window: &mut [Batch]) {
        use rayon::prelude::*;
        for b in window.iter_mut() {
            if b.shard_starts.is_empty() {
                b.index_shards();
            }
        }
        let Builder { shards, tx, row_hash, skipped, kept } = self;
        let base = tx.customer.len();
        let total: usize = window.iter().map(|b| b.day.len()).sum();
        let window = &*window;
        // The rows' other columns are copied while the ids are interned: on
        // a fresh machine the copies' page faults cost as much as the
        // interning, and on one thread they held up the reading.
        let (codes, ()) = rayon::join(
            || {
                shards
                    .par_iter_mut()
                    .enumerate()
                    .map(|(s, shard)| {
                        let rows: usize = window.iter().map(|b| b.rows_of_shard(s).len()).sum();
                        let mut codes = Vec::with_capacity(rows);
                        for b in window {
                            let rows = b.rows_of_shard(s);
                            for (j, &row) in rows.iter().enumerate() {
                                if let Some(&ahead) = rows.get(j + PREFETCH_ROWS) {
                                    shard.table.prefetch(b.key_hash[ahead as usize]);
                                }
                                let r = row as usize;
                                let (key, head) = b.key_and_head(r);
                                codes.push(shard.intern(key, b.key_hash[r], head));
                            }
                        }
                        codes
                    })
                    .collect::<Vec<Vec<u32>>>()
            },
            || {
                tx.customer.resize(base + total, 0);
                for b in window {
                    tx.day.extend_from_slice(&b.day);
                    tx.amount.extend_from_slice(&b.amount);
                    if !b.order.is_empty() {
                        // Every kept row of an input with an order column has an order
                        // hash, so the order column stays aligned with the rows.
                        tx.order.get_or_insert_with(Vec::new).extend_from_slice(&b.order);
                    }
                    row_hash.extend_from_slice(&b.row_hash);
                    skipped.add(&b.skipped);
                    let offset = kept.bytes.len();
                    kept.bytes.extend_from_slice(&b.kept_bytes);
                    kept.ends.extend(b.kept_ends.iter().map(|&e| e as usize + offset));
                }
            },
        );
        for (s, shard_codes) in codes.iter().enumerate() {
            let mut k = 0;
            let mut offset = base;
            for b in window {
                for &row in b.rows_of_shard(s) {
                    tx.customer[offset + row as usize] = shard_codes[k] << SHARD_BITS | s as u32;
                    k += 1;
                }
                offset += b.day.len();
            }
        }
        debug_assert!(tx.order.as_ref().is_none_or(|o| o.len() == tx.customer.len()));
    }

    /// Dense customer codes: shard by shard, first-seen order within a shard.
    pub(crate) fn finish(mut self) -> (Transactions, Vec<u64>, Skips, CustomerIds) {
        use rayon::prelude::*;
        // Drop the hash tables before joining the ids, to keep the peak down.
        let parts: Vec<CustomerIds> = self.shards.into_iter().map(|s| s.ids).collect();
        let mut base = vec![0u32; SHARDS];
        let mut ids = CustomerIds {
            bytes: Vec::with_capacity(parts.iter().map(|p| p.bytes.len()).sum()),
            ends: Vec::with_capacity(parts.iter().map(|p| p.len()).sum()),
        };
        for (s, part) in parts.into_iter().enumerate() {
            base[s] = ids.len() as u32;
            ids.append(&part);
        }
        self.tx.customer.par_iter_mut().for_each(|c| {
            *c = base[(*c as usize) & (SHARDS - 1)] + (*c >> SHARD_BITS);
        });
        self.tx.ids = ids;
        (self.tx, self.row_hash, self.skipped, self.kept)
    }
}

/// The sink a source reader feeds, a window of batches at a time, in input
/// order. The batches stay the reader's, to be recycled.
pub(crate) trait BatchSink {
    fn push_window(&mut self, window: &mut [Batch]);
    /// A hint: about this many more rows will arrive.
    fn reserve(&mut self, rows: usize, with_order: bool);
    /// True when the sink cannot take more (a full disk): the reader stops
    /// early, and the sink's owner reports why.
    fn failed(&self) -> bool {
        false
    }
}

impl BatchSink for Builder {
    fn push_window(&mut self, window: &mut [Batch]) {
        Builder::push_window(self, window)
    }

    fn reserve(&mut self, rows: usize, with_order: bool) {
        let tx = &mut self.tx;
        tx.customer.reserve(rows);
        tx.day.reserve(rows);
        tx.amount.reserve(rows);
        if with_order {
            tx.order.get_or_insert_with(Vec::new).reserve(rows);
        }
        // Customer tables sized for a customer per four rows, rather than
        // grown (and rehashed) from nothing; more customers grow them later.
        let per_shard = rows / 4 / SHARDS;
        for Shard { table, ids, hash_of } in &mut self.shards {
            table.reserve(per_shard, |code| hash_of(ids.get_bytes(code)));
            ids.ends.reserve(per_shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::input::{hash_bytes, spill};

    /// The ids of one streaming partition spread over all interning shards,
    /// and within a shard over the table's slots: when shards and slots came
    /// from the same hash bits as partitions, a partition's ids all went to
    /// one shard and crowded a few slots.
    #[test]
    fn ids_of_one_partition_spread_over_shards_and_slots() {
        let hashes: Vec<u64> = (0..400_000u32)
            .map(|i| hash_bytes(format!("{i}").as_bytes()))
            .filter(|&h| spill::partition_of(h, 64) == 17)
            .collect();
        assert!(hashes.len() > 5_000);
        let shards: std::collections::HashSet<usize> =
            hashes.iter().map(|&h| shard_of(h)).collect();
        assert_eq!(shards.len(), SHARDS);
        let homes: std::collections::HashSet<u64> =
            hashes.iter().filter(|&&h| shard_of(h) == 5).map(|&h| table_hash(h) & 4095).collect();
        // About 100 ids in 4096 slots: some 99 distinct home slots expected.
        assert!(homes.len() > 90, "{} home slots", homes.len());
    }

    /// A key's head read as one word is the zero-padded head, also for the
    /// last keys, whose word would run past the buffer.
    #[test]
    fn key_heads_read_as_words_are_padded_heads() {
        let mut b = Batch::default();
        let keys = ["a", "abcdefgh", "abcdefghij", "x1234567", "12", "é1", "", "z"];
        for k in keys {
            b.push_key(k.as_bytes());
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(b.key_and_head(i), (k.as_bytes(), head_of(k.as_bytes())), "{k}");
        }
    }

    proptest::proptest! {
        /// A shard gives each distinct id one code, in first-seen order,
        /// through the table's growth, with ids that share their first eight
        /// bytes or differ only in length, an empty one, and hashes that collide.
        #[test]
        fn a_shard_codes_ids_in_first_seen_order(
            ids in proptest::collection::vec(
                (proptest::sample::select(vec!["", "12345678", "1234567", "abcdefgh_"]), 0u16..3000),
                1..5000),
            colliding: bool,
        ) {
            // Colliding hashes (seven values) crowd the ids on a few probe sequences.
            fn colliding_hash(key: &[u8]) -> u64 {
                hash_bytes(key) % 7
            }
            let hash_of = if colliding { colliding_hash } else { hash_bytes };
            let mut shard = Shard { hash_of, ..Shard::default() };
            shard.table.reserve(4, |_| 0);
            let mut seen = std::collections::HashMap::new();
            // The empty id first, so its code is 0.
            seen.insert(String::new(), 0);
            proptest::prop_assert_eq!(shard.intern(b"", hash_of(b""), 0), 0);
            for (prefix, n) in ids {
                // An empty id too: readers skip blank ids, the table does not rely on it.
                let key = if n % 100 == 0 { String::new() } else { format!("{prefix}{n}") };
                let hash = hash_of(key.as_bytes());
                let next = seen.len() as u32;
                let want = *seen.entry(key.clone()).or_insert(next);
                proptest::prop_assert_eq!(shard.intern(key.as_bytes(), hash, head_of(key.as_bytes())), want);
                proptest::prop_assert_eq!(shard.ids.get_bytes(want), key.as_bytes());
            }
            proptest::prop_assert_eq!(shard.table.used, seen.len());
        }
    }
}
