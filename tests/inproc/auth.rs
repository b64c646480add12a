//! Authentication (SigV4, verified for real) and authorization (which
//! buckets a user may use), each refusal storing nothing.

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::*;

const B: &str = "auth";
/// The only bucket the limited user may use.
const ALLOWED: &str = "allowed";
const LIMITED_AK: &str = "limiteduser";
const LIMITED_SK: &str = "limited-secret-0123456789";

#[derive(Clone, Copy)]
enum Who {
    /// Alice's access key with another secret.
    WrongSecret,
    /// An access key the gateway does not know.
    UnknownKey,
    /// A user allowed only in `allowed`.
    Limited,
}

#[derive(Clone, Copy)]
enum Op {
    ListObjects,
    Get,
    Put,
    CreateUpload,
    /// Copy from `auth/x` into `allowed`.
    CopyInto,
    /// Copy from `allowed/y` into `auth`.
    CopyOut,
}

struct AuthCase {
    who: Who,
    op: Op,
    status: u16,
    code: &'static str,
}

const fn a(who: Who, op: Op, status: u16, code: &'static str) -> AuthCase {
    AuthCase {
        who,
        op,
        status,
        code,
    }
}

table! { auth;
    wrong_secret_list_is_signature_does_not_match:
        a(Who::WrongSecret, Op::ListObjects, 403, "SignatureDoesNotMatch"),
    wrong_secret_get_is_signature_does_not_match:
        a(Who::WrongSecret, Op::Get, 403, "SignatureDoesNotMatch"),
    wrong_secret_put_is_signature_does_not_match:
        a(Who::WrongSecret, Op::Put, 403, "SignatureDoesNotMatch"),
    unknown_access_key_list_is_invalid_access_key_id:
        a(Who::UnknownKey, Op::ListObjects, 403, "InvalidAccessKeyId"),
    unknown_access_key_put_is_invalid_access_key_id:
        a(Who::UnknownKey, Op::Put, 403, "InvalidAccessKeyId"),
    other_bucket_list_is_access_denied: a(Who::Limited, Op::ListObjects, 403, "AccessDenied"),
    other_bucket_get_is_access_denied: a(Who::Limited, Op::Get, 403, "AccessDenied"),
    other_bucket_put_is_access_denied: a(Who::Limited, Op::Put, 403, "AccessDenied"),
    other_bucket_create_upload_is_access_denied:
        a(Who::Limited, Op::CreateUpload, 403, "AccessDenied"),
    copy_from_another_bucket_is_access_denied: a(Who::Limited, Op::CopyInto, 403, "AccessDenied"),
    copy_into_another_bucket_is_access_denied: a(Who::Limited, Op::CopyOut, 403, "AccessDenied"),
}

fn spec() -> Spec {
    let mut s = Spec::alice();
    s.users.push(User {
        access_key: LIMITED_AK,
        secret: LIMITED_SK,
        buckets: vec![ALLOWED],
    });
    s
}

async fn auth(case: AuthCase) {
    let w = World::new();
    let gw = w.gateway(spec());
    gw.mb(B).await;
    gw.mb(ALLOWED).await;
    let secret = data(100, 1);
    gw.put(B, "x", &secret).await;
    gw.put(ALLOWED, "y", b"allowed content").await;
    let c = match case.who {
        Who::WrongSecret => gw.client_as(AK, "not-the-secret-at-all-0123456789"),
        Who::UnknownKey => gw.client_as("nobody", SK),
        Who::Limited => gw.client_as(LIMITED_AK, LIMITED_SK),
    };
    let e = match case.op {
        Op::ListObjects => must_fail(c.list_objects_v2().bucket(B).send().await, "list"),
        Op::Get => must_fail(c.get_object().bucket(B).key("x").send().await, "get"),
        Op::Put => must_fail(
            c.put_object()
                .bucket(B)
                .key("new")
                .body(ByteStream::from_static(b"new"))
                .send()
                .await,
            "put",
        ),
        Op::CreateUpload => must_fail(
            c.create_multipart_upload()
                .bucket(B)
                .key("new")
                .send()
                .await,
            "create upload",
        ),
        Op::CopyInto => must_fail(
            c.copy_object()
                .copy_source(format!("{B}/x"))
                .bucket(ALLOWED)
                .key("stolen")
                .send()
                .await,
            "copy in",
        ),
        Op::CopyOut => must_fail(
            c.copy_object()
                .copy_source(format!("{ALLOWED}/y"))
                .bucket(B)
                .key("planted")
                .send()
                .await,
            "copy out",
        ),
    };
    assert_refused(&e, case.status, case.code, "auth");
    let mut keys = w.raw_keys(B).await;
    keys.extend(w.raw_keys(ALLOWED).await);
    assert_eq!(keys, ["x", "y"], "nothing stored");
    assert!(w.store.list_uploads(B, None).await.unwrap().is_empty());
}

/// The limited user works in its bucket and sees only it.
#[tokio::test]
async fn limited_user_works_in_its_own_bucket_and_sees_only_it() {
    let w = World::new();
    let gw = w.gateway(spec());
    gw.mb(B).await;
    gw.mb(ALLOWED).await;
    let c = gw.client_as(LIMITED_AK, LIMITED_SK);
    let d = data(SEG + 3, 4);
    let r = c
        .put_object()
        .bucket(ALLOWED)
        .key("mine")
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(unquote(r.e_tag().unwrap()), md5_hex(&d));
    let r = c
        .get_object()
        .bucket(ALLOWED)
        .key("mine")
        .send()
        .await
        .unwrap();
    assert!(collect(r.body).await.unwrap() == d);
    let l = c.list_buckets().send().await.unwrap();
    let names: Vec<&str> = l.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [ALLOWED]);
    let l = gw.client.list_buckets().send().await.unwrap();
    let mut names: Vec<&str> = l.buckets().iter().filter_map(|b| b.name()).collect();
    names.sort();
    assert_eq!(names, [ALLOWED, B], "alice sees every bucket");
}

/// A request without a signature is refused before it reaches the gateway.
#[tokio::test]
async fn anonymous_requests_are_refused() {
    let (w, gw) = World::with_bucket(B).await;
    gw.put(B, "x", b"PLAINTEXT-MARKER").await;
    for (method, path) in [
        ("GET", format!("/{B}/x")),
        ("GET", format!("/{B}/")),
        ("GET", "/".to_owned()),
        ("PUT", format!("/{B}/anon")),
        ("DELETE", format!("/{B}/x")),
    ] {
        let (status, body) = gw.unsigned_text(method, &path).await;
        assert_eq!(status, 403, "{method} {path}");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("<Code>AccessDenied</Code>"),
            "{method} {path}: {text}"
        );
        assert!(
            !text.contains("PLAINTEXT-MARKER"),
            "{method} {path}: {text}"
        );
    }
    assert_eq!(w.raw_keys(B).await, ["x"]);
    assert!(gw.get_ok(B, "x").await == b"PLAINTEXT-MARKER");
}

/// Presigned URLs: a valid one reads the plaintext without any other
/// credentials; one for another key, or expired, is refused.
#[tokio::test]
async fn presigned_urls() {
    use aws_sdk_s3::presigning::PresigningConfig;
    use std::time::{Duration, SystemTime};

    let (_w, gw) = World::with_bucket(B).await;
    let d = data(SEG + 10, 6);
    gw.put(B, "x", &d).await;
    gw.put(B, "y", b"other object").await;
    let presign = |start: SystemTime| {
        PresigningConfig::builder()
            .start_time(start)
            .expires_in(Duration::from_secs(300))
            .build()
            .unwrap()
    };
    let now = SystemTime::now();
    let url = gw
        .client
        .get_object()
        .bucket(B)
        .key("x")
        .presigned(presign(now))
        .await
        .unwrap()
        .uri()
        .to_owned();
    let path = url.strip_prefix(ENDPOINT).expect("our endpoint");
    let (status, body) = gw.unsigned_text("GET", path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body == d, "presigned GET: other bytes");

    let other = path.replacen(&format!("/{B}/x?"), &format!("/{B}/y?"), 1);
    assert_ne!(other, path);
    let (status, body) = gw.unsigned_text("GET", &other).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );

    let url = gw
        .client
        .get_object()
        .bucket(B)
        .key("x")
        .presigned(presign(now - Duration::from_secs(3600)))
        .await
        .unwrap()
        .uri()
        .to_owned();
    let (status, body) = gw
        .unsigned_text("GET", url.strip_prefix(ENDPOINT).unwrap())
        .await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(text.contains("expired"), "{text}");
}
