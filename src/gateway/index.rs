//! The persistent listing index: what this gateway has learned about objects
//! for listings (plaintext ETag and size per store version), kept across
//! restarts in its state directory so that the first listing after a
//! restart costs no tail read and no unwrap per object.
//!
//! - A listing is the store's word (it can hide or show what it likes), so
//!   the index is keyed by what a listing shows: bucket, key and the store's
//!   ETag. HEAD, GET and conditionals never use it: they answer from
//!   authenticated bytes (`object.rs`).
//! - Entries are sealed blocks (`envelope::sealed`, purpose
//!   `"listing-index"`) under a key derived from the gateway secret, with the
//!   entry's key as AAD: the file holds no plaintext ETag (a plaintext MD5
//!   would confirm a guessed file to whoever reads the disk), and an entry
//!   moved to another key or changed does not open. A gateway without a
//!   configured secret has nothing to keep it under and keeps no index.
//! - Bounded: past `max_entries` the oldest entries go. Safe to delete: it
//!   is a cache.
//! - Writes are batched by a background task (one transaction per batch),
//!   never on a request's path; lookups for a listing page are one read
//!   transaction on a blocking thread.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use super::object::ListInfo;
use crate::envelope::sealed::{self, read_records, RecordWriter};

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const ORDER: TableDefinition<u64, &[u8]> = TableDefinition::new("order");
const PURPOSE: &str = "listing-index";
const T_ETAG: u8 = 0x01;
const T_SIZE: u8 = 0x02;
/// Entries written per transaction at most, and the longest an entry waits.
const BATCH: usize = 1024;
const BATCH_WAIT: Duration = Duration::from_millis(200);

pub struct ListingIndex {
    db: Arc<Database>,
    key: Arc<Zeroizing<[u8; 32]>>,
    tx: mpsc::Sender<Msg>,
    max: u64,
}

/// What the writer task is sent.
enum Msg {
    /// A sealed entry (its key and value) to write with the next batch.
    Entry(Vec<u8>, Vec<u8>),
    /// Write what is queued now, then say so.
    Flush(oneshot::Sender<()>),
}

fn entry_key(bucket: &str, key: &str, store_etag: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + bucket.len() + key.len() + store_etag.len());
    for s in [bucket, key] {
        k.extend_from_slice(&(s.len() as u16).to_be_bytes());
        k.extend_from_slice(s.as_bytes());
    }
    k.extend_from_slice(store_etag.as_bytes());
    k
}

fn open_entry(key: &[u8; 32], k: &[u8], v: &[u8]) -> Option<ListInfo> {
    let records = sealed::open(key, PURPOSE, k, v).ok()?;
    let (mut etag, mut size) = (None, None);
    for (tag, v) in read_records(&records, &[]).ok()? {
        match tag {
            T_ETAG => etag = Some(String::from_utf8(v.to_vec()).ok()?),
            T_SIZE => size = Some(u64::from_be_bytes(v.try_into().ok()?)),
            _ => return None,
        }
    }
    Some(ListInfo {
        etag: etag?,
        size: size?,
    })
}

impl ListingIndex {
    /// Opens (or creates) the index in `dir`, sealed under a key derived
    /// from `gateway_key` (the stretched gateway secret). Must be called
    /// within a tokio runtime (it starts the writer task).
    pub fn open(dir: &Path, gateway_key: &[u8], max_entries: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Arc::new(
            Database::create(dir.join("listing-index.redb")).map_err(std::io::Error::other)?,
        );
        {
            let w = db.begin_write().map_err(std::io::Error::other)?;
            w.open_table(ENTRIES).map_err(std::io::Error::other)?;
            w.open_table(ORDER).map_err(std::io::Error::other)?;
            w.commit().map_err(std::io::Error::other)?;
        }
        let key = derive_key(gateway_key, b"sealgate/v1/listing-index")?;
        let (tx, rx) = mpsc::channel(16 * BATCH);
        tokio::spawn(writer(db.clone(), rx, max_entries.max(1)));
        Ok(Self {
            db,
            key: Arc::new(key),
            tx,
            max: max_entries.max(1),
        })
    }

    /// Keeps what a listing shows for this store version (never waits: a
    /// full queue drops the entry, it is a cache).
    pub fn remember(&self, bucket: &str, key: &str, store_etag: &str, info: &ListInfo) {
        if let Some((k, v)) = self.sealed_entry(bucket, key, store_etag, info) {
            let _ = self.tx.try_send(Msg::Entry(k, v));
        }
    }

    /// Writes what is queued now and returns once it is on disk (or could
    /// not be written): what a shutdown does, so that the last batch is not
    /// lost with the process.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Keeps entries read from the store-side index (one transaction).
    /// Blocking: call on a blocking thread.
    pub fn import(&self, bucket: &str, entries: &[super::store_index::Entry]) {
        let batch: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .filter_map(|e| self.sealed_entry(bucket, &e.key, &e.store_etag, &e.info))
            .collect();
        if let Err(e) = write_batch(&self.db, batch, self.max) {
            tracing::warn!(error = %e, "could not write the listing index");
        }
    }

    fn sealed_entry(
        &self,
        bucket: &str,
        key: &str,
        store_etag: &str,
        info: &ListInfo,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        if store_etag.is_empty() {
            return None;
        }
        let k = entry_key(bucket, key, store_etag);
        let mut w = RecordWriter::new();
        w.put(T_ETAG, info.etag.as_bytes()).ok()?;
        w.put(T_SIZE, &info.size.to_be_bytes()).ok()?;
        let v = sealed::seal(&self.key[..], PURPOSE, &k, &w.finish()).ok()?;
        Some((k, v))
    }

    /// What the index knows of these listing entries (bucket, key, store
    /// ETag), in order. Blocking: call on a blocking thread.
    pub fn lookup(&self, bucket: &str, entries: &[(String, String)]) -> Vec<Option<ListInfo>> {
        let Ok(r) = self.db.begin_read() else {
            return vec![None; entries.len()];
        };
        let Ok(t) = r.open_table(ENTRIES) else {
            return vec![None; entries.len()];
        };
        entries
            .iter()
            .map(|(key, etag)| {
                let k = entry_key(bucket, key, etag);
                let v = t.get(k.as_slice()).ok()??;
                open_entry(&self.key, &k, v.value())
            })
            .collect()
    }
}

/// A key for `info` derived from the stretched gateway secret.
pub(crate) fn derive_key(gateway_key: &[u8], info: &[u8]) -> std::io::Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"sealgate/v1/gateway")
        .extract(gateway_key)
        .expand(&[info], Len)
        .and_then(|okm| okm.fill(&mut key[..]))
        .map_err(|_| std::io::Error::other("key derivation"))?;
    Ok(key)
}

struct Len;
impl aws_lc_rs::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        32
    }
}

async fn writer(db: Arc<Database>, mut rx: mpsc::Receiver<Msg>, max: u64) {
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut batch = Vec::new();
        let mut flushed = None;
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        let mut next = Some(first);
        // A batch ends when it is full, when it has waited BATCH_WAIT, or at
        // a flush.
        while let Some(m) = next.take() {
            match m {
                Msg::Entry(k, v) => batch.push((k, v)),
                Msg::Flush(done) => {
                    flushed = Some(done);
                    break;
                }
            }
            if batch.len() >= BATCH {
                break;
            }
            next = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten();
        }
        if !batch.is_empty() {
            let db = db.clone();
            let res = tokio::task::spawn_blocking(move || write_batch(&db, batch, max)).await;
            if let Ok(Err(e)) = res {
                tracing::warn!(error = %e, "could not write the listing index");
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

fn write_batch(db: &Database, batch: Vec<(Vec<u8>, Vec<u8>)>, max: u64) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let w = db.begin_write().map_err(|x| e(&x))?;
    {
        let mut entries = w.open_table(ENTRIES).map_err(|x| e(&x))?;
        let mut order = w.open_table(ORDER).map_err(|x| e(&x))?;
        let first = order
            .last()
            .map_err(|x| e(&x))?
            .map_or(0, |(k, _)| k.value() + 1);
        for (seq, (k, v)) in (first..).zip(&batch) {
            entries
                .insert(k.as_slice(), v.as_slice())
                .map_err(|x| e(&x))?;
            order.insert(seq, k.as_slice()).map_err(|x| e(&x))?;
        }
        // Past the bound, the oldest tenth goes.
        let len = entries.len().map_err(|x| e(&x))?;
        if len > max {
            let drop = (len - max) + max / 10;
            let old: Vec<(u64, Vec<u8>)> = order
                .iter()
                .map_err(|x| e(&x))?
                .take(drop as usize)
                .filter_map(|r| r.ok().map(|(s, k)| (s.value(), k.value().to_vec())))
                .collect();
            for (s, k) in old {
                order.remove(s).map_err(|x| e(&x))?;
                entries.remove(k.as_slice()).map_err(|x| e(&x))?;
            }
        }
    }
    w.commit().map_err(|x| e(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_survive_a_reopen_are_sealed_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let info = ListInfo {
            etag: "0123456789abcdef0123456789abcdef".into(),
            size: 42,
        };
        {
            let ix = ListingIndex::open(dir.path(), b"secret-key-material", 10).unwrap();
            ix.remember("b", "k", "store-etag", &info);
            for i in 0..30 {
                ix.remember("b", &format!("k{i}"), "e", &info);
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ix = ListingIndex::open(dir.path(), b"secret-key-material", 10).unwrap();
        let got = ix.lookup(
            "b",
            &[
                ("k29".into(), "e".into()),
                ("k29".into(), "other".into()),
                ("k0".into(), "e".into()),
            ],
        );
        assert_eq!(got[0].as_ref().map(|i| i.size), Some(42), "survives");
        assert!(got[1].is_none(), "another store ETag is another entry");
        assert!(got[2].is_none(), "the oldest went past the bound");
        drop(ix);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Another secret opens nothing; the file holds no ETag in clear.
        let other = ListingIndex::open(dir.path(), b"another-secret", 10).unwrap();
        assert!(other.lookup("b", &[("k29".into(), "e".into())])[0].is_none());
        let raw = std::fs::read(dir.path().join("listing-index.redb")).unwrap();
        assert!(!raw.windows(16).any(|w| w == b"0123456789abcdef"));
    }

    /// A flush writes what is queued at once (what a shutdown waits for):
    /// an entry remembered just before is read back by the next process.
    #[tokio::test]
    async fn a_flush_writes_what_is_queued_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let info = ListInfo {
            etag: "0123456789abcdef0123456789abcdef".into(),
            size: 7,
        };
        let ix = ListingIndex::open(dir.path(), b"secret-key-material", 100).unwrap();
        ix.remember("b", "k", "e", &info);
        ix.flush().await;
        let got = ix.lookup("b", &[("k".into(), "e".into())]);
        assert_eq!(got[0].as_ref().map(|i| i.size), Some(7));
        // Nothing queued: a flush returns at once.
        ix.flush().await;
    }
}
