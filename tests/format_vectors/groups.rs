//! Group vectors (FORMAT.md sections 5.1 and 15): `tests/vectors/group-*.json`,
//! schema in `tests/vectors/README.md`.
//!
//! A group vector is a group document as the store holds it, what the reader
//! brings to it (the group name it asks for, the administrator fingerprints
//! it pins, the highest version it has accepted before, the RSA identities
//! it holds), and objects written for the group's epoch keys. A reader
//! verifies the document, opens the epoch keys with a member's RSA key, and
//! reads every object with them; a must-fail vector names the error.
//!
//! Two readers check every vector: the library (`GroupDocument::parse`,
//! `verify`, `open_epochs`, then objects as the gateway reads them), and a
//! naive one written again from FORMAT.md 15 over raw aws-lc-rs primitives.
//! The generator reproduces every file byte for byte: Ed25519 signatures are
//! deterministic, every seed and random value is derived from a label, and
//! RSA-OAEP wraps (randomized) are reused from the existing files.

use super::*;

use aws_lc_rs::agreement;
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
use aws_lc_rs::signature as sig;

use sealgate::envelope::x25519::{X25519Identity, X25519Recipient};
use sealgate::sharing::group::{
    group_document_key, wrap_epoch_key, ChainLink, Member, EPOCH_KEY_LABEL,
};
use sealgate::sharing::{
    Fingerprint, GroupContent, GroupDocument, GroupError, SigningKey, VerifiedGroup,
};

const GROUP_FILE_FORMAT: &str = "sealgate-format-v1-group-vector";
/// File name prefix of group vectors (the single-object checker skips them).
pub(super) const GROUP_PREFIX: &str = "group-";
const GROUP: &str = "team";

fn seed(label: &str) -> [u8; 32] {
    sha256(format!("sealgate/v1/vectors/{label}").as_bytes())
}

fn admin(label: &str) -> SigningKey {
    SigningKey::from_seed(&seed(&format!("ed25519/{label}"))).unwrap()
}

fn epoch_secret(group: &str, epoch: u32) -> [u8; 32] {
    seed(&format!("group-epoch/{group}/{epoch}"))
}

fn epoch_identity(group: &str, epoch: u32) -> X25519Identity {
    X25519Identity::from_secret_bytes(&epoch_secret(group, epoch)).unwrap()
}

fn group_error_kind(e: &GroupError) -> &'static str {
    match e {
        GroupError::Unsigned => "Unsigned",
        GroupError::UnknownSigner => "UnknownSigner",
        GroupError::BadSignature => "BadSignature",
        GroupError::RolledBack { .. } => "RolledBack",
        GroupError::WrongName { .. } => "WrongName",
        GroupError::Malformed(_) => "Malformed",
        GroupError::NotAMember => "NotAMember",
        GroupError::Invalid(_) => "Invalid",
        GroupError::Crypto => "Crypto",
    }
}

/// An X25519 recipient whose ephemeral key is given: byte-stable vectors.
#[derive(Debug)]
struct FixedEphemeral {
    inner: X25519Recipient,
    ephemeral: [u8; 32],
}

impl Recipient for FixedEphemeral {
    fn algorithm(&self) -> Algorithm {
        self.inner.algorithm()
    }
    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.inner.key_id()
    }
    fn wrapped_len(&self) -> usize {
        self.inner.wrapped_len()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn spki_der(&self) -> Vec<u8> {
        self.inner.spki_der()
    }
    fn wrap(&self, dk: &DataKey) -> sealgate::envelope::Result<RecipientStanza> {
        self.inner.wrap_with_ephemeral(dk, &self.ephemeral)
    }
}

/// An object of a group vector, as the store holds it.
struct GroupObject {
    key: String,
    epoch: u32,
    meta: String,
    body: Vec<u8>,
    plain: Plain,
    /// Writer's values, for pass vectors.
    inputs: Value,
}

struct GroupVector {
    name: String,
    description: String,
    expect: Expect,
    group: String,
    pinned: Vec<Fingerprint>,
    min_version: u64,
    doc: Vec<u8>,
    doc_store_key: String,
    identity_sets: Vec<Vec<String>>,
    objects: Vec<GroupObject>,
    expected: Option<Value>,
    inputs: Option<Value>,
    intermediate: Option<Value>,
}

fn plaintext_json(p: &Plain) -> Value {
    let pt = pattern(p.len, p.add);
    let mut pj = json!({
        "len": p.len,
        "generator": format!("byte i = ({MUL} * i + {}) mod 256", p.add),
        "generator_mul": MUL,
        "generator_add": p.add,
        "sha256": hex::encode(sha256(&pt)),
        "md5": hex::encode(md5_of(&pt)),
    });
    if p.len <= INLINE_PLAINTEXT_MAX {
        pj.as_object_mut()
            .unwrap()
            .insert("hex".into(), json!(hex::encode(&pt)));
    }
    pj
}

impl GroupVector {
    fn to_json(&self) -> Value {
        let pass = self.expect == Expect::Pass;
        let objects: Vec<Value> = self
            .objects
            .iter()
            .map(|o| {
                let mut j = json!({
                    "bucket": BUCKET,
                    "key": o.key,
                    "epoch": o.epoch,
                    "metadata": { "x-amz-meta-sg": o.meta },
                    "body_len": o.body.len(),
                    "body_sha256": hex::encode(sha256(&o.body)),
                    "body_hex": hex::encode(&o.body),
                    "plaintext": plaintext_json(&o.plain),
                });
                if pass {
                    j.as_object_mut()
                        .unwrap()
                        .insert("inputs".into(), o.inputs.clone());
                }
                j
            })
            .collect();
        let mut v = json!({
            "format": GROUP_FILE_FORMAT,
            "name": self.name,
            "description": self.description,
            "expect": if pass { "pass" } else { "fail" },
            "group": self.group,
            "pinned": self.pinned.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "min_version": self.min_version,
            "identity_sets": self.identity_sets,
            "document": {
                "store_key": self.doc_store_key,
                "len": self.doc.len(),
                "sha256": hex::encode(sha256(&self.doc)),
                "hex": hex::encode(&self.doc),
            },
            "objects": objects,
        });
        let o = v.as_object_mut().unwrap();
        if let Expect::Fail(kind) = self.expect {
            o.insert("error".into(), json!(kind));
        }
        for (k, val) in [
            ("expected", &self.expected),
            ("inputs", &self.inputs),
            ("intermediate", &self.intermediate),
        ] {
            if let Some(val) = val {
                o.insert(k.into(), val.clone());
            }
        }
        v
    }
}

/// Epoch-key wraps (RSA-OAEP, randomized) found in the existing files, by
/// (member key id, epoch secret); and RSA data-key wraps of objects.
struct GroupGen<'a> {
    keys: &'a Keys,
    member_wraps: WrapCache,
    dk_wraps: WrapCache,
}

impl<'a> GroupGen<'a> {
    fn new(keys: &'a Keys, old_files: &[Value]) -> Self {
        let g = GroupGen {
            keys,
            member_wraps: Mutex::new(HashMap::new()),
            dk_wraps: Mutex::new(HashMap::new()),
        };
        for v in old_files {
            if let Some(doc) = v["document"]["hex"]
                .as_str()
                .and_then(|h| hex::decode(h).ok())
            {
                if let Ok(d) = GroupDocument::parse(&doc) {
                    for m in &d.unverified_content().members {
                        for k in keys.0.values() {
                            if k.identity.key_id() != m.key_id() {
                                continue;
                            }
                            if let Ok(s) = k.identity.unwrap_secret(&m.wrapped, EPOCH_KEY_LABEL) {
                                g.member_wraps
                                    .lock()
                                    .unwrap()
                                    .entry((m.key_id(), *s))
                                    .or_insert_with(|| m.wrapped.clone());
                            }
                        }
                    }
                }
            }
            for o in v["objects"].as_array().into_iter().flatten() {
                let Some(Ok(MetaValue::Inline(raw))) = o["metadata"]["x-amz-meta-sg"]
                    .as_str()
                    .map(MetaValue::decode)
                else {
                    continue;
                };
                let Ok(h) = Header::parse(&raw) else { continue };
                for st in &h.recipients {
                    for k in keys.0.values() {
                        if k.identity.matches(st) {
                            if let Ok(dk) = k.identity.unwrap(st) {
                                g.dk_wraps
                                    .lock()
                                    .unwrap()
                                    .entry((st.key_id, *dk.expose()))
                                    .or_insert_with(|| st.wrapped.clone());
                            }
                        }
                    }
                }
            }
        }
        g
    }

    fn wrap_for(&self, key_name: &str, epoch: &X25519Identity) -> Vec<u8> {
        let k = self.keys.get(key_name);
        let slot = (k.identity.key_id(), *epoch.expose_secret());
        let mut cache = self.member_wraps.lock().unwrap();
        cache
            .entry(slot)
            .or_insert_with(|| wrap_epoch_key(&k.spki, epoch).unwrap())
            .clone()
    }

    /// Group `group` at `version`, epoch `epoch`, with these (name, key)
    /// members; every epoch key derived from its label.
    fn content(
        &self,
        group: &str,
        version: u64,
        epoch: u32,
        members: &[(&str, &str)],
        admins: &[&SigningKey],
    ) -> GroupContent {
        let current = epoch_identity(group, epoch);
        GroupContent {
            name: group.to_string(),
            version,
            epoch,
            epoch_key: *current.public_bytes(),
            members: members
                .iter()
                .map(|(name, key)| Member {
                    name: name.to_string(),
                    spki: self.keys.get(key).spki.clone(),
                    wrapped: self.wrap_for(key, &current),
                })
                .collect(),
            chain: (1..epoch)
                .map(|e| {
                    ChainLink::seal(e, &epoch_identity(group, e), &epoch_identity(group, e + 1))
                        .unwrap()
                })
                .collect(),
            admins: admins.iter().map(|a| a.verifying_key()).collect(),
        }
    }

    /// An object written for `group`'s epoch `epoch` key (and, first, for
    /// the RSA keys `also`).
    fn object(&self, tag: &str, epoch: u32, len: usize, also: &[&str]) -> GroupObject {
        let key = format!("vectors/{tag}");
        let dk = data_key(tag);
        let salt = salt(tag);
        let ephemeral = seed(&format!("x25519-ephemeral/{tag}"));
        let x = FixedEphemeral {
            inner: epoch_identity(GROUP, epoch).to_recipient().unwrap(),
            ephemeral,
        };
        let rsa: Vec<CachedRecipient> = also
            .iter()
            .map(|n| CachedRecipient {
                inner: &self.keys.get(n).recipient,
                cache: &self.dk_wraps,
            })
            .collect();
        let mut refs: Vec<&dyn Recipient> = rsa.iter().map(|r| r as &dyn Recipient).collect();
        refs.push(&x);
        let binding = BodyBinding::Single {
            salt,
            plaintext_len: len as u64,
        };
        let header = Header::seal(&dk, &refs, binding, BUCKET, &key).unwrap();
        let body = seal_all(&dk, salt, 0, &pattern(len, 7)).unwrap();
        let recipient = x.inner.clone();
        let e_pub = *X25519Identity::from_secret_bytes(&ephemeral)
            .unwrap()
            .public_bytes();
        let shared = naive_group::x25519(&ephemeral, recipient.public_bytes()).unwrap();
        let kek = naive_group::kek(&shared, &e_pub, recipient.public_bytes());
        GroupObject {
            key,
            epoch,
            meta: MetaValue::Inline(header.raw().to_vec()).encode(),
            body,
            plain: Plain { len, add: 7 },
            inputs: json!({
                "data_key": hex::encode(dk.expose()),
                "salt": hex::encode(salt),
                "recipients": also.iter().map(|s| s.to_string())
                    .chain([format!("group {GROUP} epoch {epoch}")]).collect::<Vec<_>>(),
                "x25519_ephemeral_secret": hex::encode(ephemeral),
                "x25519_ephemeral_public": hex::encode(e_pub),
                "x25519_recipient_public": hex::encode(recipient.public_bytes()),
                "x25519_recipient_key_id": hex::encode(recipient.key_id()),
                "x25519_shared_secret": hex::encode(shared),
                "x25519_kek": hex::encode(kek),
                "header_hex": hex::encode(header.raw()),
            }),
        }
    }

    fn fail(
        &self,
        name: &str,
        description: &str,
        error: &'static str,
        doc: Vec<u8>,
        doc_version: u64,
    ) -> GroupVector {
        GroupVector {
            name: name.into(),
            description: description.into(),
            expect: Expect::Fail(error),
            group: GROUP.into(),
            pinned: vec![admin("admin-1").fingerprint()],
            min_version: 0,
            doc,
            doc_store_key: group_document_key(GROUP, doc_version),
            identity_sets: sets(&[&["rsa2048-a"]]),
            objects: Vec::new(),
            expected: None,
            inputs: None,
            intermediate: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pass(
        &self,
        name: &str,
        description: &str,
        content: &GroupContent,
        signers: &[(&str, &SigningKey)],
        pinned: &[&SigningKey],
        min_version: u64,
        identity_sets: &[&[&str]],
        objects: Vec<GroupObject>,
    ) -> GroupVector {
        let signing: Vec<&SigningKey> = signers.iter().map(|(_, k)| *k).collect();
        let doc = content.sign(&signing).unwrap();
        let raw = doc.raw().to_vec();
        let signed_len = content.encode().unwrap().len();
        let mut signed_message = b"sealgate/v1/group-signature".to_vec();
        signed_message.extend_from_slice(&raw[..signed_len]);
        let mut admins: Vec<String> = content
            .admins
            .iter()
            .map(|k| k.fingerprint().to_string())
            .collect();
        admins.sort();
        let expected = json!({
            "version": content.version,
            "epoch": content.epoch,
            "epoch_key": hex::encode(content.epoch_key),
            "epoch_key_id": hex::encode(X25519Recipient::from_public_bytes(content.epoch_key).unwrap().key_id()),
            "members": doc.unverified_content().members.iter().map(|m| json!({
                "name": m.name,
                "key_id": hex::encode(m.key_id()),
                "fingerprint": m.fingerprint().to_string(),
            })).collect::<Vec<_>>(),
            "admins": admins,
            "signers": doc.signers().map(|k| k.fingerprint().to_string()).collect::<Vec<_>>(),
            "epoch_keys": (1..=content.epoch).map(|e| {
                let k = epoch_identity(GROUP, e);
                json!({"epoch": e, "public": hex::encode(k.public_bytes()), "key_id": hex::encode(k.key_id())})
            }).collect::<Vec<_>>(),
        });
        let inputs = json!({
            "signing_key_seeds": signers.iter().map(|(label, _)| json!({
                "label": label,
                "seed": hex::encode(seed(&format!("ed25519/{label}"))),
            })).collect::<Vec<_>>(),
            "epoch_secrets": (1..=content.epoch).map(|e| json!({
                "epoch": e,
                "secret": hex::encode(epoch_secret(GROUP, e)),
            })).collect::<Vec<_>>(),
            "members": content.members.iter().map(|m| {
                let key = self.keys.0.iter().find(|(_, k)| k.spki == m.spki).unwrap().0;
                json!({"name": m.name, "key": key})
            }).collect::<Vec<_>>(),
        });
        let intermediate = json!({
            "signed_len": signed_len,
            "signed_message_sha256": hex::encode(sha256(&signed_message)),
            "chain_link_keys": (1..content.epoch).map(|e| json!({
                "epoch": e,
                "key": hex::encode(naive_group::chain_key(&epoch_secret(GROUP, e + 1), e)),
            })).collect::<Vec<_>>(),
        });
        GroupVector {
            name: name.into(),
            description: description.into(),
            expect: Expect::Pass,
            group: GROUP.into(),
            pinned: pinned.iter().map(|k| k.fingerprint()).collect(),
            min_version,
            doc: raw,
            doc_store_key: group_document_key(GROUP, content.version),
            identity_sets: sets(identity_sets),
            objects,
            expected: Some(expected),
            inputs: Some(inputs),
            intermediate: Some(intermediate),
        }
    }

    fn all(&self) -> Vec<GroupVector> {
        let admin1 = admin("admin-1");
        let admin2 = admin("admin-2");
        let intruder = admin("intruder");
        let all4 = [
            ("alice", "rsa2048-a"),
            ("bob", "rsa2048-b"),
            ("carol", "rsa3072-a"),
            ("dave", "rsa2048-c"),
        ];
        let three = [all4[0], all4[1], all4[2]];
        // Version 4: four members, epoch 1. Version 5: dave removed, epoch 2.
        let v4 = self.content(GROUP, 4, 1, &all4, &[&admin1]);
        let v5 = self.content(GROUP, 5, 2, &three, &[&admin1]);
        let signed = |c: &GroupContent, k: &[&SigningKey]| c.sign(k).unwrap().raw().to_vec();
        let d5 = signed(&v5, &[&admin1]);
        let signed_len = v5.encode().unwrap().len();
        let mut out = Vec::new();
        let members: &[&[&str]] = &[&["rsa2048-a"], &["rsa2048-b"], &["rsa3072-a"]];

        out.push(self.pass(
            "group-pass-3-members-2-epochs",
            "Version 5 of group team: alice, bob and carol (RSA-2048, RSA-2048, RSA-3072), \
             epoch 2 (dave was removed in version 5), one chain link opening epoch 1 from \
             epoch 2, signed by the pinned administrator admin-1. Two objects: one written \
             while the group was at epoch 1 (one X25519 stanza), one at epoch 2 (an RSA-4096 \
             stanza first, then the X25519 stanza). Each member, holding only their RSA key \
             and this document, reads both.",
            &v5,
            &[("admin-1", &admin1)],
            &[&admin1],
            4,
            members,
            vec![
                self.object("group-team-epoch-1", 1, 1000, &[]),
                self.object("group-team-epoch-2", 2, 70000, &["rsa4096-a"]),
            ],
        ));
        let mut v5_two = v5.clone();
        v5_two.admins = vec![admin1.verifying_key(), admin2.verifying_key()];
        out.push(self.pass(
            "group-pass-two-signers",
            "The same members and epochs with two administrators, both signing; the reader pins \
             only admin-2 (one pinned signer suffices, every signature must verify) and has \
             accepted version 5 before (an equal version is not a rollback).",
            &v5_two,
            &[("admin-1", &admin1), ("admin-2", &admin2)],
            &[&admin2],
            5,
            &[&["rsa2048-outsider", "rsa2048-b"]],
            vec![self.object("group-team-two-signers", 2, 33, &[])],
        ));

        out.push(self.fail(
            "group-fail-wrong-signer",
            "Version 5 re-signed by a key the reader does not pin (what a store that rewrote \
             the document would have to do): every signature verifies, no signer is pinned.",
            "UnknownSigner",
            signed(&v5, &[&intruder]),
            5,
        ));
        {
            let mut d = v5.encode().unwrap();
            d.push(0);
            out.push(self.fail(
                "group-fail-unsigned",
                "Version 5 with no signature at all (n = 0).",
                "Unsigned",
                d,
                5,
            ));
        }
        {
            let mut d = d5.clone();
            let last = d.len() - 1;
            d[last] ^= 0x01;
            out.push(self.fail(
                "group-fail-signature-bit",
                "Bit 0 of the last byte of admin-1's signature flipped.",
                "BadSignature",
                d,
                5,
            ));
        }
        {
            let mut f = self.fail(
                "group-fail-rolled-back",
                "The store serves version 4 (dave still a member, epoch 1, correctly signed) to \
                 a reader that has accepted version 5: objects written for it would be readable \
                 by the removed member.",
                "RolledBack",
                signed(&v4, &[&admin1]),
                4,
            );
            f.min_version = 5;
            out.push(f);
        }
        {
            // bob's RSA SPKI replaced by the outsider's (same length) after signing.
            let bob = &self.keys.get("rsa2048-b").spki;
            let eve = &self.keys.get("rsa2048-outsider").spki;
            assert_eq!(bob.len(), eve.len());
            let at = find(&d5, bob);
            let mut d = d5.clone();
            d[at..at + bob.len()].copy_from_slice(eve);
            let mut f = self.fail(
                "group-fail-member-key-substituted",
                "After signing, bob's RSA public key in his member record is replaced by the \
                 outsider's key (so that the next version an administrator makes would wrap the \
                 epoch key for it).",
                "BadSignature",
                d,
                5,
            );
            f.identity_sets = sets(&[&["rsa2048-outsider"], &["rsa2048-a"]]);
            out.push(f);
        }
        {
            let at = find(&d5, &v5.epoch_key);
            let mut d = d5.clone();
            let store_key = epoch_identity("store-chosen", 1);
            d[at..at + 32].copy_from_slice(store_key.public_bytes());
            out.push(self.fail(
                "group-fail-epoch-key-substituted",
                "After signing, the current epoch public key (record 0x04) is replaced by one the \
                 store holds the private key of: writers would encrypt every new object for it.",
                "BadSignature",
                d,
                5,
            ));
        }
        {
            // The outsider inserted as member "eve" (its record sorted into
            // place, L updated), the signatures kept.
            let mut with_eve = v5.clone();
            with_eve.members.push(Member {
                name: "eve".into(),
                spki: self.keys.get("rsa2048-outsider").spki.clone(),
                wrapped: self.wrap_for("rsa2048-outsider", &epoch_identity("store-chosen", 1)),
            });
            let mut d = with_eve.encode().unwrap();
            d.extend_from_slice(&d5[signed_len..]);
            let mut f = self.fail(
                "group-fail-member-added",
                "After signing, the store adds a member record for itself (eve, the outsider's \
                 key) and fixes the record list length; the signatures are kept.",
                "BadSignature",
                d,
                5,
            );
            f.identity_sets = sets(&[&["rsa2048-outsider"]]);
            out.push(f);
        }
        out.push(self.fail(
            "group-fail-truncated",
            "Version 5 cut in the middle of its record list.",
            "Malformed",
            d5[..signed_len / 2].to_vec(),
            5,
        ));
        {
            let mut d = d5.clone();
            d.push(0);
            out.push(self.fail(
                "group-fail-trailing-byte",
                "One byte after the last signature.",
                "Malformed",
                d,
                5,
            ));
        }
        {
            let ops = self.content("ops", 1, 1, &[("alice", "rsa2048-a")], &[&admin1]);
            let mut f = self.fail(
                "group-fail-name-mismatch",
                "The reader asks for group team; the store serves version 7 of another group \
                 (ops) signed by the same administrator.",
                "WrongName",
                Vec::new(),
                7,
            );
            let mut ops7 = ops.clone();
            ops7.version = 7;
            f.doc = signed(&ops7, &[&admin1]);
            out.push(f);
        }
        {
            let mut broken = v5.clone();
            broken.chain[0].sealed[0] ^= 0x01;
            out.push(self.fail(
                "group-fail-broken-chain-link",
                "A faulty administrator signed version 5 with the chain link of epoch 1 broken \
                 (first byte of its sealed key flipped): the document verifies, but its epoch \
                 chain does not open.",
                "Malformed",
                signed(&broken, &[&admin1]),
                5,
            ));
        }
        {
            let mut f = self.fail(
                "group-fail-not-a-member",
                "A valid version 5, read by someone who never was a member.",
                "NotAMember",
                d5.clone(),
                5,
            );
            f.identity_sets = sets(&[&["rsa2048-outsider"], &["rsa4096-a"]]);
            out.push(f);
        }
        {
            let mut f = self.fail(
                "group-fail-removed-member",
                "A valid version 5, read by dave, removed in version 5.",
                "NotAMember",
                d5.clone(),
                5,
            );
            f.identity_sets = sets(&[&["rsa2048-c"]]);
            out.push(f);
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
}

// ---------------------------------------------------------------------------
// Reading a group vector with the library.

struct GroupRead {
    group: VerifiedGroup,
    epochs: sealgate::sharing::EpochKeys,
    plaintexts: Vec<Vec<u8>>,
}

fn read_library(keys: &Keys, v: &Value, doc: &[u8], set: &[String]) -> Result<GroupRead, String> {
    let gk = |e: GroupError| group_error_kind(&e).to_string();
    let pinned: Vec<Fingerprint> = v["pinned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().parse().unwrap())
        .collect();
    let group = GroupDocument::parse(doc)
        .and_then(|d| {
            d.verify(
                v["group"].as_str().unwrap(),
                &pinned,
                v["min_version"].as_u64().unwrap(),
            )
        })
        .map_err(gk)?;
    // The first identity of the set that is a member opens the epochs.
    let mut epochs = None;
    for n in set {
        match group.open_epochs(&keys.get(n).identity) {
            Ok(k) => {
                epochs = Some(k);
                break;
            }
            Err(GroupError::NotAMember) => continue,
            Err(e) => return Err(gk(e)),
        }
    }
    let epochs = epochs.ok_or("NotAMember")?;
    let mut ids = epochs.identities();
    ids.extend(keys.identities(set));
    let mut plaintexts = Vec::new();
    for o in v["objects"].as_array().unwrap() {
        let body = hex::decode(o["body_hex"].as_str().unwrap()).unwrap();
        let opened = open_object(
            o["metadata"]["x-amz-meta-sg"].as_str().unwrap(),
            &body,
            &ManifestField::Absent,
            &ids,
            o["bucket"].as_str().unwrap(),
            o["key"].as_str().unwrap(),
            4099,
        )
        .map_err(|e| e.kind().to_string())?;
        plaintexts.push(opened.plaintext);
    }
    Ok(GroupRead {
        group,
        epochs,
        plaintexts,
    })
}

// ---------------------------------------------------------------------------
// A naive second reader, straight from FORMAT.md 15 (and 5.1 for objects).

mod naive_group {
    use super::super::naive::hkdf32;
    use super::*;

    pub fn x25519(private: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
        let k = agreement::PrivateKey::from_private_key(&agreement::X25519, private).ok()?;
        let out = agreement::agree(
            &k,
            agreement::UnparsedPublicKey::new(&agreement::X25519, public),
            (),
            |s| Ok(<[u8; 32]>::try_from(s).unwrap()),
        )
        .ok()?;
        (out != [0u8; 32]).then_some(out)
    }

    pub fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
        let k = agreement::PrivateKey::from_private_key(&agreement::X25519, private).unwrap();
        k.compute_public_key().unwrap().as_ref().try_into().unwrap()
    }

    pub fn kek(shared: &[u8; 32], e_pub: &[u8; 32], r_pub: &[u8; 32]) -> [u8; 32] {
        let salt = [&e_pub[..], &r_pub[..]].concat();
        hkdf32(&salt, shared, b"sealgate/v1/x25519-wrap")
    }

    pub fn chain_key(newer_secret: &[u8; 32], epoch: u32) -> [u8; 32] {
        let info = [&b"sealgate/v1/group-chain"[..], &epoch.to_be_bytes()].concat();
        hkdf32(&[], newer_secret, &info)
    }

    fn gcm_open(key: &[u8; 32], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
        let k = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).unwrap());
        let mut buf = ct.to_vec();
        let n = k
            .open_in_place(
                aead::Nonce::assume_unique_for_key([0; 12]),
                aead::Aad::from(aad),
                &mut buf,
            )
            .ok()?
            .len();
        buf.truncate(n);
        Some(buf)
    }

    fn fingerprint(spki: &[u8]) -> String {
        let h = hex::encode_upper(&sha256(spki)[..10]);
        h.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("-")
    }

    fn ed25519_spki(pk: &[u8]) -> Vec<u8> {
        [&hex::decode("302a300506032b6570032100").unwrap()[..], pk].concat()
    }

    fn x25519_spki(pk: &[u8]) -> Vec<u8> {
        [&hex::decode("302a300506032b656e032100").unwrap()[..], pk].concat()
    }

    pub struct Read {
        pub version: u64,
        pub epoch: u32,
        pub members: Vec<(String, Vec<u8>)>,
        pub signers: Vec<String>,
        /// Epoch secrets, index e - 1.
        pub secrets: Vec<[u8; 32]>,
        /// Each object's data key.
        pub data_keys: Vec<[u8; 32]>,
    }

    /// FORMAT.md 15.4 and 15.5, then each object's X25519 stanza (5.1).
    pub fn read(keys: &Keys, v: &Value, doc: &[u8], set: &[String]) -> Result<Read, &'static str> {
        const M: &str = "Malformed";
        // Parse (15.3).
        if doc.len() > 16 << 20 || !doc.starts_with(b"sealgate/v1/group") || doc.len() < 21 {
            return Err(M);
        }
        let l = u32::from_be_bytes(doc[17..21].try_into().unwrap()) as usize;
        if doc.len() < 22 + l {
            return Err(M);
        }
        let records = &doc[21..21 + l];
        let n = doc[21 + l] as usize;
        let sigs = &doc[22 + l..];
        if sigs.len() != 96 * n {
            return Err(M);
        }
        let (mut name, mut version, mut epoch, mut epoch_key) = (None, None, None, None);
        let (mut members, mut links) = (Vec::new(), BTreeMap::new());
        let mut pos = 0;
        let mut prev: Option<(u8, &[u8])> = None;
        while pos < records.len() {
            if records.len() - pos < 3 {
                return Err(M);
            }
            let tag = records[pos];
            let len = u16::from_be_bytes([records[pos + 1], records[pos + 2]]) as usize;
            let val = records.get(pos + 3..pos + 3 + len).ok_or(M)?;
            pos += 3 + len;
            if let Some((t, pv)) = prev {
                if tag < t || (tag == t && (![5, 6, 7].contains(&tag) || val <= pv)) {
                    return Err(M);
                }
            }
            prev = Some((tag, val));
            match tag {
                1 => name = Some(std::str::from_utf8(val).map_err(|_| M)?.to_string()),
                2 => version = Some(u64::from_be_bytes(val.try_into().map_err(|_| M)?)),
                3 => epoch = Some(u32::from_be_bytes(val.try_into().map_err(|_| M)?)),
                4 => epoch_key = Some(<[u8; 32]>::try_from(val).map_err(|_| M)?),
                5 => {
                    let nl = u16::from_be_bytes(val[..2].try_into().unwrap()) as usize;
                    let mname = std::str::from_utf8(&val[2..2 + nl])
                        .map_err(|_| M)?
                        .to_string();
                    let sl = u16::from_be_bytes(val[2 + nl..4 + nl].try_into().unwrap()) as usize;
                    let spki = val[4 + nl..4 + nl + sl].to_vec();
                    let wrapped = val[4 + nl + sl..].to_vec();
                    members.push((mname, spki, wrapped));
                }
                6 => {
                    if val.len() != 84 {
                        return Err(M);
                    }
                    let e = u32::from_be_bytes(val[..4].try_into().unwrap());
                    links.insert(e, (val[4..36].to_vec(), val[36..].to_vec()));
                }
                7 => {}
                t if t >= 0x80 => {}
                _ => return Err(M),
            }
        }
        let (name, version, epoch, epoch_key) = (
            name.ok_or(M)?,
            version.ok_or(M)?,
            epoch.ok_or(M)?,
            epoch_key.ok_or(M)?,
        );
        if version == 0 || epoch == 0 || members.is_empty() {
            return Err(M);
        }
        if !links.keys().copied().eq(1..epoch) {
            return Err(M);
        }
        // Verify (15.4).
        if n == 0 {
            return Err("Unsigned");
        }
        let msg = [&b"sealgate/v1/group-signature"[..], &doc[..21 + l]].concat();
        let mut signers = Vec::new();
        for e in sigs.chunks(96) {
            sig::UnparsedPublicKey::new(&sig::ED25519, &e[..32])
                .verify(&msg, &e[32..])
                .map_err(|_| "BadSignature")?;
            signers.push(fingerprint(&ed25519_spki(&e[..32])));
        }
        let pinned: Vec<&str> = v["pinned"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        if !signers.iter().any(|s| pinned.contains(&s.as_str())) {
            return Err("UnknownSigner");
        }
        if name != v["group"].as_str().unwrap() {
            return Err("WrongName");
        }
        if version < v["min_version"].as_u64().unwrap() {
            return Err("RolledBack");
        }
        // Open the epochs (15.5).
        let mut current = None;
        for key_name in set {
            let k = keys.get(key_name);
            let Some((_, _, wrapped)) = members.iter().find(|(_, spki, _)| *spki == k.spki) else {
                continue;
            };
            let private = PrivateDecryptingKey::from_pkcs8(&k.pkcs8).unwrap();
            let oaep = OaepPrivateDecryptingKey::new(private).unwrap();
            let mut out = vec![0u8; oaep.min_output_size()];
            let s = oaep
                .decrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    wrapped,
                    &mut out,
                    Some(b"sealgate/v1/group-epoch-key"),
                )
                .map_err(|_| M)?;
            current = Some(<[u8; 32]>::try_from(&*s).map_err(|_| M)?);
            break;
        }
        let current = current.ok_or("NotAMember")?;
        if x25519_public(&current) != epoch_key {
            return Err(M);
        }
        let mut secrets = vec![current];
        for e in (1..epoch).rev() {
            let (public, sealed) = &links[&e];
            let aad = [&b"sealgate/v1/group-chain"[..], &e.to_be_bytes()].concat();
            let newer = secrets.last().unwrap();
            let older: [u8; 32] = gcm_open(&chain_key(newer, e), &aad, sealed)
                .ok_or(M)?
                .try_into()
                .map_err(|_| M)?;
            if x25519_public(&older)[..] != public[..] {
                return Err(M);
            }
            secrets.push(older);
        }
        secrets.reverse();
        // Objects: the first X25519 stanza whose key id is an epoch key's.
        let mut data_keys = Vec::new();
        for o in v["objects"].as_array().unwrap() {
            let raw = URL_SAFE_NO_PAD
                .decode(o["metadata"]["x-amz-meta-sg"].as_str().unwrap())
                .unwrap();
            let h = Header::parse(&raw).map_err(|_| "MalformedHeader")?;
            let mut dk = None;
            'stanzas: for st in &h.recipients {
                for s in &secrets {
                    let public = x25519_public(s);
                    let kid = &sha256(&x25519_spki(&public))[..8];
                    if st.algorithm != 2 || st.key_id[..] != *kid {
                        continue;
                    }
                    let e_pub: [u8; 32] = st.wrapped[..32].try_into().unwrap();
                    let shared = x25519(s, &e_pub).ok_or("Unwrap")?;
                    let k = kek(&shared, &e_pub, &public);
                    let d =
                        gcm_open(&k, b"sealgate/v1/x25519", &st.wrapped[32..]).ok_or("Unwrap")?;
                    dk = Some(<[u8; 32]>::try_from(d).unwrap());
                    break 'stanzas;
                }
            }
            data_keys.push(dk.ok_or("NoMatchingRecipient")?);
        }
        Ok(Read {
            version,
            epoch,
            members: members.into_iter().map(|(n, s, _)| (n, s)).collect(),
            signers,
            secrets,
            data_keys,
        })
    }
}

// ---------------------------------------------------------------------------
// Checks

fn check_group_file(keys: &Keys, path: &Path) {
    let v = read_json(path);
    let name = v["name"].as_str().unwrap().to_string();
    assert_eq!(v["format"], GROUP_FILE_FORMAT, "{name}");
    assert_eq!(path.file_stem().unwrap().to_str().unwrap(), name);
    let d = &v["document"];
    let doc = hex::decode(d["hex"].as_str().unwrap()).unwrap();
    assert_eq!(d["len"].as_u64().unwrap() as usize, doc.len(), "{name}");
    assert_eq!(d["sha256"].as_str().unwrap(), hex::encode(sha256(&doc)));
    for o in v["objects"].as_array().unwrap() {
        let body = hex::decode(o["body_hex"].as_str().unwrap()).unwrap();
        assert_eq!(o["body_len"].as_u64().unwrap() as usize, body.len());
        assert_eq!(
            o["body_sha256"].as_str().unwrap(),
            hex::encode(sha256(&body))
        );
    }
    let sets: Vec<Vec<String>> = serde_json::from_value(v["identity_sets"].clone()).unwrap();
    assert!(!sets.is_empty(), "{name}: no identity set");
    for set in &sets {
        let lib = read_library(keys, &v, &doc, set);
        let naive = naive_group::read(keys, &v, &doc, set);
        match v["expect"].as_str().unwrap() {
            "pass" => {
                let r = lib.unwrap_or_else(|e| panic!("{name} with {set:?}: library refused: {e}"));
                let n = naive.unwrap_or_else(|e| panic!("{name} with {set:?}: naive refused: {e}"));
                check_pass(&name, &v, &r, &n);
            }
            "fail" => {
                let want = v["error"].as_str().unwrap();
                match lib {
                    Ok(_) => panic!("{name} with {set:?}: expected {want}, the library opened it"),
                    Err(e) => assert_eq!(e, want, "{name} with {set:?}: library"),
                }
                match naive {
                    Ok(_) => {
                        panic!("{name} with {set:?}: expected {want}, the naive reader opened it")
                    }
                    Err(e) => assert_eq!(e, want, "{name} with {set:?}: naive reader"),
                }
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
    }
}

fn check_pass(name: &str, v: &Value, r: &GroupRead, n: &naive_group::Read) {
    let ex = &v["expected"];
    let c = r.group.content();
    assert_eq!(c.version, ex["version"].as_u64().unwrap(), "{name}");
    assert_eq!(n.version, c.version, "{name}: naive version");
    assert_eq!(c.epoch as u64, ex["epoch"].as_u64().unwrap(), "{name}");
    assert_eq!(n.epoch, c.epoch, "{name}: naive epoch");
    assert_eq!(hex::encode(c.epoch_key), ex["epoch_key"].as_str().unwrap());
    assert_eq!(
        hex::encode(r.group.recipient().unwrap().key_id()),
        ex["epoch_key_id"].as_str().unwrap()
    );
    let members: Vec<Value> = c
        .members
        .iter()
        .map(|m| json!({"name": m.name, "key_id": hex::encode(m.key_id()), "fingerprint": m.fingerprint().to_string()}))
        .collect();
    assert_eq!(Value::from(members), ex["members"], "{name}: members");
    let naive_members: Vec<&str> = n.members.iter().map(|(m, _)| m.as_str()).collect();
    let lib_members: Vec<&str> = c.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(naive_members, lib_members, "{name}: member order");
    let signers: Vec<String> = r
        .group
        .signers()
        .map(|k| k.fingerprint().to_string())
        .collect();
    assert_eq!(json!(signers), ex["signers"], "{name}: signers");
    assert_eq!(n.signers, signers, "{name}: naive signers");
    let mut admins: Vec<String> = c
        .admins
        .iter()
        .map(|k| k.fingerprint().to_string())
        .collect();
    admins.sort();
    assert_eq!(json!(admins), ex["admins"], "{name}: admins");
    // Epoch keys: the library's, the naive reader's, the declared ones.
    assert_eq!(r.epochs.current_epoch(), c.epoch);
    for (i, e) in ex["epoch_keys"].as_array().unwrap().iter().enumerate() {
        let k = r.epochs.get(i as u32 + 1).unwrap();
        assert_eq!(hex::encode(k.public_bytes()), e["public"].as_str().unwrap());
        assert_eq!(hex::encode(k.key_id()), e["key_id"].as_str().unwrap());
        assert_eq!(
            k.expose_secret(),
            &n.secrets[i],
            "{name}: naive epoch {}",
            i + 1
        );
        assert_eq!(
            hex::encode(k.expose_secret()),
            v["inputs"]["epoch_secrets"][i]["secret"].as_str().unwrap()
        );
    }
    // Chain-link keys.
    for l in v["intermediate"]["chain_link_keys"].as_array().unwrap() {
        let e = l["epoch"].as_u64().unwrap() as u32;
        assert_eq!(
            hex::encode(naive_group::chain_key(&n.secrets[e as usize], e)),
            l["key"].as_str().unwrap()
        );
    }
    // Objects: plaintext, and the naive data key is the writer's.
    let objects = v["objects"].as_array().unwrap();
    assert_eq!(r.plaintexts.len(), objects.len());
    for (i, o) in objects.iter().enumerate() {
        let p = &o["plaintext"];
        let pt = pattern(
            p["len"].as_u64().unwrap() as usize,
            p["generator_add"].as_u64().unwrap() as u8,
        );
        assert_eq!(p["sha256"].as_str().unwrap(), hex::encode(sha256(&pt)));
        assert!(
            r.plaintexts[i] == pt,
            "{name}: object {i} plaintext differs"
        );
        assert_eq!(
            hex::encode(n.data_keys[i]),
            o["inputs"]["data_key"].as_str().unwrap(),
            "{name}: object {i} naive data key"
        );
        let inp = &o["inputs"];
        let e_secret: [u8; 32] = hex::decode(inp["x25519_ephemeral_secret"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let r_pub: [u8; 32] = hex::decode(inp["x25519_recipient_public"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let shared = naive_group::x25519(&e_secret, &r_pub).unwrap();
        assert_eq!(
            hex::encode(shared),
            inp["x25519_shared_secret"].as_str().unwrap()
        );
        let e_pub = naive_group::x25519_public(&e_secret);
        assert_eq!(
            hex::encode(naive_group::kek(&shared, &e_pub, &r_pub)),
            inp["x25519_kek"].as_str().unwrap()
        );
        let epoch = o["epoch"].as_u64().unwrap() as u32;
        assert_eq!(
            r_pub,
            *r.epochs.get(epoch).unwrap().public_bytes(),
            "{name}: object {i} epoch"
        );
    }
    // The signed part re-encodes byte for byte (canonical form).
    let doc = hex::decode(v["document"]["hex"].as_str().unwrap()).unwrap();
    let signed_len = v["intermediate"]["signed_len"].as_u64().unwrap() as usize;
    assert_eq!(
        c.encode().unwrap(),
        doc[..signed_len],
        "{name}: re-encoding differs"
    );
    assert_eq!(
        v["document"]["store_key"].as_str().unwrap(),
        group_document_key(r.group.name(), c.version)
    );
}

fn group_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(GROUP_PREFIX))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn group_vectors() {
    let dir = vectors_dir();
    let regen = regen_requested();
    let keys = Keys::load_or_generate(&dir.join("keys.json"), false);
    let old: Vec<Value> = group_files().iter().map(|p| read_json(p)).collect();
    let generator = GroupGen::new(&keys, &old);
    let vectors = generator.all();
    let names: BTreeSet<String> = vectors.iter().map(|v| v.name.clone()).collect();
    assert_eq!(names.len(), vectors.len(), "duplicate group vector names");
    for n in &names {
        assert!(
            n.starts_with("group-pass-") || n.starts_with("group-fail-"),
            "{n}"
        );
    }
    if regen {
        for p in group_files() {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            if !names.contains(&stem) {
                std::fs::remove_file(&p).unwrap();
            }
        }
        for v in &vectors {
            std::fs::write(dir.join(format!("{}.json", v.name)), to_text(&v.to_json())).unwrap();
        }
    } else {
        let on_disk: BTreeSet<String> = group_files()
            .iter()
            .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            on_disk, names,
            "group vector files differ from the generated set: regenerate with SEALGATE_REGEN_VECTORS=1"
        );
        for v in &vectors {
            let stored = read_json(&dir.join(format!("{}.json", v.name)));
            assert!(
                stored == v.to_json(),
                "{}: the generator no longer reproduces this vector (format change?). If intended, \
                 regenerate with SEALGATE_REGEN_VECTORS=1 and review the diff.",
                v.name
            );
        }
    }
    let mut failed = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    for p in group_files() {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let checked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_group_file(&keys, &p)));
        if checked.is_err() {
            failed.push(name);
        } else if read_json(&p)["expect"] == "pass" {
            pass += 1;
        } else {
            fail += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "group vector(s) failed their checks (messages above): {failed:?}"
    );
    assert!(pass >= 2 && fail >= 10, "pass {pass}, fail {fail}");
    eprintln!("group vectors: {pass} pass vectors opened, {fail} must-fail vectors refused");
}

/// Every refusal of FORMAT.md 15.4 and 15.5 has a must-fail vector.
#[test]
fn group_vectors_cover_every_refusal() {
    if regen_requested() {
        return;
    }
    let mut kinds = BTreeSet::new();
    for p in group_files() {
        let v = read_json(&p);
        if v["expect"] == "fail" {
            kinds.insert(v["error"].as_str().unwrap().to_string());
        }
    }
    for k in [
        "Unsigned",
        "UnknownSigner",
        "BadSignature",
        "RolledBack",
        "WrongName",
        "Malformed",
        "NotAMember",
    ] {
        assert!(kinds.contains(k), "no group vector expects {k}");
    }
}

/// The pass document really holds what the must-fail vectors need: the
/// removed member and the outsider are not members, every current member is.
#[test]
fn group_pass_document_membership() {
    if regen_requested() {
        return;
    }
    let keys = Keys::load_or_generate(&vectors_dir().join("keys.json"), false);
    let v = read_json(&vectors_dir().join("group-pass-3-members-2-epochs.json"));
    let doc = hex::decode(v["document"]["hex"].as_str().unwrap()).unwrap();
    let g = GroupDocument::parse(&doc)
        .unwrap()
        .verify("team", &[admin("admin-1").fingerprint()], 0)
        .unwrap();
    for k in ["rsa2048-a", "rsa2048-b", "rsa3072-a"] {
        assert!(
            g.content()
                .member_by_key_id(&keys.get(k).identity.key_id())
                .is_some(),
            "{k}"
        );
    }
    for k in ["rsa2048-c", "rsa2048-outsider", "rsa4096-a"] {
        assert!(
            g.content()
                .member_by_key_id(&keys.get(k).identity.key_id())
                .is_none(),
            "{k}"
        );
    }
    assert_eq!(g.content().chain.len(), 1);
}
