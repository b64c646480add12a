//! End to end with the aws cli (v2, Debian) through a real sealgate in front of
//! a real Garage: round trips, what the store holds, tampering by the store's
//! operator, and authentication.

use crate::common::*;

fn bucket(name: &str) -> String {
    format!("aws-{name}-{}", std::process::id())
}

#[test]
fn round_trip_and_store_holds_only_ciphertext() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("rt");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("rt");
    let marker = b"SEALGATE-PLAINTEXT-MARKER-7f3a9c";
    for (name, size) in [
        ("empty", 0usize),
        ("one", 1),
        ("seg", 65536),
        ("small", 100_000),
        ("multi", 20 * 1024 * 1024 + 123),
    ] {
        let mut data = random_bytes(size, size as u64 + 1);
        if size >= marker.len() {
            data[..marker.len()].copy_from_slice(marker);
        }
        let src = dir.join(name);
        std::fs::write(&src, &data).unwrap();
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    src.to_str().unwrap(),
                    &format!("s3://{b}/{name}"),
                ],
            ),
            "cp up",
        );
        let back = dir.join(format!("{name}.back"));
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    &format!("s3://{b}/{name}"),
                    back.to_str().unwrap(),
                ],
            ),
            "cp down",
        );
        assert_eq!(std::fs::read(&back).unwrap(), data, "{name} round trip");
        // HEAD: exact plaintext size; single-part ETag is the plaintext MD5.
        let head = ok(
            &aws2(
                &gw.endpoint,
                &["s3api", "head-object", "--bucket", &b, "--key", name],
            ),
            "head",
        );
        let v: serde_json::Value = serde_json::from_str(&head).unwrap();
        assert_eq!(
            v["ContentLength"].as_u64().unwrap(),
            size as u64,
            "{name} size"
        );
        let etag = v["ETag"].as_str().unwrap().trim_matches('"').to_owned();
        if size < 8 * 1024 * 1024 {
            assert_eq!(etag, md5_hex(&data), "{name} etag");
        } else {
            assert!(etag.ends_with("-3"), "multipart etag {etag}");
        }
        // The raw object at the store: ciphertext only.
        let raw = dir.join(format!("{name}.raw"));
        ok(
            &store_aws(
                store,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    &b,
                    "--key",
                    name,
                    raw.to_str().unwrap(),
                ],
            ),
            "raw get",
        );
        let raw = std::fs::read(&raw).unwrap();
        assert!(
            raw.len() > data.len(),
            "ciphertext is longer than plaintext"
        );
        assert!(
            !raw.windows(marker.len()).any(|w| w == marker),
            "{name}: plaintext marker found at the store"
        );
        if size >= 64 {
            assert!(
                !raw.windows(64)
                    .any(|w| w == &data[size / 2 - 32..size / 2 + 32]),
                "{name}: plaintext run at the store"
            );
        }
    }
    // Listing shows plaintext sizes and the same ETags as HEAD.
    let ls = ok(
        &aws2(&gw.endpoint, &["s3api", "list-objects-v2", "--bucket", &b]),
        "list",
    );
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let contents = v["Contents"].as_array().unwrap();
    assert_eq!(contents.len(), 5, "manifests stay hidden: {ls}");
    for o in contents {
        let k = o["Key"].as_str().unwrap();
        let head = ok(
            &aws2(
                &gw.endpoint,
                &["s3api", "head-object", "--bucket", &b, "--key", k],
            ),
            "head",
        );
        let h: serde_json::Value = serde_json::from_str(&head).unwrap();
        assert_eq!(o["Size"], h["ContentLength"], "{k}");
        assert_eq!(o["ETag"], h["ETag"], "{k}");
    }
    // The store's own metadata holds no plaintext MD5 of any object.
    let raw_head = ok(
        &store_aws(
            store,
            &["s3api", "head-object", "--bucket", &b, "--key", "small"],
        ),
        "raw head",
    );
    let data = {
        let mut d = random_bytes(100_000, 100_001);
        d[..marker.len()].copy_from_slice(marker);
        d
    };
    assert!(
        !raw_head.contains(&md5_hex(&data)),
        "plaintext md5 visible at the store"
    );
}

#[test]
fn ranged_reads() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("range");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("range");
    let size = 3 * 65536 + 1000;
    let data = random_bytes(size, 7);
    let src = dir.join("obj");
    std::fs::write(&src, &data).unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                src.to_str().unwrap(),
                &format!("s3://{b}/obj"),
            ],
        ),
        "cp",
    );
    let out = dir.join("part");
    for (range, a, e) in [
        ("bytes=0-0", 0, 0),
        ("bytes=65535-65536", 65535, 65536),
        ("bytes=100-70000", 100, 70000),
        (
            &format!("bytes={}-", size - 10) as &str,
            size - 10,
            size - 1,
        ),
        ("bytes=-5", size - 5, size - 1),
        ("bytes=0-99999999", 0, size - 1),
    ] {
        let o = ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    &b,
                    "--key",
                    "obj",
                    "--range",
                    range,
                    out.to_str().unwrap(),
                ],
            ),
            range,
        );
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got, data[a..=e], "{range}");
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        assert_eq!(
            v["ContentRange"].as_str().unwrap(),
            format!("bytes {a}-{e}/{size}")
        );
    }
    let bad = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "get-object",
            "--bucket",
            &b,
            "--key",
            "obj",
            "--range",
            &format!("bytes={}-", size + 5),
            out.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("InvalidRange"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// Reads an object through the gateway; Err(stderr) if the transfer failed.
fn get(gw: &Gw, b: &str, k: &str, dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let out = dir.join(format!("get-{k}"));
    let _ = std::fs::remove_file(&out);
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "get-object",
            "--bucket",
            b,
            "--key",
            k,
            out.to_str().unwrap(),
        ],
    );
    if o.status.success() {
        Ok(std::fs::read(&out).unwrap())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn raw_get(store: &Store, b: &str, k: &str, dir: &std::path::Path) -> (Vec<u8>, serde_json::Value) {
    let f = dir.join(format!("raw-{k}"));
    let o = ok(
        &store_aws(
            store,
            &[
                "s3api",
                "get-object",
                "--bucket",
                b,
                "--key",
                k,
                f.to_str().unwrap(),
            ],
        ),
        "raw get",
    );
    (
        std::fs::read(&f).unwrap(),
        serde_json::from_str(&o).unwrap(),
    )
}

/// Writes bytes and metadata at the store directly, as a malicious operator.
fn raw_put(
    store: &Store,
    b: &str,
    k: &str,
    data: &[u8],
    meta: &serde_json::Value,
    dir: &std::path::Path,
) {
    let f = dir.join(format!("rawput-{k}"));
    std::fs::write(&f, data).unwrap();
    let m = serde_json::to_string(meta).unwrap();
    ok(
        &store_aws(
            store,
            &[
                "s3api",
                "put-object",
                "--bucket",
                b,
                "--key",
                k,
                "--body",
                f.to_str().unwrap(),
                "--metadata",
                &m,
            ],
        ),
        "raw put",
    );
}

#[test]
fn tampering_at_the_store_is_refused() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("tamper");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("tamper");
    let a = random_bytes(200_000, 11);
    let bb = random_bytes(200_000, 12);
    for (k, d) in [("a", &a), ("b", &bb)] {
        let f = dir.join(k);
        std::fs::write(&f, d).unwrap();
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    f.to_str().unwrap(),
                    &format!("s3://{b}/{k}"),
                ],
            ),
            "cp",
        );
    }
    assert_eq!(get(&gw, &b, "a", &dir).unwrap(), a);
    let (ca, ma) = raw_get(store, &b, "a", &dir);
    let (cb, mb) = raw_get(store, &b, "b", &dir);
    let (ma, mb) = (ma["Metadata"].clone(), mb["Metadata"].clone());

    let mut cases: Vec<(&str, Vec<u8>, serde_json::Value)> = Vec::new();
    let mut flip = ca.clone();
    flip[1000] ^= 0x01;
    cases.push(("flip a byte", flip, ma.clone()));
    let mut flip_tag = ca.clone();
    let n = flip_tag.len();
    flip_tag[n - 40] ^= 0x80;
    cases.push(("flip a tag byte", flip_tag, ma.clone()));
    cases.push(("truncate", ca[..ca.len() - 100].to_vec(), ma.clone()));
    cases.push((
        "truncate at a segment boundary",
        ca[..24 + 65552].to_vec(),
        ma.clone(),
    ));
    let mut ext = ca.clone();
    ext.extend_from_slice(&[0u8; 16]);
    cases.push(("extend", ext, ma.clone()));
    cases.push(("body of b under a's metadata", cb.clone(), ma.clone()));
    cases.push(("metadata of b over a's body", ca.clone(), mb.clone()));
    let mut swapped = ca.clone();
    let seg = 65536 + 16;
    let (s0, s1) = swapped[24..24 + 2 * seg].split_at_mut(seg);
    s0.swap_with_slice(s1);
    cases.push(("two segments swapped", swapped, ma.clone()));
    for (i, (what, body, meta)) in cases.into_iter().enumerate() {
        let k = format!("victim{i}");
        // The object first exists honestly under this name...
        let f = dir.join(&k);
        std::fs::write(&f, &a).unwrap();
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3",
                    "cp",
                    "--only-show-errors",
                    f.to_str().unwrap(),
                    &format!("s3://{b}/{k}"),
                ],
            ),
            "cp",
        );
        // ...then the store rewrites it.
        raw_put(store, &b, &k, &body, &meta, &dir);
        match get(&gw, &b, &k, &dir) {
            Err(_) => {}
            Ok(got) => panic!(
                "{what}: the gateway served {} bytes of a tampered object (equal to a: {})",
                got.len(),
                got == a
            ),
        }
    }
    // The same object copied by the store under another name is refused too:
    // the header is bound to bucket and key.
    raw_put(store, &b, "moved", &ca, &ma, &dir);
    assert!(
        get(&gw, &b, "moved", &dir).is_err(),
        "object served under another key"
    );
    // Untouched objects still read.
    assert_eq!(get(&gw, &b, "b", &dir).unwrap(), bb);
}

#[test]
fn authentication_and_authorization() {
    let store = garage();
    let mut spec = GwSpec::simple(store);
    spec.extra_users = vec![(
        "limiteduser".into(),
        "limited-secret-0123456789".into(),
        vec!["allowed-only".into()],
    )];
    let gw = Gw::start(&spec);
    let b = bucket("auth");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let wrong = run(
        "/usr/bin/aws",
        &[
            "--endpoint-url",
            &gw.endpoint,
            "s3api",
            "list-objects-v2",
            "--bucket",
            &b,
        ],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let unknown = run(
        "/usr/bin/aws",
        &[
            "--endpoint-url",
            &gw.endpoint,
            "s3api",
            "list-objects-v2",
            "--bucket",
            &b,
        ],
        &[("AWS_ACCESS_KEY_ID", "nobody")],
    );
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("InvalidAccessKeyId"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let limited = run(
        "/usr/bin/aws",
        &[
            "--endpoint-url",
            &gw.endpoint,
            "s3api",
            "list-objects-v2",
            "--bucket",
            &b,
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "limiteduser"),
            ("AWS_SECRET_ACCESS_KEY", "limited-secret-0123456789"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&limited.stderr).contains("AccessDenied"),
        "{}",
        String::from_utf8_lossy(&limited.stderr)
    );
    // Anonymous: plain curl.
    let anon = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/{b}/", gw.endpoint),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anon.stdout), "403");
    // Presigned URL: works, then expires.
    let dir = tmpdir("auth");
    let f = dir.join("x");
    std::fs::write(&f, b"presigned content").unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                f.to_str().unwrap(),
                &format!("s3://{b}/x"),
            ],
        ),
        "cp",
    );
    let url = ok(
        &aws2(
            &gw.endpoint,
            &["s3", "presign", &format!("s3://{b}/x"), "--expires-in", "2"],
        ),
        "presign",
    );
    let got = std::process::Command::new("curl")
        .args(["-s", "-f", url.trim()])
        .output()
        .unwrap();
    assert_eq!(got.stdout, b"presigned content");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let expired = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url.trim()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&expired.stdout), "403");
    // Errors carry a request id, in the header and in the XML.
    let missing = std::process::Command::new("curl")
        .args(["-s", "-i", &format!("{}/{b}/nope", gw.endpoint)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&missing.stdout).to_lowercase();
    assert!(text.contains("x-amz-request-id"), "{text}");
    assert!(text.contains("<requestid>"), "{text}");
}

#[test]
fn missing_objects_and_buckets_are_s3_errors() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("errs");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "get-object",
            "--bucket",
            &b,
            "--key",
            "nope",
            "/dev/null",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NoSuchKey"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "no-such-bucket-here",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NoSuchBucket"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Metadata and standard headers round-trip; sealgate's own key is hidden
    // and cannot be set.
    let dir = tmpdir("errs");
    let f = dir.join("m");
    std::fs::write(&f, b"meta").unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "put-object",
                "--bucket",
                &b,
                "--key",
                "m",
                "--body",
                f.to_str().unwrap(),
                "--metadata",
                "color=blue,Owner=Me",
                "--content-type",
                "text/x-test",
                "--cache-control",
                "no-cache",
                "--content-disposition",
                "attachment",
                "--content-encoding",
                "identity",
            ],
        ),
        "put with metadata",
    );
    let h: serde_json::Value = serde_json::from_str(&ok(
        &aws2(
            &gw.endpoint,
            &["s3api", "head-object", "--bucket", &b, "--key", "m"],
        ),
        "head",
    ))
    .unwrap();
    assert_eq!(h["Metadata"]["color"], "blue");
    assert_eq!(h["Metadata"]["owner"], "Me");
    assert!(h["Metadata"].get("sg").is_none(), "{h}");
    assert_eq!(h["ContentType"], "text/x-test");
    assert_eq!(h["CacheControl"], "no-cache");
    assert_eq!(h["ContentDisposition"], "attachment");
    assert_eq!(h["ContentEncoding"], "identity");
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "put-object",
            "--bucket",
            &b,
            "--key",
            "evil",
            "--body",
            f.to_str().unwrap(),
            "--metadata",
            "sg=AAAA",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("InvalidArgument"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Content-MD5 mismatch: BadDigest, nothing stored.
    let o = aws2(
        &gw.endpoint,
        &[
            "s3api",
            "put-object",
            "--bucket",
            &b,
            "--key",
            "bad",
            "--body",
            f.to_str().unwrap(),
            "--content-md5",
            "AAAAAAAAAAAAAAAAAAAAAA==",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("BadDigest"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = store_aws(
        store,
        &["s3api", "head-object", "--bucket", &b, "--key", "bad"],
    );
    assert!(
        !o.status.success(),
        "a failed upload left an object at the store"
    );
}

#[test]
fn copy_within_and_across_buckets() {
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let b = bucket("copy");
    let b2 = bucket("copy2");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b2}")]),
        "mb",
    );
    let dir = tmpdir("copy");
    let data = random_bytes(300_000, 5);
    let f = dir.join("src");
    std::fs::write(&f, &data).unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "put-object",
                "--bucket",
                &b,
                "--key",
                "src",
                "--body",
                f.to_str().unwrap(),
                "--metadata",
                "k=v",
            ],
        ),
        "put",
    );
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "copy-object",
                "--bucket",
                &b2,
                "--key",
                "dst",
                "--copy-source",
                &format!("{b}/src"),
            ],
        ),
        "copy",
    );
    assert_eq!(get(&gw, &b2, "dst", &dir).unwrap(), data);
    let h: serde_json::Value = serde_json::from_str(&ok(
        &aws2(
            &gw.endpoint,
            &["s3api", "head-object", "--bucket", &b2, "--key", "dst"],
        ),
        "head",
    ))
    .unwrap();
    assert_eq!(h["Metadata"]["k"], "v");
    assert_eq!(
        h["ETag"].as_str().unwrap().trim_matches('"'),
        md5_hex(&data)
    );
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "copy-object",
                "--bucket",
                &b,
                "--key",
                "src",
                "--copy-source",
                &format!("{b}/src"),
                "--metadata-directive",
                "REPLACE",
                "--metadata",
                "k=replaced",
                "--content-type",
                "x/y",
            ],
        ),
        "copy replace in place",
    );
    let h: serde_json::Value = serde_json::from_str(&ok(
        &aws2(
            &gw.endpoint,
            &["s3api", "head-object", "--bucket", &b, "--key", "src"],
        ),
        "head",
    ))
    .unwrap();
    assert_eq!(h["Metadata"]["k"], "replaced");
    assert_eq!(h["ContentType"], "x/y");
    assert_eq!(get(&gw, &b, "src", &dir).unwrap(), data);
    // A multipart object copies too (manifest rebound to the new name).
    let big = random_bytes(9 * 1024 * 1024, 9);
    let fb = dir.join("big");
    std::fs::write(&fb, &big).unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                fb.to_str().unwrap(),
                &format!("s3://{b}/big"),
            ],
        ),
        "cp big",
    );
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                &format!("s3://{b}/big"),
                &format!("s3://{b2}/big-copy"),
            ],
        ),
        "s3 cp copy",
    );
    assert_eq!(get(&gw, &b2, "big-copy", &dir).unwrap(), big);
    // Deleting everything, then the buckets.
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "rm",
                "--recursive",
                "--only-show-errors",
                &format!("s3://{b}"),
            ],
        ),
        "rm",
    );
    ok(
        &aws2(&gw.endpoint, &["s3", "rb", &format!("s3://{b}")]),
        "rb",
    );
    ok(
        &aws2(
            &gw.endpoint,
            &["s3", "rb", "--force", &format!("s3://{b2}")],
        ),
        "rb force",
    );
}
