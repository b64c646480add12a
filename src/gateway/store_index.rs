//! The store-side listing index: what the gateways that share a gateway
//! secret have learned for listings (plaintext ETag and size per store
//! version), kept in the bucket itself so that a *new* instance (no state
//! directory yet, or one more behind a load balancer) lists a bucket without
//! an RSA unwrap and a tail read per object. docs/FORMAT.md section 16.
//!
//! - Segments `.sealgate/ix/<ms>-<random>`, each a run of sealed blocks
//!   (`envelope::sealed`, purpose `"store-listing-index"`) under a key
//!   derived from the gateway secret, bound to the bucket, the segment's
//!   key, the block's place and whether it is the last one. The store cannot
//!   forge, alter, move, cut or splice entries; it can only keep, drop or
//!   replay whole segments that gateways wrote.
//! - Entries are keyed like the local index (`index.rs`): bucket, key and
//!   the store's ETag. A listing is the store's word, so a replayed segment
//!   can at most make a listing show what an object with that store ETag
//!   once was. HEAD, GET and conditionals never use it.
//! - Writes: what the gateway learns from authenticated bytes (PUTs,
//!   completions, copies, resolved listing entries) is queued per bucket and
//!   written as one segment per bucket every `flush_every` (and when a
//!   segment's worth is queued, and at shutdown); never on a request's path.
//!   What it read from segments is never queued again.
//! - Reads: a listing that misses the caches reads the segments it has not
//!   read yet (newest first, bounded), at most once per [`RELOAD_AFTER`] per
//!   bucket, one segment at a time into the caches.
//! - Merging: a reader that finds more than [`COMPACT_AT`] segments merges
//!   the small ones it read into one and deletes those; so does a writer
//!   after its flush past [`TIDY_AT`] segments (a fleet whose instances
//!   list only what they wrote never reads), reading only segments that are
//!   small at the store (best effort: a cache loses nothing that matters
//!   when two gateways race; the next merge drops the duplicates).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::object::ListInfo;
use super::HIDDEN_PREFIX;
use crate::envelope::sealed::{self, read_records, RecordWriter};
use crate::envelope::FormatError;
use crate::store::{ListRequest, ObjectHeaders, Store};

/// Where segments live in a bucket (under sealgate's hidden prefix).
pub const SEGMENT_PREFIX: &str = ".sealgate/ix/";
const MAGIC: &[u8; 4] = b"SGIX";
const VERSION: u8 = 1;
const PURPOSE: &str = "store-listing-index";
const T_ENTRY: u8 = 0x01;
/// Record bytes per sealed block at most (well under `MAX_BLOCK_LEN`).
const BLOCK_RECORDS: usize = 512 << 10;
/// Entries per segment at most (about 10 MB).
pub const SEGMENT_ENTRIES: usize = 100_000;
/// Largest segment a reader fetches (the store is untrusted).
const MAX_SEGMENT: u64 = 16 << 20;
/// Encoded entry bytes per segment a writer puts in at most (long keys make
/// fewer entries per segment), well under [`MAX_SEGMENT`].
const SEGMENT_BYTES: usize = 8 << 20;
/// Segment names a reader looks at, and segments it reads per load.
const MAX_LISTED: usize = 10_000;
const MAX_READ: usize = 64;
/// Segments read at once.
const READ_CONCURRENCY: usize = 2;
/// More segments than this in a bucket: a reader merges the small ones it
/// read.
pub const COMPACT_AT: usize = 16;
/// Writers merge past this many segments in a bucket: more than readers
/// ([`COMPACT_AT`]), which merge what they have read anyway, and fewer
/// than a new instance reads ([`MAX_READ`]), so that it reads them all.
pub const TIDY_AT: usize = 2 * COMPACT_AT;
/// A segment smaller than this at the store is one a writer's merge reads
/// (half a segment's bytes).
const SMALL_BYTES: u64 = SEGMENT_BYTES as u64 / 2;
/// How long a bucket's segments are not looked at again after a load.
pub const RELOAD_AFTER: Duration = Duration::from_secs(60);
/// Entries queued for writing across buckets at most (past it, dropped).
const PENDING_MAX: usize = 1_000_000;

/// One listing fact: what an object with this key and store ETag is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub store_etag: String,
    pub info: ListInfo,
}

fn encode_entry(e: &Entry) -> Option<Vec<u8>> {
    let k = u16::try_from(e.key.len()).ok()?;
    let s = u8::try_from(e.store_etag.len()).ok()?;
    let t = u8::try_from(e.info.etag.len()).ok()?;
    let mut v =
        Vec::with_capacity(2 + e.key.len() + 2 + e.store_etag.len() + e.info.etag.len() + 8);
    v.extend_from_slice(&k.to_be_bytes());
    v.extend_from_slice(e.key.as_bytes());
    v.push(s);
    v.extend_from_slice(e.store_etag.as_bytes());
    v.push(t);
    v.extend_from_slice(e.info.etag.as_bytes());
    v.extend_from_slice(&e.info.size.to_be_bytes());
    (v.len() <= usize::from(u16::MAX)).then_some(v)
}

fn decode_entry(v: &[u8]) -> Option<Entry> {
    fn take<'a>(v: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (a, b) = (v.get(..n)?, v.get(n..)?);
        *v = b;
        Some(a)
    }
    let mut v = v;
    let klen = u16::from_be_bytes(take(&mut v, 2)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(take(&mut v, klen)?).ok()?.to_owned();
    let slen = take(&mut v, 1)?[0] as usize;
    let store_etag = std::str::from_utf8(take(&mut v, slen)?).ok()?.to_owned();
    let tlen = take(&mut v, 1)?[0] as usize;
    let etag = std::str::from_utf8(take(&mut v, tlen)?).ok()?.to_owned();
    let size = u64::from_be_bytes(take(&mut v, 8)?.try_into().ok()?);
    v.is_empty().then_some(Entry {
        key,
        store_etag,
        info: ListInfo { etag, size },
    })
}

/// What a block is bound to: its bucket, its segment, its place and
/// whether it ends the segment.
fn block_aad(bucket: &str, name: &str, index: u32, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(9 + bucket.len() + name.len());
    for s in [bucket, name] {
        a.extend_from_slice(&(s.len() as u16).to_be_bytes());
        a.extend_from_slice(s.as_bytes());
    }
    a.extend_from_slice(&index.to_be_bytes());
    a.push(u8::from(last));
    a
}

/// A segment's bytes: `"SGIX" || u8 1 || (be32 len || sealed block)+`,
/// entries in canonical (sorted, unique) order.
pub fn encode_segment(
    root: &[u8],
    bucket: &str,
    name: &str,
    entries: &[Entry],
) -> Result<Vec<u8>, FormatError> {
    let mut values: Vec<Vec<u8>> = entries.iter().filter_map(encode_entry).collect();
    values.sort_unstable();
    values.dedup();
    let mut blocks: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    let mut used = 0usize;
    for v in values {
        if used + 3 + v.len() > BLOCK_RECORDS && used > 0 {
            blocks.push(Vec::new());
            used = 0;
        }
        used += 3 + v.len();
        blocks.last_mut().expect("one block").push(v);
    }
    let mut out = Vec::with_capacity(5 + blocks.len() * (BLOCK_RECORDS / 2));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let n = blocks.len();
    for (i, block) in blocks.into_iter().enumerate() {
        let mut w = RecordWriter::new();
        for v in &block {
            w.put(T_ENTRY, v)?;
        }
        let aad = block_aad(bucket, name, i as u32, i + 1 == n);
        let sealed = sealed::seal(root, PURPOSE, &aad, &w.finish())?;
        out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        out.extend_from_slice(&sealed);
    }
    Ok(out)
}

/// Opens a segment read from `bucket` at `name`: every block must open, in
/// place, and the last must say so; anything else refuses the segment.
pub fn decode_segment(
    root: &[u8],
    bucket: &str,
    name: &str,
    raw: &[u8],
) -> Result<Vec<Entry>, FormatError> {
    let bad = FormatError::MalformedHeader;
    let rest = raw
        .strip_prefix(MAGIC.as_slice())
        .ok_or(bad("not a listing index segment"))?;
    let (&version, mut rest) = rest.split_first().ok_or(bad("segment truncated"))?;
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let mut out = Vec::new();
    let mut index = 0u32;
    loop {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(bad("segment truncated"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let block = rest.get(4..4 + len).ok_or(bad("segment truncated"))?;
        rest = &rest[4 + len..];
        let last = rest.is_empty();
        let records = sealed::open(root, PURPOSE, &block_aad(bucket, name, index, last), block)?;
        for (tag, v) in read_records(&records, &[T_ENTRY])? {
            match tag {
                T_ENTRY => out.push(decode_entry(v).ok_or(bad("malformed index entry"))?),
                t => sealed::unknown(t)?,
            }
        }
        if last {
            return Ok(out);
        }
        index = index.checked_add(1).ok_or(bad("too many blocks"))?;
    }
}

/// `entries` cut into segments of at most [`SEGMENT_ENTRIES`] entries and
/// [`SEGMENT_BYTES`] encoded bytes.
fn segment_chunks(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0usize, 0usize);
    for (i, e) in entries.iter().enumerate() {
        let n = 3 + 2 + e.key.len() + 2 + e.store_etag.len() + e.info.etag.len() + 8;
        if i > start && (i - start >= SEGMENT_ENTRIES || bytes + n > SEGMENT_BYTES) {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// `<16-digit milliseconds>-<16 hex digits>`: names sort by age.
fn segment_name() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut r = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut r);
    format!("{SEGMENT_PREFIX}{ms:016}-{}", hex::encode(r))
}

fn is_segment_name(key: &str) -> bool {
    key.strip_prefix(SEGMENT_PREFIX)
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(ms, rand)| {
            ms.len() == 16
                && ms.bytes().all(|b| b.is_ascii_digit())
                && rand.len() == 16
                && rand.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

#[derive(Default)]
struct Pending {
    by_bucket: HashMap<String, Vec<Entry>>,
    n: usize,
}

/// What this process has read (or written) of a bucket's segments.
#[derive(Default)]
struct Loaded {
    seen: HashSet<String>,
    at: Option<Instant>,
}

pub struct StoreIndex {
    store: Arc<dyn Store>,
    root: Zeroizing<[u8; 32]>,
    flush_every: Duration,
    max_entries: usize,
    pending: Mutex<Pending>,
    buckets: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Loaded>>>>,
    wake: Arc<Notify>,
}

impl StoreIndex {
    /// The index for gateways whose stretched secret is `gateway_key`.
    pub fn new(
        store: Arc<dyn Store>,
        gateway_key: &[u8],
        flush_every: Duration,
        max_entries: u64,
    ) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            store,
            root: super::index::derive_key(gateway_key, b"sealgate/v1/store-listing-index")?,
            flush_every: flush_every.max(Duration::from_secs(1)),
            max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX).max(1),
            pending: Mutex::default(),
            buckets: Mutex::default(),
            wake: Arc::new(Notify::new()),
        }))
    }

    /// Starts the writer: every `flush_every`, or when a bucket has a
    /// segment's worth queued. It ends with the last handle on the index.
    /// Must be called within a tokio runtime.
    pub fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let (wake, every) = (self.wake.clone(), self.flush_every);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = wake.notified() => {}
                }
                let Some(me) = weak.upgrade() else { return };
                me.flush().await;
            }
        });
    }

    /// Queues what a listing shows for this store version, learned from
    /// authenticated bytes (never from a segment).
    pub fn queue(&self, bucket: &str, key: &str, store_etag: &str, info: &ListInfo) {
        if store_etag.is_empty() || key.starts_with(HIDDEN_PREFIX) {
            return;
        }
        let mut p = self.pending.lock().expect("pending");
        if p.n >= PENDING_MAX {
            return;
        }
        p.n += 1;
        let q = p.by_bucket.entry(bucket.to_owned()).or_default();
        q.push(Entry {
            key: key.to_owned(),
            store_etag: store_etag.to_owned(),
            info: info.clone(),
        });
        let full = q.len() >= SEGMENT_ENTRIES;
        drop(p);
        if full {
            self.wake.notify_one();
        }
    }

    /// Forgets a deleted bucket: nothing queued for it is written.
    pub fn forget_bucket(&self, bucket: &str) {
        let mut p = self.pending.lock().expect("pending");
        if let Some(q) = p.by_bucket.remove(bucket) {
            p.n -= q.len();
        }
        drop(p);
        self.buckets.lock().expect("buckets").remove(bucket);
    }

    /// Writes what is queued: one segment per bucket (more past
    /// [`SEGMENT_ENTRIES`]). A failed write is logged and dropped (a cache).
    pub async fn flush(&self) {
        let taken = std::mem::take(&mut *self.pending.lock().expect("pending"));
        for (bucket, entries) in taken.by_bucket {
            if self.keeps_everything(&bucket).await {
                tracing::debug!(
                    bucket,
                    "no listing index segment for a bucket with Object Lock"
                );
                continue;
            }
            for chunk in segment_chunks(&entries) {
                if let Err(e) = self.write_segment(&bucket, chunk).await {
                    tracing::warn!(bucket, error = %e, "could not write a listing index segment to the store");
                }
            }
            self.tidy(&bucket).await;
        }
    }

    /// Whether the bucket has Object Lock (asked of the store at each
    /// write, not cached): its default retention would keep every segment,
    /// and merging could delete none, so none is written there. A store
    /// that cannot answer now gets nothing written either.
    async fn keeps_everything(&self, bucket: &str) -> bool {
        let Some(locks) = self.store.locks() else {
            return false;
        };
        match locks.lock_config(bucket).await {
            Ok(c) => c.is_some_and(|c| c.enabled),
            Err(e) => e.unavailable,
        }
    }

    fn state(&self, bucket: &str) -> Arc<tokio::sync::Mutex<Loaded>> {
        self.buckets
            .lock()
            .expect("buckets")
            .entry(bucket.to_owned())
            .or_default()
            .clone()
    }

    async fn write_segment(&self, bucket: &str, entries: &[Entry]) -> Result<String, String> {
        let name = self.write_segment_raw(bucket, entries).await?;
        // This process knows what it wrote: never read it back.
        if let Ok(mut st) = self.state(bucket).try_lock() {
            st.seen.insert(name.clone());
        }
        Ok(name)
    }

    async fn write_segment_raw(&self, bucket: &str, entries: &[Entry]) -> Result<String, String> {
        let name = segment_name();
        let raw =
            encode_segment(&self.root[..], bucket, &name, entries).map_err(|e| e.to_string())?;
        let n = raw.len() as u64;
        let body: crate::store::ByteStream =
            Box::pin(futures::stream::once(
                async move { Ok(bytes::Bytes::from(raw)) },
            ));
        self.store
            .put(bucket, &name, body, n, &ObjectHeaders::default(), None)
            .await
            .map_err(|e| format!("{} {}", e.code, e.message))?;
        Ok(name)
    }

    /// The segments in a bucket with their sizes at the store, oldest
    /// first (bounded); `None` (logged) when the store cannot list them.
    async fn segments(&self, bucket: &str) -> Option<Vec<(String, u64)>> {
        match self.list_segments(bucket).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(bucket, error = %e.message, "could not list the listing index segments");
                None
            }
        }
    }

    async fn list_segments(&self, bucket: &str) -> crate::store::StoreResult<Vec<(String, u64)>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .store
                .list(
                    bucket,
                    &ListRequest {
                        prefix: Some(SEGMENT_PREFIX.to_owned()),
                        max_keys: 1000,
                        continuation_token: token.take(),
                        ..Default::default()
                    },
                )
                .await?;
            names.extend(
                page.entries
                    .into_iter()
                    .filter(|e| is_segment_name(&e.key))
                    .map(|e| (e.key, e.size)),
            );
            match page.next_continuation_token {
                Some(t) if page.is_truncated && names.len() < MAX_LISTED => token = Some(t),
                _ => break,
            }
        }
        names.sort_unstable();
        names.dedup_by(|a, b| a.0 == b.0);
        Ok(names)
    }

    async fn read_segment(&self, bucket: &str, name: &str) -> Result<Vec<Entry>, String> {
        let raw =
            super::object::read_small_from(self.store.as_ref(), bucket, name, None, MAX_SEGMENT)
                .await
                .map_err(|e| format!("{} {}", e.code, e.message))?
                .ok_or("larger than a segment may be")?;
        decode_segment(&self.root[..], bucket, name, &raw).map_err(|e| e.to_string())
    }

    /// Reads the bucket's segments this process has not read yet (newest
    /// first, at most `max_entries` entries), unless it looked less than
    /// [`RELOAD_AFTER`] ago, and hands `each` the entries of one segment at
    /// a time (memory: a few segments, never the whole bucket). Segments
    /// that do not open are skipped (and not read again). Small segments
    /// are then merged (see [`StoreIndex::merge`]).
    pub async fn load(&self, bucket: &str, each: impl FnMut(Vec<Entry>)) {
        let state = self.state(bucket);
        let mut st = state.lock().await;
        if st.at.is_some_and(|t| t.elapsed() < RELOAD_AFTER) {
            return;
        }
        st.at = Some(Instant::now());
        let Some(names) = self.segments(bucket).await else {
            return;
        };
        let total = names.len();
        let fresh: Vec<String> = names
            .into_iter()
            .rev()
            .map(|(name, _)| name)
            .filter(|n| !st.seen.contains(n))
            .take(MAX_READ)
            .collect();
        st.seen.extend(fresh.iter().cloned());
        if let Some(name) = self.read_and_merge(bucket, fresh, total, each).await {
            st.seen.insert(name);
        }
    }

    /// What a writer does after a flush to `bucket`: past [`TIDY_AT`]
    /// segments, it merges the small ones (by their size at the store: full
    /// segments are never read here) as a reader would, so that a fleet
    /// whose instances only ever list what they wrote still keeps few
    /// segments. Nothing read here reaches the caches, so nothing is marked
    /// as read. Skipped while this process is reading the bucket's segments.
    async fn tidy(&self, bucket: &str) {
        let state = self.state(bucket);
        let Ok(_reading) = state.try_lock() else {
            return;
        };
        let Some(names) = self.segments(bucket).await else {
            return;
        };
        let total = names.len();
        let small: Vec<String> = names
            .into_iter()
            .rev()
            .filter(|(_, size)| *size < SMALL_BYTES)
            .map(|(name, _)| name)
            .take(MAX_READ)
            .collect();
        if total <= TIDY_AT || small.len() < 2 {
            return;
        }
        self.read_and_merge(bucket, small, total, |_| {}).await;
    }

    /// Reads the segments `names` (newest first, two at a time), hands
    /// `each` the entries of each (at most `max_entries` in all), and, when
    /// the bucket has more than [`COMPACT_AT`] segments (`total`), merges
    /// the small ones read (up to one segment's worth). The merged
    /// segment's name, if one was written.
    async fn read_and_merge(
        &self,
        bucket: &str,
        names: Vec<String>,
        total: usize,
        mut each: impl FnMut(Vec<Entry>),
    ) -> Option<String> {
        let mut reads = futures::stream::iter(names)
            .map(|name| async move {
                let r = self.read_segment(bucket, &name).await;
                (name, r)
            })
            .buffered(READ_CONCURRENCY);
        let mut delivered = 0usize;
        // Small segments read, newest first, with their entries: at most
        // one segment's worth is kept, for merging.
        let mut small: Vec<String> = Vec::new();
        let mut merged: Vec<Entry> = Vec::new();
        while let Some((name, r)) = reads.next().await {
            match r {
                Ok(mut entries) => {
                    entries.truncate(self.max_entries - delivered);
                    delivered += entries.len();
                    if total > COMPACT_AT
                        && entries.len() < SEGMENT_ENTRIES / 2
                        && merged.len() + entries.len() <= SEGMENT_ENTRIES
                    {
                        small.push(name);
                        merged.extend(entries.iter().cloned());
                    }
                    each(entries);
                }
                Err(e) => {
                    tracing::warn!(bucket, segment = name, error = %e, "a listing index segment at the store was refused; ignored")
                }
            }
            if delivered >= self.max_entries {
                break;
            }
        }
        drop(reads);
        if small.len() < 2 {
            return None;
        }
        self.merge(bucket, &small, merged).await
    }

    /// Writes `entries` (all that the small segments `read` held, each
    /// (key, store ETag) once) as one segment, then deletes `read`; the new
    /// segment's name. A failed write deletes nothing. Full segments are
    /// left as they are: merging keeps the number of segments near the
    /// bucket's entries over [`SEGMENT_ENTRIES`], and the memory of a merge
    /// to one segment's worth.
    async fn merge(
        &self,
        bucket: &str,
        read: &[String],
        mut entries: Vec<Entry>,
    ) -> Option<String> {
        // Two gateways that merged the same segments at once leave the same
        // entries twice; the next merge keeps one.
        let mut once = HashSet::with_capacity(entries.len());
        entries.retain(|e| once.insert((e.key.clone(), e.store_etag.clone())));
        let name = match self.write_segment_raw(bucket, &entries).await {
            Ok(name) => name,
            Err(e) => {
                tracing::debug!(bucket, error = %e, "could not merge the listing index segments");
                return None;
            }
        };
        for old in read {
            if let Err(e) = self.store.delete(bucket, old).await {
                tracing::debug!(bucket, segment = old, error = %e.message, "could not delete a merged listing index segment");
            }
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> Entry {
        Entry {
            key: format!("photos/{i:06}.jpg"),
            store_etag: format!("{:032x}", i * 7919),
            info: ListInfo {
                etag: format!("{:032x}-3", i * 104_729),
                size: i as u64 * 1000 + 1,
            },
        }
    }

    const ROOT: &[u8] = &[7u8; 32];

    #[test]
    fn a_segment_round_trips_over_several_blocks() {
        let entries: Vec<Entry> = (0..20_000).map(entry).collect();
        let name = ".sealgate/ix/0001764547200000-0011223344556677";
        let raw = encode_segment(ROOT, "b", name, &entries).unwrap();
        assert!(raw.len() > 2 * BLOCK_RECORDS, "spans several blocks");
        let mut got = decode_segment(ROOT, "b", name, &raw).unwrap();
        got.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(got, entries);
        // Nothing of an entry is in clear.
        assert!(!raw.windows(12).any(|w| w == b"photos/00001"));
    }

    #[test]
    fn a_segment_opens_only_where_it_was_written_and_whole() {
        let entries: Vec<Entry> = (0..12_000).map(entry).collect();
        let name = ".sealgate/ix/0001764547200000-0011223344556677";
        let raw = encode_segment(ROOT, "b", name, &entries).unwrap();
        // Another bucket, another name, another secret.
        assert!(decode_segment(ROOT, "other", name, &raw).is_err());
        let moved = ".sealgate/ix/0001764547200001-0011223344556677";
        assert!(decode_segment(ROOT, "b", moved, &raw).is_err());
        assert!(decode_segment(&[8u8; 32], "b", name, &raw).is_err());
        // One byte changed anywhere past the magic.
        for at in [5, 9, raw.len() / 2, raw.len() - 1] {
            let mut t = raw.clone();
            t[at] ^= 1;
            assert!(decode_segment(ROOT, "b", name, &t).is_err(), "byte {at}");
        }
        // Cut after the first block: that block does not say it is last.
        let first = u32::from_be_bytes(raw[5..9].try_into().unwrap()) as usize;
        assert!(decode_segment(ROOT, "b", name, &raw[..9 + first]).is_err());
        // Blocks swapped.
        let second = &raw[9 + first..];
        let mut swapped = raw[..5].to_vec();
        swapped.extend_from_slice(second);
        swapped.extend_from_slice(&raw[5..9 + first]);
        assert!(decode_segment(ROOT, "b", name, &swapped).is_err());
        // Anything appended.
        let mut long = raw.clone();
        long.extend_from_slice(&[0, 0, 0, 0]);
        assert!(decode_segment(ROOT, "b", name, &long).is_err());
    }

    #[test]
    fn writers_cut_segments_by_entries_and_by_bytes() {
        let short: Vec<Entry> = (0..250_000)
            .map(|i| Entry {
                key: format!("k{i}"),
                store_etag: "e".into(),
                info: ListInfo {
                    etag: "t".into(),
                    size: 1,
                },
            })
            .collect();
        let chunks = segment_chunks(&short);
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [SEGMENT_ENTRIES, SEGMENT_ENTRIES, 50_000]
        );
        let long: Vec<Entry> = (0..20_000)
            .map(|i| Entry {
                key: format!("{i:06}{}", "k".repeat(1000)),
                ..entry(i)
            })
            .collect();
        let chunks = segment_chunks(&long);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 20_000);
        for c in &chunks {
            let raw = encode_segment(ROOT, "b", "n", c).unwrap();
            assert!((raw.len() as u64) < MAX_SEGMENT, "{}", raw.len());
        }
        assert!(segment_chunks(&[]).is_empty());
    }

    #[test]
    fn an_empty_segment_is_one_block_and_names_sort_by_age() {
        let raw = encode_segment(ROOT, "b", "n", &[]).unwrap();
        assert_eq!(decode_segment(ROOT, "b", "n", &raw).unwrap(), vec![]);
        let a = segment_name();
        std::thread::sleep(Duration::from_millis(2));
        let b = segment_name();
        assert!(a < b && is_segment_name(&a) && is_segment_name(&b));
        assert!(!is_segment_name(".sealgate/ix/12-ab"));
        assert!(!is_segment_name(
            ".sealgate/up/0001764547200000-0011223344556677"
        ));
    }
}
