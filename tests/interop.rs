//! Runs the independent Python decryptor (`tests/interop/sealgate_decrypt.py`,
//! written from `docs/FORMAT.md` only) over every format vector. It must open
//! every pass vector and refuse every must-fail vector with the declared error;
//! for multipart vectors it must also read the body without the manifest with
//! the declared outcome. The attributes it opens from every pass vector are
//! compared here with the vector's declaration (none for a header without an
//! attributes block). Its `decrypt` mode is run on multipart objects too,
//! with the manifest and without it, and on one whose header is in the
//! manifest.
//!
//! Needs `python3` with the `cryptography` package (CI installs it with pip).
//! Their absence fails the test, with a message saying what to install: a
//! skipped interop check would look like a passing one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_decryptor(vectors: &Path) -> Output {
    let script = root().join("tests/interop/sealgate_decrypt.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--vectors")
        .arg(vectors)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): the interop test needs python3 with the \
                 'cryptography' package (pip install cryptography)"
            )
        });
    if out.status.code() == Some(3) {
        panic!(
            "python3 lacks the 'cryptography' package (pip install cryptography):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Parses `RESULT pass=N fail=N wrong=N`.
fn result_line(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));
    let mut n = [0usize; 3];
    for (slot, field) in n.iter_mut().zip(["pass=", "fail=", "wrong="]) {
        *slot = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(field))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad RESULT line: {line}"));
    }
    (n[0], n[1], n[2])
}

fn read_vector(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_vector(p: &Path, v: &serde_json::Value) {
    std::fs::write(p, v.to_string()).unwrap();
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// The attributes the decryptor reported (`ATTRS  <name> <json>` lines), by
/// vector name.
fn reported_attributes(stdout: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("ATTRS  ") else {
            continue;
        };
        let (name, json) = rest.split_once(' ').expect("ATTRS <name> <json>");
        let v = serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(
            out.insert(name.to_string(), v).is_none(),
            "{name}: attributes reported twice"
        );
    }
    out
}

/// Names of the multipart vectors (those with a `manifest` field).
fn multipart_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && !p.ends_with("keys.json") {
            let v = read_vector(&p);
            if v.get("manifest").is_some() {
                names.push(v["name"].as_str().unwrap().to_string());
            }
        }
    }
    names.sort();
    names
}

fn declared_counts(dir: &Path) -> (usize, usize) {
    let (mut pass, mut fail) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && !p.ends_with("keys.json") {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            match v["expect"].as_str() {
                Some("pass") => pass += 1,
                Some("fail") => fail += 1,
                other => panic!("{}: expect = {other:?}", p.display()),
            }
        }
    }
    (pass, fail)
}

#[test]
fn python_decryptor_agrees_with_every_vector() {
    let dir = root().join("tests/vectors");
    let (want_pass, want_fail) = declared_counts(&dir);
    assert!(
        want_pass > 0 && want_fail > 0,
        "no vectors in {}",
        dir.display()
    );
    let out = run_decryptor(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python decryptor failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(
        result_line(&stdout),
        (want_pass, want_fail, 0),
        "python decryptor verdicts:\n{stdout}"
    );
    // Multipart vectors were read both ways: with the manifest, and walked
    // without it, each with its declared outcome.
    let mp = multipart_names(&dir);
    assert!(mp.len() >= 40, "only {} multipart vectors", mp.len());
    for name in &mp {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok     {name}: "))
                    && l.ends_with("(and without its manifest)")),
            "{name}: not checked with and without its manifest:\n{stdout}"
        );
    }
    // The attributes it opened are the declared ones, for every pass vector:
    // none where the header has no attributes block.
    let reported = reported_attributes(&stdout);
    let mut with_attributes = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") || p.ends_with("keys.json") {
            continue;
        }
        let v = read_vector(&p);
        if v["expect"] != "pass" {
            continue;
        }
        let name = v["name"].as_str().unwrap();
        let declared = v
            .get("attributes")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        with_attributes += usize::from(!declared.is_null());
        assert_eq!(
            reported.get(name),
            Some(&declared),
            "{name}: attributes the python decryptor opened"
        );
    }
    assert_eq!(
        reported.len(),
        want_pass,
        "attributes reported per pass vector"
    );
    assert!(
        with_attributes >= 6,
        "{with_attributes} vectors with attributes"
    );
}

/// The harness is not vacuous: a tampered pass vector and a wrongly declared
/// must-fail vector are both reported.
#[test]
fn python_decryptor_notices_wrong_vectors() {
    let src = root().join("tests/vectors");
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "keys.json",
        "pass-1-byte.json",
        "fail-tag-bit.json",
        "pass-attributes.json",
        "pass-empty.json",
    ] {
        std::fs::copy(src.join(name), tmp.path().join(name)).unwrap();
    }
    // A declared attribute that is not what the block holds, and attributes
    // declared for a header without a block.
    let p = tmp.path().join("pass-attributes.json");
    let mut v = read_vector(&p);
    v["attributes"]["metadata"]["a"] = "2".into();
    write_vector(&p, &v);
    let p = tmp.path().join("pass-empty.json");
    let mut v = read_vector(&p);
    v["attributes"] = serde_json::json!({ "metadata": {} });
    write_vector(&p, &v);
    // Flip the one ciphertext byte of pass-1-byte (keeping its checksum right).
    let p = tmp.path().join("pass-1-byte.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let mut body = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
    body[24] ^= 1;
    v["body_hex"] = hex::encode(&body).into();
    v["body_sha256"] = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body)).into()
    };
    std::fs::write(&p, v.to_string()).unwrap();
    // Declare the wrong error kind for fail-tag-bit.
    let p = tmp.path().join("fail-tag-bit.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["error"] = "HeaderMac".into();
    std::fs::write(&p, v.to_string()).unwrap();

    // Multipart: a pass vector whose manifest has one salt bit flipped
    // (checksum kept right), a must-fail vector with the wrong error, and one
    // whose outcome without the manifest is declared wrongly.
    for name in [
        "pass-mp-parts-1-3-7",
        "fail-mp-parts-reordered",
        "fail-mp-drop-last-part",
    ] {
        let file = format!("{name}.json");
        std::fs::copy(src.join(&file), tmp.path().join(&file)).unwrap();
    }
    let p = tmp.path().join("pass-mp-parts-1-3-7.json");
    let mut v = read_vector(&p);
    let mut m = hex::decode(v["manifest"]["hex"].as_str().unwrap()).unwrap();
    m[17 + 28 + 12] ^= 1; // part 3's entry: first salt byte
    v["manifest"]["hex"] = hex::encode(&m).into();
    v["manifest"]["sha256"] = sha256_hex(&m).into();
    write_vector(&p, &v);
    let p = tmp.path().join("fail-mp-parts-reordered.json");
    let mut v = read_vector(&p);
    v["error"] = "Truncated".into();
    write_vector(&p, &v);
    let p = tmp.path().join("fail-mp-drop-last-part.json");
    let mut v = read_vector(&p);
    v["without_manifest"] = serde_json::json!({"expect": "fail", "error": "Truncated"});
    write_vector(&p, &v);

    let out = run_decryptor(tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "wrong vectors went unnoticed:\n{stdout}"
    );
    assert_eq!(result_line(&stdout), (0, 0, 7), "{stdout}");
    for (name, why) in [
        ("pass-attributes", "attributes {"),
        ("pass-empty", "attributes null, declared"),
        ("pass-mp-parts-1-3-7", "refused (HeaderMac"),
        ("fail-mp-parts-reordered", "refused with StreamMismatch"),
        ("fail-mp-drop-last-part", "without manifest: opened"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("WRONG  {name}: ")) && l.contains(why)),
            "{name}: expected a WRONG line with {why:?}:\n{stdout}"
        );
    }
}

/// `decrypt` mode on a multipart object: with its manifest it gives the
/// plaintext and the ETag; without one it refuses; with `--no-manifest` it
/// walks the body and warns that dropped parts go unnoticed, which the
/// vector of a store-dropped last part shows.
#[test]
fn python_decrypt_mode_reads_multipart_objects() {
    let src = root().join("tests/vectors");
    let tmp = tempfile::tempdir().unwrap();
    let keys = read_vector(&src.join("keys.json"));
    let pem = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "rsa2048-a")
        .unwrap()["private_key_pkcs8_pem"]
        .as_str()
        .unwrap()
        .to_string();
    let id = tmp.path().join("id.pem");
    std::fs::write(&id, pem).unwrap();
    let script = root().join("tests/interop/sealgate_decrypt.py");
    let runs = std::cell::Cell::new(0);
    let run = |name: &str, extra: &[&str]| -> (Output, Vec<u8>) {
        let v = read_vector(&src.join(format!("{name}.json")));
        runs.set(runs.get() + 1);
        let dir = tmp.path().join(format!("run-{}", runs.get()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = dir.join("body.bin");
        std::fs::write(&body, hex::decode(v["body_hex"].as_str().unwrap()).unwrap()).unwrap();
        let manifest = dir.join("manifest.bin");
        std::fs::write(
            &manifest,
            hex::decode(v["manifest"]["hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let plain = dir.join("plain.bin");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg("decrypt")
            .arg("--identity")
            .arg(&id)
            .args(["--bucket", v["bucket"].as_str().unwrap()])
            .args(["--key", v["key"].as_str().unwrap()])
            .args(["--meta", v["metadata"]["x-amz-meta-sg"].as_str().unwrap()])
            .arg("-o")
            .arg(&plain);
        for a in extra {
            match *a {
                "MANIFEST" => cmd.arg("--manifest").arg(&manifest),
                other => cmd.arg(other),
            };
        }
        let out = cmd.arg(&body).output().expect("python3");
        let pt = std::fs::read(&plain).unwrap_or_default();
        (out, pt)
    };
    let v = read_vector(&src.join("pass-mp-parts-1-3-7.json"));
    let etag = v["intermediate"]["etag"].as_str().unwrap();
    let want_sha = v["plaintext"]["sha256"].as_str().unwrap();

    let (out, pt) = run("pass-mp-parts-1-3-7", &["MANIFEST"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(sha256_hex(&pt), want_sha);
    assert!(err.contains(&format!("3 parts, ETag {etag}")), "{err}");

    let (out, pt) = run("pass-mp-parts-1-3-7", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("MissingManifest"), "{err}");
    assert!(pt.is_empty(), "a refused object leaves no output file");

    let (out, pt) = run("pass-mp-parts-1-3-7", &["--no-manifest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(sha256_hex(&pt), want_sha);
    assert!(err.contains("WITHOUT the manifest: parts 1, 3, 7"), "{err}");
    assert!(err.contains("cannot be detected"), "{err}");

    // The store dropped the last part: the manifest catches it, the walk cannot.
    let (out, _) = run("fail-mp-drop-last-part", &["MANIFEST"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused: Truncated"), "{err}");
    let (out, pt) = run("fail-mp-drop-last-part", &["--no-manifest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(pt.len(), 2000);
    assert!(err.contains("WITHOUT the manifest: parts 1, 2."), "{err}");

    // The header in the manifest, behind a 0x81 pointer: read with the
    // manifest, with its sealed attributes shown; without it, refused.
    let name = "pass-mp-header-in-manifest";
    let v = read_vector(&src.join(format!("{name}.json")));
    let (out, pt) = run(name, &["MANIFEST"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(sha256_hex(&pt), v["plaintext"]["sha256"].as_str().unwrap());
    let etag = v["intermediate"]["etag"].as_str().unwrap();
    assert!(err.contains(&format!("2 parts, ETag {etag}")), "{err}");
    for line in [
        "sealed attributes: 5",
        "Content-Type: video/mp4",
        "Cache-Control: no-store",
        "x-amz-meta-mtime: 1700000000",
    ] {
        assert!(err.contains(line), "{line:?} missing:\n{err}");
    }
    let (out, pt) = run(name, &["--no-manifest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused: MissingManifest"), "{err}");
    assert!(err.contains("cannot be read without it"), "{err}");
    assert!(pt.is_empty(), "a refused object leaves no output file");
    // An object written before attributes were sealed says so.
    let (out, _) = run("pass-mp-parts-1-3-7", &["MANIFEST"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no sealed attributes"), "{err}");
}

/// Group vectors (FORMAT.md 15), by name: every one gets its verdict from
/// the Python reader, and the pass vectors' objects were read with a
/// member's RSA key and the document alone.
#[test]
fn python_reader_checks_every_group_vector() {
    let dir = root().join("tests/vectors");
    let out = run_decryptor(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        if file.starts_with("group-") && file.ends_with(".json") {
            names.push((read_vector(&p), file));
        }
    }
    assert!(names.len() >= 12, "only {} group vectors", names.len());
    let mut objects = 0;
    for (v, file) in &names {
        let name = v["name"].as_str().unwrap();
        assert_eq!(format!("{name}.json"), *file);
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok     {name}: ")))
            .unwrap_or_else(|| panic!("{name}: no ok line:\n{stdout}"));
        if v["expect"] == "pass" {
            let n = v["objects"].as_array().unwrap().len();
            assert!(line.ends_with(&format!("{n} objects read")), "{line}");
            objects += n;
        } else {
            assert!(
                line.ends_with(&format!("refused with {}", v["error"].as_str().unwrap())),
                "{line}"
            );
        }
    }
    assert!(objects >= 2, "group objects read: {objects}");
}

/// The group harness is not vacuous: a pass vector with a tampered object,
/// a rollback vector whose reader forgot the version it saw, and a
/// wrong-signer vector whose reader pins the intruder are all reported.
#[test]
fn python_reader_notices_wrong_group_vectors() {
    let src = root().join("tests/vectors");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("keys.json"), tmp.path().join("keys.json")).unwrap();
    let edit = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = read_vector(&src.join(format!("{name}.json")));
        f(&mut v);
        write_vector(&tmp.path().join(format!("{name}.json")), &v);
    };
    edit("group-pass-3-members-2-epochs", &|v| {
        let o = &mut v["objects"][1];
        let mut body = hex::decode(o["body_hex"].as_str().unwrap()).unwrap();
        body[30] ^= 1;
        o["body_hex"] = hex::encode(&body).into();
        o["body_sha256"] = sha256_hex(&body).into();
    });
    edit("group-fail-rolled-back", &|v| v["min_version"] = 4.into());
    // Pins the key that signed it (so the document opens, and must not).
    let wrong_signer = read_vector(&src.join("group-fail-wrong-signer.json"));
    let doc = hex::decode(wrong_signer["document"]["hex"].as_str().unwrap()).unwrap();
    let signer_pk = &doc[doc.len() - 96..doc.len() - 64];
    let spki = [
        &hex::decode("302a300506032b6570032100").unwrap()[..],
        signer_pk,
    ]
    .concat();
    let fp = sealgate::sharing::Fingerprint::of_spki(&spki).to_string();
    edit("group-fail-wrong-signer", &|v| {
        v["pinned"] = serde_json::json!([fp.clone()])
    });

    let out = run_decryptor(tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "wrong vectors went unnoticed:\n{stdout}"
    );
    assert_eq!(result_line(&stdout), (0, 0, 3), "{stdout}");
    for (name, why) in [
        ("group-pass-3-members-2-epochs", "refused (SegmentAuth"),
        (
            "group-fail-rolled-back",
            "opened, but must fail with RolledBack",
        ),
        (
            "group-fail-wrong-signer",
            "opened, but must fail with UnknownSigner",
        ),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("WRONG  {name}: ")) && l.contains(why)),
            "{name}: expected a WRONG line with {why:?}:\n{stdout}"
        );
    }
}

/// `decrypt` mode on objects of a group: a member's RSA key and the group
/// document read objects of both epochs; a wrong pin, the removed member,
/// and a reader without the document are refused.
#[test]
fn python_decrypt_mode_reads_group_objects() {
    let src = root().join("tests/vectors");
    let tmp = tempfile::tempdir().unwrap();
    let keys = read_vector(&src.join("keys.json"));
    let pem_of = |name: &str| {
        let p = tmp.path().join(format!("{name}.pem"));
        let k = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap();
        std::fs::write(&p, k["private_key_pkcs8_pem"].as_str().unwrap()).unwrap();
        p
    };
    let v = read_vector(&src.join("group-pass-3-members-2-epochs.json"));
    let doc = tmp.path().join("doc.bin");
    std::fs::write(
        &doc,
        hex::decode(v["document"]["hex"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let pin = v["pinned"][0].as_str().unwrap().to_string();
    let script = root().join("tests/interop/sealgate_decrypt.py");
    let run = |o: &serde_json::Value, id: &Path, extra: &[&str]| -> (Output, Vec<u8>) {
        let body = tmp.path().join("body.bin");
        std::fs::write(&body, hex::decode(o["body_hex"].as_str().unwrap()).unwrap()).unwrap();
        let plain = tmp.path().join("plain.bin");
        let _ = std::fs::remove_file(&plain);
        let out = Command::new("python3")
            .arg(&script)
            .arg("decrypt")
            .arg("--identity")
            .arg(id)
            .args(["--bucket", o["bucket"].as_str().unwrap()])
            .args(["--key", o["key"].as_str().unwrap()])
            .args(["--meta", o["metadata"]["x-amz-meta-sg"].as_str().unwrap()])
            .args(extra)
            .arg("-o")
            .arg(&plain)
            .arg(&body)
            .output()
            .expect("python3");
        (out, std::fs::read(&plain).unwrap_or_default())
    };
    let doc_s = doc.to_str().unwrap();
    let with_doc = [
        "--group-doc",
        doc_s,
        "--group",
        "team",
        "--pin",
        pin.as_str(),
    ];
    let objects = v["objects"].as_array().unwrap();
    for member in ["rsa2048-b", "rsa3072-a"] {
        let id = pem_of(member);
        for o in objects {
            let (out, pt) = run(o, &id, &with_doc);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{member}: {err}");
            assert_eq!(sha256_hex(&pt), o["plaintext"]["sha256"].as_str().unwrap());
            assert!(
                err.contains("group team v5 verified, 2 epoch keys opened"),
                "{err}"
            );
        }
    }
    let bob = pem_of("rsa2048-b");
    let (out, _) = run(
        &objects[0],
        &bob,
        &["--group-doc", doc_s, "--pin", "0000-0000-0000-0000-0000"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("UnknownSigner"), "{err}");
    let (out, _) = run(&objects[0], &bob, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("NoMatchingRecipient"), "{err}");
    let dave = pem_of("rsa2048-c");
    let (out, pt) = run(&objects[0], &dave, &with_doc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("NotAMember"), "{err}");
    assert!(pt.is_empty());
}
