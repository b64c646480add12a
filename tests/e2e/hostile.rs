//! Hostile input, from both sides: requests that real clients would never
//! send (malformed XML, skewed clocks, lying digests and payload hashes,
//! reserved metadata, bad bucket names and ranges) get the right S3 error and
//! store nothing; objects the store rewrote with garbage, truncated or
//! oversized envelopes get a clean S3 error, never a panic and never wrong
//! bytes; a store that lies about the length of its answers or the end of
//! its listings gets an error in bounded time and memory; and a gateway
//! logging at `trace` never writes a secret, a data key or plaintext to its
//! log.

use crate::common::*;
use crate::raw::{self, Req, Resp, Signer};
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

fn bucket(name: &str) -> String {
    format!("hostile-{name}-{}", std::process::id())
}

/// Whether the store holds `key` (asked with the store's own credentials).
fn at_store(store: &Store, b: &str, key: &str) -> bool {
    let r = raw::send(
        store.port,
        &Signer::new(&store.access_key, &store.secret_key),
        &Req::new("HEAD", &format!("/{b}/{key}")),
    );
    assert!(
        [200, 404].contains(&r.status),
        "HEAD at the store: {}",
        r.status
    );
    r.status == 200
}

fn expect(r: &Resp, status: u16, code: &str, what: &str) {
    assert_eq!(
        (r.status, r.code().as_str()),
        (status, code),
        "{what}: {}",
        r.text()
    );
}

fn md5_b64(d: &[u8]) -> String {
    use md5::Digest;
    STANDARD.encode(md5::Md5::digest(d))
}

fn crc32_b64(d: &[u8]) -> String {
    STANDARD.encode(crc32fast::hash(d).to_be_bytes())
}

fn alive(gw: &mut Gw) {
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway exited; log:\n{}",
        gw.log_text()
    );
    let log = gw.log_text();
    assert!(!log.contains("panicked"), "the gateway panicked:\n{log}");
}

fn put(port: u16, s: &Signer, b: &str, k: &str, body: &[u8]) -> Resp {
    raw::send(
        port,
        s,
        &Req::new("PUT", &format!("/{b}/{k}")).body(body.to_vec()),
    )
}

fn get(port: u16, s: &Signer, b: &str, k: &str) -> Resp {
    raw::send(port, s, &Req::new("GET", &format!("/{b}/{k}")))
}

#[test]
fn hostile_requests_get_the_right_error_and_store_nothing() {
    let store = garage();
    let mut gw = Gw::start(&GwSpec::simple(store));
    let port = gw.port;
    let s = Signer::new(AK, SK);
    let b = bucket("front");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let body = random_bytes(1000, 1)
        .into_iter()
        .chain(*b"front-marker")
        .collect::<Vec<u8>>();

    // The signer itself is right: a plain PUT and GET work.
    let r = put(port, &s, &b, "good", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(port, &s, &b, "good");
    assert_eq!((r.status, &r.body), (200, &body));

    // PutObject variants that must store nothing.
    let too_big = "x".repeat(2100);
    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "reserved x-amz-meta-sg",
            Req::new("PUT", "").header("x-amz-meta-sg", "AAAA"),
            400,
            "InvalidArgument",
        ),
        (
            "reserved x-amz-meta-SG-x",
            Req::new("PUT", "").header("x-amz-meta-SG-x", "1"),
            400,
            "InvalidArgument",
        ),
        (
            "metadata over 2 KB",
            Req::new("PUT", "").header("x-amz-meta-big", &too_big),
            400,
            "MetadataTooLarge",
        ),
        (
            "wrong Content-MD5",
            Req::new("PUT", "").header("content-md5", &md5_b64(b"other")),
            400,
            "BadDigest",
        ),
        (
            "Content-MD5 not base64",
            Req::new("PUT", "").header("content-md5", "%%%not-base64"),
            400,
            "InvalidDigest",
        ),
        (
            "wrong x-amz-checksum-crc32",
            Req::new("PUT", "").header("x-amz-checksum-crc32", &crc32_b64(b"other")),
            400,
            "BadDigest",
        ),
        (
            "wrong x-amz-checksum-sha256",
            Req::new("PUT", "").header("x-amz-checksum-sha256", &STANDARD.encode([7u8; 32])),
            400,
            "BadDigest",
        ),
        (
            "wrong x-amz-content-sha256",
            Req {
                payload_hash: Some(raw::sha256_hex(b"not the body")),
                ..Req::new("PUT", "")
            },
            400,
            "XAmzContentSHA256Mismatch",
        ),
        (
            "clock 20 minutes ahead",
            Req {
                time: Some(SystemTime::now() + Duration::from_secs(20 * 60)),
                ..Req::new("PUT", "")
            },
            403,
            "RequestTimeTooSkewed",
        ),
        (
            "clock 20 minutes behind",
            Req {
                time: Some(SystemTime::now() - Duration::from_secs(20 * 60)),
                ..Req::new("PUT", "")
            },
            403,
            "RequestTimeTooSkewed",
        ),
    ];
    for (i, (what, mut req, status, code)) in cases.into_iter().enumerate() {
        let key = format!("bad-put-{i}");
        req.path = format!("/{b}/{key}");
        req.body = body.clone();
        let r = raw::send(port, &s, &req);
        expect(&r, status, code, what);
        assert!(!at_store(store, &b, &key), "{what}: something was stored");
    }
    // Right digests are accepted (the refusals above are about the values).
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/digests"))
            .header("content-md5", &md5_b64(&body))
            .header("x-amz-checksum-crc32", &crc32_b64(&body))
            .body(body.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-amz-checksum-crc32"),
        Some(crc32_b64(&body).as_str())
    );
    // User metadata just under the limit still fits (the envelope moves to
    // the body) and reads back.
    let near = "y".repeat(1900);
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/near-limit"))
            .header("x-amz-meta-big", &near)
            .body(body.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(port, &s, &b, "near-limit");
    assert_eq!((r.status, &r.body), (200, &body));
    assert_eq!(r.header("x-amz-meta-big"), Some(near.as_str()));

    // A wrong secret, an unknown key; keys reserved by sealgate.
    let r = put(
        port,
        &Signer::new(AK, "not-the-secret"),
        &b,
        "badsig",
        &body,
    );
    expect(&r, 403, "SignatureDoesNotMatch", "wrong secret");
    let r = put(
        port,
        &Signer::new("nobody-knows-me", SK),
        &b,
        "badak",
        &body,
    );
    expect(&r, 403, "InvalidAccessKeyId", "unknown access key");
    let r = put(port, &s, &b, ".sealgate/mp/00", &body);
    expect(&r, 400, "InvalidArgument", "reserved key prefix");
    for k in ["badsig", "badak", ".sealgate/mp/00"] {
        assert!(!at_store(store, &b, k), "{k} stored");
    }

    // Presigned URLs: dated a day ahead, or expired.
    let url = raw::presign(
        port,
        &s,
        "PUT",
        &format!("/{b}/presigned-future"),
        &[],
        SystemTime::now() + Duration::from_secs(86400),
        3600,
    );
    let r = raw::send_raw(port, format!("PUT {url} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabcd").as_bytes());
    expect(
        &r,
        403,
        "RequestTimeTooSkewed",
        "presigned URL from the future",
    );
    let url = raw::presign(
        port,
        &s,
        "PUT",
        &format!("/{b}/presigned-old"),
        &[],
        SystemTime::now() - Duration::from_secs(7200),
        60,
    );
    let r = raw::send_raw(port, format!("PUT {url} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabcd").as_bytes());
    expect(&r, 403, "AccessDenied", "expired presigned URL");
    assert!(!at_store(store, &b, "presigned-future") && !at_store(store, &b, "presigned-old"));

    // Invalid bucket names, on CreateBucket and on object requests.
    for name in [
        "ab",
        "UPPERCASE",
        "under_score",
        "-leading",
        "trailing-",
        "a..b",
        "192.168.1.1",
        &"l".repeat(64),
    ] {
        let r = raw::send(port, &s, &Req::new("PUT", &format!("/{name}")));
        expect(&r, 400, "InvalidBucketName", name);
        let r = get(port, &s, name, "k");
        expect(&r, 400, "InvalidBucketName", name);
    }

    // DeleteObjects with malformed XML deletes nothing.
    for xml in [
        &b"<Delete><Object><Key>good</Key></Object>"[..],
        b"not xml at all",
        b"<Delete><Object><Key>good</Key></Object></Delete><Delete>",
        b"",
    ] {
        let r = raw::send(
            port,
            &s,
            &Req::new("POST", &format!("/{b}"))
                .query("delete", "")
                .header("content-md5", &md5_b64(xml))
                .body(xml.to_vec()),
        );
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(xml),
            r.text()
        );
        assert!(
            ["MalformedXML", "MissingRequestBodyError"].contains(&r.code().as_str()),
            "{}",
            r.text()
        );
    }
    assert!(
        at_store(store, &b, "good"),
        "malformed DeleteObjects deleted an object"
    );

    // Multipart: reserved metadata refused at create; bad parts store nothing;
    // a malformed or lying completion stores nothing.
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/mp-reserved"))
            .query("uploads", "")
            .header("x-amz-meta-sg", "x"),
    );
    expect(
        &r,
        400,
        "InvalidArgument",
        "CreateMultipartUpload with x-amz-meta-sg",
    );
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/mp")).query("uploads", ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let upload = raw::xml_text(&r.text(), "UploadId").unwrap();
    let part = random_bytes(100_000, 3);
    let part_req = |r: Req| -> Req {
        Req {
            path: format!("/{b}/mp"),
            body: part.clone(),
            ..r
        }
        .query("partNumber", "1")
        .query("uploadId", &upload)
    };
    for (what, req, code) in [
        (
            "part with wrong Content-MD5",
            part_req(Req::new("PUT", "").header("content-md5", &md5_b64(b"x"))),
            "BadDigest",
        ),
        (
            "part with wrong crc32",
            part_req(Req::new("PUT", "").header("x-amz-checksum-crc32", &crc32_b64(b"x"))),
            "BadDigest",
        ),
        (
            "part with wrong payload hash",
            part_req(Req {
                payload_hash: Some(raw::sha256_hex(b"x")),
                ..Req::new("PUT", "")
            }),
            "XAmzContentSHA256Mismatch",
        ),
    ] {
        let r = raw::send(port, &s, &req);
        expect(&r, 400, code, what);
    }
    let r = raw::send(
        port,
        &s,
        &Req::new("GET", &format!("/{b}/mp")).query("uploadId", &upload),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("<Part>"),
        "a refused part was stored: {}",
        r.text()
    );
    for xml in [
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
        "<<<>>>",
        "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
    ] {
        let r = raw::send(port, &s, &Req::new("POST", &format!("/{b}/mp")).query("uploadId", &upload).body(xml));
        expect(&r, 400, "MalformedXML", xml);
    }
    let lying = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"0123456789abcdef0123456789abcdef-AAAA\"</ETag></Part></CompleteMultipartUpload>";
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/mp"))
            .query("uploadId", &upload)
            .body(lying),
    );
    assert!(
        r.status == 400 && ["InvalidPart", "InvalidArgument"].contains(&r.code().as_str()),
        "{}",
        r.text()
    );
    let forged = upload.chars().rev().collect::<String>();
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/mp"))
            .query("uploadId", &forged)
            .body(lying),
    );
    assert!(
        [400, 404].contains(&r.status) && !r.code().is_empty(),
        "forged upload id: {}",
        r.text()
    );
    assert!(
        !at_store(store, &b, "mp"),
        "a failed completion stored an object"
    );
    let r = raw::send(
        port,
        &s,
        &Req::new("DELETE", &format!("/{b}/mp")).query("uploadId", &upload),
    );
    assert_eq!(r.status, 204, "{}", r.text());

    // CopyObject may not set sealgate's metadata either.
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/copy-evil"))
            .header("x-amz-copy-source", &format!("/{b}/good"))
            .header("x-amz-metadata-directive", "REPLACE")
            .header("x-amz-meta-sg", "AAAA"),
    );
    expect(
        &r,
        400,
        "InvalidArgument",
        "CopyObject REPLACE with x-amz-meta-sg",
    );
    assert!(!at_store(store, &b, "copy-evil"));

    // Ranges: unsatisfiable ones are 416 InvalidRange (GET and HEAD).
    let n = body.len();
    for range in [
        format!("bytes={n}-"),
        format!("bytes={}-{}", n + 10, n + 20),
        "bytes=-0".into(),
    ] {
        let r = raw::send(
            port,
            &s,
            &Req::new("GET", &format!("/{b}/good")).header("range", &range),
        );
        expect(&r, 416, "InvalidRange", &range);
        let r = raw::send(
            port,
            &s,
            &Req::new("HEAD", &format!("/{b}/good")).header("range", &range),
        );
        assert_eq!(r.status, 416, "HEAD {range}");
    }
    let r = put(port, &s, &b, "empty", b"");
    assert_eq!(r.status, 200);
    let r = raw::send(
        port,
        &s,
        &Req::new("GET", &format!("/{b}/empty")).header("range", "bytes=0-0"),
    );
    expect(&r, 416, "InvalidRange", "bytes=0-0 of an empty object");
    // Syntactically broken ranges are refused or ignored, never answered with
    // wrong bytes.
    for range in [
        "bytes=abc",
        "bytes=5-2",
        "items=0-1",
        "bytes=0-1,5-6",
        "bytes=--1",
    ] {
        let r = raw::send(
            port,
            &s,
            &Req::new("GET", &format!("/{b}/good")).header("range", range),
        );
        match r.status {
            200 => assert_eq!(r.body, body, "{range}"),
            400 | 416 => assert!(!r.code().is_empty(), "{range}: {}", r.text()),
            _ => panic!("{range}: {} {}", r.status, r.text()),
        }
    }

    // Abuse of the HTTP layer itself: huge headers are refused (or the
    // connection closed), never served.
    for size in [200_000, 2_000_000] {
        let huge = format!(
            "GET /{b}/good HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-junk: {}\r\n\r\n",
            "j".repeat(size)
        );
        let mut c = raw::connect(port);
        use std::io::{Read, Write};
        let _ = c.write_all(huge.as_bytes());
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        if !answer.is_empty() {
            let r = raw::parse_response(&answer);
            assert!(
                (400..500).contains(&r.status),
                "{size}-byte header: {}",
                r.status
            );
        }
    }
    let r = raw::send_raw(port, b"GARBAGE\r\n\r\n");
    assert!(r.status >= 400, "garbage request line: {}", r.status);

    // Still serving, and nothing of the above got in.
    let r = get(port, &s, &b, "good");
    assert_eq!((r.status, &r.body), (200, &body));
    alive(&mut gw);
}

/// The stored `sg` value of an object, and its raw body, read at the store.
fn raw_object(store: &Store, b: &str, k: &str, dir: &std::path::Path) -> (String, Vec<u8>) {
    let f = dir.join(format!("raw-{}", k.replace('/', "_")));
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
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    (
        v["Metadata"]["sg"].as_str().unwrap().to_owned(),
        std::fs::read(&f).unwrap(),
    )
}

/// Writes an object straight to the store, as its operator could.
fn raw_put(
    store: &Store,
    b: &str,
    k: &str,
    body: &[u8],
    meta: Option<&str>,
    dir: &std::path::Path,
) -> bool {
    let f = dir.join(format!("rawput-{}", k.replace('/', "_")));
    std::fs::write(&f, body).unwrap();
    let mut args = vec![
        "s3api",
        "put-object",
        "--bucket",
        b,
        "--key",
        k,
        "--body",
        f.to_str().unwrap(),
    ];
    let m;
    if let Some(v) = meta {
        m = serde_json::json!({ "sg": v }).to_string();
        args.extend(["--metadata", &m]);
    }
    store_aws(store, &args).status.success()
}

#[test]
fn hostile_objects_from_the_store_are_clean_errors() {
    let store = garage();
    let mut gw = Gw::start(&GwSpec::simple(store));
    let port = gw.port;
    let s = Signer::new(AK, SK);
    let b = bucket("store");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let dir = tmpdir("hostile-store");
    let data = random_bytes(200_000, 9);
    assert_eq!(put(port, &s, &b, "honest", &data).status, 200);
    assert_eq!(put(port, &s, &b, "small", b"tiny").status, 200);
    // A multipart object, for its manifest.
    let f = dir.join("big");
    let big = random_bytes(9 * 1024 * 1024, 10);
    std::fs::write(&f, &big).unwrap();
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                f.to_str().unwrap(),
                &format!("s3://{b}/multi"),
            ],
        ),
        "cp multipart",
    );
    let (sg, ct) = raw_object(store, &b, "honest", &dir);
    let (msg, mct) = raw_object(store, &b, "multi", &dir);
    let raw_sg = URL_SAFE_NO_PAD.decode(&sg).unwrap();
    let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let with_byte = |i: usize, x: u8| {
        let mut v = raw_sg.clone();
        v[i] = x;
        enc(&v)
    };
    // Overflow pointer: version, flag 2 (overflow), u32 length, 32-byte MAC.
    let overflow = |len: u32| {
        let mut v = vec![1u8, 2];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0x5a; 32]);
        enc(&v)
    };
    let mut longer = ct.clone();
    longer.extend_from_slice(&[0u8; 100]);
    let mut cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("no sg metadata", ct.clone(), None),
        ("empty sg", ct.clone(), Some(String::new())),
        ("sg not base64", ct.clone(), Some("!!!not*base64!!!".into())),
        ("sg one byte", ct.clone(), Some(enc(&[1]))),
        (
            "sg random bytes",
            ct.clone(),
            Some(enc(&random_bytes(300, 4))),
        ),
        ("sg version 2", ct.clone(), Some(with_byte(0, 2))),
        ("sg version 0", ct.clone(), Some(with_byte(0, 0))),
        ("sg version 255", ct.clone(), Some(with_byte(0, 255))),
        ("sg unknown flags", ct.clone(), Some(with_byte(1, 0x80))),
        ("sg other segment size", ct.clone(), Some(with_byte(2, 20))),
        (
            "sg truncated to half",
            ct.clone(),
            Some(sg[..sg.len() / 2].to_owned()),
        ),
        (
            "sg last char cut",
            ct.clone(),
            Some(sg[..sg.len() - 1].to_owned()),
        ),
        (
            "sg commitment flipped",
            ct.clone(),
            Some(with_byte(3, raw_sg[3] ^ 1)),
        ),
        (
            "sg length field flipped",
            ct.clone(),
            Some(with_byte(3 + 32 + 16 + 7, raw_sg[3 + 32 + 16 + 7] ^ 1)),
        ),
        (
            "sg with trailing bytes",
            ct.clone(),
            Some(enc(&[raw_sg.clone(), vec![0; 40]].concat())),
        ),
        (
            "sg huge (3 KB)",
            ct.clone(),
            Some(enc(&random_bytes(2300, 5))),
        ),
        ("sg of the multipart object", ct.clone(), Some(msg.clone())),
        ("body longer than the header says", longer, Some(sg.clone())),
        (
            "body shorter than the header says",
            ct[..ct.len() - 1].to_vec(),
            Some(sg.clone()),
        ),
        ("empty body", Vec::new(), Some(sg.clone())),
        (
            "overflow pointer past the body",
            ct.clone(),
            Some(overflow(4000)),
        ),
        (
            "overflow pointer over garbage",
            ct.clone(),
            Some(overflow(200)),
        ),
        (
            "overflow pointer of length 0",
            ct.clone(),
            Some(overflow(0)),
        ),
        (
            "overflow pointer of length 2^32-1",
            ct.clone(),
            Some(overflow(u32::MAX)),
        ),
        (
            "multipart body under the single-part header",
            mct[..ct.len().min(mct.len())].to_vec(),
            Some(sg.clone()),
        ),
    ];
    // A multipart header whose manifest is garbage, huge, or missing.
    cases.push((
        "multipart header, body of another object",
        ct.clone(),
        Some(msg.clone()),
    ));
    let mut skipped = Vec::new();
    for (i, (what, body, meta)) in cases.iter().enumerate() {
        let k = format!("bad{i}");
        if !raw_put(store, &b, &k, body, meta.as_deref(), &dir) {
            // The store itself refused it (e.g. metadata over its limit).
            skipped.push(*what);
            continue;
        }
        let t = Instant::now();
        let g = get(port, &s, &b, &k);
        assert!(
            g.status >= 400 && !g.code().is_empty(),
            "{what}: GET answered {} with {} bytes{}",
            g.status,
            g.body.len(),
            if g.body == data {
                " (the honest object's bytes!)"
            } else {
                ""
            }
        );
        assert_ne!(g.code(), "NoSuchKey", "{what}");
        eprintln!("from the store: {what}: GET {} {}", g.status, g.code());
        if what.starts_with("sg version") {
            let v = &what["sg version ".len()..];
            assert!(
                g.text().contains(&format!("format version {v}")),
                "{what}: unclear error {}",
                g.text()
            );
        }
        let h = raw::send(port, &s, &Req::new("HEAD", &format!("/{b}/{k}")));
        assert!(h.status >= 400, "{what}: HEAD answered {}", h.status);
        let rg = raw::send(
            port,
            &s,
            &Req::new("GET", &format!("/{b}/{k}")).header("range", "bytes=70000-70100"),
        );
        assert!(
            rg.status >= 400,
            "{what}: ranged GET answered {}",
            rg.status
        );
        let cp = raw::send(
            port,
            &s,
            &Req::new("PUT", &format!("/{b}/copy-of-{k}"))
                .header("x-amz-copy-source", &format!("/{b}/{k}")),
        );
        assert!(
            cp.status >= 400,
            "{what}: CopyObject of it answered {}: {}",
            cp.status,
            cp.text()
        );
        assert!(
            !at_store(store, &b, &format!("copy-of-{k}")),
            "{what}: copied"
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{what}: answers took {:?}",
            t.elapsed()
        );
    }
    // A manifest the store replaced with garbage or with a huge blob.
    let manifests: Vec<String> = {
        let o = ok(
            &store_aws(
                store,
                &[
                    "s3api",
                    "list-objects-v2",
                    "--bucket",
                    &b,
                    "--prefix",
                    ".sealgate/",
                ],
            ),
            "list manifests",
        );
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        v["Contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Key"].as_str().unwrap().to_owned())
            .filter(|k| !k.starts_with(".sealgate/ix/"))
            .collect()
    };
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let m = &manifests[0];
    let (_, mraw) = {
        let f = dir.join("manifest");
        let o = ok(
            &store_aws(
                store,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    &b,
                    "--key",
                    m,
                    f.to_str().unwrap(),
                ],
            ),
            "manifest",
        );
        (o, std::fs::read(&f).unwrap())
    };
    let mut manifest_cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage manifest", random_bytes(500, 6)),
        ("empty manifest", Vec::new()),
        ("truncated manifest", mraw[..mraw.len() / 2].to_vec()),
        ("huge manifest", random_bytes(600 * 1024, 7)),
    ];
    let mut flipped = mraw.clone();
    let n = flipped.len();
    flipped[n - 1] ^= 1;
    manifest_cases.push(("manifest with a flipped byte", flipped));
    for (what, mbody) in &manifest_cases {
        assert!(raw_put(store, &b, m, mbody, None, &dir), "{what}");
        // A fresh gateway (no cached view) reads it.
        gw = gw.restart();
        let g = get(gw.port, &s, &b, "multi");
        assert!(
            g.status >= 400 && !g.code().is_empty(),
            "{what}: GET answered {}",
            g.status
        );
        let rg = raw::send(
            gw.port,
            &s,
            &Req::new("GET", &format!("/{b}/multi")).header("range", "bytes=5-10"),
        );
        assert!(
            rg.status >= 400,
            "{what}: ranged GET answered {}",
            rg.status
        );
    }
    assert!(raw_put(store, &b, m, &mraw, None, &dir));
    let port = gw.port;
    // The honest manifest back: the object reads again.
    let g = get(port, &s, &b, "multi");
    assert_eq!((g.status, g.body.len()), (200, big.len()));
    assert!(
        g.body == big,
        "multipart object differs after its manifest was restored"
    );
    // Listing a bucket full of garbage still works and shows the good objects.
    let l = raw::send(
        port,
        &s,
        &Req::new("GET", &format!("/{b}")).query("list-type", "2"),
    );
    assert_eq!(l.status, 200, "{}", l.text());
    for k in ["honest", "small", "multi"] {
        assert!(
            l.text().contains(&format!("<Key>{k}</Key>")),
            "{k} missing from the listing"
        );
    }
    // Untouched objects still read, and the gateway is alive and unharmed.
    let g = get(port, &s, &b, "honest");
    assert_eq!((g.status, &g.body), (200, &data));
    alive(&mut gw);
    eprintln!(
        "store-side hostile cases: {} objects, {} manifests; refused by the store itself: {skipped:?}",
        cases.len() - skipped.len(),
        manifest_cases.len()
    );
}

/// Slowloris: connections that never finish their request headers must not
/// hold the gateway's connection slots for ever.
#[test]
fn connections_that_never_send_their_headers_are_closed() {
    use std::io::{Read, Write};
    let store = garage();
    let gw = Gw::start(&GwSpec::simple(store));
    let text = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        text.replacen("[server]\n", "[server]\nmax_connections = 4\n", 1),
    )
    .unwrap();
    let gw = gw.restart();
    let port = gw.port;
    let s = Signer::new(AK, SK);
    let b = bucket("loris");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let t = Instant::now();
    let mut slow: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut c = raw::connect(port);
            c.write_all(format!("GET /{b}/x HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ").as_bytes())
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Every slot is taken: a real client is turned away for now.
    let mut c = raw::connect(port);
    let _ = c.write_all(raw::head(port, &s, &Req::new("GET", &format!("/{b}"))).as_bytes());
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "a connection over max_connections was served"
    );
    // The gateway gives up on the slow ones within its header timeout...
    for c in &mut slow {
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    let waited = t.elapsed();
    eprintln!("slow header connections closed after {waited:?}");
    assert!(
        waited < Duration::from_secs(45),
        "slow connections held for {waited:?}"
    );
    // ...and serves again.
    let r = raw::send(
        port,
        &s,
        &Req::new("GET", &format!("/{b}")).query("list-type", "2"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

/// A store that lies: listings whose markers never move or that never end,
/// answers far longer than asked for, endless error documents. Each costs
/// the client an error (502 BadGateway) in seconds, the gateway reads a
/// bounded number of bytes and requests, its memory stays flat, and it
/// serves honestly again as soon as the store does.
#[test]
fn a_lying_store_gets_errors_in_bounded_time_and_memory() {
    use crate::lying_store::{Lie, LyingStore, ENDLESS};
    let store = garage();
    let proxy = LyingStore::start(store.port);
    let via = Store {
        endpoint: format!("http://127.0.0.1:{}", proxy.port),
        access_key: store.access_key.clone(),
        secret_key: store.secret_key.clone(),
        port: proxy.port,
        kind: store.kind.clone(),
    };
    let mut gw = Gw::start(&GwSpec::simple(&via));
    let port = gw.port;
    let s = Signer::new(AK, SK);
    let b = bucket("lies");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    let data = random_bytes(100_000, 31);
    assert_eq!(put(port, &s, &b, "honest", &data).status, 200);
    let r = raw::send(
        port,
        &s,
        &Req::new("POST", &format!("/{b}/mp")).query("uploads", ""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let upload = raw::xml_text(&r.text(), "UploadId").unwrap();
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/mp"))
            .query("partNumber", "1")
            .query("uploadId", &upload)
            .body(&b"part one"[..]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let list = || Req::new("GET", &format!("/{b}")).query("list-type", "2");
    let parts = || Req::new("GET", &format!("/{b}/mp")).query("uploadId", &upload);
    let uploads = || {
        Req::new("GET", &format!("/{b}"))
            .query("uploads", "")
            .query("max-uploads", "5")
    };
    let rss_before = peak_rss(gw.child.id());

    // (lie, request, most store requests it may cost, most bytes of lies the
    // gateway may take: the answer's bound plus what sockets buffer).
    const SOCKETS: u64 = 16 << 20;
    let refused = [
        (
            Lie::ListTokenRepeated,
            list().query("continuation-token", "abc"),
            1,
            SOCKETS,
        ),
        (Lie::ListEndless, list(), 1, (16 << 20) + SOCKETS),
        (Lie::ListErrorEndless, list(), 1, (1 << 20) + SOCKETS),
        (Lie::PartsMarkerRepeated, parts(), 2, SOCKETS),
        (Lie::PartsEndless, parts(), 10, SOCKETS),
        (Lie::UploadsRepeated, uploads(), 2, SOCKETS),
        (
            Lie::TailWholeObject,
            Req::new("GET", &format!("/{b}/tail-whole")),
            1,
            SOCKETS,
        ),
        (
            Lie::TailWholeObject,
            Req::new("HEAD", &format!("/{b}/tail-whole-head")),
            1,
            SOCKETS,
        ),
        (
            Lie::TailEndless,
            Req::new("GET", &format!("/{b}/tail-endless")),
            1,
            SOCKETS,
        ),
    ];
    for (lie, req, max_requests, max_bytes) in refused {
        proxy.set(Some(lie));
        let t = Instant::now();
        let r = raw::try_send(port, &s, &req);
        let took = t.elapsed();
        let (told, taken) = (
            proxy.lies.load(std::sync::atomic::Ordering::SeqCst),
            proxy.lie_bytes.load(std::sync::atomic::Ordering::SeqCst),
        );
        proxy.set(None);
        let r = r.unwrap_or_else(|e| panic!("{lie:?}: no answer: {e} after {took:?}"));
        eprintln!(
            "{lie:?} ({} {}): {} {} in {took:?}, {told} store requests, {taken} bytes of lies",
            req.method,
            req.path,
            r.status,
            r.code()
        );
        assert_eq!(r.status, 502, "{lie:?}: {}", r.text());
        if req.method != "HEAD" {
            assert_eq!(r.code(), "BadGateway", "{lie:?}: {}", r.text());
        }
        assert!(
            took < Duration::from_secs(10),
            "{lie:?}: answered after {took:?}"
        );
        assert!(
            (1..=max_requests).contains(&told),
            "{lie:?}: {told} store requests"
        );
        assert!(
            taken <= max_bytes,
            "{lie:?}: the gateway took {taken} bytes of lies"
        );
    }

    // Uploads without end: the listing stops at 10,000 uploads, in ten
    // requests, and the client gets its page of them.
    proxy.set(Some(Lie::UploadsEndless));
    let t = Instant::now();
    let r = raw::send(port, &s, &uploads());
    let told = proxy.lies.load(std::sync::atomic::Ordering::SeqCst);
    proxy.set(None);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert_eq!(text.matches("<Upload>").count(), 5, "{text}");
    assert_eq!(raw::xml_text(&text, "IsTruncated").as_deref(), Some("true"));
    assert!(text.contains("<Key>lie-00000-0000</Key>"), "{text}");
    assert_eq!(told, 10, "store requests for an endless upload listing");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());

    // Memory: a fraction of one endless answer (ENDLESS bytes offered), and
    // no more than a few of the 16 MiB bounds.
    let grown = peak_rss(gw.child.id()).saturating_sub(rss_before);
    eprintln!(
        "peak memory grew by {} MiB (endless answers offered {} MiB each)",
        grown >> 20,
        ENDLESS >> 20
    );
    assert!(grown < 96 << 20, "peak memory grew by {grown} bytes");

    // The store is honest again, and so is everything the gateway serves.
    let r = get(port, &s, &b, "honest");
    assert_eq!((r.status, &r.body), (200, &data));
    let r = raw::send(port, &s, &list());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Key>honest</Key>"), "{}", r.text());
    let r = raw::send(port, &s, &parts());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text().matches("<Part>").count(), 1, "{}", r.text());
    let r = raw::send(port, &s, &uploads());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Key>mp</Key>"), "{}", r.text());
    alive(&mut gw);
}

/// Starts the gateway of `config` again with its log at `level`.
fn respawn_with_log(gw: Gw, level: &str) -> Gw {
    let (config, dir, port) = (gw.config.clone(), gw.dir.clone(), gw.port);
    drop(gw);
    std::thread::sleep(Duration::from_millis(200));
    let log = dir.join("sealgate.log");
    let child = std::process::Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("SEALGATE_LOG", level)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start sealgate");
    wait_port(port, "sealgate", &log);
    Gw {
        child,
        port,
        tls_port: None,
        endpoint: format!("http://127.0.0.1:{port}"),
        dir,
        log,
        config,
    }
}

/// Text forms in which `secret` could show up in a log.
fn forms(secret: &[u8]) -> Vec<String> {
    let mut v = vec![
        String::from_utf8_lossy(secret).into_owned(),
        hex::encode(secret),
        hex::encode_upper(secret),
    ];
    // Base64 at each alignment, without the edge characters that depend on
    // the neighbouring bytes.
    for pad in 0..3 {
        let mut b = vec![0u8; pad];
        b.extend_from_slice(secret);
        for e in [STANDARD.encode(&b), URL_SAFE_NO_PAD.encode(&b)] {
            let core = e.trim_end_matches('=');
            if core.len() > 12 {
                v.push(core[4..core.len() - 4].to_owned());
            }
        }
    }
    v.retain(|s| s.len() >= 12);
    v
}

#[test]
fn secrets_and_plaintext_never_reach_the_log_even_at_trace() {
    let store = garage();
    let gw = respawn_with_log(Gw::start(&GwSpec::simple(store)), "trace");
    let port = gw.port;
    let s = Signer::new(AK, SK);
    let b = bucket("logs");
    let dir = tmpdir("hostile-logs");
    ok(
        &aws2(&gw.endpoint, &["s3", "mb", &format!("s3://{b}")]),
        "mb",
    );
    // Content with a marker in every 4 KiB, so any logged piece of a body
    // shows one.
    let marker = b"PLAINTEXT-MARKER-c0ffee-5ea1ed";
    let content = |n: usize, seed: u64| {
        let mut d = random_bytes(n, seed);
        for off in (0..n.saturating_sub(marker.len())).step_by(4096) {
            d[off..off + marker.len()].copy_from_slice(marker);
        }
        d
    };
    let small = content(100_000, 1);
    let tiny = content(200, 2);
    let big = content(9 * 1024 * 1024 + 5, 3);
    for (k, d) in [("small", &small), ("tiny", &tiny), ("big", &big)] {
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
            "cp up",
        );
    }
    // aws cli v1 (boto3: x-amz-checksum-crc32), raw requests with Content-MD5.
    let f = dir.join("tiny");
    ok(
        &aws1(
            &gw.endpoint,
            &[
                "s3api",
                "put-object",
                "--bucket",
                &b,
                "--key",
                "v1",
                "--body",
                f.to_str().unwrap(),
            ],
        ),
        "aws1 put",
    );
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/raw"))
            .header("content-md5", &md5_b64(&tiny))
            .body(tiny.clone()),
    );
    assert_eq!(r.status, 200);
    for k in ["small", "tiny", "big", "v1", "raw"] {
        let out = dir.join(format!("{k}.back"));
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    &b,
                    "--key",
                    k,
                    out.to_str().unwrap(),
                ],
            ),
            "get",
        );
        ok(
            &aws2(
                &gw.endpoint,
                &[
                    "s3api",
                    "get-object",
                    "--bucket",
                    &b,
                    "--key",
                    k,
                    "--range",
                    "bytes=10-5000",
                    out.to_str().unwrap(),
                ],
            ),
            "ranged get",
        );
    }
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3api",
                "copy-object",
                "--bucket",
                &b,
                "--key",
                "copy",
                "--copy-source",
                &format!("{b}/small"),
            ],
        ),
        "copy",
    );
    ok(
        &aws2(
            &gw.endpoint,
            &[
                "s3",
                "cp",
                "--only-show-errors",
                &format!("s3://{b}/big"),
                &format!("s3://{b}/big-copy"),
            ],
        ),
        "multipart copy",
    );
    let url = ok(
        &aws2(&gw.endpoint, &["s3", "presign", &format!("s3://{b}/tiny")]),
        "presign",
    );
    let got = std::process::Command::new("curl")
        .args(["-s", "-f", url.trim()])
        .output()
        .unwrap();
    assert_eq!(got.stdout, tiny);
    ok(
        &aws2(&gw.endpoint, &["s3", "ls", &format!("s3://{b}")]),
        "ls",
    );
    // Failed authentication, a failed digest, a denied bucket.
    let r = put(
        port,
        &Signer::new(AK, "wrong-secret-but-long-enough"),
        &b,
        "denied",
        &tiny,
    );
    assert_eq!(r.code(), "SignatureDoesNotMatch");
    let r = raw::send(
        port,
        &s,
        &Req::new("PUT", &format!("/{b}/bad"))
            .header("content-md5", &md5_b64(b"x"))
            .body(small.clone()),
    );
    assert_eq!(r.code(), "BadDigest");
    ok(
        &aws2(
            &gw.endpoint,
            &["s3", "rm", "--only-show-errors", &format!("s3://{b}/raw")],
        ),
        "rm",
    );

    // What must never be in the log: every secret of the configuration, the
    // data keys of the objects written, the plaintext.
    let alice = key("alice", 2048);
    let pass = std::fs::read(&alice.pass_file).unwrap();
    let id = sealgate::keyring::load_identity(&alice.key_file, &pass).unwrap();
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("user secret key".into(), SK.as_bytes().to_vec()),
        (
            "store secret key".into(),
            store.secret_key.as_bytes().to_vec(),
        ),
        ("gateway secret".into(), GATEWAY_SECRET.as_bytes().to_vec()),
        ("identity passphrase".into(), pass.clone()),
        ("plaintext marker".into(), marker.to_vec()),
    ];
    let pem = std::fs::read_to_string(&alice.key_file).unwrap();
    for (i, line) in pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(3)
        .enumerate()
    {
        secrets.push((
            format!("private key file line {i}"),
            line.as_bytes().to_vec(),
        ));
    }
    for k in ["small", "tiny", "big", "v1", "copy", "big-copy"] {
        let (sg, _) = raw_object(store, &b, k, &dir);
        let sealgate::envelope::header::MetaValue::Inline(raw_header) =
            sealgate::envelope::header::MetaValue::decode(&sg).unwrap()
        else {
            panic!("{k}: expected an inline header");
        };
        let h = sealgate::envelope::Header::parse(&raw_header).unwrap();
        let dk = h.unwrap_with(&[id.as_ref()]).unwrap();
        secrets.push((format!("data key of {k}"), dk.expose().to_vec()));
    }
    let mut log = gw.log_text();
    log += &std::fs::read_to_string(gw.dir.join("stdout.log")).unwrap_or_default();
    drop(gw);
    // The log really is at trace level (or the test would prove nothing).
    let trace_lines = log.lines().filter(|l| l.contains("TRACE")).count();
    let debug_lines = log.lines().filter(|l| l.contains("DEBUG")).count();
    eprintln!(
        "trace log: {} bytes, {} lines ({trace_lines} TRACE, {debug_lines} DEBUG)",
        log.len(),
        log.lines().count()
    );
    // sealgate's own targets may log at trace; dependencies are capped
    // (debug at most, info for s3s and aws-sigv4, which print signatures).
    assert!(
        debug_lines > 0,
        "the gateway did not log at debug/trace level"
    );
    for l in log.lines() {
        let dependency_trace = l.contains(" TRACE ") && !l.contains(" sealgate::");
        let noisy_debug =
            l.contains(" DEBUG ") && (l.contains(" s3s::") || l.contains(" aws_sigv4::"));
        assert!(
            !dependency_trace && !noisy_debug,
            "a dependency logged above its cap: {}",
            &l[..l.len().min(300)]
        );
    }
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        for f in forms(secret) {
            if let Some(at) = log.find(&f) {
                let line_start = log[..at].rfind('\n').map_or(0, |i| i + 1);
                let line = log[line_start..].lines().next().unwrap_or_default();
                leaks.push(format!(
                    "{what} (as {f:?}) in: {}",
                    &line[..line.len().min(300)]
                ));
                break;
            }
        }
    }
    // Request signatures could be replayed for 15 minutes: not in the log either.
    for needle in ["Signature=", "X-Amz-Signature", "signature="] {
        if let Some(at) = log.find(needle) {
            let line_start = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = log[line_start..].lines().next().unwrap_or_default();
            leaks.push(format!(
                "a request signature in: {}",
                &line[..line.len().min(300)]
            ));
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the trace log:\n{}",
        leaks.join("\n")
    );
}
