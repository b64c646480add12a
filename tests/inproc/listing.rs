//! ListObjectsV2 and ListObjects (V1): prefix, delimiter, start-after and
//! marker, pagination; every entry with its exact plaintext size and the
//! ETag GET gives; sealgate's own keys never listed.

use std::collections::HashMap;

use crate::harness::*;

const B: &str = "list";

/// Single-part objects and their sizes; `m` is a multipart object besides.
const SINGLE: [(&str, usize); 5] = [
    ("a/1", 10),
    ("a/2", SEG),
    ("a/b/3", SEG + 1),
    ("c", 0),
    ("d/4", 3 * SEG + 5),
];
const M_PARTS: [usize; 2] = [5 * MIB, 10];

/// Fills the bucket; returns key -> (size, ETag).
async fn fill(gw: &Gw) -> HashMap<String, (i64, String)> {
    let mut out = HashMap::new();
    for (k, n) in SINGLE {
        let etag = gw.put(B, k, &data(n, k.len() as u64)).await;
        out.insert(k.to_owned(), (n as i64, etag));
    }
    let parts = crate::multipart::upload(gw, B, "m", &M_PARTS).await;
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    out.insert(
        "m".to_owned(),
        (M_PARTS.iter().sum::<usize>() as i64, multipart_etag(&refs)),
    );
    out
}

#[derive(Clone, Copy, Default)]
struct ListCase {
    v1: bool,
    prefix: Option<&'static str>,
    delimiter: Option<&'static str>,
    /// StartAfter (V2) or Marker (V1).
    after: Option<&'static str>,
    max_keys: Option<i32>,
    /// The keys listed; for a truncated page, the keys its entries must be
    /// the first of (a page may hold fewer than max-keys: one of the store's
    /// entries may have been a hidden key).
    keys: &'static [&'static str],
    prefixes: &'static [&'static str],
    truncated: bool,
}

const ALL: &[&str] = &["a/1", "a/2", "a/b/3", "c", "d/4", "m"];

table! { list;
    v2_everything: ListCase { keys: ALL, ..Default::default() },
    v2_prefix: ListCase { prefix: Some("a/"), keys: &["a/1", "a/2", "a/b/3"], ..Default::default() },
    v2_delimiter: ListCase { delimiter: Some("/"), keys: &["c", "m"], prefixes: &["a/", "d/"],
        ..Default::default() },
    v2_prefix_and_delimiter: ListCase { prefix: Some("a/"), delimiter: Some("/"),
        keys: &["a/1", "a/2"], prefixes: &["a/b/"], ..Default::default() },
    v2_start_after: ListCase { after: Some("a/2"), keys: &["a/b/3", "c", "d/4", "m"],
        ..Default::default() },
    v2_max_keys_truncates: ListCase { max_keys: Some(2), keys: &["a/1", "a/2"], truncated: true,
        ..Default::default() },
    v2_prefix_matching_nothing: ListCase { prefix: Some("zzz"), ..Default::default() },
    v2_hidden_prefix_lists_nothing: ListCase { prefix: Some(".sealgate/"), ..Default::default() },
    v1_everything: ListCase { v1: true, keys: ALL, ..Default::default() },
    v1_prefix: ListCase { v1: true, prefix: Some("a/"), keys: &["a/1", "a/2", "a/b/3"],
        ..Default::default() },
    v1_delimiter: ListCase { v1: true, delimiter: Some("/"), keys: &["c", "m"],
        prefixes: &["a/", "d/"], ..Default::default() },
    v1_prefix_and_delimiter: ListCase { v1: true, prefix: Some("a/"), delimiter: Some("/"),
        keys: &["a/1", "a/2"], prefixes: &["a/b/"], ..Default::default() },
    v1_marker: ListCase { v1: true, after: Some("c"), keys: &["d/4", "m"], ..Default::default() },
    v1_max_keys_truncates: ListCase { v1: true, max_keys: Some(2), keys: &["a/1", "a/2"],
        truncated: true, ..Default::default() },
    v1_hidden_prefix_lists_nothing: ListCase { v1: true, prefix: Some(".sealgate/"),
        ..Default::default() },
}

/// (key, size, ETag) of each entry, common prefixes, truncated.
type Page = (Vec<(String, i64, String)>, Vec<String>, bool);

async fn list_page(gw: &Gw, case: &ListCase) -> Page {
    if case.v1 {
        let r = gw
            .client
            .list_objects()
            .bucket(B)
            .set_prefix(case.prefix.map(Into::into))
            .set_delimiter(case.delimiter.map(Into::into))
            .set_marker(case.after.map(Into::into))
            .set_max_keys(case.max_keys)
            .send()
            .await
            .unwrap();
        (
            r.contents()
                .iter()
                .map(|o| {
                    (
                        o.key().unwrap().to_owned(),
                        o.size().unwrap(),
                        unquote(o.e_tag().unwrap()),
                    )
                })
                .collect(),
            r.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_owned())
                .collect(),
            r.is_truncated().unwrap_or(false),
        )
    } else {
        let r = gw
            .client
            .list_objects_v2()
            .bucket(B)
            .set_prefix(case.prefix.map(Into::into))
            .set_delimiter(case.delimiter.map(Into::into))
            .set_start_after(case.after.map(Into::into))
            .set_max_keys(case.max_keys)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.key_count(),
            Some((r.contents().len() + r.common_prefixes().len()) as i32),
            "KeyCount"
        );
        (
            r.contents()
                .iter()
                .map(|o| {
                    (
                        o.key().unwrap().to_owned(),
                        o.size().unwrap(),
                        unquote(o.e_tag().unwrap()),
                    )
                })
                .collect(),
            r.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_owned())
                .collect(),
            r.is_truncated().unwrap_or(false),
        )
    }
}

async fn list(case: ListCase) {
    let (w, gw) = World::with_bucket(B).await;
    let objects = fill(&gw).await;
    assert!(
        w.raw_keys(B)
            .await
            .iter()
            .any(|k| k.starts_with(".sealgate/")),
        "the store holds a manifest that must stay hidden"
    );
    let cold = w.gateway(Spec::alice());
    for (which, g) in [("warm", &gw), ("cold", &cold)] {
        let (entries, prefixes, truncated) = list_page(g, &case).await;
        let keys: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        if case.truncated {
            let max = case.max_keys.unwrap() as usize;
            assert!(
                !keys.is_empty() && keys.len() <= max && case.keys.starts_with(&keys),
                "{which}: a truncated page of at most {max} of {:?}: {keys:?}",
                case.keys
            );
        } else {
            assert_eq!(keys, case.keys, "{which}: keys");
        }
        assert_eq!(prefixes, case.prefixes, "{which}: common prefixes");
        assert_eq!(truncated, case.truncated, "{which}: truncated");
        for (k, size, etag) in &entries {
            let (s, e) = &objects[k];
            assert_eq!((size, etag), (s, e), "{which}: {k} size and ETag");
        }
    }
}

/// Following continuation tokens page by page gives every key once, in
/// order, with the delimiter's common prefixes among them.
#[tokio::test]
async fn v2_pages_through_continuation_tokens() {
    let (_w, gw) = World::with_bucket(B).await;
    let objects = fill(&gw).await;
    for (max, delimiter, keys, prefixes) in [
        (1, None, ALL, &[][..]),
        (2, None, ALL, &[]),
        (4, None, ALL, &[]),
        (1, Some("/"), &["c", "m"][..], &["a/", "d/"][..]),
    ] {
        let (mut got_keys, mut got_prefixes, mut token, mut pages) = (vec![], vec![], None, 0);
        loop {
            let r = gw
                .client
                .list_objects_v2()
                .bucket(B)
                .max_keys(max)
                .set_delimiter(delimiter.map(Into::into))
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
            pages += 1;
            assert!(
                r.contents().len() + r.common_prefixes().len() <= max as usize,
                "page over max-keys"
            );
            for o in r.contents() {
                let k = o.key().unwrap().to_owned();
                let (s, e) = &objects[&k];
                assert_eq!(
                    (o.size().unwrap(), unquote(o.e_tag().unwrap())),
                    (*s, e.clone())
                );
                got_keys.push(k);
            }
            got_prefixes.extend(
                r.common_prefixes()
                    .iter()
                    .map(|p| p.prefix().unwrap().to_owned()),
            );
            if r.is_truncated() != Some(true) {
                break;
            }
            token = Some(r.next_continuation_token().expect("a token").to_owned());
            assert!(pages < 20, "pagination does not end");
        }
        assert_eq!(got_keys, keys, "max {max} {delimiter:?}");
        assert_eq!(got_prefixes, prefixes, "max {max} {delimiter:?}");
    }
}

/// V1 paging: NextMarker with a delimiter, else the last key, as clients do.
#[tokio::test]
async fn v1_pages_through_markers() {
    let (_w, gw) = World::with_bucket(B).await;
    fill(&gw).await;
    for (delimiter, expect) in [
        (None, ALL.to_vec()),
        (Some("/"), vec!["a/", "c", "d/", "m"]),
    ] {
        let (mut got, mut marker, mut pages) = (Vec::<String>::new(), None::<String>, 0);
        loop {
            let r = gw
                .client
                .list_objects()
                .bucket(B)
                .max_keys(1)
                .set_delimiter(delimiter.map(Into::into))
                .set_marker(marker.clone())
                .send()
                .await
                .unwrap();
            pages += 1;
            let mut page: Vec<String> = r
                .contents()
                .iter()
                .map(|o| o.key().unwrap().to_owned())
                .collect();
            page.extend(
                r.common_prefixes()
                    .iter()
                    .map(|p| p.prefix().unwrap().to_owned()),
            );
            assert_eq!(page.len(), 1, "one entry per page: {page:?}");
            got.extend(page.iter().cloned());
            if r.is_truncated() != Some(true) {
                break;
            }
            marker = Some(match r.next_marker() {
                Some(m) => m.to_owned(),
                None => {
                    assert!(delimiter.is_none(), "NextMarker is given with a delimiter");
                    page.last().unwrap().clone()
                }
            });
            assert!(pages < 20, "pagination does not end");
        }
        assert_eq!(got, expect, "{delimiter:?}");
    }
}
