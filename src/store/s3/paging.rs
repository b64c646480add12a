//! The paged listings S3Store walks (ListParts, ListMultipartUploads) and the
//! one page of ListObjectsV2 it hands on, checked page by page: a cap on
//! pages and items, and a marker that must move forward. A store that
//! repeats or rewinds its marker, or pages forever, gets an error after a
//! bounded number of requests instead of a loop that never ends and a list
//! that never stops growing. Pure; no I/O.

use std::collections::HashSet;

use super::super::{PartInfo, UploadInfo};

/// The most parts an upload has (S3: part numbers 1 to 10,000).
pub const MAX_PARTS: i32 = 10_000;

/// The most in-progress uploads S3Store lists under one prefix. Beyond it
/// the listing stops at the first 10,000 (in the store's order, which is by
/// key) and says so in the log: a listing is the store's word anyway (it can
/// hide what it likes), and a client that aborts what it sees (the common
/// reason to list uploads) reaches the rest on its next round.
pub const MAX_UPLOADS: usize = 10_000;

/// The most pages either walk takes: every page but the last must bring an
/// item or move the marker, and both are capped above.
pub const MAX_PAGES: usize = MAX_UPLOADS + 1;

/// The most entries plus common prefixes one ListObjectsV2 page may carry:
/// what was asked for, or S3's own cap of 1,000 when more was asked.
pub fn max_list_items(max_keys: i32) -> usize {
    max_keys.max(1000) as usize
}

/// Checks one ListObjectsV2 page: not more items than asked for, and a
/// continuation that moves (a store that answers a token with the same token
/// would keep its caller paging forever).
pub fn check_list_page(
    sent_token: Option<&str>,
    max_keys: i32,
    items: usize,
    truncated: bool,
    next_token: Option<&str>,
) -> Result<(), String> {
    if items > max_list_items(max_keys) {
        return Err(format!(
            "a ListObjectsV2 page of {items} entries for max-keys {max_keys}"
        ));
    }
    if truncated && next_token.is_some() && next_token == sent_token {
        return Err("a ListObjectsV2 continuation token that does not move".into());
    }
    Ok(())
}

/// Walks the pages of ListParts.
#[derive(Debug, Default)]
pub struct PartsPager {
    /// The part number the next page starts after.
    marker: i32,
    seen: HashSet<i32>,
    parts: Vec<PartInfo>,
    pages: usize,
}

impl PartsPager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `part-number-marker` of the next request.
    pub fn marker(&self) -> Option<String> {
        (self.marker > 0).then(|| self.marker.to_string())
    }

    /// Takes one page; `Ok(true)` when another is to be asked for.
    pub fn take(
        &mut self,
        parts: impl IntoIterator<Item = PartInfo>,
        truncated: bool,
        next_marker: Option<&str>,
    ) -> Result<bool, String> {
        self.pages += 1;
        if self.pages > MAX_PAGES {
            return Err(format!("ListParts went on for more than {MAX_PAGES} pages"));
        }
        for p in parts {
            let n = p.part_number;
            if n <= self.marker || n > MAX_PARTS {
                return Err(format!(
                    "ListParts listed part {n} in a page after part {}",
                    self.marker
                ));
            }
            if !self.seen.insert(n) {
                return Err(format!("ListParts listed part {n} twice"));
            }
            self.parts.push(p);
        }
        if !truncated {
            return Ok(false);
        }
        let next = next_marker
            .filter(|m| !m.is_empty())
            .ok_or("a truncated ListParts page without a NextPartNumberMarker")?;
        let next: i32 = next
            .trim()
            .parse()
            .map_err(|_| format!("an unreadable NextPartNumberMarker {next:?}"))?;
        if next <= self.marker || next >= MAX_PARTS {
            // Nothing can follow part 10,000.
            return Err(format!(
                "a NextPartNumberMarker of {next} after part {}",
                self.marker
            ));
        }
        self.marker = next;
        Ok(true)
    }

    /// Every part, in part-number order.
    pub fn finish(mut self) -> Vec<PartInfo> {
        self.parts.sort_by_key(|p| p.part_number);
        self.parts
    }
}

/// Walks the pages of ListMultipartUploads.
#[derive(Debug, Default)]
pub struct UploadsPager {
    key_marker: Option<String>,
    id_marker: Option<String>,
    seen: HashSet<(String, String)>,
    uploads: Vec<UploadInfo>,
    pages: usize,
    /// Stopped at [`MAX_UPLOADS`] with more to come.
    capped: bool,
}

impl UploadsPager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `key-marker` and `upload-id-marker` of the next request.
    pub fn markers(&self) -> (Option<String>, Option<String>) {
        (self.key_marker.clone(), self.id_marker.clone())
    }

    /// Whether the walk stopped at [`MAX_UPLOADS`] with more to come.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// Takes one page; `Ok(true)` when another is to be asked for.
    pub fn take(
        &mut self,
        uploads: impl IntoIterator<Item = UploadInfo>,
        truncated: bool,
        next_key: Option<&str>,
        next_id: Option<&str>,
    ) -> Result<bool, String> {
        self.pages += 1;
        if self.pages > MAX_PAGES {
            return Err(format!(
                "ListMultipartUploads went on for more than {MAX_PAGES} pages"
            ));
        }
        let before = self.uploads.len();
        let mut uploads = uploads.into_iter().peekable();
        while let Some(u) = uploads.next() {
            if !self.seen.insert((u.key.clone(), u.upload_id.clone())) {
                return Err("ListMultipartUploads listed an upload twice".into());
            }
            self.uploads.push(u);
            if self.uploads.len() == MAX_UPLOADS {
                self.capped = uploads.peek().is_some() || truncated;
                return Ok(false);
            }
        }
        if !truncated {
            return Ok(false);
        }
        if self.uploads.len() == before {
            return Err("a truncated ListMultipartUploads page with no uploads".into());
        }
        let next_key = next_key
            .filter(|k| !k.is_empty())
            .ok_or("a truncated ListMultipartUploads page without a NextKeyMarker")?;
        let next_id = next_id.filter(|i| !i.is_empty());
        if let Some(k) = &self.key_marker {
            if next_key < k.as_str() {
                return Err("a ListMultipartUploads NextKeyMarker that goes backwards".into());
            }
            if next_key == k.as_str() && next_id == self.id_marker.as_deref() {
                return Err("ListMultipartUploads markers that do not move".into());
            }
        }
        self.key_marker = Some(next_key.to_owned());
        self.id_marker = next_id.map(str::to_owned);
        Ok(true)
    }

    pub fn finish(self) -> Vec<UploadInfo> {
        self.uploads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn part(n: i32) -> PartInfo {
        PartInfo {
            part_number: n,
            etag: format!("e{n}"),
            size: 5,
            last_modified: SystemTime::UNIX_EPOCH,
        }
    }

    fn parts(r: std::ops::RangeInclusive<i32>) -> Vec<PartInfo> {
        r.map(part).collect()
    }

    fn upload(k: &str, id: &str) -> UploadInfo {
        UploadInfo {
            key: k.into(),
            upload_id: id.into(),
            initiated: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn parts_of_an_honest_store() {
        let mut p = PartsPager::new();
        assert_eq!(p.marker(), None);
        assert!(p.take(parts(1..=1000), true, Some("1000")).unwrap());
        assert_eq!(p.marker().as_deref(), Some("1000"));
        // Out of order within a page (some stores list so), with gaps.
        let mut page = parts(1001..=1500);
        page.reverse();
        page.push(part(1700));
        assert!(!p.take(page, false, None).unwrap());
        let all = p.finish();
        assert_eq!(all.len(), 501 + 1000);
        assert!(all.windows(2).all(|w| w[0].part_number < w[1].part_number));
        // 10,000 parts, one page at a time: allowed.
        let mut p = PartsPager::new();
        for k in 0..10 {
            let (a, b) = (k * 1000 + 1, k * 1000 + 1000);
            let last = b == MAX_PARTS;
            let next = b.to_string();
            assert_eq!(
                p.take(parts(a..=b), !last, (!last).then_some(next.as_str())),
                Ok(!last)
            );
        }
        assert_eq!(p.finish().len(), MAX_PARTS as usize);
    }

    #[test]
    fn parts_markers_must_move_forward() {
        // The same marker again: an endless loop otherwise.
        let mut p = PartsPager::new();
        assert!(p.take(parts(1..=3), true, Some("3")).unwrap());
        assert!(p.take(vec![], true, Some("3")).is_err());
        // Backwards.
        let mut p = PartsPager::new();
        assert!(p.take(parts(1..=3), true, Some("3")).unwrap());
        assert!(p.take(parts(4..=4), true, Some("2")).is_err());
        // No marker, an unreadable one, or one past the last part number.
        assert!(PartsPager::new().take(parts(1..=3), true, None).is_err());
        assert!(PartsPager::new()
            .take(parts(1..=3), true, Some(""))
            .is_err());
        assert!(PartsPager::new()
            .take(parts(1..=3), true, Some("x"))
            .is_err());
        assert!(PartsPager::new()
            .take(parts(1..=3), true, Some("10000"))
            .is_err());
        assert!(PartsPager::new()
            .take(parts(1..=3), true, Some("-5"))
            .is_err());
    }

    #[test]
    fn parts_beyond_the_limits_or_repeated_are_refused() {
        assert!(PartsPager::new().take(parts(0..=1), false, None).is_err());
        assert!(PartsPager::new()
            .take(parts(9999..=10001), false, None)
            .is_err());
        assert!(PartsPager::new()
            .take(vec![part(1), part(2), part(1)], false, None)
            .is_err());
        // A part at or before the marker asked after.
        let mut p = PartsPager::new();
        assert!(p.take(parts(1..=5), true, Some("5")).unwrap());
        assert!(p.take(parts(5..=6), false, None).is_err());
    }

    #[test]
    fn an_endless_parts_listing_ends_in_bounded_pages() {
        // A store that always says "more", one part further each time.
        let mut p = PartsPager::new();
        let mut pages = 0;
        let err = loop {
            pages += 1;
            let n = pages;
            match p.take(vec![part(n)], true, Some(&n.to_string())) {
                Ok(true) => continue,
                Ok(false) => panic!("ended"),
                Err(e) => break e,
            }
        };
        assert!(pages <= MAX_PARTS, "{pages} pages: {err}");
        // Marker moving, no parts at all.
        let mut p = PartsPager::new();
        let mut pages = 0;
        while let Ok(true) = p.take(vec![], true, Some(&(pages + 1).to_string())) {
            pages += 1;
        }
        assert!(pages < MAX_PARTS as usize);
    }

    #[test]
    fn uploads_of_an_honest_store() {
        let mut p = UploadsPager::new();
        assert_eq!(p.markers(), (None, None));
        let page1 = vec![upload("a", "1"), upload("a", "2"), upload("b", "9")];
        assert!(p.take(page1, true, Some("b"), Some("9")).unwrap());
        assert_eq!(p.markers(), (Some("b".into()), Some("9".into())));
        // The same key continues, with another upload after the id marker.
        assert!(p
            .take(vec![upload("b", "3")], true, Some("b"), Some("3"))
            .unwrap());
        // A marker with no upload id.
        assert!(p
            .take(vec![upload("c", "1")], true, Some("c"), None)
            .unwrap());
        assert!(!p.take(vec![upload("d", "1")], false, None, None).unwrap());
        assert!(!p.capped());
        assert_eq!(p.finish().len(), 6);
    }

    #[test]
    fn uploads_markers_must_move_forward() {
        let page = || vec![upload("k", "1")];
        // Repeated.
        let mut p = UploadsPager::new();
        assert!(p.take(page(), true, Some("k"), Some("1")).unwrap());
        assert!(p
            .take(vec![upload("k", "2")], true, Some("k"), Some("1"))
            .is_err());
        // Backwards by key.
        let mut p = UploadsPager::new();
        assert!(p.take(page(), true, Some("k"), Some("1")).unwrap());
        assert!(p
            .take(vec![upload("z", "2")], true, Some("j"), Some("2"))
            .is_err());
        // Truncated without a marker, or with nothing in the page.
        assert!(UploadsPager::new().take(page(), true, None, None).is_err());
        assert!(UploadsPager::new()
            .take(page(), true, Some(""), Some("1"))
            .is_err());
        assert!(UploadsPager::new()
            .take(vec![], true, Some("k"), Some("1"))
            .is_err());
        // The same upload again (a marker cycling back).
        let mut p = UploadsPager::new();
        assert!(p.take(page(), true, Some("k"), Some("1")).unwrap());
        assert!(p
            .take(vec![upload("k", "2")], true, Some("k"), Some("2"))
            .unwrap());
        assert!(p.take(page(), true, Some("k"), Some("3")).is_err());
    }

    #[test]
    fn an_endless_uploads_listing_stops_at_the_cap() {
        // A store that always has 1,000 more, under keys that keep growing.
        let mut p = UploadsPager::new();
        let mut pages = 0;
        loop {
            let page: Vec<_> = (0..1000)
                .map(|i| upload(&format!("k{pages:05}-{i:04}"), "u"))
                .collect();
            let last = page.last().unwrap().key.clone();
            pages += 1;
            if !p.take(page, true, Some(&last), Some("u")).unwrap() {
                break;
            }
        }
        assert_eq!(pages, MAX_UPLOADS / 1000);
        assert!(p.capped());
        assert_eq!(p.finish().len(), MAX_UPLOADS);
        // Exactly the cap, and nothing more: not capped.
        let mut p = UploadsPager::new();
        let page: Vec<_> = (0..MAX_UPLOADS)
            .map(|i| upload(&format!("k{i:05}"), "u"))
            .collect();
        assert!(!p.take(page, false, None, None).unwrap());
        assert!(!p.capped());
    }

    #[test]
    fn list_pages() {
        assert!(check_list_page(None, 1000, 1000, true, Some("t")).is_ok());
        assert!(check_list_page(Some("t"), 1000, 10, true, Some("u")).is_ok());
        assert!(check_list_page(Some("t"), 1000, 10, false, Some("t")).is_ok());
        assert!(check_list_page(Some("t"), 1000, 10, true, Some("t")).is_err());
        // Over S3's 1,000, or over more asked for.
        assert!(check_list_page(None, 1000, 1001, false, None).is_err());
        assert!(check_list_page(None, 1, 1000, false, None).is_ok());
        assert!(check_list_page(None, 5000, 5000, false, None).is_ok());
        assert!(check_list_page(None, 5000, 5001, false, None).is_err());
    }
}
