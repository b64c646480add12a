//! Several gateways over one store, each with its own keys: who reads what
//! another wrote, and the AccessDenied (naming the object's key ids) of a
//! gateway that holds none of them.

use crate::harness::*;

#[derive(Clone, Copy, Debug)]
enum Gateway {
    /// Alice's key; objects for alice.
    Alice,
    /// Alice's key; objects for alice and bob.
    Team,
    /// Alice's key; objects for alice, and under `shared/` for bob too.
    Prefixed,
    /// No private key; objects for alice (a backup host).
    WriteOnly,
    Bob,
    Carol,
    /// Eve's key only.
    Eve,
    /// Eve's key, and alice's and bob's public keys (so it can name them).
    EveKnowingOthers,
}

fn spec(g: Gateway) -> Spec {
    let mut s = match g {
        Gateway::Alice | Gateway::Team | Gateway::Prefixed => Spec::alice(),
        Gateway::WriteOnly => Spec {
            identities: vec![],
            recipients: vec!["alice"],
            policies: vec![("*", "", vec!["alice"])],
            users: vec![alice_user()],
            ..Spec::alice()
        },
        Gateway::Bob => Spec::person("bob"),
        Gateway::Carol => Spec::person("carol"),
        Gateway::Eve | Gateway::EveKnowingOthers => Spec::person("eve"),
    };
    match g {
        Gateway::Team => {
            s.recipients = vec!["bob"];
            s.policies = vec![("*", "", vec!["alice", "bob"])];
        }
        Gateway::Prefixed => {
            s.recipients = vec!["bob"];
            s.policies = vec![
                ("*", "", vec!["alice"]),
                ("*", "shared/", vec!["alice", "bob"]),
            ];
        }
        Gateway::EveKnowingOthers => s.recipients = vec!["alice", "bob"],
        _ => {}
    }
    s
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Reads,
    /// 403 AccessDenied naming these people's key ids.
    Denied(&'static [&'static str]),
}

struct ShareCase {
    writer: Gateway,
    /// `None`: the writer's own gateway instance reads.
    reader: Option<Gateway>,
    key: &'static str,
    multipart: bool,
    expect: Outcome,
    /// Names the denial must show beside the key ids.
    named: &'static [&'static str],
}

const fn s(writer: Gateway, reader: Option<Gateway>, expect: Outcome) -> ShareCase {
    ShareCase {
        writer,
        reader,
        key: "obj",
        multipart: false,
        expect,
        named: &[],
    }
}

use Gateway::*;
use Outcome::*;

table! { share;
    another_gateway_with_the_same_key_reads: s(Alice, Some(Alice), Reads),
    a_gateway_without_the_key_is_denied_naming_the_key_id: s(Alice, Some(Eve), Denied(&["alice"])),
    a_denial_names_the_recipients_the_gateway_knows: ShareCase { named: &["alice"],
        ..s(Alice, Some(EveKnowingOthers), Denied(&["alice"])) },
    a_team_member_reads: s(Team, Some(Bob), Reads),
    a_team_member_reads_a_multipart_object: ShareCase { multipart: true,
        ..s(Team, Some(Bob), Reads) },
    an_outsider_is_denied_naming_every_recipient: s(Team, Some(Eve), Denied(&["alice", "bob"])),
    an_outsider_is_denied_a_multipart_object: ShareCase { multipart: true,
        ..s(Team, Some(Eve), Denied(&["alice", "bob"])) },
    a_key_outside_the_policy_is_denied: s(Team, Some(Carol), Denied(&["alice", "bob"])),
    a_write_only_gateway_cannot_read_what_it_wrote: s(WriteOnly, None, Denied(&["alice"])),
    a_write_only_gateway_cannot_read_its_multipart_object: ShareCase { multipart: true,
        ..s(WriteOnly, None, Denied(&["alice"])) },
    the_owner_reads_what_a_write_only_gateway_wrote: s(WriteOnly, Some(Alice), Reads),
    the_owner_reads_a_write_only_gateways_multipart_object: ShareCase { multipart: true,
        ..s(WriteOnly, Some(Alice), Reads) },
    a_prefix_policy_shares_its_prefix: ShareCase { key: "shared/doc",
        ..s(Prefixed, Some(Bob), Reads) },
    a_prefix_policy_keeps_the_rest_private: ShareCase { key: "private/doc",
        ..s(Prefixed, Some(Bob), Denied(&["alice"])) },
}

async fn share(case: ShareCase) {
    let b = "team";
    let w = World::new();
    let writer = w.gateway(spec(case.writer));
    writer.mb(b).await;
    let k = case.key;
    let (d, etag) = if case.multipart {
        let parts = crate::multipart::upload(&writer, b, k, &[5 * MIB, 1000]).await;
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        (parts.concat(), multipart_etag(&refs))
    } else {
        let d = data(70_000, 3);
        let etag = writer.put(b, k, &d).await;
        (d, etag)
    };
    let other;
    let reader = match case.reader {
        None => &writer,
        Some(g) => {
            other = w.gateway(spec(g));
            &other
        }
    };
    match case.expect {
        Reads => {
            let r = reader
                .client
                .get_object()
                .bucket(b)
                .key(k)
                .send()
                .await
                .unwrap();
            assert_eq!(unquote(r.e_tag().unwrap()), etag);
            assert!(collect(r.body).await.unwrap() == d, "other bytes");
            let r = reader
                .client
                .get_object()
                .bucket(b)
                .key(k)
                .range("bytes=65530-65545")
                .send()
                .await
                .unwrap();
            assert!(collect(r.body).await.unwrap() == d[65530..=65545]);
        }
        Denied(people) => {
            let check = |e: S3Err, what: &str| {
                assert_refused(&e, 403, "AccessDenied", what);
                for p in people {
                    assert!(
                        e.message.contains(key_id(p)),
                        "{what}: {p}'s key id missing: {e}"
                    );
                }
                for p in case.named {
                    let named = format!("{} ({p})", key_id(p));
                    assert!(e.message.contains(&named), "{what}: {named} missing: {e}");
                }
            };
            match reader.get(b, k).await {
                Err(Refusal::Response(e)) => check(e, "GET"),
                other => panic!("GET: {other:?}"),
            }
            let r = reader
                .client
                .get_object()
                .bucket(b)
                .key(k)
                .range("bytes=0-9")
                .send()
                .await;
            check(must_fail(r, "ranged GET"), "ranged GET");
            let r = reader.client.head_object().bucket(b).key(k).send().await;
            assert_eq!(must_fail(r, "HEAD").status, 403, "HEAD");
            // Copying through it would need the data key too.
            let r = reader
                .client
                .copy_object()
                .copy_source(format!("{b}/{k}"))
                .bucket(b)
                .key("copy")
                .send()
                .await;
            check(must_fail(r, "copy"), "copy");
            // It still lists the object. The size is exact for a single-part
            // object (computed from the ciphertext's), and for a multipart one
            // the gateway wrote itself (it knows the parts); another gateway
            // without the key cannot open a multipart object's manifest
            // (sealed under the object's data key) to learn its part sizes.
            let l = reader
                .client
                .list_objects_v2()
                .bucket(b)
                .send()
                .await
                .unwrap();
            let c = &l.contents()[0];
            assert_eq!(c.key(), Some(k));
            if !case.multipart || case.reader.is_none() {
                assert_eq!(c.size(), Some(d.len() as i64), "listed size");
            }
        }
    }
}
