//! ListObjectsV2 and ListObjects (V1): prefix, delimiter, start-after and
//! marker, pagination; every entry with its exact plaintext size and the
//! ETag GET gives; sealgate's own keys never listed.

use std::collections::HashMap;

use aws_sdk_s3::types::EncodingType;

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

// ---------------------------------------------------------------------------
// S3's listing semantics, whatever the store does (issue 16, item 6): the
// same answers over the embedded store and over Garage. Keys from ceph's
// s3-tests listing cases (which pin AWS's answers), and a multipart object
// whose manifest (`.sealgate/...`) must never show, as a key or as a common
// prefix (`.` and `.sea` roll it up with the delimiters `.` and `a`).

/// The visible keys of [`Sem`] cases, sorted by bytes.
const SEM_KEYS: &[&str] = &[
    "asdf",
    "b%ar",
    "boo/bar",
    "boo/baz/xyzzy",
    "c%ab",
    "cquux/bla",
    "cquux/thud",
    "foo+1/bar",
    "quux ab/thud",
];
/// A multipart object besides (its manifest is hidden).
const SEM_MULTIPART: &str = "mp/obj";

#[derive(Clone, Copy, Default)]
struct Sem {
    on: Option<On>,
    v1: bool,
    prefix: Option<&'static str>,
    delimiter: Option<&'static str>,
    /// StartAfter (V2) or Marker (V1).
    after: Option<&'static str>,
    max_keys: Option<i32>,
    url: bool,
    /// A visible key to add (for hidden-looking common prefixes).
    extra: Option<&'static str>,
    /// Expected, as S3 answers (url-encoded when `url`).
    keys: &'static [&'static str],
    prefixes: &'static [&'static str],
    truncated: bool,
    /// V1's NextMarker (only given with a delimiter and truncation).
    next_marker: Option<&'static str>,
}

const L: Option<On> = Some(On::Local);
const G: Option<On> = Some(On::Garage);

table! { semantics;
    max_keys_zero_v2_embedded: Sem { on: L, max_keys: Some(0), ..Default::default() },
    max_keys_zero_v2_garage: Sem { on: G, max_keys: Some(0), ..Default::default() },
    max_keys_zero_v1_embedded: Sem { on: L, v1: true, max_keys: Some(0), ..Default::default() },
    max_keys_zero_v1_garage: Sem { on: G, v1: true, max_keys: Some(0), delimiter: Some("/"),
        ..Default::default() },
    slash_delimiter_hides_the_manifest_prefix_embedded: Sem { on: L, delimiter: Some("/"),
        keys: &["asdf", "b%ar", "c%ab"],
        prefixes: &["boo/", "cquux/", "foo+1/", "mp/", "quux ab/"], ..Default::default() },
    slash_delimiter_hides_the_manifest_prefix_garage: Sem { on: G, delimiter: Some("/"),
        keys: &["asdf", "b%ar", "c%ab"],
        prefixes: &["boo/", "cquux/", "foo+1/", "mp/", "quux ab/"], ..Default::default() },
    letter_delimiter_embedded: Sem { on: L, delimiter: Some("a"),
        keys: &["cquux/thud", "mp/obj"],
        prefixes: &["a", "b%a", "boo/ba", "c%a", "cquux/bla", "foo+1/ba", "quux a"],
        ..Default::default() },
    letter_delimiter_garage: Sem { on: G, v1: true, delimiter: Some("a"),
        keys: &["cquux/thud", "mp/obj"],
        prefixes: &["a", "b%a", "boo/ba", "c%a", "cquux/bla", "foo+1/ba", "quux a"],
        ..Default::default() },
    percent_delimiter_embedded: Sem { on: L, delimiter: Some("%"),
        keys: &["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/bla", "cquux/thud", "foo+1/bar",
            "mp/obj", "quux ab/thud"],
        prefixes: &["b%", "c%"], ..Default::default() },
    percent_delimiter_garage: Sem { on: G, delimiter: Some("%"),
        keys: &["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/bla", "cquux/thud", "foo+1/bar",
            "mp/obj", "quux ab/thud"],
        prefixes: &["b%", "c%"], ..Default::default() },
    dot_delimiter_hides_a_prefix_of_only_hidden_keys_embedded: Sem { on: L, delimiter: Some("."),
        keys: &["asdf", "b%ar", "boo/bar", "boo/baz/xyzzy", "c%ab", "cquux/bla", "cquux/thud",
            "foo+1/bar", "mp/obj", "quux ab/thud"], ..Default::default() },
    dot_delimiter_hides_a_prefix_of_only_hidden_keys_garage: Sem { on: G, v1: true,
        delimiter: Some("."),
        keys: &["asdf", "b%ar", "boo/bar", "boo/baz/xyzzy", "c%ab", "cquux/bla", "cquux/thud",
            "foo+1/bar", "mp/obj", "quux ab/thud"], ..Default::default() },
    dot_delimiter_shows_a_prefix_with_a_visible_key_embedded: Sem { on: L, delimiter: Some("."),
        extra: Some(".profile"), prefixes: &["."],
        keys: &["asdf", "b%ar", "boo/bar", "boo/baz/xyzzy", "c%ab", "cquux/bla", "cquux/thud",
            "foo+1/bar", "mp/obj", "quux ab/thud"], ..Default::default() },
    dot_delimiter_shows_a_prefix_with_a_visible_key_garage: Sem { on: G, delimiter: Some("."),
        extra: Some(".t"), prefixes: &["."],
        keys: &["asdf", "b%ar", "boo/bar", "boo/baz/xyzzy", "c%ab", "cquux/bla", "cquux/thud",
            "foo+1/bar", "mp/obj", "quux ab/thud"], ..Default::default() },
    hidden_prefix_a_dot_s_embedded: Sem { on: L, prefix: Some(".s"), delimiter: Some("a"),
        ..Default::default() },
    hidden_prefix_a_dot_s_garage: Sem { on: G, prefix: Some(".s"), delimiter: Some("a"),
        ..Default::default() },
    prefix_and_delimiter_embedded: Sem { on: L, v1: true, prefix: Some("boo/"),
        delimiter: Some("/"), keys: &["boo/bar"], prefixes: &["boo/baz/"], ..Default::default() },
    prefix_and_delimiter_garage: Sem { on: G, prefix: Some("boo/"), delimiter: Some("/"),
        keys: &["boo/bar"], prefixes: &["boo/baz/"], ..Default::default() },
    prefix_ending_inside_a_component_embedded: Sem { on: L, prefix: Some("boo/ba"),
        delimiter: Some("/"), keys: &["boo/bar"], prefixes: &["boo/baz/"], ..Default::default() },
    prefix_ending_inside_a_component_garage: Sem { on: G, prefix: Some("boo/ba"),
        delimiter: Some("/"), keys: &["boo/bar"], prefixes: &["boo/baz/"], ..Default::default() },
    prefix_ending_inside_the_delimiter_embedded: Sem { on: L, prefix: Some("cquux/"),
        delimiter: Some("/t"), keys: &["cquux/bla", "cquux/thud"], ..Default::default() },
    prefix_ending_inside_the_delimiter_garage: Sem { on: G, prefix: Some("cquux/"),
        delimiter: Some("/t"), keys: &["cquux/bla", "cquux/thud"], ..Default::default() },
    prefix_ending_before_the_delimiter_embedded: Sem { on: L, v1: true, prefix: Some("cquux"),
        delimiter: Some("/t"), keys: &["cquux/bla"], prefixes: &["cquux/t"],
        ..Default::default() },
    prefix_ending_before_the_delimiter_garage: Sem { on: G, prefix: Some("cquux"),
        delimiter: Some("/t"), keys: &["cquux/bla"], prefixes: &["cquux/t"],
        ..Default::default() },
    start_after_a_common_prefix_skips_it_embedded: Sem { on: L, delimiter: Some("/"),
        after: Some("boo/"), keys: &["c%ab"],
        prefixes: &["cquux/", "foo+1/", "mp/", "quux ab/"], ..Default::default() },
    start_after_a_common_prefix_skips_it_garage: Sem { on: G, delimiter: Some("/"),
        after: Some("boo/"), keys: &["c%ab"],
        prefixes: &["cquux/", "foo+1/", "mp/", "quux ab/"], ..Default::default() },
    marker_a_common_prefix_skips_it_embedded: Sem { on: L, v1: true, delimiter: Some("/"),
        after: Some("boo/"), max_keys: Some(1), keys: &["c%ab"], truncated: true,
        next_marker: Some("c%ab"), ..Default::default() },
    marker_a_common_prefix_skips_it_garage: Sem { on: G, v1: true, delimiter: Some("/"),
        after: Some("boo/"), max_keys: Some(1), keys: &["c%ab"], truncated: true,
        next_marker: Some("c%ab"), ..Default::default() },
    marker_a_common_prefix_under_a_prefix_embedded: Sem { on: L, v1: true, prefix: Some("boo/"),
        delimiter: Some("/"), after: Some("boo/baz/"), ..Default::default() },
    marker_a_common_prefix_under_a_prefix_garage: Sem { on: G, v1: true, prefix: Some("boo/"),
        delimiter: Some("/"), after: Some("boo/baz/"), ..Default::default() },
    start_after_inside_a_common_prefix_embedded: Sem { on: L, delimiter: Some("/"),
        after: Some("boo/bar"), keys: &["c%ab"],
        prefixes: &["boo/", "cquux/", "foo+1/", "mp/", "quux ab/"], ..Default::default() },
    start_after_inside_a_common_prefix_garage: Sem { on: G, delimiter: Some("/"),
        after: Some("boo/bar"), keys: &["c%ab"],
        prefixes: &["boo/", "cquux/", "foo+1/", "mp/", "quux ab/"], ..Default::default() },
    marker_a_common_prefix_of_a_letter_delimiter_embedded: Sem { on: L, v1: true,
        delimiter: Some("a"), after: Some("boo/ba"), keys: &["cquux/thud", "mp/obj"],
        prefixes: &["c%a", "cquux/bla", "foo+1/ba", "quux a"], ..Default::default() },
    marker_a_common_prefix_of_a_letter_delimiter_garage: Sem { on: G, v1: true,
        delimiter: Some("a"), after: Some("boo/ba"), keys: &["cquux/thud", "mp/obj"],
        prefixes: &["c%a", "cquux/bla", "foo+1/ba", "quux a"], ..Default::default() },
    v1_next_marker_only_with_a_delimiter_embedded: Sem { on: L, v1: true, prefix: Some("b"),
        max_keys: Some(2), keys: &["b%ar", "boo/bar"], truncated: true, ..Default::default() },
    v1_next_marker_only_with_a_delimiter_garage: Sem { on: G, v1: true, prefix: Some("b"),
        max_keys: Some(2), keys: &["b%ar", "boo/bar"], truncated: true, ..Default::default() },
    url_encoding_v2_embedded: Sem { on: L, url: true, prefix: Some("quux ab/"),
        delimiter: Some("/"), after: Some("quux ab/"), keys: &["quux%20ab/thud"],
        ..Default::default() },
    url_encoding_v2_garage: Sem { on: G, url: true, delimiter: Some("/"), after: Some("b%ar"),
        keys: &["c%25ab"], prefixes: &["boo/", "cquux/", "foo%2B1/", "mp/", "quux%20ab/"],
        ..Default::default() },
    url_encoding_v1_embedded: Sem { on: L, v1: true, url: true, delimiter: Some("/"),
        after: Some("b%ar"), max_keys: Some(3), keys: &["c%25ab"], prefixes: &["boo/", "cquux/"],
        truncated: true, next_marker: Some("cquux/"), ..Default::default() },
    url_encoding_v1_garage: Sem { on: G, v1: true, url: true, prefix: Some("foo+1/"),
        delimiter: Some("+"), keys: &["foo%2B1/bar"], ..Default::default() },
    url_encoding_of_a_percent_delimiter_embedded: Sem { on: L, v1: true, url: true,
        delimiter: Some("%"), prefix: Some("b"), keys: &["boo/bar", "boo/baz/xyzzy"],
        prefixes: &["b%25"], ..Default::default() },
    url_encoding_of_a_percent_delimiter_garage: Sem { on: G, url: true, delimiter: Some("%"),
        prefix: Some("c"), keys: &["cquux/bla", "cquux/thud"], prefixes: &["c%25"],
        ..Default::default() },
}

async fn semantics(case: Sem) {
    let w = world(case.on.expect("a store"));
    let gw = w.gateway(Spec::alice());
    let b = unique_bucket("sem");
    gw.mb(&b).await;
    for k in SEM_KEYS.iter().chain(case.extra.iter()) {
        gw.put(&b, k, k.as_bytes()).await;
    }
    crate::multipart::upload(&gw, &b, SEM_MULTIPART, &[10]).await;
    assert!(
        w.raw_keys(&b)
            .await
            .iter()
            .any(|k| k.starts_with(".sealgate/")),
        "the store holds a manifest that must stay hidden"
    );
    let enc = case.url.then_some(EncodingType::Url);
    let enc_str = |s: &str| -> String {
        if case.url {
            url_encode(s)
        } else {
            s.to_owned()
        }
    };
    let (keys, prefixes, truncated, echoed) = if case.v1 {
        let r = gw
            .client
            .list_objects()
            .bucket(&b)
            .set_prefix(case.prefix.map(Into::into))
            .set_delimiter(case.delimiter.map(Into::into))
            .set_marker(case.after.map(Into::into))
            .set_max_keys(case.max_keys)
            .set_encoding_type(enc)
            .send()
            .await
            .unwrap();
        assert_eq!(r.next_marker(), case.next_marker, "NextMarker");
        assert_eq!(
            r.marker().unwrap_or_default(),
            enc_str(case.after.unwrap_or_default()),
            "Marker echoed"
        );
        (
            r.contents()
                .iter()
                .map(|o| o.key().unwrap().to_owned())
                .collect::<Vec<_>>(),
            r.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_owned())
                .collect::<Vec<_>>(),
            r.is_truncated().unwrap_or(false),
            (
                r.prefix().map(str::to_owned),
                r.delimiter().map(str::to_owned),
            ),
        )
    } else {
        let r = gw
            .client
            .list_objects_v2()
            .bucket(&b)
            .set_prefix(case.prefix.map(Into::into))
            .set_delimiter(case.delimiter.map(Into::into))
            .set_start_after(case.after.map(Into::into))
            .set_max_keys(case.max_keys)
            .set_encoding_type(enc)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.key_count(),
            Some((r.contents().len() + r.common_prefixes().len()) as i32),
            "KeyCount"
        );
        assert_eq!(
            r.next_continuation_token().is_some(),
            r.is_truncated() == Some(true),
            "a continuation token exactly when truncated"
        );
        assert_eq!(
            r.start_after().map(str::to_owned),
            case.after.map(enc_str),
            "StartAfter echoed"
        );
        (
            r.contents()
                .iter()
                .map(|o| o.key().unwrap().to_owned())
                .collect::<Vec<_>>(),
            r.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_owned())
                .collect::<Vec<_>>(),
            r.is_truncated().unwrap_or(false),
            (
                r.prefix().map(str::to_owned),
                r.delimiter().map(str::to_owned),
            ),
        )
    };
    assert_eq!(keys, case.keys, "keys");
    assert_eq!(prefixes, case.prefixes, "common prefixes");
    assert_eq!(truncated, case.truncated, "truncated");
    assert_eq!(
        echoed.0.unwrap_or_default(),
        enc_str(case.prefix.unwrap_or_default()),
        "Prefix echoed"
    );
    assert_eq!(echoed.1, case.delimiter.map(enc_str), "Delimiter echoed");
}

/// `encoding-type=url` as S3 applies it: every byte but the unreserved ones
/// and `/` (s3-tests: `quux ab/` is `quux%20ab/`, `foo+1/` is `foo%2B1/`).
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

/// An encoding type other than `url` is refused, as S3 does.
#[tokio::test]
async fn an_unknown_encoding_type_is_refused() {
    let (_w, gw) = World::with_bucket("enc").await;
    let e = must_fail(
        gw.client
            .list_objects_v2()
            .bucket("enc")
            .encoding_type(EncodingType::from("base64"))
            .send()
            .await,
        "encoding-type=base64",
    );
    assert_refused(&e, 400, "InvalidArgument", "encoding-type=base64");
}

/// `max-keys=0` still answers NoSuchBucket for a bucket that does not exist.
#[tokio::test]
async fn max_keys_zero_of_a_missing_bucket_is_no_such_bucket() {
    let (_w, gw) = World::with_bucket("here").await;
    let e = must_fail(
        gw.client
            .list_objects_v2()
            .bucket("not-here")
            .max_keys(0)
            .send()
            .await,
        "max-keys=0 of a missing bucket",
    );
    assert_refused(&e, 404, "NoSuchBucket", "max-keys=0");
}

/// Paging with every max-keys from 1 to 4, through V1 markers and V2
/// continuation tokens, with and without delimiters (`/`, `a`, `.`), gives
/// each key and common prefix once, in order, and never a hidden one, over
/// both stores.
#[tokio::test]
async fn pages_give_the_whole_listing_once_embedded() {
    pages_give_the_whole_listing_once(On::Local).await;
}

#[tokio::test]
async fn pages_give_the_whole_listing_once_garage() {
    pages_give_the_whole_listing_once(On::Garage).await;
}

async fn pages_give_the_whole_listing_once(on: On) {
    let w = world(on);
    let gw = w.gateway(Spec::alice());
    let b = unique_bucket("pages");
    gw.mb(&b).await;
    for k in SEM_KEYS {
        gw.put(&b, k, k.as_bytes()).await;
    }
    crate::multipart::upload(&gw, &b, SEM_MULTIPART, &[10]).await;
    for delimiter in [None, Some("/"), Some("a"), Some(".")] {
        let whole = page_through(&gw, &b, delimiter, 1000, true).await;
        assert!(
            whole.iter().all(|k| !k.starts_with('.')),
            "{delimiter:?}: hidden entries listed: {whole:?}"
        );
        for max in 1..=4 {
            for v1 in [true, false] {
                let got = page_through(&gw, &b, delimiter, max, v1).await;
                assert_eq!(got, whole, "{delimiter:?} max {max} v1 {v1}");
            }
        }
    }
}

/// Keys and common prefixes of a whole listing, page by page, in order.
async fn page_through(gw: &Gw, b: &str, d: Option<&str>, max: i32, v1: bool) -> Vec<String> {
    let (mut out, mut marker, mut token) = (Vec::<String>::new(), None::<String>, None::<String>);
    for _ in 0..40 {
        let (mut page, truncated) = if v1 {
            let r = gw
                .client
                .list_objects()
                .bucket(b)
                .max_keys(max)
                .set_delimiter(d.map(Into::into))
                .set_marker(marker.clone())
                .send()
                .await
                .unwrap();
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
            // As clients do: NextMarker, else the last key.
            marker = r
                .next_marker()
                .map(str::to_owned)
                .or_else(|| r.contents().last().map(|o| o.key().unwrap().to_owned()));
            (page, r.is_truncated() == Some(true))
        } else {
            let r = gw
                .client
                .list_objects_v2()
                .bucket(b)
                .max_keys(max)
                .set_delimiter(d.map(Into::into))
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
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
            token = r.next_continuation_token().map(str::to_owned);
            (page, r.is_truncated() == Some(true))
        };
        assert!(page.len() <= max as usize, "a page over max-keys: {page:?}");
        page.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
        out.extend(page);
        if !truncated {
            return out;
        }
    }
    panic!("{d:?} max {max} v1 {v1}: pagination does not end: {out:?}");
}
