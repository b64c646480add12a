//! Read-back keys (docs/BACKUPS.md): a write-only gateway that may read back
//! what it wrote recently, and nothing older.
//!
//! A policy naming `readback:7d` among its recipients wraps each new object's
//! data key also for this gateway's read-back key of the current window (an
//! X25519 key, [`X25519Identity`], generated here, one per window of 7 days
//! counted from the Unix epoch). The gateway keeps the private keys of the
//! current and the previous window only: an object written in window N is
//! readable here in windows N and N+1, and never after (its other
//! recipients, the offline key, still read it). Another gateway has its own
//! keys, so it never reads this one's objects.
//!
//! At rest, each key is a sealed block ([`crate::envelope::sealed`]) under
//! the gateway key (from `gateway.secret`), purpose [`PURPOSE`], bound to its
//! file name (the window length and index), in `gateway.state_dir/readback/`
//! with mode 0600: never plaintext on disk. A key that ages out is dropped
//! from memory (zeroized) and its file deleted; it is also ignored (and
//! deleted) if found on disk later. The clock is injectable for tests.
//!
//! What a stolen host still gives an attacker: the keys of the last two
//! windows (what the host wrote in that time, which its own disk holds
//! anyway, unless files were deleted there since), and the gateway secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::envelope::sealed::{self, RecordWriter};
use crate::envelope::x25519::{X25519Identity, X25519_KEY_LEN};
use crate::envelope::{Identity, Recipient};

/// Purpose of the sealed block holding a read-back key. Fixed.
pub const PURPOSE: &str = "readback-key";
/// Record tag of the private key in that block. Fixed.
const TAG_SECRET: u8 = 1;
/// The recipient name prefix in policies: `readback:7d`, `readback:36h`.
pub const RECIPIENT_PREFIX: &str = "readback:";

/// Seconds since the Unix epoch, now.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// The window of a `readback:` recipient name, or `None` if `name` is not
/// one ([`crate::config::parse_readback`]).
pub fn parse_recipient(name: &str) -> Option<Result<Duration, String>> {
    name.starts_with(RECIPIENT_PREFIX)
        .then(|| crate::config::parse_readback(name))
}

#[derive(Debug, thiserror::Error)]
pub enum ReadbackError {
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("read-back key: {0}")]
    Crypto(#[from] crate::envelope::FormatError),
}

fn ferr(path: &Path, e: impl std::fmt::Display) -> ReadbackError {
    ReadbackError::File {
        path: path.to_owned(),
        msg: e.to_string(),
    }
}

/// Every read-back key this gateway holds, per window length.
pub struct Readback {
    dir: PathBuf,
    root: Zeroizing<Vec<u8>>,
    clock: Clock,
    /// (window seconds, window index) -> key.
    keys: Mutex<BTreeMap<(u64, u64), Arc<X25519Identity>>>,
}

fn file_name(window: u64, index: u64) -> String {
    format!("rb-{window}-{index}.key")
}

fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("rb-")?.strip_suffix(".key")?;
    let (w, i) = rest.split_once('-')?;
    Some((w.parse().ok()?, i.parse().ok()?))
}

impl Readback {
    /// Opens (creating it, mode 0700) the key directory and loads the keys
    /// still alive; expired ones are deleted. `root` is the gateway key.
    pub fn open(dir: &Path, root: &[u8], clock: Clock) -> Result<Self, ReadbackError> {
        std::fs::create_dir_all(dir).map_err(|e| ferr(dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ferr(dir, e))?;
        }
        let rb = Self {
            dir: dir.to_owned(),
            root: Zeroizing::new(root.to_vec()),
            clock,
            keys: Mutex::new(BTreeMap::new()),
        };
        let mut keys = BTreeMap::new();
        for e in std::fs::read_dir(dir).map_err(|e| ferr(dir, e))? {
            let e = e.map_err(|e| ferr(dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((w, i)) = parse_file_name(&name) else {
                continue;
            };
            if w == 0 || !rb.alive(w, i) {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            let block = std::fs::read(e.path()).map_err(|err| ferr(&e.path(), err))?;
            let id = rb.open_block(&name, &block).map_err(|err| {
                ferr(
                    &e.path(),
                    format!("{err} (not sealed under this gateway.secret?)"),
                )
            })?;
            keys.insert((w, i), Arc::new(id));
        }
        *rb.keys.lock().expect("readback keys") = keys;
        Ok(rb)
    }

    fn now_index(&self, window: u64) -> u64 {
        (self.clock)() / window
    }

    /// Whether the key of window `index` (of `window` seconds) is still
    /// held: the current window's and the previous one's.
    fn alive(&self, window: u64, index: u64) -> bool {
        index + 1 >= self.now_index(window)
    }

    fn open_block(&self, name: &str, block: &[u8]) -> Result<X25519Identity, ReadbackError> {
        // The opened records hold the private key: wiped when dropped.
        let recs = Zeroizing::new(sealed::open(&self.root, PURPOSE, name.as_bytes(), block)?);
        let mut secret = Zeroizing::new([0u8; X25519_KEY_LEN]);
        let mut found = false;
        for (tag, v) in sealed::read_records(&recs, &[])? {
            match tag {
                TAG_SECRET => {
                    // Copied straight into the zeroized buffer: no stray
                    // copy of the key on the stack.
                    if v.len() != X25519_KEY_LEN {
                        return Err(crate::envelope::FormatError::MalformedHeader(
                            "record value has the wrong length",
                        )
                        .into());
                    }
                    secret.copy_from_slice(v);
                    found = true;
                }
                t => sealed::unknown(t)?,
            }
        }
        if !found {
            return Err(crate::envelope::FormatError::MalformedHeader(
                "read-back key block without a key",
            )
            .into());
        }
        Ok(X25519Identity::from_secret_bytes(&secret)?)
    }

    /// Drops (and deletes the files of) keys that aged out. Called with the
    /// lock held.
    fn expire(&self, keys: &mut BTreeMap<(u64, u64), Arc<X25519Identity>>) {
        let dead: Vec<(u64, u64)> = keys
            .keys()
            .filter(|(w, i)| !self.alive(*w, *i))
            .copied()
            .collect();
        for (w, i) in dead {
            keys.remove(&(w, i));
            let p = self.dir.join(file_name(w, i));
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "cannot delete an expired read-back key");
                }
            }
        }
    }

    /// The recipient new objects are wrapped for under a `window` policy: the
    /// current window's key, generated (and sealed to disk) on first use.
    pub fn recipient(&self, window: Duration) -> Result<Arc<dyn Recipient>, ReadbackError> {
        let w = window.as_secs().max(1);
        let i = self.now_index(w);
        let mut keys = self.keys.lock().expect("readback keys");
        self.expire(&mut keys);
        if let Some(k) = keys.get(&(w, i)) {
            return Ok(k.recipient()?);
        }
        let id = X25519Identity::generate()?;
        let name = file_name(w, i);
        let mut rec = RecordWriter::new();
        rec.put(TAG_SECRET, id.expose_secret())?;
        let plain = Zeroizing::new(rec.finish());
        let block = sealed::seal(&self.root, PURPOSE, name.as_bytes(), &plain)?;
        // Written whole under a temporary name, then renamed: a crash leaves
        // no half key that a later start would refuse.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        crate::keyring::write_new_secret_file(&tmp, &block).map_err(|e| ferr(&tmp, e))?;
        let path = self.dir.join(&name);
        std::fs::rename(&tmp, &path).map_err(|e| ferr(&path, e))?;
        // The rename itself made durable, so a crash cannot bring back a
        // state without the key the objects just written need.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ferr(&self.dir, e))?;
        let id = Arc::new(id);
        keys.insert((w, i), id.clone());
        Ok(id.recipient()?)
    }

    /// The identity among the live read-back keys that opens `stanza`.
    pub fn identity_for(
        &self,
        stanza: &crate::envelope::RecipientStanza,
    ) -> Option<Arc<dyn Identity>> {
        let mut keys = self.keys.lock().expect("readback keys");
        self.expire(&mut keys);
        keys.values()
            .find(|k| k.matches(stanza))
            .map(|k| k.clone() as Arc<dyn Identity>)
    }

    /// The (window seconds, index) of every key held, for tests and
    /// `check-config`.
    pub fn held(&self) -> Vec<(u64, u64)> {
        let mut keys = self.keys.lock().expect("readback keys");
        self.expire(&mut keys);
        keys.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::DataKey;
    use std::sync::atomic::{AtomicU64, Ordering};

    const DAY: u64 = 86_400;

    fn clock_at(t: &Arc<AtomicU64>) -> Clock {
        let t = t.clone();
        Arc::new(move || t.load(Ordering::SeqCst))
    }

    #[test]
    fn recipient_names_parse() {
        assert_eq!(
            parse_recipient("readback:7d").unwrap().unwrap(),
            Duration::from_secs(7 * DAY)
        );
        assert_eq!(
            parse_recipient("readback:36h").unwrap().unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert!(parse_recipient("offline").is_none());
        for bad in [
            "readback:",
            "readback:0d",
            "readback:7",
            "readback:7w",
            "readback:-1d",
            "readback:xd",
        ] {
            assert!(parse_recipient(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_lives_for_its_window_and_the_next_then_is_gone_from_memory_and_disk() {
        let dir = tempfile::tempdir().unwrap();
        let t = Arc::new(AtomicU64::new(1000 * 7 * DAY + 5));
        let root = [7u8; 32];
        let rb = Readback::open(dir.path(), &root, clock_at(&t)).unwrap();
        let w = Duration::from_secs(7 * DAY);
        let r0 = rb.recipient(w).unwrap();
        // The same window: the same key.
        t.fetch_add(DAY, Ordering::SeqCst);
        assert_eq!(rb.recipient(w).unwrap().key_id(), r0.key_id());
        let dk = DataKey::generate().unwrap();
        let st = r0.wrap(&dk).unwrap();
        assert!(rb.identity_for(&st).is_some());
        // The next window: a new key for writes, the old one still reads.
        t.fetch_add(7 * DAY, Ordering::SeqCst);
        let r1 = rb.recipient(w).unwrap();
        assert_ne!(r1.key_id(), r0.key_id());
        let id = rb.identity_for(&st).expect("readable in window N+1");
        assert_eq!(id.unwrap(&st).unwrap().expose(), dk.expose());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // Window N+2: gone, and its file deleted.
        t.fetch_add(7 * DAY, Ordering::SeqCst);
        assert!(rb.identity_for(&st).is_none());
        assert_eq!(rb.held(), vec![(7 * DAY, 1001)]);
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, vec![file_name(7 * DAY, 1001)]);
    }

    #[test]
    fn keys_are_sealed_at_rest_and_survive_a_restart_only_under_the_same_secret() {
        let dir = tempfile::tempdir().unwrap();
        let t = Arc::new(AtomicU64::new(50 * DAY));
        let w = Duration::from_secs(DAY);
        let rb = Readback::open(dir.path(), &[1u8; 32], clock_at(&t)).unwrap();
        let r = rb.recipient(w).unwrap();
        let st = r.wrap(&DataKey::generate().unwrap()).unwrap();
        let secret = {
            let k = rb.keys.lock().unwrap();
            *k.values().next().unwrap().expose_secret()
        };
        drop(rb);
        let path = dir.path().join(file_name(DAY, 50));
        let block = std::fs::read(&path).unwrap();
        assert!(
            !block.windows(secret.len()).any(|x| x == secret),
            "the private key is not on disk in plaintext"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A restart with the same secret reads it back.
        let rb = Readback::open(dir.path(), &[1u8; 32], clock_at(&t)).unwrap();
        assert!(rb.identity_for(&st).is_some());
        drop(rb);
        // Another secret: refused, naming the file.
        let e = Readback::open(dir.path(), &[2u8; 32], clock_at(&t))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("rb-86400-50.key") && e.contains("gateway.secret"),
            "{e}"
        );
        // A block renamed to another window does not open (bound to its name).
        std::fs::rename(&path, dir.path().join(file_name(DAY, 51))).unwrap();
        assert!(Readback::open(dir.path(), &[1u8; 32], clock_at(&t)).is_err());
        // A file of an expired window is deleted unread at start.
        std::fs::rename(
            dir.path().join(file_name(DAY, 51)),
            dir.path().join(file_name(DAY, 3)),
        )
        .unwrap();
        let rb = Readback::open(dir.path(), &[1u8; 32], clock_at(&t)).unwrap();
        assert!(rb.held().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn windows_of_different_lengths_have_their_own_keys() {
        let dir = tempfile::tempdir().unwrap();
        let t = Arc::new(AtomicU64::new(100 * DAY));
        let rb = Readback::open(dir.path(), &[3u8; 32], clock_at(&t)).unwrap();
        let a = rb.recipient(Duration::from_secs(DAY)).unwrap();
        let b = rb.recipient(Duration::from_secs(7 * DAY)).unwrap();
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(rb.held().len(), 2);
    }
}
