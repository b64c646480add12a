//! Sharing, end to end: several people with their own sealgate and private
//! key against one store; a write-only gateway; offline recovery with only a
//! private key; rewrap and reencrypt.

use crate::common::*;
use std::process::Command;

fn team_bucket() -> String {
    format!("team-{}", std::process::id())
}

fn gw_for(store: &Store, identity: Option<Key>, recipients: Vec<Key>, policy: Vec<&str>) -> Gw {
    Gw::start(&GwSpec {
        store: Some(store),
        identities: identity.into_iter().collect(),
        recipients,
        policies: vec![(
            "*".into(),
            "".into(),
            policy.into_iter().map(str::to_owned).collect(),
        )],
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    })
}

fn put(gw: &Gw, b: &str, k: &str, data: &[u8], dir: &std::path::Path) {
    let f = dir.join(format!("put-{}", k.replace('/', "_")));
    std::fs::write(&f, data).unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "put-object",
                "--bucket",
                b,
                "--key",
                k,
                "--body",
                f.to_str().unwrap(),
            ],
        ),
        "put",
    );
}

fn get(gw: &Gw, b: &str, k: &str, dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let f = dir.join(format!("get-{}-{}", gw.port, k.replace('/', "_")));
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "get-object",
            "--bucket",
            b,
            "--key",
            k,
            f.to_str().unwrap(),
        ],
    );
    if o.status.success() {
        Ok(std::fs::read(&f).unwrap())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn sealgate(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

#[test]
fn team_sharing_rewrap_reencrypt_and_recovery() {
    let store = garage();
    let (alice, bob, carol, dave) = (
        key("alice", 2048),
        key("bob", 2048),
        key("carol", 3072),
        key("dave", 2048),
    );
    let alice_gw = gw_for(
        store,
        Some(alice.clone()),
        vec![bob.clone(), carol.clone(), dave.clone()],
        vec!["alice", "bob", "carol"],
    );
    let bob_gw = gw_for(store, Some(bob.clone()), vec![], vec!["bob"]);
    let carol_gw = gw_for(store, Some(carol.clone()), vec![], vec!["carol"]);
    let dave_gw = gw_for(store, Some(dave.clone()), vec![], vec!["dave"]);
    let b = team_bucket();
    let dir = tmpdir("sharing");
    ok(
        &aws2(&alice_gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let doc = random_bytes(150_000, 42);
    put(&alice_gw, &b, "plans/doc.bin", &doc, &dir);
    put(&alice_gw, &b, "plans/other.bin", b"second object", &dir);

    // Bob and Carol read with their own gateways and keys.
    assert_eq!(get(&bob_gw, &b, "plans/doc.bin", &dir).unwrap(), doc);
    assert_eq!(get(&carol_gw, &b, "plans/doc.bin", &dir).unwrap(), doc);
    // Dave, with full store access and his own gateway, cannot: AccessDenied
    // naming the key ids the object is encrypted for.
    let e = get(&dave_gw, &b, "plans/doc.bin", &dir).unwrap_err();
    assert!(e.contains("AccessDenied"), "{e}");
    for k in [&alice, &bob, &carol] {
        assert!(e.contains(&k.key_id), "{e} should name {}", k.key_id);
    }

    // inspect: version, sizes, recipients by name.
    let cfg = alice_gw.config.to_str().unwrap().to_owned();
    let ins = ok(
        &sealgate(&[
            "inspect",
            "--config",
            &cfg,
            &format!("s3://{b}/plans/doc.bin"),
        ]),
        "inspect",
    );
    assert!(ins.contains("format version:  1"), "{ins}");
    assert!(ins.contains("plaintext size:  150000"), "{ins}");
    for n in ["alice", "bob", "carol"] {
        assert!(ins.contains(n), "{ins}");
    }
    let commitment_before = ins
        .lines()
        .find(|l| l.starts_with("data key commitment"))
        .unwrap()
        .to_owned();

    // Offline recovery: the raw object straight from the store, the JSON
    // head-object prints for it, and Bob's private key file.
    let raw = dir.join("raw.bin");
    ok(
        &store_aws(
            store,
            &[
                "s3api",
                "get-object",
                "--bucket",
                &b,
                "--key",
                "plans/doc.bin",
                raw.to_str().unwrap(),
            ],
        ),
        "raw get",
    );
    let head = ok(
        &store_aws(
            store,
            &[
                "s3api",
                "head-object",
                "--bucket",
                &b,
                "--key",
                "plans/doc.bin",
            ],
        ),
        "raw head",
    );
    let meta = dir.join("head.json");
    std::fs::write(&meta, head).unwrap();
    let out = dir.join("recovered.bin");
    ok(
        &sealgate(&[
            "decrypt",
            "--identity",
            bob.key_file.to_str().unwrap(),
            "--passphrase-file",
            bob.pass_file.to_str().unwrap(),
            "--metadata",
            meta.to_str().unwrap(),
            "--name",
            &format!("s3://{b}/plans/doc.bin"),
            raw.to_str().unwrap(),
            out.to_str().unwrap(),
        ]),
        "decrypt",
    );
    assert_eq!(std::fs::read(&out).unwrap(), doc);
    // The wrong name, or Dave's key, fails and writes nothing.
    let out2 = dir.join("nothing.bin");
    let o = sealgate(&[
        "decrypt",
        "--identity",
        dave.key_file.to_str().unwrap(),
        "--passphrase-file",
        dave.pass_file.to_str().unwrap(),
        "--metadata",
        meta.to_str().unwrap(),
        "--name",
        &format!("s3://{b}/plans/doc.bin"),
        raw.to_str().unwrap(),
        out2.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!out2.exists());
    let o = sealgate(&[
        "decrypt",
        "--identity",
        bob.key_file.to_str().unwrap(),
        "--passphrase-file",
        bob.pass_file.to_str().unwrap(),
        "--metadata",
        meta.to_str().unwrap(),
        "--name",
        &format!("s3://{b}/plans/moved.bin"),
        raw.to_str().unwrap(),
        out2.to_str().unwrap(),
    ]);
    assert!(!o.status.success());

    // rewrap --add dave: only the envelope changes, not a content byte.
    let out = ok(
        &sealgate(&[
            "rewrap",
            "--config",
            &cfg,
            "--add",
            "dave",
            &format!("s3://{b}/plans/"),
        ]),
        "rewrap add",
    );
    assert!(out.contains("changed: 2"), "{out}");
    let raw_after = dir.join("raw-after.bin");
    ok(
        &store_aws(
            store,
            &[
                "s3api",
                "get-object",
                "--bucket",
                &b,
                "--key",
                "plans/doc.bin",
                raw_after.to_str().unwrap(),
            ],
        ),
        "raw get",
    );
    assert_eq!(
        std::fs::read(&raw).unwrap(),
        std::fs::read(&raw_after).unwrap(),
        "rewrap changed content bytes"
    );
    assert_eq!(get(&dave_gw, &b, "plans/doc.bin", &dir).unwrap(), doc);
    // Running it again is safe and changes nothing.
    let out = ok(
        &sealgate(&[
            "rewrap",
            "--config",
            &cfg,
            "--add",
            "dave",
            &format!("s3://{b}/plans/"),
        ]),
        "rewrap again",
    );
    assert!(out.contains("changed: 0, already right: 2"), "{out}");
    // rewrap --remove dave on one object.
    ok(
        &sealgate(&[
            "rewrap",
            "--config",
            &cfg,
            "--remove",
            "dave",
            &format!("s3://{b}/plans/doc.bin"),
        ]),
        "rewrap remove",
    );
    assert!(get(&dave_gw, &b, "plans/doc.bin", &dir)
        .unwrap_err()
        .contains("AccessDenied"));
    assert_eq!(get(&bob_gw, &b, "plans/doc.bin", &dir).unwrap(), doc);
    assert_eq!(
        get(&dave_gw, &b, "plans/other.bin", &dir).unwrap(),
        b"second object"
    );

    // reencrypt: a fresh data key (the commitment changes), content intact.
    ok(
        &sealgate(&[
            "reencrypt",
            "--config",
            &cfg,
            &format!("s3://{b}/plans/doc.bin"),
        ]),
        "reencrypt",
    );
    let ins = ok(
        &sealgate(&[
            "inspect",
            "--config",
            &cfg,
            &format!("s3://{b}/plans/doc.bin"),
        ]),
        "inspect",
    );
    let commitment_after = ins
        .lines()
        .find(|l| l.starts_with("data key commitment"))
        .unwrap()
        .to_owned();
    assert_ne!(commitment_before, commitment_after);
    assert_eq!(get(&bob_gw, &b, "plans/doc.bin", &dir).unwrap(), doc);
}

#[test]
fn write_only_gateway_writes_but_cannot_read() {
    let store = garage();
    let alice = key("alice", 2048);
    let backup = gw_for(store, None, vec![alice.clone()], vec!["alice"]);
    let reader = gw_for(store, Some(alice.clone()), vec![], vec!["alice"]);
    let b = format!("backup-{}", std::process::id());
    let dir = tmpdir("writeonly");
    ok(
        &aws2(&backup.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let data = random_bytes(70_000, 3);
    put(&backup, &b, "night.tar", &data, &dir);
    let e = get(&backup, &b, "night.tar", &dir).unwrap_err();
    assert!(
        e.contains("AccessDenied") && e.contains(&alice.key_id),
        "{e}"
    );
    // It still lists its objects (with sizes computed from the ciphertext).
    let ls = ok(
        &aws2(
            &backup.endpoint,
            &["s3api", "list-objects-v2", "--bucket", &b],
        ),
        "ls",
    );
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(v["Contents"][0]["Size"].as_u64().unwrap(), 70_000);
    assert_eq!(get(&reader, &b, "night.tar", &dir).unwrap(), data);
}

#[test]
fn many_recipients_overflow_the_metadata_and_still_work() {
    let store = garage();
    let mut keys = Vec::new();
    for i in 0..12 {
        let bits = [2048, 3072, 4096][i % 3];
        keys.push(key(&format!("member{i}"), bits));
    }
    let b = format!("many-{}", std::process::id());
    let dir = tmpdir("many");
    for n in [1usize, 2, 5, 12] {
        let names: Vec<&str> = keys[..n].iter().map(|k| k.name.as_str()).collect();
        let writer = gw_for(store, None, keys[..n].to_vec(), names);
        if n == 1 {
            ok(
                &aws2(&writer.endpoint, &["s3", "mb", &format!("s3://{b}")]),
                "mb",
            );
        }
        let data = random_bytes(100_000 + n, n as u64);
        let k = format!("obj{n}");
        put(&writer, &b, &k, &data, &dir);
        // The last member reads it back with only their own key.
        let reader = gw_for(
            store,
            Some(keys[n - 1].clone()),
            vec![],
            vec![keys[n - 1].name.as_str()],
        );
        assert_eq!(get(&reader, &b, &k, &dir).unwrap(), data, "{n} recipients");
        let head = ok(
            &store_aws(
                store,
                &["s3api", "head-object", "--bucket", &b, "--key", &k],
            ),
            "raw head",
        );
        let v: serde_json::Value = serde_json::from_str(&head).unwrap();
        let sg = v["Metadata"]["sg"].as_str().unwrap();
        assert!(sg.len() < 2048, "{n}: metadata must stay under S3's 2 KB");
        if n >= 5 {
            assert!(
                sg.len() < 100,
                "{n} recipients: expected the overflow pointer, got {} chars",
                sg.len()
            );
        }
    }
}

#[test]
fn interrupted_rewrap_runs_again_to_completion_and_rotates_identities() {
    let store = garage();
    let (old, new) = (key("rot-old", 2048), key("rot-new", 2048));
    let b = format!("rotate-{}", std::process::id());
    let dir = tmpdir("rotate");
    // Objects written for the old identity.
    let writer = gw_for(store, Some(old.clone()), vec![new.clone()], vec!["rot-old"]);
    ok(
        &aws2(&writer.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let src = dir.join("tree");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40u64 {
        std::fs::write(
            src.join(format!("f{i:02}")),
            random_bytes(3000 + i as usize, i),
        )
        .unwrap();
    }
    ok(
        &aws2(
            &writer.endpoint,
            &[
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                src.to_str().unwrap(),
                &format!("s3://{b}/docs/"),
            ],
        ),
        "upload tree",
    );
    // Rotation: a gateway holding both identities moves every object to the
    // new key; the run is interrupted, then run again.
    let rotator = Gw::start(&GwSpec {
        store: Some(store),
        identities: vec![old.clone(), new.clone()],
        recipients: vec![],
        policies: vec![("*".into(), "".into(), vec!["rot-new".into()])],
        extra_users: vec![],
        tls: false,
        extra_toml: String::new(),
    });
    let cfg = rotator.config.to_str().unwrap().to_owned();
    let target = format!("s3://{b}/docs/");
    let mut first = Command::new(bin())
        .args([
            "rewrap",
            "--config",
            &cfg,
            "--concurrency",
            "1",
            "--add",
            "rot-new",
            "--remove",
            "rot-old",
            &target,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let _ = first.kill();
    let _ = first.wait();
    let out = ok(
        &Command::new(bin())
            .args([
                "rewrap", "--config", &cfg, "--add", "rot-new", "--remove", "rot-old", &target,
            ])
            .output()
            .unwrap(),
        "rewrap again",
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("changed:"))
        .unwrap()
        .to_owned();
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums[0] + nums[1], 40, "{line}");
    assert_eq!(nums[2], 0, "{line}");
    // A gateway with only the new identity reads every object; one with only
    // the old identity reads none.
    let new_only = gw_for(store, Some(new.clone()), vec![], vec!["rot-new"]);
    let old_only = gw_for(store, Some(old.clone()), vec![], vec!["rot-old"]);
    for i in [0u64, 17, 39] {
        let k = format!("docs/f{i:02}");
        assert_eq!(
            get(&new_only, &b, &k, &dir).unwrap(),
            random_bytes(3000 + i as usize, i)
        );
        assert!(get(&old_only, &b, &k, &dir)
            .unwrap_err()
            .contains("AccessDenied"));
    }
    // A third run finds nothing to do.
    let out = ok(
        &Command::new(bin())
            .args([
                "rewrap", "--config", &cfg, "--add", "rot-new", "--remove", "rot-old", &target,
            ])
            .output()
            .unwrap(),
        "rewrap third",
    );
    assert!(out.contains("changed: 0, already right: 40"), "{out}");
}
