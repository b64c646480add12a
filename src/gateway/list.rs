//! ListObjectsV2 and ListObjects (V1): the store's listing with sealgate's own
//! keys hidden (as keys and as common prefixes), plaintext sizes and ETags,
//! and S3's semantics wherever a store may differ (docs/COMPATIBILITY.md,
//! "Listings"):
//!
//! - `max-keys=0` lists nothing and is not truncated (the store is only
//!   asked whether the bucket exists);
//! - an empty `delimiter=` means no delimiter;
//! - a start-after or marker that is itself a common prefix of the listing
//!   (the NextMarker of the previous V1 page) skips every key under it; a
//!   marker strictly inside a common prefix lists that prefix again when keys
//!   after the marker fall under it (the keys after the marker, rolled up);
//! - `encoding-type=url` percent-encodes Key, Prefix, Delimiter, StartAfter,
//!   Marker, NextMarker and every CommonPrefix (not the opaque continuation
//!   tokens), as S3 does: every byte but the unreserved ones and `/`; any
//!   other encoding type is refused;
//! - V1 answers NextMarker only with a delimiter (clients page on the last
//!   key otherwise).

use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::object::ListInfo;
use super::{Gateway, HIDDEN_PREFIX};
use crate::store::{ListEntry, ListPage, ListRequest};

/// `encoding-type=url`, the way S3 applies it to listings.
pub(crate) fn url_encode(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(s, KEEP).to_string()
}

/// Whether the response is to be url-encoded; any other encoding is refused.
pub(crate) fn url_encoding(e: Option<&EncodingType>) -> S3Result<bool> {
    match e.map(EncodingType::as_str) {
        None => Ok(false),
        Some(EncodingType::URL) => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

/// One page as a client sees it, before encoding.
struct Listed {
    contents: Vec<Object>,
    prefixes: Vec<String>,
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

/// Whether `marker` is exactly a common prefix of the listing of `prefix`
/// with `delimiter`: the prefix, then up to and including the first
/// delimiter after it. S3 then starts after every key under it.
fn marker_is_common_prefix(prefix: &str, delimiter: Option<&str>, marker: &str) -> bool {
    let (Some(d), Some(rest)) = (delimiter, marker.strip_prefix(prefix)) else {
        return false;
    };
    rest.find(d).is_some_and(|i| i + d.len() == rest.len())
}

/// The start-after to ask the store for: past every key under `marker` when
/// it is a common prefix (all but keys that continue it with U+10FFFF, whose
/// common prefix the listing then drops).
fn store_start_after(prefix: &str, delimiter: Option<&str>, marker: &str) -> String {
    if marker_is_common_prefix(prefix, delimiter, marker) {
        format!("{marker}\u{10FFFF}")
    } else {
        marker.to_owned()
    }
}

/// Whether every key under `cp`, a common prefix that [`HIDDEN_PREFIX`]
/// starts with (".", ".sea"...), is sealgate's own: then the prefix is not
/// shown. Two small store requests, for such prefixes only.
pub(crate) async fn only_hidden_under(gw: &Gateway, bucket: &str, cp: &str) -> S3Result<bool> {
    let first = gw
        .store
        .list(
            bucket,
            &ListRequest {
                prefix: Some(cp.to_owned()),
                max_keys: 1,
                ..Default::default()
            },
        )
        .await?;
    match first.entries.first() {
        None => return Ok(true),
        Some(e) if !e.key.starts_with(HIDDEN_PREFIX) => return Ok(false),
        Some(_) => {}
    }
    let after = gw
        .store
        .list(
            bucket,
            &ListRequest {
                prefix: Some(cp.to_owned()),
                start_after: Some(after_hidden()),
                max_keys: 1,
                ..Default::default()
            },
        )
        .await?;
    Ok(after.entries.is_empty())
}

/// One store page with sealgate's keys hidden. `marker_prefix` is the
/// client's marker when it is a common prefix (never listed again).
async fn list_page(
    gw: &Gateway,
    bucket: &str,
    req: ListRequest,
    marker_prefix: Option<&str>,
) -> S3Result<Listed> {
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
    // Warm, every entry is in the cache: one lookup each, no future per
    // entry. What misses goes through the persistent index, the index at
    // the store, and then one tail read each (`list_concurrency` at once).
    let mut infos: Vec<Option<ListInfo>> = visible
        .iter()
        .map(|e| {
            gw.listing
                .get(&(bucket.to_owned(), e.key.clone(), e.etag.clone()))
        })
        .collect();
    let missing: Vec<usize> = (0..visible.len()).filter(|&i| infos[i].is_none()).collect();
    if !missing.is_empty() {
        let miss: Vec<ListEntry> = missing.iter().map(|&i| visible[i].clone()).collect();
        gw.prefetch_listing(bucket, &miss).await;
        gw.fill_from_store_index(bucket, &miss).await;
        let resolved: Vec<ListInfo> = futures::stream::iter(miss)
            .map(|e| async move { gw.list_info(bucket, &e).await })
            .buffered(gw.list_concurrency)
            .collect()
            .await;
        for (i, li) in missing.into_iter().zip(resolved) {
            infos[i] = Some(li);
        }
    }
    let contents: Vec<Object> = visible
        .into_iter()
        .zip(infos)
        .map(|(e, li)| {
            let li = li.expect("every entry resolved");
            Object {
                key: Some(e.key),
                size: Some(li.size as i64),
                e_tag: Some(ETag::Strong(li.etag)),
                last_modified: Some(Timestamp::from(e.last_modified)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            }
        })
        .collect();
    let mut prefixes = Vec::with_capacity(page.common_prefixes.len());
    for p in &page.common_prefixes {
        if p.starts_with(HIDDEN_PREFIX) || marker_prefix == Some(p.as_str()) {
            continue;
        }
        if HIDDEN_PREFIX.starts_with(p.as_str()) && only_hidden_under(gw, bucket, p).await? {
            continue;
        }
        prefixes.push(p.clone());
    }
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

fn max_keys(m: Option<i32>) -> S3Result<i32> {
    match m {
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "max-keys must be a non-negative integer"
        )),
        m => Ok(m.unwrap_or(1000).min(1000)),
    }
}

/// A page of nothing (`max-keys=0`), for a bucket that exists.
async fn empty_page(gw: &Gateway, bucket: &str) -> S3Result<Listed> {
    gw.store.head_bucket(bucket).await?;
    Ok(Listed {
        contents: Vec::new(),
        prefixes: Vec::new(),
        last: None,
        page: ListPage::default(),
    })
}

/// Encodes (or not) a field of the response.
fn encoder(url: bool) -> impl Fn(String) -> String {
    move |s| if url { url_encode(&s) } else { s }
}

fn output_parts(l: Listed, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let enc = encoder(url);
    let contents = l
        .contents
        .into_iter()
        .map(|mut o| {
            o.key = o.key.map(&enc);
            o
        })
        .collect();
    let prefixes = l
        .prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    (contents, prefixes)
}

pub async fn list_objects_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = req.input;
    let url = url_encoding(i.encoding_type.as_ref())?;
    let mk = max_keys(i.max_keys)?;
    let d = delimiter(i.delimiter.clone());
    let prefix = i.prefix.clone().unwrap_or_default();
    let start_after = i.start_after.clone().filter(|s| !s.is_empty());
    let token = i.continuation_token.clone().filter(|s| !s.is_empty());
    // A continuation token (the store's) takes over from start-after.
    let marker_prefix = start_after
        .as_deref()
        .filter(|a| token.is_none() && marker_is_common_prefix(&prefix, d.as_deref(), a));
    let l = if mk == 0 {
        empty_page(gw, &i.bucket).await?
    } else {
        list_page(
            gw,
            &i.bucket,
            ListRequest {
                prefix: Some(prefix.clone()).filter(|p| !p.is_empty()),
                delimiter: d.clone(),
                max_keys: mk,
                continuation_token: token,
                start_after: start_after
                    .as_deref()
                    .map(|a| store_start_after(&prefix, d.as_deref(), a)),
            },
            marker_prefix,
        )
        .await?
    };
    let key_count = (l.contents.len() + l.prefixes.len()) as i32;
    let is_truncated = l.page.is_truncated;
    let next_continuation_token = l.page.next_continuation_token.clone();
    let (contents, prefixes) = output_parts(l, url);
    let enc = encoder(url);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc(prefix)),
        delimiter: d.map(&enc),
        max_keys: Some(mk),
        key_count: Some(key_count),
        is_truncated: Some(is_truncated),
        continuation_token: i.continuation_token,
        next_continuation_token: next_continuation_token.filter(|_| is_truncated),
        start_after: i.start_after.map(&enc),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub async fn list_objects(
    gw: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = req.input;
    let url = url_encoding(i.encoding_type.as_ref())?;
    let mk = max_keys(i.max_keys)?;
    let d = delimiter(i.delimiter.clone());
    let prefix = i.prefix.clone().unwrap_or_default();
    let marker = i.marker.clone().filter(|s| !s.is_empty());
    let marker_prefix = marker
        .as_deref()
        .filter(|m| marker_is_common_prefix(&prefix, d.as_deref(), m));
    let l = if mk == 0 {
        empty_page(gw, &i.bucket).await?
    } else {
        list_page(
            gw,
            &i.bucket,
            ListRequest {
                prefix: Some(prefix.clone()).filter(|p| !p.is_empty()),
                delimiter: d.clone(),
                max_keys: mk,
                continuation_token: None,
                start_after: marker
                    .as_deref()
                    .map(|m| store_start_after(&prefix, d.as_deref(), m)),
            },
            marker_prefix,
        )
        .await?
    };
    let enc = encoder(url);
    let is_truncated = l.page.is_truncated;
    // S3 gives NextMarker only with a delimiter: the last key or common
    // prefix of the page (here: the store's last, which may be hidden).
    let next_marker = (is_truncated && d.is_some())
        .then(|| l.last.clone().map(&enc))
        .flatten();
    let (contents, prefixes) = output_parts(l, url);
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(enc(prefix)),
        delimiter: d.map(&enc),
        marker: Some(enc(i.marker.unwrap_or_default())),
        next_marker,
        max_keys: Some(mk),
        is_truncated: Some(is_truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_a_common_prefix_when_its_first_delimiter_ends_it() {
        for (prefix, d, marker, want) in [
            ("", Some("/"), "boo/", true),
            ("", Some("/"), "boo/bar", false),
            ("", Some("/"), "boo/baz/", false),
            ("", Some("/"), "boo", false),
            ("boo/", Some("/"), "boo/baz/", true),
            ("boo/", Some("/"), "boo/", false),
            ("boo", Some("/"), "boo/", true),
            ("", None, "boo/", false),
            ("", Some("a"), "ba", true),
            ("", Some("a"), "bar", false),
            // The delimiter counts only after the prefix.
            ("b/", Some("/"), "b/", false),
            ("cquux/", Some("/t"), "cquux/t", false),
            ("cquux", Some("/t"), "cquux/t", true),
            // A marker outside the prefix is never one of its prefixes.
            ("x/", Some("/"), "a/", false),
        ] {
            assert_eq!(
                marker_is_common_prefix(prefix, d, marker),
                want,
                "{prefix:?} {d:?} {marker:?}"
            );
        }
    }

    #[test]
    fn a_common_prefix_marker_starts_the_store_after_its_keys() {
        assert_eq!(store_start_after("", Some("/"), "boo/"), "boo/\u{10FFFF}");
        assert_eq!(store_start_after("", Some("/"), "boo/bar"), "boo/bar");
        assert_eq!(store_start_after("", None, "boo/"), "boo/");
        assert!("boo/\u{10FFFF}" > "boo/zzz/\u{FFFF}");
    }

    #[test]
    fn url_encoding_keeps_unreserved_and_slash() {
        for (raw, want) in [
            ("quux ab/", "quux%20ab/"),
            ("foo+1/", "foo%2B1/"),
            ("100%", "100%25"),
            ("a-b_c.d~e", "a-b_c.d~e"),
            ("test_file(3).png", "test_file%283%29.png"),
            ("ü/日", "%C3%BC/%E6%97%A5"),
            ("\t\n", "%09%0A"),
        ] {
            assert_eq!(url_encode(raw), want);
        }
    }

    #[test]
    fn only_url_encoding_is_accepted() {
        assert!(!url_encoding(None).unwrap());
        assert!(url_encoding(Some(&EncodingType::from_static(EncodingType::URL))).unwrap());
        assert!(url_encoding(Some(&EncodingType::from("base64".to_owned()))).is_err());
    }
}
