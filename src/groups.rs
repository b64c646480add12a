//! Groups at run time: which signed group documents this gateway trusts,
//! fetched from the store's key directory, verified against the
//! administrators pinned in the config, never older than the newest one seen
//! (kept across restarts in the state directory), and what they give: the
//! epoch key new objects are written for, and (for a member) the epoch keys
//! that open what the group holds.
//!
//! What the store can do and what the gateway then does:
//! - plant a document (a new member, its own key, a version number of its
//!   choosing) without a pinned administrator's signature: refused, the
//!   last good document stays in force, a warning is logged;
//! - serve an older signed version: refused below the highest version this
//!   gateway has accepted (and below `min_version` from the config for a
//!   gateway that has accepted none);
//! - delete the documents: a gateway that accepted one keeps using it (and
//!   its copy in the state directory); one that never did cannot encrypt for
//!   the group and says so;
//! - replace a published key: the group document carries each member's key
//!   itself, signed; the key directory only serves `group add`, which checks
//!   the fingerprint the member gave the administrator.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::keyring::{Keyring, SharedIdentity, SharedRecipient};
use crate::sharing::fingerprint::Fingerprint;
use crate::sharing::group::{
    group_document_key, parse_group_document_key, GroupDocument, GroupError, VerifiedGroup,
    DIRECTORY_PREFIX, MAX_DOCUMENT_LEN,
};
use crate::store::{ListRequest, Store, StoreError};

/// One group as the config knows it.
#[derive(Clone, Debug)]
pub struct GroupTrust {
    pub name: String,
    pub admins: Vec<Fingerprint>,
    pub min_version: u64,
}

pub struct GroupSettings {
    /// Bucket of the key directory.
    pub bucket: String,
    /// This user's name in the directory.
    pub member: String,
    /// This user's private key (opens the epoch keys wrapped for them).
    pub me: SharedIdentity,
    pub groups: Vec<GroupTrust>,
    pub state_dir: Option<PathBuf>,
    pub refresh: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupFailure {
    #[error("group {0:?} is not in this gateway's config")]
    Unknown(String),
    #[error("group {name:?}: no document signed by a pinned administrator at the store ({why})")]
    Untrusted { name: String, why: String },
    #[error("the store: {0}")]
    Store(#[from] StoreError),
}

/// A group as last accepted.
pub struct Current {
    pub group: VerifiedGroup,
    /// The epoch key new objects are written for.
    pub recipient: SharedRecipient,
    /// Whether this gateway's user is a member (and can read).
    pub member: bool,
}

struct Entry {
    current: Option<Arc<Current>>,
    checked: Option<Instant>,
    /// Highest version accepted (from memory, the state directory, or the
    /// config's floor).
    floor: u64,
}

pub struct Groups {
    settings: GroupSettings,
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    entries: tokio::sync::Mutex<HashMap<String, Entry>>,
}

fn state_file(dir: &std::path::Path, name: &str) -> PathBuf {
    dir.join(format!("group-{name}.doc"))
}

impl Groups {
    /// Loads what the state directory remembers; fetches nothing yet.
    pub fn new(settings: GroupSettings, store: Arc<dyn Store>, keyring: Arc<Keyring>) -> Self {
        let mut entries = HashMap::new();
        for g in &settings.groups {
            let mut e = Entry {
                current: None,
                checked: None,
                floor: g.min_version,
            };
            take_remembered(&settings, &keyring, g, &mut e);
            entries.insert(g.name.clone(), e);
        }
        Self {
            settings,
            store,
            keyring,
            entries: tokio::sync::Mutex::new(entries),
        }
    }

    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    fn trust(&self, name: &str) -> Result<&GroupTrust, GroupFailure> {
        self.settings
            .groups
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| GroupFailure::Unknown(name.to_owned()))
    }

    /// The group as trusted now: from memory while fresh, else after asking
    /// the store for newer versions.
    pub async fn current(&self, name: &str) -> Result<Arc<Current>, GroupFailure> {
        self.refresh(name, false).await
    }

    /// Asks the store for versions newer than the one in force (at most once
    /// per `refresh` interval unless `force`), and accepts the newest that
    /// verifies.
    pub async fn refresh(&self, name: &str, force: bool) -> Result<Arc<Current>, GroupFailure> {
        let trust = self.trust(name)?.clone();
        let mut entries = self.entries.lock().await;
        let e = entries
            .get_mut(name)
            .expect("every configured group has an entry");
        let fresh = e
            .checked
            .is_some_and(|t| t.elapsed() < self.settings.refresh);
        if let (Some(c), true) = (&e.current, fresh && !force) {
            return Ok(c.clone());
        }
        take_remembered(&self.settings, &self.keyring, &trust, e);
        let newer = self.fetch_newer(&trust, e.floor, e.current.is_some()).await;
        e.checked = Some(Instant::now());
        match newer {
            Ok(Some(v)) => {
                e.floor = v.version();
                self.remember(&trust.name, &v);
                let c = Arc::new(accept(&self.settings, &self.keyring, v).map_err(|err| {
                    GroupFailure::Untrusted {
                        name: name.to_owned(),
                        why: err.to_string(),
                    }
                })?);
                e.current = Some(c.clone());
                Ok(c)
            }
            Ok(None) => e.current.clone().ok_or_else(|| GroupFailure::Untrusted {
                name: name.to_owned(),
                why: nothing_found(e.floor),
            }),
            Err(err) => match &e.current {
                // Keep the last good state through a store outage.
                Some(c) => {
                    tracing::warn!(group = name, error = %err, "could not check for a newer group document");
                    Ok(c.clone())
                }
                None => Err(err),
            },
        }
    }

    /// Asks again for every group (for a read that found no key: a member
    /// added since, a new epoch). Rate-limited like [`Groups::refresh`].
    pub async fn refresh_all(&self) -> bool {
        let mut any = false;
        for g in &self.settings.groups {
            if let Ok(c) = self.refresh(&g.name, false).await {
                any |= c.member;
            }
        }
        any
    }

    /// The newest document above `floor` that verifies, if any.
    async fn fetch_newer(
        &self,
        trust: &GroupTrust,
        floor: u64,
        have_one: bool,
    ) -> Result<Option<VerifiedGroup>, GroupFailure> {
        let prefix = format!("{DIRECTORY_PREFIX}groups/{}/", trust.name);
        let mut versions = Vec::new();
        let mut req = ListRequest {
            prefix: Some(prefix),
            max_keys: 1000,
            start_after: (floor > 0 && have_one).then(|| group_document_key(&trust.name, floor)),
            ..Default::default()
        };
        // A bounded walk: a group's history above what this gateway accepted.
        for _ in 0..100 {
            let page = self.store.list(&self.settings.bucket, &req).await?;
            let last = page.entries.last().map(|e| e.key.clone());
            versions.extend(
                page.entries
                    .iter()
                    .filter_map(|e| parse_group_document_key(&trust.name, &e.key)),
            );
            match (page.is_truncated, page.next_continuation_token, last) {
                (true, Some(t), Some(_)) if req.continuation_token.as_ref() != Some(&t) => {
                    req.continuation_token = Some(t)
                }
                _ => break,
            }
        }
        versions.retain(|v| *v > floor || (*v == floor && !have_one));
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut last_err = None;
        for v in versions.into_iter().take(16) {
            let key = group_document_key(&trust.name, v);
            let raw = match read_bounded(self.store.as_ref(), &self.settings.bucket, &key).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(e.into()),
            };
            let verified = GroupDocument::parse(&raw)
                .and_then(|d| d.verify(&trust.name, &trust.admins, floor.max(trust.min_version)));
            match verified {
                Ok(g) if g.version() == v => return Ok(Some(g)),
                Ok(g) => {
                    tracing::warn!(
                        group = trust.name,
                        key,
                        version = g.version(),
                        "group document stored under another version's name: refused"
                    );
                    last_err = Some("a document under another version's name".to_owned());
                }
                Err(err) => {
                    tracing::warn!(group = trust.name, key, error = %err, "group document refused");
                    last_err = Some(err.to_string());
                }
            }
        }
        match (have_one, last_err) {
            (false, Some(why)) => Err(GroupFailure::Untrusted {
                name: trust.name.clone(),
                why,
            }),
            _ => Ok(None),
        }
    }

    /// Keeps `v` in the state directory, unless the directory already
    /// holds a newer version (validly signed): the serving gateway and commands run on the
    /// same machine (`sealgate group remove`) share it, and one of them may
    /// have accepted a newer version meanwhile. The temporary file is named
    /// for the process, so that two writers never publish each other's
    /// half-written file.
    fn remember(&self, name: &str, v: &VerifiedGroup) {
        let Some(dir) = &self.settings.state_dir else {
            return;
        };
        let f = state_file(dir, name);
        let admins = self.trust(name).map_or(&[][..], |t| &t.admins[..]);
        let held = std::fs::read(&f)
            .ok()
            .and_then(|raw| {
                GroupDocument::parse(&raw)
                    .ok()?
                    .verify(name, admins, 0)
                    .ok()
            })
            .map_or(0, |d| d.version());
        if held > v.version() {
            return;
        }
        let res = std::fs::create_dir_all(dir).and_then(|_| {
            let tmp = f.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, v.raw())?;
            std::fs::rename(&tmp, &f)
        });
        if let Err(e) = res {
            tracing::warn!(group = name, error = %e, "could not keep the group document in the state directory");
        }
    }
}

/// Why no document is in force: nothing at the store, or nothing at or
/// above the version this gateway must not go below.
fn nothing_found(floor: u64) -> String {
    if floor == 0 {
        "none at the store (`sealgate group create` makes the first version)".into()
    } else {
        format!(
            "none of version {floor} or newer at the store (the floor is `min_version` or the newest version this gateway accepted before)"
        )
    }
}

/// Takes the document the state directory holds when it is newer than the
/// one in force (the gateway restarted, or a command on this machine, such
/// as `sealgate group remove`, accepted a newer one).
fn take_remembered(settings: &GroupSettings, keyring: &Keyring, g: &GroupTrust, e: &mut Entry) {
    let Some(dir) = &settings.state_dir else {
        return;
    };
    let Ok(raw) = std::fs::read(state_file(dir, &g.name)) else {
        return;
    };
    let held = e.current.as_ref().map_or(0, |c| c.group.version());
    let verified = GroupDocument::parse(&raw).and_then(|d| {
        if e.current.is_some() && d.unverified_content().version <= held {
            return Err(GroupError::RolledBack {
                seen: held,
                got: d.unverified_content().version,
            });
        }
        d.verify(&g.name, &g.admins, g.min_version.max(held))
    });
    match verified {
        Ok(v) => {
            e.floor = e.floor.max(v.version());
            match accept(settings, keyring, v) {
                Ok(c) => e.current = Some(Arc::new(c)),
                Err(err) => {
                    tracing::warn!(group = g.name, error = %err, "remembered group document unusable")
                }
            }
        }
        Err(GroupError::RolledBack { .. }) => {}
        Err(err) => {
            tracing::warn!(group = g.name, error = %err, "remembered group document refused")
        }
    }
}

/// What an accepted document gives: its epoch key to write for, and, for a
/// member, every epoch key learned into the keyring.
fn accept(
    settings: &GroupSettings,
    keyring: &Keyring,
    group: VerifiedGroup,
) -> Result<Current, GroupError> {
    let recipient: SharedRecipient = Arc::new(group.recipient()?);
    let member = match group.open_epochs(settings.me.as_ref()) {
        Ok(keys) => {
            keyring.learn(&format!("group:{}", group.name()), keys.into_shared());
            true
        }
        Err(GroupError::NotAMember) => {
            keyring.learn(&format!("group:{}", group.name()), Vec::new());
            false
        }
        Err(e) => return Err(e),
    };
    tracing::info!(
        group = group.name(),
        version = group.version(),
        epoch = group.content().epoch,
        member,
        key_id = hex::encode(recipient.key_id()),
        "group document accepted"
    );
    Ok(Current {
        group,
        recipient,
        member,
    })
}

/// A whole document of the directory, at most [`MAX_DOCUMENT_LEN`] bytes.
pub async fn read_bounded(
    store: &dyn Store,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let (info, mut s) = match store.get(bucket, key, None, None).await {
        Ok(x) => x,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    if info.size > MAX_DOCUMENT_LEN as u64 {
        return Ok(None);
    }
    let mut raw = Vec::with_capacity(info.size as usize);
    while let Some(c) = s.next().await {
        raw.extend_from_slice(&c.map_err(|e| StoreError::unavailable(e.to_string()))?);
        if raw.len() > MAX_DOCUMENT_LEN {
            return Ok(None);
        }
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::recipient::generate_rsa_pkcs8;
    use crate::envelope::RsaOaepIdentity;
    use crate::sharing::group::GroupContent;
    use crate::sharing::signing::SigningKey;
    use crate::store::local::LocalStore;

    const BUCKET: &str = "dir";

    struct Fixture {
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        me: SharedIdentity,
        admin: SigningKey,
    }

    impl Fixture {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn Store> =
                Arc::new(LocalStore::open(&dir.path().join("store")).unwrap());
            store.create_bucket(BUCKET).await.unwrap();
            let (pkcs8, _) = generate_rsa_pkcs8(2048).unwrap();
            Self {
                me: Arc::new(RsaOaepIdentity::from_pkcs8_der(&pkcs8).unwrap()),
                admin: SigningKey::generate().unwrap(),
                store,
                dir,
            }
        }

        /// A gateway (or a command) on this machine: the state directory
        /// is shared, the memory is not.
        fn groups(&self, min_version: u64) -> Groups {
            let keyring = Keyring::new(
                vec![("alice".into(), self.me.clone())],
                vec![],
                vec![],
                16,
                Duration::from_secs(60),
            );
            Groups::new(
                GroupSettings {
                    bucket: BUCKET.into(),
                    member: "alice".into(),
                    me: self.me.clone(),
                    groups: vec![GroupTrust {
                        name: "team".into(),
                        admins: vec![self.admin.fingerprint()],
                        min_version,
                    }],
                    state_dir: Some(self.dir.path().join("state")),
                    refresh: Duration::ZERO,
                },
                self.store.clone(),
                Arc::new(keyring),
            )
        }

        async fn publish(&self, content: &GroupContent) {
            let doc = content.sign(&[&self.admin]).unwrap();
            let raw = bytes::Bytes::copy_from_slice(doc.raw());
            let n = raw.len() as u64;
            let body: crate::store::ByteStream =
                Box::pin(futures::stream::once(async move { Ok(raw) }));
            self.store
                .put(
                    BUCKET,
                    &group_document_key("team", content.version),
                    body,
                    n,
                    &Default::default(),
                    None,
                )
                .await
                .unwrap();
        }

        fn remembered_version(&self) -> u64 {
            let raw = std::fs::read(state_file(&self.dir.path().join("state"), "team")).unwrap();
            GroupDocument::parse(&raw)
                .unwrap()
                .unverified_content()
                .version
        }
    }

    /// Two processes share the state directory (a gateway and
    /// `sealgate group ...` on the same machine): the one holding an older
    /// version never replaces the newer one the other kept there.
    #[tokio::test]
    async fn the_state_directory_never_goes_back() {
        let f = Fixture::new().await;
        let (v1, keys) =
            GroupContent::create("team", &f.admin.verifying_key(), "alice", &f.me.spki_der())
                .unwrap();
        f.publish(&v1).await;
        let stale = f.groups(0);
        let old = stale.refresh("team", true).await.unwrap();
        assert_eq!(old.group.version(), 1);
        assert_eq!(f.remembered_version(), 1);

        let (pkcs8, _) = generate_rsa_pkcs8(2048).unwrap();
        let bob = RsaOaepIdentity::from_pkcs8_der(&pkcs8).unwrap();
        let v2 = v1.add(&keys, "bob", bob.public_spki_der()).unwrap();
        f.publish(&v2).await;
        let fresh = f.groups(0);
        assert_eq!(
            fresh.refresh("team", true).await.unwrap().group.version(),
            2
        );
        assert_eq!(f.remembered_version(), 2);

        // The stale process keeps what it accepted before, late.
        stale.remember("team", &old.group);
        assert_eq!(f.remembered_version(), 2, "the memory went back");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(f.dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["group-team.doc"]);
    }

    /// With nothing at the store, or nothing at or above the floor, the
    /// error says which.
    #[tokio::test]
    async fn nothing_in_force_says_why() {
        let f = Fixture::new().await;
        let e = f.groups(0).refresh("team", true).await.err().unwrap();
        assert!(e.to_string().contains("group create"), "{e}");
        let (v1, _) =
            GroupContent::create("team", &f.admin.verifying_key(), "alice", &f.me.spki_der())
                .unwrap();
        f.publish(&v1).await;
        let e = f.groups(2).refresh("team", true).await.err().unwrap();
        assert!(e.to_string().contains("version 2 or newer"), "{e}");
        assert_eq!(
            f.groups(1)
                .refresh("team", true)
                .await
                .unwrap()
                .group
                .version(),
            1
        );
    }
}
