//! Group documents: who may read what a group ("room") holds, signed by its
//! administrators and kept at the untrusted store. Pure code: no I/O.
//!
//! An object written for a group wraps its data key once, for the group's
//! current **epoch key** (an X25519 key pair, [`crate::envelope::x25519`]);
//! the document wraps the epoch private key for every member's RSA key, and
//! carries a chain that opens every older epoch key from the current one.
//! Joining is a new document version (the current epoch key wrapped for one
//! more member, no object touched); removing someone is a new epoch key
//! (objects written afterwards are not readable by them).
//!
//! Layout (fixed in v1; `docs/FORMAT.md` section 15):
//!
//! ```text
//! doc     = "sealgate/v1/group" (17) || be32 L || records (L bytes)
//!           || u8 n || n x (Ed25519 public key (32) || signature (64))
//! signed  = "sealgate/v1/group-signature" || doc[.. 21 + L]
//! records (the record-list rules of sealed blocks, FORMAT.md 4.5):
//!   0x01 name          1..=64 bytes of [a-z0-9._-], not starting with '.'
//!   0x02 be64 version  >= 1
//!   0x03 be32 epoch    >= 1 (the current epoch)
//!   0x04 epoch key     the current epoch's X25519 public key (32)
//!   0x05 member        repeatable: be16 len || name || be16 len || RSA SPKI DER
//!                      || RSA-OAEP-256(member key, label "sealgate/v1/group-epoch-key",
//!                                      current epoch private key (32))
//!   0x06 chain link    repeatable, one per epoch e in 1..epoch:
//!                      be32 e || X25519 public key of e (32)
//!                      || AES-256-GCM(K_e, nonce 0^12, private key of e (32),
//!                                     AAD "sealgate/v1/group-chain" || be32 e)
//!                      K_e = HKDF-SHA256(salt "", IKM = private key of e + 1,
//!                                        info "sealgate/v1/group-chain" || be32 e)
//!   0x07 admin         repeatable: an administrator's Ed25519 public key (32)
//! ```
//!
//! Trust comes only from signatures by keys the reader pins (by fingerprint)
//! for the group, never from the document itself; a reader remembers the
//! highest version it has accepted and refuses older ones (rollback).

use std::sync::Arc;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use super::fingerprint::Fingerprint;
use super::signing::{SigningKey, VerifyingKey, ED25519_PUBLIC_LEN, ED25519_SIGNATURE_LEN};
use crate::envelope::recipient::{key_id_of_spki, Algorithm, Identity, RsaOaepRecipient};
use crate::envelope::sealed::{self, read_records, RecordWriter};
use crate::envelope::x25519::{X25519Identity, X25519Recipient, X25519_KEY_LEN};
use crate::envelope::{FormatError, Recipient, KEY_ID_LEN, TAG_LEN};

/// First bytes of every group document. Fixed in v1.
pub const GROUP_MAGIC: &[u8] = b"sealgate/v1/group";
/// Prefix of the message administrators sign. Fixed in v1.
pub const SIGNATURE_CONTEXT: &[u8] = b"sealgate/v1/group-signature";
/// OAEP label of an epoch key wrapped for a member. Fixed in v1.
pub const EPOCH_KEY_LABEL: &[u8] = b"sealgate/v1/group-epoch-key";
/// HKDF info prefix and AAD prefix of chain links. Fixed in v1.
pub const CHAIN_CONTEXT: &[u8] = b"sealgate/v1/group-chain";
/// Largest document a reader accepts (DoS guard): 10,000 members with
/// RSA-4096 keys take about 11 MB.
pub const MAX_DOCUMENT_LEN: usize = 16 << 20;
/// Most members a document may have.
pub const MAX_MEMBERS: usize = 10_000;
/// Longest group or member name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most signatures (the count is one byte).
pub const MAX_SIGNERS: usize = 255;
/// Length of a sealed epoch private key in a chain link.
pub const CHAIN_SEALED_LEN: usize = X25519_KEY_LEN + TAG_LEN;
/// Length of a chain link record.
pub const CHAIN_LINK_LEN: usize = 4 + X25519_KEY_LEN + CHAIN_SEALED_LEN;
/// Where group documents and published keys live in the directory bucket.
pub const DIRECTORY_PREFIX: &str = ".sealgate/dir/";

const T_NAME: u8 = 0x01;
const T_VERSION: u8 = 0x02;
const T_EPOCH: u8 = 0x03;
const T_EPOCH_KEY: u8 = 0x04;
const T_MEMBER: u8 = 0x05;
const T_CHAIN: u8 = 0x06;
const T_ADMIN: u8 = 0x07;
const REPEATABLE: &[u8] = &[T_MEMBER, T_CHAIN, T_ADMIN];
const SIGNATURE_ENTRY_LEN: usize = ED25519_PUBLIC_LEN + ED25519_SIGNATURE_LEN;

/// Why a group document was refused, or an operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the group document carries no signature")]
    Unsigned,
    #[error("no signer of the group document is pinned for this group")]
    UnknownSigner,
    #[error("a signature of the group document does not verify")]
    BadSignature,
    #[error(
        "group document version {got} is older than version {seen}, already accepted (rollback)"
    )]
    RolledBack { seen: u64, got: u64 },
    #[error("the document is for group {found:?}, not {asked:?}")]
    WrongName { asked: String, found: String },
    #[error("malformed group document: {0}")]
    Malformed(&'static str),
    #[error("not a member of this group")]
    NotAMember,
    /// An operation that cannot be done (adding a member twice...).
    #[error("{0}")]
    Invalid(&'static str),
    #[error("crypto backend failure")]
    Crypto,
}

pub type Result<T> = std::result::Result<T, GroupError>;

fn malformed(e: FormatError) -> GroupError {
    match e {
        FormatError::MalformedHeader(m) => GroupError::Malformed(m),
        _ => GroupError::Malformed("bad record list"),
    }
}

/// Whether `name` may name a group: 1..=64 bytes of `[a-z0-9._-]`, not
/// starting with '.' (it is a path segment at the store).
pub fn valid_group_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Whether `name` may name a member (and their key in the key directory):
/// 1..=64 bytes of `[A-Za-z0-9._-]`, not starting with '.'.
pub fn valid_member_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Store key of version `version` of group `name`'s document, in the
/// directory bucket. Zero-padded, so that keys sort by version.
pub fn group_document_key(name: &str, version: u64) -> String {
    format!("{DIRECTORY_PREFIX}groups/{name}/v{version:020}")
}

/// The version a store key of [`group_document_key`]'s form names, if it
/// is one for `name`.
pub fn parse_group_document_key(name: &str, key: &str) -> Option<u64> {
    let digits = key
        .strip_prefix(DIRECTORY_PREFIX)?
        .strip_prefix("groups/")?
        .strip_prefix(name)?
        .strip_prefix("/v")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Store key of a person's published RSA public key (SPKI PEM) in the key
/// directory. Unsigned: its presence proves nothing (FORMAT.md 15.2).
pub fn key_directory_key(member: &str) -> String {
    format!("{DIRECTORY_PREFIX}keys/{member}.pem")
}

/// Wraps an epoch private key for a member's RSA public key (SPKI DER).
pub fn wrap_epoch_key(member_spki: &[u8], epoch: &X25519Identity) -> Result<Vec<u8>> {
    let r = RsaOaepRecipient::from_spki_der(member_spki)
        .map_err(|_| GroupError::Invalid("not an RSA public key of 2048 bits or more"))?;
    r.wrap_secret(epoch.expose_secret(), EPOCH_KEY_LABEL)
        .map_err(|_| GroupError::Crypto)
}

/// One member: a name, their RSA public key, and the current epoch private
/// key wrapped for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// RSA SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// RSA-OAEP-256 of the current epoch private key, label [`EPOCH_KEY_LABEL`].
    pub wrapped: Vec<u8>,
}

impl Member {
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        key_id_of_spki(&self.spki)
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_spki(&self.spki)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(4 + self.name.len() + self.spki.len() + self.wrapped.len());
        for field in [self.name.as_bytes(), &self.spki] {
            let len = u16::try_from(field.len())
                .map_err(|_| GroupError::Malformed("member field too long"))?;
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(field);
        }
        v.extend_from_slice(&self.wrapped);
        Ok(v)
    }

    fn decode(v: &[u8]) -> Result<Self> {
        let mut pos = 0usize;
        let mut field = || -> Result<&[u8]> {
            let len_bytes = v
                .get(pos..pos + 2)
                .ok_or(GroupError::Malformed("member record truncated"))?;
            let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
            let f = v
                .get(pos + 2..pos + 2 + len)
                .ok_or(GroupError::Malformed("member record truncated"))?;
            pos += 2 + len;
            Ok(f)
        };
        let name = std::str::from_utf8(field()?)
            .map_err(|_| GroupError::Malformed("member name is not UTF-8"))?
            .to_string();
        let spki = field()?.to_vec();
        Ok(Self {
            name,
            spki,
            wrapped: v[pos..].to_vec(),
        })
    }

    /// Name rule, RSA key of at least 2048 bits, wrap of the key's size.
    fn check(&self) -> Result<()> {
        if !valid_member_name(&self.name) {
            return Err(GroupError::Malformed("bad member name"));
        }
        let r = RsaOaepRecipient::from_spki_der(&self.spki).map_err(|_| {
            GroupError::Malformed("member key is not an RSA key of 2048 bits or more")
        })?;
        if self.wrapped.len() != r.wrapped_len() {
            return Err(GroupError::Malformed(
                "wrapped epoch key is not the member key's size",
            ));
        }
        Ok(())
    }
}

/// The link that opens epoch `epoch`'s private key with the next one's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLink {
    pub epoch: u32,
    /// X25519 public key of `epoch`.
    pub public: [u8; X25519_KEY_LEN],
    /// Its private key, sealed under a key derived from epoch `epoch + 1`'s.
    pub sealed: [u8; CHAIN_SEALED_LEN],
}

fn chain_aead(epoch: u32, newer: &X25519Identity) -> Result<(LessSafeKey, Vec<u8>)> {
    struct Len;
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            32
        }
    }
    let e = epoch.to_be_bytes();
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, &[])
        .extract(newer.expose_secret())
        .expand(&[CHAIN_CONTEXT, &e], Len)
        .and_then(|okm| okm.fill(&mut k[..]))
        .map_err(|_| GroupError::Crypto)?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k[..]).map_err(|_| GroupError::Crypto)?);
    let mut aad = CHAIN_CONTEXT.to_vec();
    aad.extend_from_slice(&e);
    Ok((key, aad))
}

impl ChainLink {
    /// Seals epoch `epoch`'s key pair `older` under `newer` (epoch + 1).
    /// Deterministic: each `newer` key seals one link, once.
    pub fn seal(epoch: u32, older: &X25519Identity, newer: &X25519Identity) -> Result<Self> {
        let (key, aad) = chain_aead(epoch, newer)?;
        let mut buf = Zeroizing::new([0u8; CHAIN_SEALED_LEN]);
        buf[..X25519_KEY_LEN].copy_from_slice(older.expose_secret());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&aad[..]),
                &mut buf[..X25519_KEY_LEN],
            )
            .map_err(|_| GroupError::Crypto)?;
        buf[X25519_KEY_LEN..].copy_from_slice(tag.as_ref());
        Ok(Self {
            epoch,
            public: *older.public_bytes(),
            sealed: *buf,
        })
    }

    /// Opens this link with the next epoch's key; the key inside must be
    /// the one the link names.
    pub fn open(&self, newer: &X25519Identity) -> Result<X25519Identity> {
        let (key, aad) = chain_aead(self.epoch, newer)?;
        let mut buf = Zeroizing::new(self.sealed);
        let secret = key
            .open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&aad[..]),
                &mut buf[..],
            )
            .map_err(|_| GroupError::Malformed("a chain link does not open"))?;
        let secret: &[u8; X25519_KEY_LEN] =
            (&*secret).try_into().map_err(|_| GroupError::Crypto)?;
        let older = X25519Identity::from_secret_bytes(secret).map_err(|_| GroupError::Crypto)?;
        if older.public_bytes() != &self.public {
            return Err(GroupError::Malformed(
                "a chain link holds another key than it names",
            ));
        }
        Ok(older)
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CHAIN_LINK_LEN);
        v.extend_from_slice(&self.epoch.to_be_bytes());
        v.extend_from_slice(&self.public);
        v.extend_from_slice(&self.sealed);
        v
    }

    fn decode(v: &[u8]) -> Result<Self> {
        let v: &[u8; CHAIN_LINK_LEN] = v
            .try_into()
            .map_err(|_| GroupError::Malformed("chain link has the wrong length"))?;
        Ok(Self {
            epoch: u32::from_be_bytes(v[..4].try_into().expect("fixed")),
            public: v[4..36].try_into().expect("fixed"),
            sealed: v[36..].try_into().expect("fixed"),
        })
    }
}

/// What administrators sign: the content of one version of a group.
/// Building one does not make it trusted: a reader trusts a
/// [`VerifiedGroup`] only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupContent {
    pub name: String,
    pub version: u64,
    pub epoch: u32,
    /// The current epoch's X25519 public key: what objects are written for.
    pub epoch_key: [u8; X25519_KEY_LEN],
    pub members: Vec<Member>,
    /// One link per older epoch, 1..epoch.
    pub chain: Vec<ChainLink>,
    pub admins: Vec<VerifyingKey>,
}

impl GroupContent {
    /// Version 1 of a new group: epoch 1 (a fresh X25519 key), the creator as
    /// its only member and `admin` as its administrator.
    pub fn create(
        name: &str,
        admin: &VerifyingKey,
        creator: &str,
        creator_spki: &[u8],
    ) -> Result<(Self, EpochKeys)> {
        if !valid_group_name(name) {
            return Err(GroupError::Invalid(
                "a group name is 1 to 64 characters of a-z, 0-9, '.', '_' and '-', not starting with '.'",
            ));
        }
        check_new_member_name(creator)?;
        let epoch = X25519Identity::generate().map_err(|_| GroupError::Crypto)?;
        let content = Self {
            name: name.to_string(),
            version: 1,
            epoch: 1,
            epoch_key: *epoch.public_bytes(),
            members: vec![Member {
                name: creator.to_string(),
                spki: creator_spki.to_vec(),
                wrapped: wrap_epoch_key(creator_spki, &epoch)?,
            }],
            chain: Vec::new(),
            admins: vec![*admin],
        };
        content.check()?;
        Ok((content, EpochKeys { keys: vec![epoch] }))
    }

    /// The next version with one more member: the current epoch key wrapped
    /// for them (they can read everything the group holds; no object is
    /// touched). `keys` are this version's, opened by an administrator who
    /// is a member.
    pub fn add(&self, keys: &EpochKeys, name: &str, spki: &[u8]) -> Result<Self> {
        keys.check_for(self)?;
        check_new_member_name(name)?;
        if self.members.iter().any(|m| m.name == name) {
            return Err(GroupError::Invalid("a member of that name exists"));
        }
        if self
            .members
            .iter()
            .any(|m| m.key_id() == key_id_of_spki(spki))
        {
            return Err(GroupError::Invalid("that key is already a member's"));
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(GroupError::Invalid(
                "the group has the most members it may have",
            ));
        }
        let mut next = self.clone();
        next.version = self.next_version()?;
        next.members.push(Member {
            name: name.to_string(),
            spki: spki.to_vec(),
            wrapped: wrap_epoch_key(spki, keys.current())?,
        });
        next.check()?;
        Ok(next)
    }

    /// The next version without member `name`, under a new epoch: a fresh
    /// X25519 key wrapped for every remaining member, and a chain link that
    /// opens the old epoch key with the new one. Objects written for the new
    /// epoch are not readable by the removed member; those written before
    /// stay readable by them until re-encrypted. Gives the new epoch keys.
    pub fn remove(&self, keys: &EpochKeys, name: &str) -> Result<(Self, EpochKeys)> {
        keys.check_for(self)?;
        if !self.members.iter().any(|m| m.name == name) {
            return Err(GroupError::Invalid("no member of that name"));
        }
        if self.members.len() == 1 {
            return Err(GroupError::Invalid("cannot remove a group's last member"));
        }
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or(GroupError::Invalid("epoch counter exhausted"))?;
        let new = X25519Identity::generate().map_err(|_| GroupError::Crypto)?;
        let mut next = self.clone();
        next.version = self.next_version()?;
        next.epoch = epoch;
        next.epoch_key = *new.public_bytes();
        next.chain
            .push(ChainLink::seal(self.epoch, keys.current(), &new)?);
        next.members.retain(|m| m.name != name);
        for m in &mut next.members {
            m.wrapped = wrap_epoch_key(&m.spki, &new)?;
        }
        next.check()?;
        let mut all = Vec::with_capacity(keys.keys.len() + 1);
        for k in &keys.keys {
            all.push(
                X25519Identity::from_secret_bytes(k.expose_secret())
                    .map_err(|_| GroupError::Crypto)?,
            );
        }
        all.push(new);
        Ok((next, EpochKeys { keys: all }))
    }

    fn next_version(&self) -> Result<u64> {
        self.version
            .checked_add(1)
            .ok_or(GroupError::Invalid("version counter exhausted"))
    }

    /// Every epoch key, opened with a member's identity: the current one
    /// from the member's record, the older ones down the chain. Opening a
    /// document's keys needs no trust in it (they are wrapped for `me`);
    /// *writing* for its epoch key does ([`VerifiedGroup::recipient`]).
    pub fn open_epochs(&self, me: &dyn Identity) -> Result<EpochKeys> {
        if me.algorithm() != Algorithm::RsaOaep256 {
            return Err(GroupError::NotAMember);
        }
        let member = self
            .members
            .iter()
            .find(|m| m.key_id() == me.key_id())
            .ok_or(GroupError::NotAMember)?;
        let secret = me
            .unwrap_secret(&member.wrapped, EPOCH_KEY_LABEL)
            .map_err(|_| {
                GroupError::Malformed("the epoch key wrapped for this member does not open")
            })?;
        let current = X25519Identity::from_secret_bytes(&secret).map_err(|_| GroupError::Crypto)?;
        if current.public_bytes() != &self.epoch_key {
            return Err(GroupError::Malformed(
                "the epoch key wrapped for this member is not the current one",
            ));
        }
        let mut newest_first = vec![current];
        for link in self.chain.iter().rev() {
            let newer = newest_first.last().expect("starts non-empty");
            newest_first.push(link.open(newer)?);
        }
        newest_first.reverse();
        Ok(EpochKeys { keys: newest_first })
    }

    /// The member whose RSA key has this key id.
    pub fn member_by_key_id(&self, key_id: &[u8; KEY_ID_LEN]) -> Option<&Member> {
        self.members.iter().find(|m| &m.key_id() == key_id)
    }

    /// The record list, canonical (every repeatable record sorted), after
    /// checking every rule a reader checks.
    fn encode_records(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.check()?;
        let mut members = self
            .members
            .iter()
            .map(Member::encode)
            .collect::<Result<Vec<_>>>()?;
        members.sort();
        let mut chain: Vec<Vec<u8>> = self.chain.iter().map(ChainLink::encode).collect();
        chain.sort();
        let mut admins: Vec<[u8; 32]> = self.admins.iter().map(|a| *a.as_bytes()).collect();
        admins.sort();
        let mut w = RecordWriter::new();
        w.put(T_NAME, self.name.as_bytes()).map_err(malformed)?;
        w.put(T_VERSION, &self.version.to_be_bytes())
            .map_err(malformed)?;
        w.put(T_EPOCH, &self.epoch.to_be_bytes())
            .map_err(malformed)?;
        w.put(T_EPOCH_KEY, &self.epoch_key).map_err(malformed)?;
        for (tag, values) in [
            (T_MEMBER, members),
            (T_CHAIN, chain),
            (T_ADMIN, admins.iter().map(|a| a.to_vec()).collect()),
        ] {
            for v in values {
                w.put(tag, &v)
                    .map_err(|_| GroupError::Malformed("repeated record"))?;
            }
        }
        Ok(w.finish())
    }

    /// The signed part of the document: magic, length, records.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let records = self.encode_records()?;
        let len = u32::try_from(records.len())
            .ok()
            .filter(|&l| (l as usize) + GROUP_MAGIC.len() + 5 <= MAX_DOCUMENT_LEN)
            .ok_or(GroupError::Malformed("document too long"))?;
        let mut out = Vec::with_capacity(GROUP_MAGIC.len() + 4 + records.len());
        out.extend_from_slice(GROUP_MAGIC);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&records);
        Ok(out)
    }

    /// The document signed by `signers` (at least one).
    pub fn sign(&self, signers: &[&SigningKey]) -> Result<GroupDocument> {
        if signers.is_empty() || signers.len() > MAX_SIGNERS {
            return Err(GroupError::Invalid("a document needs 1 to 255 signers"));
        }
        let mut raw = self.encode()?;
        let msg = signed_message(&raw);
        let mut sigs: Vec<([u8; 32], [u8; 64])> = signers
            .iter()
            .map(|k| (*k.verifying_key().as_bytes(), k.sign(&msg)))
            .collect();
        sigs.sort();
        if sigs.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(GroupError::Invalid("the same key signs twice"));
        }
        raw.push(sigs.len() as u8);
        for (pk, sig) in &sigs {
            raw.extend_from_slice(pk);
            raw.extend_from_slice(sig);
        }
        if raw.len() > MAX_DOCUMENT_LEN {
            return Err(GroupError::Malformed("document too long"));
        }
        GroupDocument::parse(&raw)
    }

    fn decode(records: &[u8]) -> Result<Self> {
        let list = read_records(records, REPEATABLE).map_err(malformed)?;
        let (mut name, mut version, mut epoch, mut epoch_key) = (None, None, None, None);
        let (mut members, mut chain, mut admins) = (Vec::new(), Vec::new(), Vec::new());
        for (tag, v) in list {
            match tag {
                T_NAME => name = Some(sealed::text(v).map_err(malformed)?),
                T_VERSION => {
                    version = Some(u64::from_be_bytes(sealed::fixed(v).map_err(malformed)?))
                }
                T_EPOCH => epoch = Some(u32::from_be_bytes(sealed::fixed(v).map_err(malformed)?)),
                T_EPOCH_KEY => epoch_key = Some(sealed::fixed::<32>(v).map_err(malformed)?),
                T_MEMBER => {
                    if members.len() == MAX_MEMBERS {
                        return Err(GroupError::Malformed("too many members"));
                    }
                    members.push(Member::decode(v)?);
                }
                T_CHAIN => chain.push(ChainLink::decode(v)?),
                T_ADMIN => admins.push(VerifyingKey::from_bytes(
                    sealed::fixed::<32>(v).map_err(malformed)?,
                )),
                t => sealed::unknown(t).map_err(malformed)?,
            }
        }
        let missing = GroupError::Malformed("a required record is missing");
        let content = Self {
            name: name.ok_or(missing.clone())?,
            version: version.ok_or(missing.clone())?,
            epoch: epoch.ok_or(missing.clone())?,
            epoch_key: epoch_key.ok_or(missing)?,
            members,
            chain,
            admins,
        };
        content.check()?;
        Ok(content)
    }

    /// Every structural rule of FORMAT.md 15.3 (no signature, no key opened).
    fn check(&self) -> Result<()> {
        if !valid_group_name(&self.name) {
            return Err(GroupError::Malformed("bad group name"));
        }
        if self.version == 0 {
            return Err(GroupError::Malformed("version 0"));
        }
        if self.epoch == 0 {
            return Err(GroupError::Malformed("epoch 0"));
        }
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(GroupError::Malformed("member count out of range"));
        }
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for m in &self.members {
            m.check()?;
            if !names.insert(m.name.as_str()) {
                return Err(GroupError::Malformed("two members share a name"));
            }
            if !ids.insert(m.key_id()) {
                return Err(GroupError::Malformed("two members share a key"));
            }
        }
        let mut epochs: Vec<u32> = self.chain.iter().map(|l| l.epoch).collect();
        epochs.sort_unstable();
        if !epochs.iter().copied().eq(1..self.epoch) {
            return Err(GroupError::Malformed(
                "the epoch chain is not exactly one link per older epoch",
            ));
        }
        if self.admins.is_empty() {
            return Err(GroupError::Malformed("no administrator"));
        }
        let mut a: Vec<_> = self.admins.iter().map(|k| *k.as_bytes()).collect();
        a.sort_unstable();
        a.dedup();
        if a.len() != self.admins.len() {
            return Err(GroupError::Malformed("an administrator is listed twice"));
        }
        Ok(())
    }
}

fn check_new_member_name(name: &str) -> Result<()> {
    if valid_member_name(name) {
        Ok(())
    } else {
        Err(GroupError::Invalid(
            "a member name is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'",
        ))
    }
}

fn signed_message(signed_part: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_CONTEXT.len() + signed_part.len());
    m.extend_from_slice(SIGNATURE_CONTEXT);
    m.extend_from_slice(signed_part);
    m
}

/// A parsed group document: well formed, but nothing in it trusted yet.
#[derive(Clone, Debug)]
pub struct GroupDocument {
    content: GroupContent,
    signatures: Vec<(VerifyingKey, [u8; ED25519_SIGNATURE_LEN])>,
    signed_len: usize,
    raw: Vec<u8>,
}

impl GroupDocument {
    /// Parses document bytes read from the store (bounded; every rule of
    /// FORMAT.md 15.3). An unsigned document parses: [`GroupDocument::verify`]
    /// refuses it.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        if raw.len() > MAX_DOCUMENT_LEN {
            return Err(GroupError::Malformed("document too long"));
        }
        let rest = raw
            .strip_prefix(GROUP_MAGIC)
            .ok_or(GroupError::Malformed("not a group document"))?;
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .ok_or(GroupError::Malformed("document truncated"))?
            .try_into()
            .expect("4 bytes");
        let len = u32::from_be_bytes(len_bytes) as usize;
        let records = rest
            .get(4..4 + len)
            .ok_or(GroupError::Malformed("document truncated"))?;
        let signed_len = GROUP_MAGIC.len() + 4 + len;
        let tail = &raw[signed_len..];
        let (&n, entries) = tail
            .split_first()
            .ok_or(GroupError::Malformed("document truncated"))?;
        let n = n as usize;
        if entries.len() < n * SIGNATURE_ENTRY_LEN {
            return Err(GroupError::Malformed("document truncated"));
        }
        if entries.len() > n * SIGNATURE_ENTRY_LEN {
            return Err(GroupError::Malformed("bytes after the signatures"));
        }
        let mut signatures = Vec::with_capacity(n);
        for e in entries.chunks_exact(SIGNATURE_ENTRY_LEN) {
            let pk: [u8; 32] = e[..32].try_into().expect("fixed");
            let sig: [u8; 64] = e[32..].try_into().expect("fixed");
            if let Some((last, _)) = signatures.last() {
                if VerifyingKey::from_bytes(pk) <= *last {
                    return Err(GroupError::Malformed("signers out of order or repeated"));
                }
            }
            signatures.push((VerifyingKey::from_bytes(pk), sig));
        }
        let content = GroupContent::decode(records)?;
        Ok(Self {
            content,
            signatures,
            signed_len,
            raw: raw.to_vec(),
        })
    }

    /// Checks, in this order (FORMAT.md 15.4): at least one signature
    /// (`Unsigned`); every signature verifies (`BadSignature`); a signer's
    /// fingerprint is in `pinned` (`UnknownSigner`); the name is `name`
    /// (`WrongName`); the version is at least `min_version`, the highest
    /// this reader has accepted (`RolledBack`).
    pub fn verify(
        self,
        name: &str,
        pinned: &[Fingerprint],
        min_version: u64,
    ) -> Result<VerifiedGroup> {
        if self.signatures.is_empty() {
            return Err(GroupError::Unsigned);
        }
        let msg = signed_message(&self.raw[..self.signed_len]);
        for (pk, sig) in &self.signatures {
            pk.verify(&msg, sig).map_err(|_| GroupError::BadSignature)?;
        }
        if !self
            .signatures
            .iter()
            .any(|(pk, _)| pinned.contains(&pk.fingerprint()))
        {
            return Err(GroupError::UnknownSigner);
        }
        if self.content.name != name {
            return Err(GroupError::WrongName {
                asked: name.to_string(),
                found: self.content.name.clone(),
            });
        }
        if self.content.version < min_version {
            return Err(GroupError::RolledBack {
                seen: min_version,
                got: self.content.version,
            });
        }
        Ok(VerifiedGroup { doc: self })
    }

    /// The content as the document claims it: not authenticated.
    pub fn unverified_content(&self) -> &GroupContent {
        &self.content
    }

    /// The signers' public keys (not verified).
    pub fn signers(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.signatures.iter().map(|(pk, _)| pk)
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

/// A document whose signatures verified, by a pinned key, for the asked
/// name, at or above the lowest acceptable version.
#[derive(Clone, Debug)]
pub struct VerifiedGroup {
    doc: GroupDocument,
}

impl VerifiedGroup {
    pub fn content(&self) -> &GroupContent {
        &self.doc.content
    }

    pub fn name(&self) -> &str {
        &self.doc.content.name
    }

    pub fn version(&self) -> u64 {
        self.doc.content.version
    }

    /// What to write new objects for: the current epoch's public key. Only a
    /// verified document gives it (the store could otherwise substitute a
    /// key of its own and read every new object).
    pub fn recipient(&self) -> Result<X25519Recipient> {
        X25519Recipient::from_public_bytes(self.doc.content.epoch_key)
            .map_err(|_| GroupError::Malformed("the epoch key is not a usable X25519 key"))
    }

    /// Every epoch key, for a member ([`GroupContent::open_epochs`]).
    pub fn open_epochs(&self, me: &dyn Identity) -> Result<EpochKeys> {
        self.doc.content.open_epochs(me)
    }

    /// The signers' public keys (verified).
    pub fn signers(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.doc.signers()
    }

    /// The exact document bytes (to store them, or to remember a hash).
    pub fn raw(&self) -> &[u8] {
        &self.doc.raw
    }
}

/// A group's epoch private keys, 1..=current, opened by a member.
pub struct EpochKeys {
    /// Index `e - 1` holds epoch `e`; never empty.
    keys: Vec<X25519Identity>,
}

impl EpochKeys {
    pub fn current_epoch(&self) -> u32 {
        self.keys.len() as u32
    }

    pub fn current(&self) -> &X25519Identity {
        self.keys.last().expect("never empty")
    }

    pub fn get(&self, epoch: u32) -> Option<&X25519Identity> {
        (epoch as usize)
            .checked_sub(1)
            .and_then(|i| self.keys.get(i))
    }

    /// Every epoch key as an identity, newest first.
    pub fn identities(&self) -> Vec<&dyn Identity> {
        self.keys.iter().rev().map(|k| k as &dyn Identity).collect()
    }

    /// Every epoch key as a shared identity (for a keyring), newest first.
    pub fn into_shared(self) -> Vec<Arc<dyn Identity>> {
        self.keys
            .into_iter()
            .rev()
            .map(|k| Arc::new(k) as Arc<dyn Identity>)
            .collect()
    }

    fn check_for(&self, content: &GroupContent) -> Result<()> {
        if self.current_epoch() != content.epoch
            || self.current().public_bytes() != &content.epoch_key
        {
            return Err(GroupError::Invalid(
                "these epoch keys are not the document's current ones",
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::recipient::{generate_rsa_pkcs8, RsaOaepIdentity};
    use crate::envelope::{BodyBinding, DataKey, Header};

    struct Person {
        id: RsaOaepIdentity,
        spki: Vec<u8>,
    }

    fn person() -> Person {
        let (p, q) = generate_rsa_pkcs8(2048).unwrap();
        Person {
            id: RsaOaepIdentity::from_pkcs8_der(&p).unwrap(),
            spki: q,
        }
    }

    fn people(n: usize) -> Vec<Person> {
        // RSA key generation is slow: a few, shared by the tests of one run.
        static POOL: std::sync::OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = std::sync::OnceLock::new();
        let pool = POOL.get_or_init(|| {
            (0..4)
                .map(|_| {
                    let (p, q) = generate_rsa_pkcs8(2048).unwrap();
                    (p.to_vec(), q)
                })
                .collect()
        });
        pool.iter()
            .take(n)
            .map(|(p, q)| Person {
                id: RsaOaepIdentity::from_pkcs8_der(p).unwrap(),
                spki: q.clone(),
            })
            .collect()
    }

    fn object_for(g: &VerifiedGroup) -> Vec<u8> {
        let r = g.recipient().unwrap();
        let dk = DataKey::generate().unwrap();
        let b = BodyBinding::Single {
            salt: [1; 16],
            plaintext_len: 3,
        };
        Header::seal(&dk, &[&r], b, "bkt", "k")
            .unwrap()
            .raw()
            .to_vec()
    }

    fn opens(raw: &[u8], keys: &EpochKeys) -> bool {
        Header::open(raw, &keys.identities(), "bkt", "k").is_ok()
    }

    #[test]
    fn create_add_remove_open() {
        let p = people(4);
        let (alice, bob, carol, dave) = (&p[0], &p[1], &p[2], &p[3]);
        let admin = SigningKey::generate().unwrap();
        let pins = [admin.fingerprint()];

        let (v1, k1) =
            GroupContent::create("team", &admin.verifying_key(), "alice", &alice.spki).unwrap();
        let d1 = v1.sign(&[&admin]).unwrap();
        let g1 = GroupDocument::parse(d1.raw())
            .unwrap()
            .verify("team", &pins, 0)
            .unwrap();
        assert_eq!((g1.version(), g1.content().epoch), (1, 1));
        let obj1 = object_for(&g1);
        assert!(opens(&obj1, &g1.open_epochs(&alice.id).unwrap()));
        assert_eq!(g1.open_epochs(&bob.id).unwrap_err(), GroupError::NotAMember);

        // Joining: a new version, the same epoch; bob reads what was there.
        let v2 = g1.content().add(&k1, "bob", &bob.spki).unwrap();
        let v3 = v2.add(&k1, "dave", &dave.spki).unwrap();
        assert_eq!(
            v3.add(&k1, "bob", &carol.spki).unwrap_err(),
            GroupError::Invalid("a member of that name exists")
        );
        assert!(
            v3.add(&k1, "bobby", &bob.spki).is_err(),
            "one key, one member"
        );
        let g3 = v3
            .sign(&[&admin])
            .unwrap()
            .verify("team", &pins, 1)
            .unwrap();
        assert_eq!((g3.version(), g3.content().epoch), (3, 1));
        let dave_keys = g3.open_epochs(&dave.id).unwrap();
        assert!(opens(&obj1, &dave_keys));
        assert!(opens(&obj1, &g3.open_epochs(&bob.id).unwrap()));

        // Removing: a new epoch; dave cannot read what is written after.
        let (v4, k4) = g3.content().remove(&k1, "dave").unwrap();
        assert!(
            g3.content().remove(&k4, "bob").is_err(),
            "keys of another version"
        );
        let v5 = v4.add(&k4, "carol", &carol.spki).unwrap();
        assert!(v5.add(&k1, "erin", &dave.spki).is_err(), "old epoch keys");
        let g5 = v5
            .sign(&[&admin])
            .unwrap()
            .verify("team", &pins, 3)
            .unwrap();
        assert_eq!((g5.version(), g5.content().epoch), (5, 2));
        assert_eq!(g5.content().chain.len(), 1);
        assert_eq!(k4.current_epoch(), 2);
        let obj2 = object_for(&g5);
        assert!(!opens(&obj2, &dave_keys), "removed before it was written");
        assert_eq!(
            g5.open_epochs(&dave.id).unwrap_err(),
            GroupError::NotAMember
        );
        for who in [alice, bob, carol] {
            let k = g5.open_epochs(&who.id).unwrap();
            assert_eq!(k.current_epoch(), 2);
            assert!(opens(&obj1, &k), "epoch 1 through the chain");
            assert!(opens(&obj2, &k));
            assert_eq!(
                k.get(1).unwrap().public_bytes(),
                k1.current().public_bytes()
            );
            assert!(k.get(0).is_none() && k.get(3).is_none());
        }
        // Carol joined after epoch 1 ended and reads it all the same.
        let ck = g5.open_epochs(&carol.id).unwrap();
        assert_eq!(ck.into_shared().len(), 2);
        // Rollback to version 3 (dave still in) is refused once 5 was seen.
        let again = GroupDocument::parse(g3.raw()).unwrap();
        assert_eq!(
            again.verify("team", &pins, 5).unwrap_err(),
            GroupError::RolledBack { seen: 5, got: 3 }
        );
        // The last member cannot be removed; unknown ones neither.
        let (solo, ks) =
            GroupContent::create("solo", &admin.verifying_key(), "alice", &alice.spki).unwrap();
        assert!(solo.remove(&ks, "alice").is_err());
        assert!(g5.content().remove(&k4, "zed").is_err());
    }

    #[test]
    fn verification_errors() {
        let alice = person();
        let admin = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let (c, _) =
            GroupContent::create("team", &admin.verifying_key(), "alice", &alice.spki).unwrap();
        let doc = c.sign(&[&admin]).unwrap();
        let raw = doc.raw().to_vec();
        let pins = [admin.fingerprint()];
        let verify = |raw: &[u8], name: &str, pins: &[Fingerprint], min: u64| {
            GroupDocument::parse(raw)
                .and_then(|d| d.verify(name, pins, min))
                .map(|_| ())
        };
        verify(&raw, "team", &pins, 1).unwrap();
        assert_eq!(
            verify(&raw, "team", &[other.fingerprint()], 0),
            Err(GroupError::UnknownSigner)
        );
        assert_eq!(verify(&raw, "team", &[], 0), Err(GroupError::UnknownSigner));
        assert_eq!(
            verify(&raw, "tea", &pins, 0),
            Err(GroupError::WrongName {
                asked: "tea".into(),
                found: "team".into()
            })
        );
        assert_eq!(
            verify(&raw, "team", &pins, 2),
            Err(GroupError::RolledBack { seen: 2, got: 1 })
        );
        // Unsigned: the signed part and n = 0.
        let mut unsigned = c.encode().unwrap();
        unsigned.push(0);
        assert_eq!(
            verify(&unsigned, "team", &pins, 0),
            Err(GroupError::Unsigned)
        );
        // Every signed byte is covered: a flipped bit is a bad signature or
        // a malformed document, never accepted.
        let signed_len = raw.len() - 1 - 96;
        for i in 0..raw.len() {
            let mut f = raw.clone();
            f[i] ^= 0x01;
            let e = verify(&f, "team", &pins, 0).unwrap_err();
            if i < signed_len || i >= raw.len() - 64 {
                assert!(
                    matches!(e, GroupError::BadSignature | GroupError::Malformed(_)),
                    "byte {i}: {e:?}"
                );
            } else if i > signed_len {
                // The signer's public key: another key, not pinned (or not
                // a point at all): the signature does not verify under it.
                assert_eq!(e, GroupError::BadSignature, "byte {i}");
            } else {
                assert!(matches!(e, GroupError::Malformed(_)), "byte {i}: {e:?}");
            }
        }
        // Truncated anywhere, or extended: malformed.
        for n in [0, 5, 17, 20, signed_len, raw.len() - 1] {
            assert!(
                matches!(
                    verify(&raw[..n], "team", &pins, 0),
                    Err(GroupError::Malformed(_))
                ),
                "{n}"
            );
        }
        let mut long = raw.clone();
        long.push(0);
        assert!(matches!(
            verify(&long, "team", &pins, 0),
            Err(GroupError::Malformed(_))
        ));
        // Two signers: one pinned is enough; both must verify.
        let two = c.sign(&[&admin, &other]).unwrap();
        verify(two.raw(), "team", &pins, 0).unwrap();
        verify(two.raw(), "team", &[other.fingerprint()], 0).unwrap();
        let mut bad = two.raw().to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            verify(&bad, "team", &pins, 0),
            Err(GroupError::BadSignature)
        );
        assert!(c.sign(&[&admin, &admin]).is_err());
        assert!(c.sign(&[]).is_err());
    }

    #[test]
    fn canonical_encoding_and_bounds() {
        let p = people(3);
        let admin = SigningKey::generate().unwrap();
        let (c1, k1) =
            GroupContent::create("team", &admin.verifying_key(), "zed", &p[0].spki).unwrap();
        let c2 = c1.add(&k1, "amy", &p[1].spki).unwrap();
        let c3 = c2.add(&k1, "bo", &p[2].spki).unwrap();
        // Members in any order encode the same bytes, and parse back sorted
        // (shorter names first: the value starts with the name's length).
        let mut shuffled = c3.clone();
        shuffled.members.reverse();
        assert_eq!(shuffled.encode().unwrap(), c3.encode().unwrap());
        let doc = c3.sign(&[&admin]).unwrap();
        let back = doc.unverified_content();
        let names: Vec<&str> = back.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["bo", "amy", "zed"]);
        assert_eq!(back.encode().unwrap(), c3.encode().unwrap());
        // Rules a reader checks are checked when writing too.
        let mut bad = c3.clone();
        bad.name = "Team".into();
        assert!(bad.encode().is_err());
        let mut bad = c3.clone();
        bad.members[0].wrapped.pop();
        assert!(bad.encode().is_err());
        let mut bad = c3.clone();
        bad.members[1].name = bad.members[0].name.clone();
        assert!(bad.encode().is_err());
        let mut bad = c3.clone();
        bad.epoch = 2; // no chain link for epoch 1
        assert!(bad.encode().is_err());
        let mut bad = c3.clone();
        bad.admins.clear();
        assert!(bad.encode().is_err());
        // An unknown optional record is skipped; an unknown critical one is
        // refused (FORMAT.md 4.5 rules).
        let records = c3.encode_records().unwrap().to_vec();
        let with = |tag: u8| {
            let mut r = records.clone();
            r.extend_from_slice(&[tag, 0, 1, 0xAA]);
            let mut d = GROUP_MAGIC.to_vec();
            d.extend_from_slice(&(r.len() as u32).to_be_bytes());
            d.extend_from_slice(&r);
            d.push(0);
            GroupDocument::parse(&d).map(|_| ())
        };
        assert!(with(0x90).is_ok());
        assert!(matches!(with(0x08), Err(GroupError::Malformed(_))));
        // Names.
        for ok in ["team", "a", "x.y_z-1", &"a".repeat(64)] {
            assert!(valid_group_name(ok), "{ok}");
        }
        for bad in ["", "Team", ".team", "a/b", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_group_name(bad), "{bad}");
        }
        assert!(valid_member_name("Alice.B-2_x"));
        assert!(!valid_member_name("../x") && !valid_member_name("a/b") && !valid_member_name(""));
        assert!(GroupContent::create("Bad", &admin.verifying_key(), "a", &p[0].spki).is_err());
        assert!(GroupContent::create("ok", &admin.verifying_key(), "a", b"not a key").is_err());
    }

    #[test]
    fn broken_links_and_wrong_keys_are_refused_when_opened() {
        let p = people(2);
        let admin = SigningKey::generate().unwrap();
        let (c1, k1) =
            GroupContent::create("team", &admin.verifying_key(), "a", &p[0].spki).unwrap();
        let c2 = c1.add(&k1, "b", &p[1].spki).unwrap();
        let (c3, _) = c2.remove(&k1, "b").unwrap();
        c3.open_epochs(&p[0].id).unwrap();
        // A link whose ciphertext is broken (signed that way by a faulty
        // administrator): the document verifies, opening it does not.
        let mut broken = c3.clone();
        broken.chain[0].sealed[0] ^= 1;
        let g = broken
            .sign(&[&admin])
            .unwrap()
            .verify("team", &[admin.fingerprint()], 0)
            .unwrap();
        assert_eq!(
            g.open_epochs(&p[0].id).unwrap_err(),
            GroupError::Malformed("a chain link does not open")
        );
        // A link naming another public key than it holds.
        let mut renamed = c3.clone();
        renamed.chain[0].public = *X25519Identity::generate().unwrap().public_bytes();
        assert!(matches!(
            renamed.open_epochs(&p[0].id),
            Err(GroupError::Malformed(_))
        ));
        // A member record wrapping another key than the current epoch's.
        let mut swapped = c3.clone();
        swapped.members[0].wrapped =
            wrap_epoch_key(&p[0].spki, &X25519Identity::generate().unwrap()).unwrap();
        assert!(matches!(
            swapped.open_epochs(&p[0].id),
            Err(GroupError::Malformed(_))
        ));
        // An X25519 identity is never a member.
        let x = X25519Identity::generate().unwrap();
        assert_eq!(c3.open_epochs(&x).unwrap_err(), GroupError::NotAMember);
        // Link rules: deterministic, bound to the epoch number.
        let a = X25519Identity::generate().unwrap();
        let b = X25519Identity::generate().unwrap();
        let l = ChainLink::seal(4, &a, &b).unwrap();
        assert_eq!(l, ChainLink::seal(4, &a, &b).unwrap());
        assert_eq!(l.open(&b).unwrap().public_bytes(), a.public_bytes());
        assert!(l.open(&a).is_err());
        let mut moved = l.clone();
        moved.epoch = 5;
        assert!(moved.open(&b).is_err());
    }

    /// A signed two-member document at epoch 2, built once.
    fn fixture() -> &'static (Vec<u8>, Fingerprint) {
        static F: std::sync::OnceLock<(Vec<u8>, Fingerprint)> = std::sync::OnceLock::new();
        F.get_or_init(|| {
            let p = people(3);
            let admin = SigningKey::from_seed(&[5; 32]).unwrap();
            let (c1, k1) =
                GroupContent::create("team", &admin.verifying_key(), "a", &p[0].spki).unwrap();
            let c2 = c1.add(&k1, "b", &p[1].spki).unwrap();
            let c3 = c2.add(&k1, "c", &p[2].spki).unwrap();
            let (c4, _) = c3.remove(&k1, "c").unwrap();
            (
                c4.sign(&[&admin]).unwrap().raw().to_vec(),
                admin.fingerprint(),
            )
        })
    }

    fn check_parsed(raw: &[u8]) {
        // What parses is canonical: its content encodes to the signed part.
        if let Ok(d) = GroupDocument::parse(raw) {
            assert_eq!(d.raw(), raw);
            assert_eq!(d.content.encode().unwrap(), raw[..d.signed_len]);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            magic in proptest::prelude::any::<bool>(),
        ) {
            let raw = if magic { [GROUP_MAGIC, &data].concat() } else { data };
            check_parsed(&raw);
            let (_, pin) = fixture();
            proptest::prop_assert!(GroupDocument::parse(&raw)
                .and_then(|d| d.verify("team", &[*pin], 0))
                .is_err());
        }

        #[test]
        fn every_mutation_of_a_signed_document_is_refused(
            at in proptest::prelude::any::<proptest::sample::Index>(),
            bit in 0u8..8,
            kind in 0u8..3,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let (doc, pin) = fixture();
            let i = at.index(doc.len());
            let mut m = doc.clone();
            match kind {
                0 => m[i] ^= 1 << bit,
                1 => m.truncate(i),
                _ => m.insert(i, byte),
            }
            check_parsed(&m);
            let verdict = GroupDocument::parse(&m).and_then(|d| d.verify("team", &[*pin], 0));
            proptest::prop_assert!(verdict.is_err(), "mutation {kind} at {i} accepted");
        }
    }

    #[test]
    fn the_fixture_itself_verifies() {
        let (doc, pin) = fixture();
        let g = GroupDocument::parse(doc)
            .unwrap()
            .verify("team", &[*pin], 4)
            .unwrap();
        assert_eq!((g.version(), g.content().epoch), (4, 2));
        check_parsed(doc);
    }

    #[test]
    fn store_keys() {
        assert_eq!(
            group_document_key("team", 7),
            ".sealgate/dir/groups/team/v00000000000000000007"
        );
        assert_eq!(
            parse_group_document_key("team", &group_document_key("team", u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(
            parse_group_document_key("tea", &group_document_key("team", 7)),
            None
        );
        assert_eq!(
            parse_group_document_key("team", ".sealgate/dir/groups/team/v7"),
            None
        );
        assert_eq!(
            parse_group_document_key("team", ".sealgate/dir/groups/team/v0000000000000000000x"),
            None
        );
        assert_eq!(key_directory_key("alice"), ".sealgate/dir/keys/alice.pem");
    }

    #[test]
    fn epoch_keys_debug_shows_no_secret() {
        let id = X25519Identity::from_secret_bytes(&[0xCD; 32]).unwrap();
        let k = EpochKeys { keys: vec![id] };
        let s = format!("{k:?}");
        assert!(!s.contains("cdcd"), "{s}");
        assert!(s.contains("X25519Identity"), "{s}");
    }
}
