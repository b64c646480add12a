//! Sharing through the store: published keys, a signed group, members who
//! join and read what the group already holds, members who leave; and the
//! store trying to add itself, substitute a key, roll the group back or
//! delete it. One gateway per person (alice administers "team"; bob, carol
//! and dave are people; eve is the store's own key), over Garage reached
//! through its own S3 API, as the store's operator would.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use sealgate::commands::sharing;
use sealgate::config::{GroupConfig, SharingConfig};
use sealgate::sharing::fingerprint::Fingerprint;
use sealgate::sharing::group::{group_document_key, GroupDocument};
use sealgate::sharing::signing::SigningKey;
use sealgate::store::ObjectHeaders;

use crate::harness::*;
use crate::multipart::{complete, create, part};

const GROUP: &str = "team";

struct Team {
    w: World,
    dir: tempfile::TempDir,
    bucket: String,
    admin: SigningKey,
}

impl Team {
    fn new(w: World, tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        Self {
            w,
            dir: tempfile::tempdir().unwrap(),
            bucket: format!(
                "groups-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            admin: SigningKey::generate().unwrap(),
        }
    }

    /// `person`'s gateway: their own key, `[sharing]` in the team bucket,
    /// alice's signing key pinned, objects in the bucket written for the
    /// group. `state` names its state directory (None: no memory).
    fn spec(&self, person: &'static str, state: Option<&str>) -> Spec {
        Spec {
            identities: vec![person],
            recipients: vec![],
            policies: vec![("*", "", vec!["group:team"])],
            users: vec![alice_user()],
            sharing: Some(SharingConfig {
                bucket: self.bucket.clone(),
                member: person.into(),
                identity: Some(person.into()),
                signing_key_file: None,
                signing_passphrase_env: None,
                signing_passphrase_file: None,
                state_dir: state.map(|s| self.dir.path().join(s)),
                refresh_secs: 0,
            }),
            groups: vec![GroupConfig {
                name: GROUP.into(),
                admins: vec![self.admin.fingerprint().to_string()],
                min_version: 0,
            }],
            state_dir: None,
        }
    }

    fn gw(&self, person: &'static str) -> Gw {
        self.w.gateway(self.spec(person, Some(person)))
    }

    fn cmd(&self, person: &'static str) -> sealgate::gateway::Gateway {
        self.w.command_gateway(self.spec(person, Some(person)))
    }

    /// Every object at the store: key -> (store ETag, `sg`).
    async fn snapshot(&self) -> BTreeMap<String, (String, String)> {
        let mut out = BTreeMap::new();
        for k in self.w.raw_keys(&self.bucket).await {
            if k.starts_with(".sealgate/") {
                continue;
            }
            let i = self.w.store.head(&self.bucket, &k).await.unwrap();
            out.insert(k, (i.etag, i.headers.metadata["sg"].clone()));
        }
        out
    }

    /// The group document of `version` at the store.
    async fn doc(&self, version: u64) -> Vec<u8> {
        self.w
            .raw_get(&self.bucket, &group_document_key(GROUP, version))
            .await
            .1
    }
}

fn fp(person: &str) -> Fingerprint {
    Fingerprint::of_spki(&spki_of(person))
}

async fn denied(gw: &Gw, b: &str, k: &str, who: &str) {
    match gw.get(b, k).await {
        Err(Refusal::Response(e)) => assert_refused(&e, 403, "AccessDenied", who),
        other => panic!("{who} read {k}: {:?}", other.map(|v| v.len())),
    }
}

/// alice creates the team with bob; she writes single-part and multipart
/// objects; bob reads them, carol cannot; carol joins and reads everything
/// the group held, with no object at the store changed; bob leaves and
/// cannot read what is written afterwards, nor, after `reencrypt`, the old.
#[tokio::test]
async fn a_team_shares_a_bucket_through_the_store() {
    let t = Team::new(World::garage(), "life");
    let alice = t.gw("alice");
    alice.mb(&t.bucket).await;
    let b = t.bucket.clone();
    for p in ["alice", "bob", "carol", "dave"] {
        let out = sharing::publish(&t.cmd(p)).await.unwrap();
        assert!(out.contains(&fp(p).to_string()), "{out}");
    }
    let out = sharing::create(&t.cmd("alice"), &t.admin, GROUP)
        .await
        .unwrap();
    assert!(out.contains(&t.admin.fingerprint().to_string()), "{out}");
    sharing::add(&t.cmd("alice"), &t.admin, GROUP, "bob", &fp("bob"))
        .await
        .unwrap();
    let shown = sharing::show(&t.cmd("bob"), GROUP).await.unwrap();
    assert!(
        shown.contains("version 2") && shown.contains(&fp("bob").to_string()),
        "{shown}"
    );
    let listed = sharing::list(&t.cmd("carol")).await.unwrap();
    assert!(listed.contains("member of team"), "{listed}");

    let small = data(70_000, 1);
    alice.put(&b, "small", &small).await;
    let big = [data(5 * MIB, 2), data(4321, 3)];
    let id = create(&alice, &b, "big").await;
    let e1 = part(&alice, &b, "big", &id, 1, &big[0]).await;
    let e2 = part(&alice, &b, "big", &id, 2, &big[1]).await;
    complete(
        &alice,
        &b,
        "big",
        &id,
        &[(1, e1.as_str()), (2, e2.as_str())],
    )
    .await
    .unwrap();
    // One group stanza (X25519) and nothing else in the envelope.
    let (info, _) = t.w.raw_get(&b, "small").await;
    let h =
        sealgate::envelope::Header::parse(&base64_decode(&info.headers.metadata["sg"])).unwrap();
    assert_eq!(h.recipients.len(), 1);
    assert_eq!(h.recipients[0].algorithm, 2, "an X25519 group stanza");

    let bob = t.gw("bob");
    let carol = t.gw("carol");
    assert!(bob.get_ok(&b, "small").await == small);
    assert!(bob.get_ok(&b, "big").await == big.concat());
    denied(&carol, &b, "small", "carol before joining").await;
    denied(&carol, &b, "big", "carol before joining").await;

    // carol joins: she reads what the group already holds; no object at
    // the store changed.
    let before = t.snapshot().await;
    sharing::add(&t.cmd("alice"), &t.admin, GROUP, "carol", &fp("carol"))
        .await
        .unwrap();
    assert_eq!(t.snapshot().await, before, "joining touched objects");
    assert!(carol.get_ok(&b, "small").await == small);
    assert!(carol.get_ok(&b, "big").await == big.concat());

    // bob leaves: a new epoch; what is written now is not his to read.
    let out = sharing::remove(&t.cmd("alice"), &t.admin, GROUP, "bob")
        .await
        .unwrap();
    assert!(out.contains("reencrypt"), "{out}");
    let after = data(1000, 4);
    alice.put(&b, "after", &after).await;
    denied(&bob, &b, "after", "bob after leaving").await;
    assert!(carol.get_ok(&b, "after").await == after);
    // What bob could read before, he still can (the docs say so) until it
    // is re-encrypted under the current epoch.
    assert!(bob.get_ok(&b, "small").await == small);
    let s = sealgate::commands::reencrypt::reencrypt(&t.cmd("alice"), &b, "", 2)
        .await
        .unwrap();
    assert!(s.failed.is_empty(), "{s}");
    let bob = t.gw("bob");
    denied(&bob, &b, "small", "bob after reencrypt").await;
    denied(&bob, &b, "big", "bob after reencrypt").await;
    assert!(carol.get_ok(&b, "big").await == big.concat());
    // dave never joined.
    denied(&t.gw("dave"), &b, "after", "dave").await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// The store's own tricks: adding itself, substituting a published key,
/// serving an older version, deleting the document. No gateway ever
/// encrypts for a key the administrator did not sign.
#[tokio::test]
async fn the_store_cannot_add_itself_substitute_a_key_or_roll_the_group_back() {
    let t = Team::new(World::garage(), "hostile");
    let alice = t.gw("alice");
    alice.mb(&t.bucket).await;
    let b = t.bucket.clone();
    for p in ["alice", "bob", "carol"] {
        sharing::publish(&t.cmd(p)).await.unwrap();
    }
    sharing::create(&t.cmd("alice"), &t.admin, GROUP)
        .await
        .unwrap();
    sharing::add(&t.cmd("alice"), &t.admin, GROUP, "bob", &fp("bob"))
        .await
        .unwrap();
    let v2 = t.doc(2).await;
    let eve = t.gw("eve");

    // 1. The store adds its own key (eve) as version 3: unsigned, signed
    //    by a key of its own, or with a signature copied from v2.
    let doc2 = GroupDocument::parse(&v2).unwrap();
    let mut content = doc2.unverified_content().clone();
    content.version = 3;
    content.members.push(sealgate::sharing::group::Member {
        name: "eve".into(),
        spki: spki_of("eve"),
        wrapped: sealgate::sharing::group::wrap_epoch_key(
            &spki_of("eve"),
            &sealgate::envelope::x25519::X25519Identity::generate().unwrap(),
        )
        .unwrap(),
    });
    let store_key = SigningKey::generate().unwrap();
    let forged_signed = content.sign(&[&store_key]).unwrap().raw().to_vec();
    // alice's key and signature (over v2) under the forged content.
    let mut copied_sig = content.sign(&[&store_key]).unwrap().raw().to_vec();
    let n = copied_sig.len();
    copied_sig[n - 96..].copy_from_slice(&v2[v2.len() - 96..]);
    for (what, forged) in [
        ("signed by the store", forged_signed),
        ("a copied signature", copied_sig),
    ] {
        t.w.raw_put(
            &b,
            &group_document_key(GROUP, 3),
            forged,
            &ObjectHeaders::default(),
        )
        .await;
        let k = format!("after-{}", what.len());
        let d = data(5000, what.len() as u64);
        alice.put(&b, &k, &d).await;
        denied(&eve, &b, &k, what).await;
        assert!(t.gw("bob").get_ok(&b, &k).await == d, "{what}: bob");
        let shown = sharing::show(&t.cmd("bob"), GROUP).await.unwrap();
        assert!(
            shown.contains("version 2") && !shown.contains("eve"),
            "{what}: {shown}"
        );
        // A fresh gateway that never saw v2 refuses the forgery too.
        let fresh = t.w.gateway(t.spec("alice", None));
        fresh.put(&b, &format!("{k}-fresh"), &d).await;
        denied(&eve, &b, &format!("{k}-fresh"), what).await;
    }
    t.w.store
        .delete(&b, &group_document_key(GROUP, 3))
        .await
        .unwrap();

    // 2. The store replaces carol's published key with eve's: adding carol
    //    with the fingerprint carol gave is refused, and nothing changes.
    let eve_pem = sealgate::keyring::public_pem(&spki_of("eve")).unwrap();
    t.w.raw_put(
        &b,
        &sealgate::sharing::group::key_directory_key("carol"),
        eve_pem.into_bytes(),
        &ObjectHeaders::default(),
    )
    .await;
    let e = sharing::add(&t.cmd("alice"), &t.admin, GROUP, "carol", &fp("carol"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&fp("carol").to_string()) && e.contains("not"),
        "{e}"
    );
    let listed = sharing::list(&t.cmd("alice")).await.unwrap();
    assert!(listed.contains(&fp("eve").to_string()), "{listed}");
    assert!(t
        .w
        .store
        .head(&b, &group_document_key(GROUP, 3))
        .await
        .is_err());

    // 3. bob leaves (v3, epoch 2); the store then hides v3, serving v2 (in
    //    which bob is a member and the epoch-1 key he holds is current).
    sharing::publish(&t.cmd("carol")).await.unwrap();
    sharing::remove(&t.cmd("alice"), &t.admin, GROUP, "bob")
        .await
        .unwrap();
    let v3 = t.doc(3).await;
    t.w.store
        .delete(&b, &group_document_key(GROUP, 3))
        .await
        .unwrap();
    let bob = t.gw("bob");
    // alice's gateway remembers v3 (its state directory): it keeps
    // writing for epoch 2, across a restart too.
    for (who, g) in [("running", &alice), ("restarted", &t.gw("alice"))] {
        let k = format!("rolled-{who}");
        g.put(&b, &k, &data(3000, 9)).await;
        denied(&bob, &b, &k, who).await;
    }
    // A fresh gateway with no memory but the config's floor refuses v2.
    let mut strict = t.spec("alice", None);
    strict.groups[0].min_version = 3;
    let fresh = t.w.gateway(strict);
    let e = must_fail(
        fresh
            .client
            .put_object()
            .bucket(&b)
            .key("never")
            .body(ByteStream::from(vec![1u8; 10]))
            .send()
            .await,
        "fresh gateway, rolled back",
    );
    assert_refused(&e, 403, "AccessDenied", "rolled back");
    assert!(e.message.contains("team"), "{e}");
    // Put back, v3 is accepted again.
    t.w.raw_put(
        &b,
        &group_document_key(GROUP, 3),
        v3,
        &ObjectHeaders::default(),
    )
    .await;
    fresh.put(&b, "now", &data(100, 10)).await;
    denied(&bob, &b, "now", "after v3 is back").await;

    // 4. The store deletes every document: gateways that accepted one keep
    //    it; one that never did cannot encrypt for the group and says so.
    for v in 1..=3 {
        t.w.store
            .delete(&b, &group_document_key(GROUP, v))
            .await
            .unwrap();
    }
    alice.put(&b, "still", &data(100, 11)).await;
    denied(&bob, &b, "still", "after deletion").await;
    let never = t.w.gateway(t.spec("carol", None));
    let e = must_fail(
        never
            .client
            .put_object()
            .bucket(&b)
            .key("nothing")
            .body(ByteStream::from(vec![1u8; 10]))
            .send()
            .await,
        "no document",
    );
    assert_refused(&e, 403, "AccessDenied", "no document");
    assert!(t.w.store.head(&b, "nothing").await.is_err());
}

/// A group of 50 members costs an object no more envelope bytes than a
/// group of 1, and a multipart upload for it works; any member reads it.
#[tokio::test]
async fn fifty_members_fit_the_metadata_budget() {
    let keys = fifty();
    let t = Team::new(World::new(), "fifty");
    let alice = t.gw("alice");
    alice.mb(&t.bucket).await;
    let b = t.bucket.clone();
    sharing::create(&t.cmd("alice"), &t.admin, GROUP)
        .await
        .unwrap();
    alice.put(&b, "one-member", &data(1000, 1)).await;
    let (one, _) = t.w.raw_get(&b, "one-member").await;
    // The members publish (as their gateways would) and alice adds them.
    let cmd = t.cmd("alice");
    for (name, spki) in &keys {
        let pem = sealgate::keyring::public_pem(spki).unwrap();
        t.w.raw_put(
            &b,
            &sealgate::sharing::group::key_directory_key(name),
            pem.into_bytes(),
            &ObjectHeaders::default(),
        )
        .await;
        sharing::add(&cmd, &t.admin, GROUP, name, &Fingerprint::of_spki(spki))
            .await
            .unwrap();
    }
    let shown = sharing::show(&t.cmd("alice"), GROUP).await.unwrap();
    assert!(shown.contains("version 51"), "{shown}");
    alice.put(&b, "fifty-members", &data(1000, 1)).await;
    let (fifty_info, _) = t.w.raw_get(&b, "fifty-members").await;
    assert_eq!(
        one.headers.metadata["sg"].len(),
        fifty_info.headers.metadata["sg"].len(),
        "the envelope grew with the group"
    );
    let parts = [data(5 * MIB, 5), data(777, 6)];
    let id = create(&alice, &b, "multi").await;
    let e1 = part(&alice, &b, "multi", &id, 1, &parts[0]).await;
    let e2 = part(&alice, &b, "multi", &id, 2, &parts[1]).await;
    complete(
        &alice,
        &b,
        "multi",
        &id,
        &[(1, e1.as_str()), (2, e2.as_str())],
    )
    .await
    .unwrap();
    // member37 reads with its own key and the group document alone.
    let (info, body) = t.w.raw_get(&b, "multi").await;
    let doc = t.doc(51).await;
    let member = sealgate::envelope::RsaOaepIdentity::from_pkcs8_der(&fifty_private(37)).unwrap();
    let verified = GroupDocument::parse(&doc)
        .unwrap()
        .verify(GROUP, &[t.admin.fingerprint()], 0)
        .unwrap();
    let epochs = verified.open_epochs(&member).unwrap();
    let ids = epochs.identities();
    let mkey =
        t.w.raw_keys(&b)
            .await
            .into_iter()
            .find(|k| k.starts_with(".sealgate/mp/"))
            .unwrap();
    let manifest = t.w.raw_get(&b, &mkey).await.1;
    let mut out = Vec::new();
    sealgate::commands::decrypt::decrypt(
        &ids,
        &info.headers.metadata["sg"],
        sealgate::commands::decrypt::DecryptOptions {
            name: Some((&b, "multi")),
            manifest: Some(&manifest),
            without_manifest: false,
        },
        &body[..],
        &mut out,
    )
    .unwrap();
    assert!(out == parts.concat());
}

fn fixture() -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/group50-keys.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn fifty_private(i: usize) -> Vec<u8> {
    use base64::Engine;
    let v = fixture();
    base64::engine::general_purpose::STANDARD
        .decode(v["keys"][i]["pkcs8_der_b64"].as_str().unwrap())
        .unwrap()
}

/// The 50 fixture members: (name, SPKI DER).
fn fifty() -> Vec<(String, Vec<u8>)> {
    let v = fixture();
    (0..50)
        .map(|i| {
            let id =
                sealgate::envelope::RsaOaepIdentity::from_pkcs8_der(&fifty_private(i)).unwrap();
            assert_eq!(id.bits(), 3072);
            (
                v["keys"][i]["name"].as_str().unwrap().to_owned(),
                id.public_spki_der().to_vec(),
            )
        })
        .collect()
}

/// Two administrators changing the group at the same moment, over a store
/// that enforces create-if-absent (the embedded one): each change is the
/// next version written with `If-None-Match: *`, so either one of them is
/// told to run again or both land one after the other, and no change that
/// was reported done is ever lost to the other's overwrite.
#[tokio::test]
async fn racing_administrators_never_lose_a_change() {
    let mut lost_races = 0;
    for round in 0..4 {
        let t = Team::new(World::new(), &format!("race{round}"));
        t.gw("alice").mb(&t.bucket).await;
        for p in ["alice", "bob", "carol"] {
            sharing::publish(&t.cmd(p)).await.unwrap();
        }
        sharing::create(&t.cmd("alice"), &t.admin, GROUP)
            .await
            .unwrap();
        let (one, two) = (
            t.w.command_gateway(t.spec("alice", Some("alice-1"))),
            t.w.command_gateway(t.spec("alice", Some("alice-2"))),
        );
        let (fp_bob, fp_carol) = (fp("bob"), fp("carol"));
        let (bob, carol) = tokio::join!(
            sharing::add(&one, &t.admin, GROUP, "bob", &fp_bob),
            sharing::add(&two, &t.admin, GROUP, "carol", &fp_carol),
        );
        let shown = sharing::show(&t.cmd("alice"), GROUP).await.unwrap();
        let member = |name: &str| shown.lines().any(|l| l.trim_start().starts_with(name));
        for (name, outcome) in [("bob", &bob), ("carol", &carol)] {
            match outcome {
                Ok(_) => assert!(
                    member(name),
                    "{name}'s reported addition was lost:\n{shown}"
                ),
                Err(e) => {
                    lost_races += 1;
                    assert!(e.to_string().contains("exists already"), "{name}: {e:#}");
                    assert!(!member(name), "{name} refused but a member:\n{shown}");
                }
            }
        }
        assert!(bob.is_ok() || carol.is_ok(), "both refused");
    }
    // Not asserted (scheduling decides), but worth seeing when it runs.
    eprintln!("{lost_races} of 4 rounds had a writer told to run again");
}

/// A team bucket with Object Lock and a default retention (moto asks every
/// write there for a checksum): the group documents are written, and the
/// group's objects read by its members.
#[tokio::test]
async fn group_documents_are_written_to_a_bucket_with_object_lock() {
    let t = Team::new(World::moto(), "locked");
    let alice = t.gw("alice");
    alice
        .client
        .create_bucket()
        .bucket(&t.bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    crate::object_lock::default_retention(&alice, &t.bucket).await;
    let b = t.bucket.clone();
    for p in ["alice", "bob"] {
        sharing::publish(&t.cmd(p)).await.unwrap();
    }
    sharing::create(&t.cmd("alice"), &t.admin, GROUP)
        .await
        .unwrap();
    sharing::add(&t.cmd("alice"), &t.admin, GROUP, "bob", &fp("bob"))
        .await
        .unwrap();
    let shown = sharing::show(&t.cmd("bob"), GROUP).await.unwrap();
    assert!(
        shown.contains("version 2") && shown.contains(&fp("bob").to_string()),
        "{shown}"
    );
    assert!(!t.doc(2).await.is_empty());
    let d = data(5000, 4);
    alice.put(&b, "shared", &d).await;
    assert!(t.gw("bob").get_ok(&b, "shared").await == d);
}
