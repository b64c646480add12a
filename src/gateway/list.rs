//! ListObjectsV2 and ListObjects (V1): the store's listing with sealgate's own
//! keys hidden, plaintext sizes and ETags, and AWS semantics where stores
//! differ (an empty `delimiter=` means no delimiter).

use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::{Gateway, HIDDEN_PREFIX};
use crate::store::{ListPage, ListRequest};

fn url_encode(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(s, KEEP).to_string()
}

struct Listed {
    contents: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    /// The last key or prefix the store returned (hidden or not).
    last: Option<String>,
    page: ListPage,
}

fn last_of(page: &ListPage) -> Option<String> {
    page.entries
        .last()
        .map(|e| e.key.clone())
        .into_iter()
        .chain(page.common_prefixes.last().cloned())
        .max()
}

/// Sorts after every key that starts with [`HIDDEN_PREFIX`] but one that
/// starts with the prefix followed by U+10FFFF (hidden too).
fn after_hidden() -> String {
    format!("{HIDDEN_PREFIX}\u{10FFFF}")
}

async fn list_page(gw: &Gateway, bucket: &str, req: ListRequest, url: bool) -> S3Result<Listed> {
    let mut page = gw.store.list(bucket, &req).await?;
    // Multipart manifests (hidden keys) sort before most keys: a page that
    // ends among them would hand the client pages with nothing in them, one
    // per thousand multipart objects. Skip past them with one more store
    // request, whose continuation then is the listing's.
    if page.is_truncated
        && req.max_keys > 0
        && last_of(&page).is_some_and(|k| k.starts_with(HIDDEN_PREFIX))
    {
        page.entries.retain(|e| !e.key.starts_with(HIDDEN_PREFIX));
        page.common_prefixes
            .retain(|p| !p.starts_with(HIDDEN_PREFIX));
        let kept = (page.entries.len() + page.common_prefixes.len()) as i32;
        let rest = ListRequest {
            continuation_token: None,
            start_after: Some(after_hidden()),
            max_keys: (req.max_keys - kept).max(1),
            ..req.clone()
        };
        let more = gw.store.list(bucket, &rest).await?;
        page.entries.extend(more.entries);
        page.common_prefixes.extend(more.common_prefixes);
        page.is_truncated = more.is_truncated;
        page.next_continuation_token = more.next_continuation_token;
    }
    let last = last_of(&page);
    let visible: Vec<_> = page
        .entries
        .iter()
        .filter(|e| !e.key.starts_with(HIDDEN_PREFIX))
        .cloned()
        .collect();
    let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
    gw.prefetch_listing(bucket, &visible).await;
    let contents: Vec<Object> = futures::stream::iter(visible)
        .map(|e| async move {
            let li = gw.list_info(bucket, &e).await;
            Object {
                key: Some(enc(&e.key)),
                size: Some(li.size as i64),
                e_tag: Some(ETag::Strong(li.etag)),
                last_modified: Some(Timestamp::from(e.last_modified)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            }
        })
        .buffered(gw.list_concurrency)
        .collect()
        .await;
    let prefixes = page
        .common_prefixes
        .iter()
        .filter(|p| !p.starts_with(HIDDEN_PREFIX))
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    Ok(Listed {
        contents,
        prefixes,
        last,
        page,
    })
}

fn delimiter(d: Option<String>) -> Option<String> {
    d.filter(|d| !d.is_empty())
}

fn max_keys(m: Option<i32>) -> i32 {
    m.unwrap_or(1000).clamp(0, 1000)
}

pub async fn list_objects_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = req.input;
    let url = i
        .encoding_type
        .as_ref()
        .is_some_and(|e| e.as_str() == EncodingType::URL);
    let mk = max_keys(i.max_keys);
    let d = delimiter(i.delimiter.clone());
    let l = list_page(
        gw,
        &i.bucket,
        ListRequest {
            prefix: i.prefix.clone().filter(|p| !p.is_empty()),
            delimiter: d.clone(),
            max_keys: mk,
            continuation_token: i.continuation_token.clone(),
            start_after: i.start_after.clone().filter(|s| !s.is_empty()),
        },
        url,
    )
    .await?;
    let key_count = (l.contents.len() + l.prefixes.len()) as i32;
    let enc = |s: String| if url { url_encode(&s) } else { s };
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(i.prefix.map(enc).unwrap_or_default()),
        delimiter: d.map(enc),
        max_keys: Some(mk),
        key_count: Some(key_count),
        is_truncated: Some(l.page.is_truncated),
        continuation_token: i.continuation_token,
        next_continuation_token: l.page.next_continuation_token,
        start_after: i.start_after.map(enc),
        contents: Some(l.contents),
        common_prefixes: Some(l.prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub async fn list_objects(
    gw: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = req.input;
    let url = i
        .encoding_type
        .as_ref()
        .is_some_and(|e| e.as_str() == EncodingType::URL);
    let mk = max_keys(i.max_keys);
    let d = delimiter(i.delimiter.clone());
    let l = list_page(
        gw,
        &i.bucket,
        ListRequest {
            prefix: i.prefix.clone().filter(|p| !p.is_empty()),
            delimiter: d.clone(),
            max_keys: mk,
            continuation_token: None,
            start_after: i.marker.clone().filter(|s| !s.is_empty()),
        },
        url,
    )
    .await?;
    let enc = |s: String| if url { url_encode(&s) } else { s };
    let next_marker = if l.page.is_truncated {
        l.last.map(enc)
    } else {
        None
    };
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(i.prefix.map(enc).unwrap_or_default()),
        delimiter: d.map(enc),
        marker: Some(i.marker.map(enc).unwrap_or_default()),
        next_marker,
        max_keys: Some(mk),
        is_truncated: Some(l.page.is_truncated),
        contents: Some(l.contents),
        common_prefixes: Some(l.prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}
