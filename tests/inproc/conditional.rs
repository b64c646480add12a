//! Conditional GET and HEAD, compared with the plaintext ETag and the
//! object's time (RFC 7232's order: If-Match before If-Unmodified-Since,
//! If-None-Match before If-Modified-Since).

use aws_sdk_s3::primitives::DateTime;

use crate::harness::*;

#[derive(Clone, Copy)]
enum Etag {
    /// The object's own ETag.
    Own,
    /// Another ETag.
    Other,
    Star,
}

#[derive(Clone, Copy)]
enum When {
    /// A day before the object was written.
    Before,
    /// A day after.
    After,
}

#[derive(Clone, Copy, Default)]
struct Cond {
    if_match: Option<Etag>,
    if_none_match: Option<Etag>,
    if_modified_since: Option<When>,
    if_unmodified_since: Option<When>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Method {
    Get,
    Head,
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Served,
    /// 304.
    NotModified,
    /// 412 PreconditionFailed.
    Failed,
}

struct CondCase {
    method: Method,
    multipart: bool,
    cond: Cond,
    expect: Outcome,
}

const fn c(method: Method, cond: Cond, expect: Outcome) -> CondCase {
    CondCase {
        method,
        multipart: false,
        cond,
        expect,
    }
}

const NONE: Cond = Cond {
    if_match: None,
    if_none_match: None,
    if_modified_since: None,
    if_unmodified_since: None,
};

use Etag::*;
use Method::*;
use Outcome::*;
use When::*;

table! { conditional;
    get_if_match_own_etag_is_served: c(Get, Cond { if_match: Some(Own), ..NONE }, Served),
    get_if_match_other_etag_is_412: c(Get, Cond { if_match: Some(Other), ..NONE }, Failed),
    get_if_match_star_is_served: c(Get, Cond { if_match: Some(Star), ..NONE }, Served),
    get_if_none_match_own_etag_is_304: c(Get, Cond { if_none_match: Some(Own), ..NONE }, NotModified),
    get_if_none_match_star_is_304: c(Get, Cond { if_none_match: Some(Star), ..NONE }, NotModified),
    get_if_none_match_other_etag_is_served: c(Get, Cond { if_none_match: Some(Other), ..NONE }, Served),
    get_if_modified_since_after_is_304: c(Get, Cond { if_modified_since: Some(After), ..NONE }, NotModified),
    get_if_modified_since_before_is_served: c(Get, Cond { if_modified_since: Some(Before), ..NONE }, Served),
    get_if_unmodified_since_before_is_412: c(Get, Cond { if_unmodified_since: Some(Before), ..NONE }, Failed),
    get_if_unmodified_since_after_is_served: c(Get, Cond { if_unmodified_since: Some(After), ..NONE }, Served),
    get_if_match_wins_over_if_unmodified_since: c(Get,
        Cond { if_match: Some(Own), if_unmodified_since: Some(Before), ..NONE }, Served),
    get_if_none_match_wins_over_if_modified_since: c(Get,
        Cond { if_none_match: Some(Other), if_modified_since: Some(After), ..NONE }, Served),
    get_if_match_fails_before_if_none_match: c(Get,
        Cond { if_match: Some(Other), if_none_match: Some(Own), ..NONE }, Failed),
    head_if_match_own_etag_is_served: c(Head, Cond { if_match: Some(Own), ..NONE }, Served),
    head_if_match_other_etag_is_412: c(Head, Cond { if_match: Some(Other), ..NONE }, Failed),
    head_if_none_match_own_etag_is_304: c(Head, Cond { if_none_match: Some(Own), ..NONE }, NotModified),
    head_if_modified_since_after_is_304: c(Head, Cond { if_modified_since: Some(After), ..NONE }, NotModified),
    head_if_unmodified_since_before_is_412: c(Head, Cond { if_unmodified_since: Some(Before), ..NONE }, Failed),
    multipart_get_if_match_own_etag_is_served: CondCase { multipart: true,
        ..c(Get, Cond { if_match: Some(Own), ..NONE }, Served) },
    multipart_get_if_none_match_own_etag_is_304: CondCase { multipart: true,
        ..c(Get, Cond { if_none_match: Some(Own), ..NONE }, NotModified) },
    multipart_head_if_match_other_etag_is_412: CondCase { multipart: true,
        ..c(Head, Cond { if_match: Some(Other), ..NONE }, Failed) },
}

async fn conditional(case: CondCase) {
    let (b, k) = ("cond", "obj");
    let (_w, gw) = World::with_bucket(b).await;
    let (d, etag) = if case.multipart {
        let parts = crate::multipart::upload(&gw, b, k, &[5 * MIB, 10]).await;
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        (parts.concat(), multipart_etag(&refs))
    } else {
        let d = data(100_000, 5);
        let etag = gw.put(b, k, &d).await;
        (d, etag)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tag = |t: Etag| match t {
        Own => format!("\"{etag}\""),
        Other => format!("\"{}\"", md5_hex(b"something else")),
        Star => "*".to_owned(),
    };
    let time = |w: When| match w {
        Before => DateTime::from_secs(now - 86_400),
        After => DateTime::from_secs(now + 86_400),
    };
    let cond = case.cond;
    let result: Result<(), S3Err> = match case.method {
        Get => {
            let r = gw
                .client
                .get_object()
                .bucket(b)
                .key(k)
                .set_if_match(cond.if_match.map(tag))
                .set_if_none_match(cond.if_none_match.map(tag))
                .set_if_modified_since(cond.if_modified_since.map(time))
                .set_if_unmodified_since(cond.if_unmodified_since.map(time))
                .send()
                .await;
            match r {
                Ok(r) => {
                    assert_eq!(unquote(r.e_tag().unwrap()), etag);
                    assert!(collect(r.body).await.unwrap() == d, "served other bytes");
                    Ok(())
                }
                Err(e) => Err(S3Err::from(e)),
            }
        }
        Head => {
            let r = gw
                .client
                .head_object()
                .bucket(b)
                .key(k)
                .set_if_match(cond.if_match.map(tag))
                .set_if_none_match(cond.if_none_match.map(tag))
                .set_if_modified_since(cond.if_modified_since.map(time))
                .set_if_unmodified_since(cond.if_unmodified_since.map(time))
                .send()
                .await;
            match r {
                Ok(r) => {
                    assert_eq!(unquote(r.e_tag().unwrap()), etag);
                    assert_eq!(r.content_length(), Some(d.len() as i64));
                    Ok(())
                }
                Err(e) => Err(S3Err::from(e)),
            }
        }
    };
    match (case.expect, result) {
        (Served, Ok(())) => {}
        (NotModified, Err(e)) => assert_eq!(e.status, 304, "{e}"),
        (Failed, Err(e)) if case.method == Head => assert_eq!(e.status, 412, "{e}"),
        (Failed, Err(e)) => assert_refused(&e, 412, "PreconditionFailed", "GET"),
        (expect, got) => panic!("expected {expect:?}, got {got:?}"),
    }
}
