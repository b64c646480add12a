//! The audit log (docs/AUDIT.md), through the whole S3 front end as `sealgate
//! serve` runs it (`sealgate::server::Frontend`), with the peer address a
//! socket would give: every field of every line for a mix of successful,
//! refused (AccessDenied, bad signature, unknown key, anonymous), missing
//! and failed requests; exact bytes for bodies; durations to the end of the
//! body; no secret, signature or content in the file; X-Forwarded-For only
//! from trusted proxies; reopening after a rotation; and requests that never
//! wait for a stuck writer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use sealgate::audit::AuditLog;
use sealgate::config::AuditConfig;
use sealgate::server::Frontend;
use serde_json::{json, Value};

use crate::adapter::{Target, Via};
use crate::harness::*;

const B: &str = "audit";
const ALLOWED: &str = "allowed";
const LIMITED_AK: &str = "limitedauditor";
const LIMITED_SK: &str = "limited-auditor-secret-0123456789";
const WRONG_SK: &str = "not-alices-secret-0123456789";
/// A key as the client names it (the SDK sends it percent-encoded).
const KEY: &str = "dir/ü space+plus&=.txt";
/// Found in every payload: must never appear in the audit log.
const MARKER: &[u8] = b"AUDIT-PAYLOAD-MARKER-51c3e0";
const ALICE_PEER: &str = "192.0.2.10:40001";
const LIMITED_PEER: &str = "192.0.2.20:40002";

/// Every field of a request line, in order (docs/AUDIT.md).
const FIELDS: [&str; 20] = [
    "log",
    "time",
    "request_id",
    "access_key",
    "authenticated",
    "source",
    "peer",
    "method",
    "operation",
    "bucket",
    "key",
    "version_id",
    "copy_source",
    "delete_keys",
    "status",
    "error",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "complete",
];

fn spec() -> Spec {
    let mut s = Spec::alice();
    s.users.push(User {
        access_key: LIMITED_AK,
        secret: LIMITED_SK,
        buckets: vec![ALLOWED],
    });
    s
}

/// Content with the marker every 1000 bytes.
fn payload(n: usize, seed: u64) -> Vec<u8> {
    let mut d = data(n, seed);
    for at in (0..n.saturating_sub(MARKER.len())).step_by(1000) {
        d[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    d
}

/// A gateway whose front end writes an audit file.
struct Audited {
    frontend: Frontend,
    path: PathBuf,
    signatures: Arc<Mutex<Vec<String>>>,
    payload_modes: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Audited {
    fn new(w: &World, trusted: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        Self::to(w, trusted, &path, 64, dir)
    }

    fn to(w: &World, trusted: &[&str], path: &Path, queue: usize, dir: tempfile::TempDir) -> Self {
        let audit = AuditConfig {
            path: Some(path.to_owned()),
            stderr: false,
            queue_lines: queue,
        };
        let log = sealgate::app::audit_log(&audit).unwrap().expect("audit on");
        let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
        let rt = w.runtime_with(spec(), |c| {
            c.audit = audit.clone();
            c.server.trusted_proxies = trusted;
        });
        let service = sealgate::server::build_service(rt.gateway, rt.users, &rt.server).unwrap();
        Self {
            frontend: Frontend::new(service, Some(log), &rt.server).unwrap(),
            path: path.to_owned(),
            signatures: Default::default(),
            payload_modes: Default::default(),
            _dir: dir,
        }
    }

    fn via(&self, peer: &str, forwarded_for: Option<&str>) -> Target {
        Target::Frontend(Box::new(Via {
            frontend: self.frontend.clone(),
            peer: peer.parse().unwrap(),
            forwarded_for: forwarded_for.map(str::to_owned),
            signatures: self.signatures.clone(),
            payload_modes: self.payload_modes.clone(),
        }))
    }

    fn client(&self, peer: &str, ak: &str, sk: &str) -> Client {
        client_to(self.via(peer, None), ak, sk)
    }

    fn log(&self) -> &AuditLog {
        self.frontend.audit().unwrap()
    }

    /// Every line written so far.
    async fn lines(&self) -> Vec<Value> {
        self.log().flush().await;
        read_lines(&self.path)
    }

    /// The line of request `id` (written when its response body ended).
    async fn line(&self, id: &str) -> Value {
        let t = Instant::now();
        loop {
            let lines = self.lines().await;
            let mine: Vec<&Value> = lines.iter().filter(|l| l["request_id"] == id).collect();
            assert!(mine.len() <= 1, "request {id} has {} lines", mine.len());
            if let Some(l) = mine.first() {
                return (*l).clone();
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no line for request {id} in:\n{lines:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A request sent without the SDK, as it comes from `peer`.
    async fn raw(&self, method: &str, path_and_query: &str, peer: &str) -> (String, u16, Vec<u8>) {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{ENDPOINT}{path_and_query}"))
            .header("host", "localhost:9000")
            .body(s3s::Body::empty())
            .unwrap();
        let resp = self
            .frontend
            .handle(req, Some(peer.parse::<SocketAddr>().unwrap()))
            .await
            .unwrap();
        let id = resp.headers()["x-amz-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (id, status, body.to_vec())
    }
}

fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The request id and whole error body of a request that must fail.
fn failed<T: std::fmt::Debug, E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E>>,
    what: &str,
) -> (S3Err, String, u64) {
    let e = match r {
        Ok(v) => panic!("{what}: succeeded: {v:?}"),
        Err(e) => e,
    };
    let raw = e
        .raw_response()
        .unwrap_or_else(|| panic!("{what}: no response: {e:?}"));
    let id = raw
        .headers()
        .get("x-amz-request-id")
        .unwrap_or_else(|| panic!("{what}: no request id"))
        .to_owned();
    let len = raw.body().bytes().map_or(0, |b| b.len() as u64);
    (S3Err::from(e), id, len)
}

/// What one line must say. `None` bytes: any plausible count (< 64 KiB).
struct Want<'a> {
    request_id: String,
    access_key: Option<&'a str>,
    authenticated: bool,
    peer: &'a str,
    method: &'a str,
    operation: Option<&'a str>,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    copy_source: Value,
    delete_keys: Value,
    status: u16,
    error: Option<&'a str>,
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    complete: bool,
}

impl<'a> Want<'a> {
    /// Alice's successful request, nothing in or out.
    fn alice(id: impl Into<String>, method: &'a str, op: &'a str) -> Self {
        Self {
            request_id: id.into(),
            access_key: Some(AK),
            authenticated: true,
            peer: ALICE_PEER,
            method,
            operation: Some(op),
            bucket: Some(B),
            key: None,
            copy_source: Value::Null,
            delete_keys: Value::Null,
            status: 200,
            error: None,
            bytes_in: Some(0),
            bytes_out: Some(0),
            complete: true,
        }
    }

    fn key(mut self, k: &'a str) -> Self {
        self.key = Some(k);
        self
    }

    fn bytes(mut self, bytes_in: Option<u64>, bytes_out: Option<u64>) -> Self {
        (self.bytes_in, self.bytes_out) = (bytes_in, bytes_out);
        self
    }

    fn failed(mut self, status: u16, code: &'a str, body: u64) -> Self {
        (self.status, self.error, self.bytes_out) = (status, Some(code), Some(body));
        self
    }
}

/// Checks every field of `line` against `want`.
#[track_caller]
fn check(line: &Value, want: &Want, since: time::OffsetDateTime) {
    let what = format!("{line}");
    let obj = line.as_object().expect("an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want_keys = FIELDS.to_vec();
    want_keys.sort_unstable();
    let mut got_keys = keys.clone();
    got_keys.sort_unstable();
    assert_eq!(got_keys, want_keys, "fields of {what}");
    assert_eq!(line["log"], "audit", "{what}");
    let t = line["time"].as_str().expect("time");
    assert!(
        t.ends_with('Z') && t.len() == 24,
        "time {t:?}: RFC 3339 UTC with ms"
    );
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("time {t:?}: {e}"));
    assert!(
        t >= since - time::Duration::milliseconds(1) && t <= time::OffsetDateTime::now_utc(),
        "time {t} not between the test's start {since} and now"
    );
    assert_eq!(line["request_id"], want.request_id.as_str(), "{what}");
    assert_eq!(line["access_key"], json!(want.access_key), "{what}");
    assert_eq!(line["authenticated"], want.authenticated, "{what}");
    let source = want.peer.rsplit_once(':').unwrap().0;
    assert_eq!(line["source"], source, "{what}");
    assert_eq!(line["peer"], want.peer, "{what}");
    assert_eq!(line["method"], want.method, "{what}");
    assert_eq!(line["operation"], json!(want.operation), "{what}");
    assert_eq!(line["bucket"], json!(want.bucket), "{what}");
    assert_eq!(line["key"], json!(want.key), "{what}");
    assert_eq!(line["version_id"], Value::Null, "{what}");
    assert_eq!(line["copy_source"], want.copy_source, "{what}");
    assert_eq!(line["delete_keys"], want.delete_keys, "{what}");
    assert_eq!(line["status"], want.status, "{what}");
    assert_eq!(line["error"], json!(want.error), "{what}");
    for (field, want) in [("bytes_in", want.bytes_in), ("bytes_out", want.bytes_out)] {
        let got = line[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field}: {what}"));
        match want {
            Some(n) => assert_eq!(got, n, "{field} of {what}"),
            None => assert!(got < 64 * 1024, "{field} of {what}"),
        }
    }
    let ms = line["duration_ms"].as_f64().expect("duration_ms");
    assert!(ms > 0.0 && ms < 30_000.0, "duration_ms {ms}: {what}");
    assert_eq!(line["complete"], want.complete, "{what}");
}

/// Successful, refused, missing and failed requests: one line each, every
/// field as docs/AUDIT.md defines it, and nothing secret in the file.
#[tokio::test]
async fn every_field_of_a_mix_of_requests() {
    let since = time::OffsetDateTime::now_utc();
    let w = World::new();
    let a = Audited::new(&w, &[]);
    let alice = a.client(ALICE_PEER, AK, SK);
    let limited = a.client(LIMITED_PEER, LIMITED_AK, LIMITED_SK);
    let wrong = a.client(ALICE_PEER, AK, WRONG_SK);
    let unknown = a.client(ALICE_PEER, "unknownauditkey", SK);
    let mut wants: Vec<Want> = Vec::new();
    let d = payload(3 * SEG + 5, 1);
    let len = d.len() as u64;

    // Buckets.
    for b in [B, ALLOWED] {
        let r = alice.create_bucket().bucket(b).send().await.unwrap();
        let mut want = Want::alice(r.request_id().unwrap(), "PUT", "CreateBucket");
        want.bucket = Some(b);
        wants.push(want);
    }
    let r = alice.list_buckets().send().await.unwrap();
    let mut want = Want::alice(r.request_id().unwrap(), "GET", "ListBuckets").bytes(Some(0), None);
    want.bucket = None;
    wants.push(want);

    // A put, whole and ranged gets, a head.
    let r = alice
        .put_object()
        .bucket(B)
        .key(KEY)
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    wants.push(
        Want::alice(r.request_id().unwrap(), "PUT", "PutObject")
            .key(KEY)
            .bytes(Some(len), Some(0)),
    );
    let r = alice.get_object().bucket(B).key(KEY).send().await.unwrap();
    let id = r.request_id().unwrap().to_owned();
    assert!(collect(r.body).await.unwrap() == d);
    wants.push(
        Want::alice(id, "GET", "GetObject")
            .key(KEY)
            .bytes(Some(0), Some(len)),
    );
    let r = alice
        .get_object()
        .bucket(B)
        .key(KEY)
        .range("bytes=100-199")
        .send()
        .await
        .unwrap();
    let id = r.request_id().unwrap().to_owned();
    assert!(collect(r.body).await.unwrap() == d[100..200]);
    let mut want = Want::alice(id, "GET", "GetObject")
        .key(KEY)
        .bytes(Some(0), Some(100));
    want.status = 206;
    wants.push(want);
    let r = alice.head_object().bucket(B).key(KEY).send().await.unwrap();
    assert_eq!(r.content_length(), Some(len as i64));
    wants.push(Want::alice(r.request_id().unwrap(), "HEAD", "HeadObject").key(KEY));
    let r = alice.list_objects_v2().bucket(B).send().await.unwrap();
    wants.push(Want::alice(r.request_id().unwrap(), "GET", "ListObjectsV2").bytes(Some(0), None));

    // Missing objects.
    let (e, id, body) = failed(alice.get_object().bucket(B).key("nope").send().await, "get");
    assert_refused(&e, 404, "NoSuchKey", "get missing");
    wants.push(
        Want::alice(id, "GET", "GetObject")
            .key("nope")
            .failed(404, "NoSuchKey", body),
    );
    let (e, id, _) = failed(
        alice.head_object().bucket(B).key("nope").send().await,
        "head",
    );
    assert_eq!(e.status, 404);
    wants.push(
        Want::alice(id, "HEAD", "HeadObject")
            .key("nope")
            .failed(404, "NoSuchKey", 0),
    );

    // Refused: a bucket the user may not use (known user, good signature).
    let (e, id, body) = failed(limited.get_object().bucket(B).key(KEY).send().await, "get");
    assert_refused(&e, 403, "AccessDenied", "limited get");
    let mut want = Want::alice(id, "GET", "GetObject")
        .key(KEY)
        .failed(403, "AccessDenied", body);
    (want.access_key, want.peer) = (Some(LIMITED_AK), LIMITED_PEER);
    wants.push(want);
    let (e, id, body) = failed(
        limited
            .put_object()
            .bucket(B)
            .key("x")
            .body(ByteStream::from(d.clone()))
            .send()
            .await,
        "put",
    );
    assert_refused(&e, 403, "AccessDenied", "limited put");
    let mut want = Want::alice(id, "PUT", "PutObject")
        .key("x")
        .failed(403, "AccessDenied", body);
    (want.access_key, want.peer) = (Some(LIMITED_AK), LIMITED_PEER);
    wants.push(want);

    // Refused before routing: a bad signature, an unknown access key.
    let (e, id, body) = failed(wrong.get_object().bucket(B).key(KEY).send().await, "get");
    assert_refused(&e, 403, "SignatureDoesNotMatch", "wrong secret");
    let mut want =
        Want::alice(id, "GET", "GetObject")
            .key(KEY)
            .failed(403, "SignatureDoesNotMatch", body);
    (want.authenticated, want.operation) = (false, None);
    wants.push(want);
    let (e, id, body) = failed(unknown.list_objects_v2().bucket(B).send().await, "list");
    assert_refused(&e, 403, "InvalidAccessKeyId", "unknown key");
    let mut want = Want::alice(id, "GET", "ListObjectsV2").failed(403, "InvalidAccessKeyId", body);
    (want.access_key, want.authenticated, want.operation) = (Some("unknownauditkey"), false, None);
    wants.push(want);

    // Anonymous, and a presigned URL (its signature is in the query).
    let path = format!("/{B}/dir/%C3%BC%20space%2Bplus%26%3D.txt");
    let (id, status, body) = a.raw("GET", &path, ALICE_PEER).await;
    assert_eq!(status, 403);
    let mut want =
        Want::alice(id, "GET", "GetObject")
            .key(KEY)
            .failed(403, "AccessDenied", body.len() as u64);
    (want.access_key, want.authenticated) = (None, false);
    wants.push(want);
    let url = alice
        .get_object()
        .bucket(B)
        .key(KEY)
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap()
        .uri()
        .to_owned();
    let presigned_sig = url.split("X-Amz-Signature=").nth(1).unwrap().to_owned();
    let (id, status, body) = a
        .raw("GET", url.strip_prefix(ENDPOINT).unwrap(), ALICE_PEER)
        .await;
    assert_eq!(status, 200);
    assert!(body == d);
    wants.push(
        Want::alice(id, "GET", "GetObject")
            .key(KEY)
            .bytes(Some(0), Some(len)),
    );

    // Copies name what they read, refused ones too; DeleteObjects its keys.
    let src = format!("{B}/dir/%C3%BC%20space%2Bplus%26%3D.txt");
    let r = alice
        .copy_object()
        .copy_source(&src)
        .bucket(ALLOWED)
        .key("copy")
        .send()
        .await
        .unwrap();
    let copy_source = json!({"bucket": B, "key": KEY, "version_id": null});
    let mut want = Want::alice(r.request_id().unwrap(), "PUT", "CopyObject")
        .key("copy")
        .bytes(Some(0), None);
    (want.bucket, want.copy_source) = (Some(ALLOWED), copy_source.clone());
    wants.push(want);
    let (e, id, body) = failed(
        limited
            .copy_object()
            .copy_source(&src)
            .bucket(ALLOWED)
            .key("stolen")
            .send()
            .await,
        "copy",
    );
    assert_refused(&e, 403, "AccessDenied", "limited copy");
    let mut want =
        Want::alice(id, "PUT", "CopyObject")
            .key("stolen")
            .failed(403, "AccessDenied", body);
    (want.bucket, want.copy_source) = (Some(ALLOWED), copy_source);
    (want.access_key, want.peer) = (Some(LIMITED_AK), LIMITED_PEER);
    wants.push(want);
    let objects = ["copy", "ghost"]
        .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
        .to_vec();
    let r = alice
        .delete_objects()
        .bucket(ALLOWED)
        .delete(
            Delete::builder()
                .set_objects(Some(objects))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut want = Want::alice(r.request_id().unwrap(), "POST", "DeleteObjects").bytes(None, None);
    (want.bucket, want.delete_keys) = (Some(ALLOWED), json!(["copy", "ghost"]));
    wants.push(want);

    // Multipart: the part's bytes, exactly.
    let part = payload(70_000, 2);
    let up = alice
        .create_multipart_upload()
        .bucket(B)
        .key("mp")
        .send()
        .await
        .unwrap();
    wants.push(
        Want::alice(up.request_id().unwrap(), "POST", "CreateMultipartUpload")
            .key("mp")
            .bytes(Some(0), None),
    );
    let upload_id = up.upload_id().unwrap();
    let r = alice
        .upload_part()
        .bucket(B)
        .key("mp")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .unwrap();
    wants.push(
        Want::alice(r.request_id().unwrap(), "PUT", "UploadPart")
            .key("mp")
            .bytes(Some(part.len() as u64), Some(0)),
    );
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(r.e_tag().unwrap())
                .build(),
        )
        .build();
    let r = alice
        .complete_multipart_upload()
        .bucket(B)
        .key("mp")
        .upload_id(upload_id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    wants.push(
        Want::alice(r.request_id().unwrap(), "POST", "CompleteMultipartUpload")
            .key("mp")
            .bytes(None, None),
    );

    // Failed: a body whose digest is wrong (read whole, refused, not stored).
    let (e, id, body) = failed(
        alice
            .put_object()
            .bucket(B)
            .key("bad-md5")
            .content_md5("AAAAAAAAAAAAAAAAAAAAAA==")
            .body(ByteStream::from(d.clone()))
            .send()
            .await,
        "put",
    );
    assert_refused(&e, 400, "BadDigest", "bad md5");
    wants.push(
        Want::alice(id, "PUT", "PutObject")
            .key("bad-md5")
            .bytes(Some(len), None)
            .failed(400, "BadDigest", body),
    );

    // Failed: the store changed the object's trailer (refused before the body)...
    let r = alice
        .put_object()
        .bucket(B)
        .key("trailer")
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    wants.push(
        Want::alice(r.request_id().unwrap(), "PUT", "PutObject")
            .key("trailer")
            .bytes(Some(len), Some(0)),
    );
    let (info, mut raw) = w.raw_get(B, "trailer").await;
    *raw.last_mut().unwrap() ^= 0x80;
    w.raw_put(B, "trailer", raw, &info.headers).await;
    let (e, id, body) = failed(
        alice.get_object().bucket(B).key("trailer").send().await,
        "get",
    );
    assert_refused(&e, 500, "InternalError", "altered trailer");
    wants.push(Want::alice(id, "GET", "GetObject").key("trailer").failed(
        500,
        "InternalError",
        body,
    ));
    // ... or a byte of its third segment (a 200 cut short).
    let (info, mut raw) = w.raw_get(B, KEY).await;
    let at = raw.len() - SEG / 2;
    raw[at] ^= 0x01;
    w.raw_put(B, KEY, raw, &info.headers).await;
    let r = alice.get_object().bucket(B).key(KEY).send().await.unwrap();
    let id = r.request_id().unwrap().to_owned();
    let (mut got, mut body) = (0u64, r.body);
    let mut cut = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got += c.len() as u64,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut && got < len, "the body was cut after {got} bytes");
    let mut want = Want::alice(id, "GET", "GetObject")
        .key(KEY)
        .bytes(Some(0), Some(got));
    want.complete = false;
    wants.push(want);

    // One line per request, each as wanted, its fields in their order.
    for want in &wants {
        check(&a.line(&want.request_id).await, want, since);
    }
    let lines = a.lines().await;
    assert_eq!(
        lines.len(),
        wants.len(),
        "one line per request:\n{lines:#?}"
    );
    let text = std::fs::read_to_string(&a.path).unwrap();
    for line in text.lines() {
        let at: Vec<usize> = FIELDS
            .iter()
            .map(|f| line.find(&format!("\"{f}\":")).expect(f))
            .collect();
        assert!(at.is_sorted(), "fields out of order: {line}");
    }

    eprintln!("MODES {:?}", a.payload_modes.lock().unwrap());
    eprintln!("TEXT {}", std::fs::read_to_string(&a.path).unwrap());
    // Nothing secret, no signature, no content.
    let signatures = a.signatures.lock().unwrap().clone();
    assert!(signatures.len() >= wants.len() - 2, "{signatures:?}");
    let mut secrets: Vec<String> = vec![
        SK.into(),
        LIMITED_SK.into(),
        WRONG_SK.into(),
        GATEWAY_SECRET.into(),
        presigned_sig,
        String::from_utf8_lossy(MARKER).into_owned(),
        "Signature=".into(),
        "X-Amz-".into(),
        "aws4_request".into(),
    ];
    secrets.extend(signatures);
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "the audit log contains {s:?}");
    }
}

/// The duration runs to the response's last byte; a download the client
/// gives up on is not complete, and counts what was sent.
#[tokio::test]
async fn durations_run_to_the_end_of_the_body() {
    let since = time::OffsetDateTime::now_utc();
    let (w, gw) = World::with_bucket(B).await;
    let d = payload(4 * SEG, 3);
    gw.put(B, "big", &d).await;
    let a = Audited::new(&w, &[]);
    let alice = a.client(ALICE_PEER, AK, SK);

    let r = alice
        .get_object()
        .bucket(B)
        .key("big")
        .send()
        .await
        .unwrap();
    let id = r.request_id().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(collect(r.body).await.unwrap() == d);
    let line = a.line(&id).await;
    let want = Want::alice(id, "GET", "GetObject")
        .key("big")
        .bytes(Some(0), Some(d.len() as u64));
    check(&line, &want, since);
    let ms = line["duration_ms"].as_f64().unwrap();
    assert!(
        ms >= 400.0,
        "duration_ms {ms}: the body was read 400 ms after the head"
    );

    let r = alice
        .get_object()
        .bucket(B)
        .key("big")
        .send()
        .await
        .unwrap();
    let id = r.request_id().unwrap().to_owned();
    let mut body = r.body;
    let first = body.next().await.unwrap().unwrap().len() as u64;
    drop(body);
    let line = a.line(&id).await;
    let sent = line["bytes_out"].as_u64().unwrap();
    assert!(
        sent >= first && sent < d.len() as u64,
        "sent {sent}, the client read {first} of {}",
        d.len()
    );
    let mut want = Want::alice(id, "GET", "GetObject")
        .key("big")
        .bytes(Some(0), Some(sent));
    want.complete = false;
    check(&line, &want, since);
}

/// `source` is the peer, unless the peer is a trusted proxy: then what the
/// proxies appended to X-Forwarded-For, never what the client wrote there.
#[tokio::test]
async fn source_is_the_peer_or_what_trusted_proxies_forwarded() {
    let w = World::new();
    let behind = Audited::new(&w, &["10.0.0.0/8", "2001:db8:aa::/48"]);
    let direct = Audited::new(&w, &[]);
    behind
        .client(ALICE_PEER, AK, SK)
        .create_bucket()
        .bucket(B)
        .send()
        .await
        .unwrap();
    let cases: &[(&Audited, &str, Option<&str>, &str)] = &[
        // No proxies configured: the header is ignored.
        (&direct, "10.1.2.3:5000", Some("203.0.113.9"), "10.1.2.3"),
        (&direct, "192.0.2.99:5000", None, "192.0.2.99"),
        // A trusted proxy: the address it appended, not the client's forgery.
        (
            &behind,
            "10.1.2.3:5000",
            Some("198.51.100.1, 203.0.113.9"),
            "203.0.113.9",
        ),
        // Through two proxies.
        (
            &behind,
            "10.1.2.3:5000",
            Some("203.0.113.9, 10.7.7.7"),
            "203.0.113.9",
        ),
        // IPv6 proxy, IPv6 client with a port.
        (
            &behind,
            "[2001:db8:aa::5]:443",
            Some("[2001:db8:ff::1]:6000"),
            "2001:db8:ff::1",
        ),
        // An untrusted peer's header is ignored.
        (
            &behind,
            "192.0.2.99:5000",
            Some("203.0.113.9"),
            "192.0.2.99",
        ),
        // A trusted proxy that forwarded nothing.
        (&behind, "10.1.2.3:5000", None, "10.1.2.3"),
    ];
    for (a, peer, xff, source) in cases {
        let c = client_to(a.via(peer, *xff), AK, SK);
        let r = c.head_bucket().bucket(B).send().await.unwrap();
        let line = a.line(r.request_id().unwrap()).await;
        assert_eq!(
            line["source"], *source,
            "peer {peer}, X-Forwarded-For {xff:?}: {line}"
        );
        let canonical: SocketAddr = peer.parse().unwrap();
        assert_eq!(line["peer"], canonical.to_string(), "{line}");
        assert_eq!(line["operation"], "HeadBucket", "{line}");
    }
}

/// The file is created 0600; after a rotation moves it away, reopening
/// sends later lines to a new file (0600 too) and loses none.
#[tokio::test]
async fn reopen_after_rotation_loses_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let a = Audited::new(&w, &[]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&a.path), 0o600, "created 0600 at start-up");
    let alice = a.client(ALICE_PEER, AK, SK);
    alice.create_bucket().bucket(B).send().await.unwrap();
    let mut before = Vec::new();
    for i in 0..3 {
        let r = alice
            .put_object()
            .bucket(B)
            .key(format!("before-{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        before.push(r.request_id().unwrap().to_owned());
    }
    let rotated = a.path.with_extension("log.1");
    std::fs::rename(&a.path, &rotated).unwrap();
    // Lines of requests finishing between the move and the reopen go to the
    // moved file (the writer still holds it).
    let r = alice
        .put_object()
        .bucket(B)
        .key("between")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    before.push(r.request_id().unwrap().to_owned());
    a.log().reopen().await.unwrap();
    assert_eq!(mode(&a.path), 0o600, "the new file is 0600");
    let mut after = Vec::new();
    for i in 0..2 {
        let r = alice
            .put_object()
            .bucket(B)
            .key(format!("after-{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        after.push(r.request_id().unwrap().to_owned());
    }
    a.log().flush().await;
    let ids = |p: &Path| -> Vec<String> {
        read_lines(p)
            .iter()
            .filter(|l| l["operation"] == "PutObject")
            .map(|l| l["request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&rotated), before, "the rotated file");
    assert_eq!(ids(&a.path), after, "the new file");

    // A reopen that fails keeps the file it had.
    std::fs::remove_dir_all(a.path.parent().unwrap()).unwrap();
    assert!(a.log().reopen().await.is_err());
}

/// A writer that cannot write (a FIFO nobody reads) holds no request back:
/// lines beyond the queue are dropped, counted in /metrics and announced in
/// the log once it is read again.
#[tokio::test]
async fn a_stuck_writer_holds_no_request_back() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Read and write: opening it for writing then does not wait for a reader,
    // and nothing is read until the test says so.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let w = World::new();
    let a = Audited::to(&w, &[], &fifo, 4, dir);
    let alice = a.client(ALICE_PEER, AK, SK);
    alice.create_bucket().bucket(B).send().await.unwrap();
    // Far more than a pipe's 64 KiB of lines.
    let t = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..400 {
        let r = alice.head_bucket().bucket(B).send().await.unwrap();
        ids.push(r.request_id().unwrap().to_owned());
    }
    let elapsed = t.elapsed();
    let dropped = a
        .log()
        .stats()
        .dropped_queue_full
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        dropped > 100,
        "only {dropped} lines dropped: the pipe was read?"
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "400 requests took {elapsed:?}"
    );
    let metrics = sealgate::metrics::global().render((0, 0));
    let counted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sealgate_audit_lines_dropped_total{reason=\"queue_full\"} "))
        .expect("the dropped counter in /metrics")
        .parse()
        .unwrap();
    assert!(counted >= dropped, "{metrics}");

    // Read the pipe: what was queued comes out, then the announced gap.
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    a.log().flush().await;
    let last = alice.head_bucket().bucket(B).send().await.unwrap();
    let last = last.request_id().unwrap().to_owned();
    a.log().flush().await;
    let t = Instant::now();
    let lines = loop {
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        if text.contains(&last) && text.ends_with('\n') {
            break text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the log never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dropped = a
        .log()
        .stats()
        .dropped_queue_full
        .load(std::sync::atomic::Ordering::Relaxed);
    let gaps: u64 = lines.iter().filter_map(|l| l["dropped"].as_u64()).sum();
    assert_eq!(gaps, dropped, "the log announces every dropped line");
    let written = lines.iter().filter(|l| l["request_id"].is_string()).count() as u64;
    assert_eq!(
        written + dropped,
        ids.len() as u64 + 2,
        "every request is a line or a dropped one"
    );
}

/// An `aws-chunked` upload (the SDK sends one for a file body over https:
/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, chunk framing and a CRC32 trailer)
/// counts the object's bytes only.
#[tokio::test]
async fn aws_chunked_uploads_count_their_payload_only() {
    let since = time::OffsetDateTime::now_utc();
    let (w, gw) = World::with_bucket(B).await;
    let a = Audited::new(&w, &[]);
    // The scheme is only what the SDK believes: it picks its https upload mode.
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(crate::adapter::InProcess(a.via(ALICE_PEER, None)))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            AK, SK, None, None, "inproc",
        ))
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url("https://localhost:9000")
        .force_path_style(true)
        .build();
    let alice = Client::from_conf(conf);
    let dir = tempfile::tempdir().unwrap();
    for (i, n) in [0usize, 1, SEG, 3 * SEG + 17].into_iter().enumerate() {
        let d = payload(n, 10 + i as u64);
        let file = dir.path().join(format!("f{i}"));
        std::fs::write(&file, &d).unwrap();
        let key = format!("chunked-{n}");
        let r = alice
            .put_object()
            .bucket(B)
            .key(&key)
            .body(ByteStream::from_path(&file).await.unwrap())
            .send()
            .await
            .unwrap();
        let mode = a.payload_modes.lock().unwrap().last().cloned();
        assert_eq!(
            mode.as_deref(),
            Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            "the SDK sent another upload mode: this test no longer tests aws-chunked"
        );
        let want = Want::alice(r.request_id().unwrap(), "PUT", "PutObject")
            .key(&key)
            .bytes(Some(n as u64), Some(0));
        check(&a.line(&want.request_id).await, &want, since);
        assert!(gw.get_ok(B, &key).await == d);
    }
}

#[tokio::test]
async fn versioned_requests_name_their_version() {
    // Over moto, which keeps versions: the version a write created (from
    // the response) and the version a read or delete named (from the query).
    let w = World::moto();
    let a = Audited::new(&w, &[]);
    let alice = a.client(ALICE_PEER, AK, SK);
    let b = &unique_bucket("audit-ver");
    alice.create_bucket().bucket(b).send().await.unwrap();
    alice
        .put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let put = alice
        .put_object()
        .bucket(b)
        .key("k")
        .body(ByteStream::from(payload(100, 1)))
        .send()
        .await
        .unwrap();
    let v = put.version_id().expect("a version id").to_owned();
    let line = a.line(put.request_id().unwrap()).await;
    assert_eq!(line["version_id"], json!(v), "PutObject");
    let got = alice
        .get_object()
        .bucket(b)
        .key("k")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    let id = got.request_id().unwrap().to_owned();
    collect(got.body).await.unwrap();
    assert_eq!(a.line(&id).await["version_id"], json!(v), "GetObject");
    let del = alice
        .delete_object()
        .bucket(b)
        .key("k")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        a.line(del.request_id().unwrap()).await["version_id"],
        json!(v),
        "DeleteObject"
    );
}
