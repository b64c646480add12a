//! What the store says a ranged GetObject answer holds (`Content-Range`,
//! `Content-Length`), checked against what was asked before a byte of the
//! body is read. Pure functions; the byte count of the body itself is held
//! to the same length by the HTTP layer ([`super::answer_limit`]) and by the
//! tail reader.

/// The part of an object an answer holds: `[start, end)` of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

impl Served {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
}

impl std::fmt::Display for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end.checked_sub(1) {
            Some(last) if self.end > self.start => {
                write!(f, "bytes {}-{last}/{}", self.start, self.total)
            }
            _ => write!(f, "no bytes of {}", self.total),
        }
    }
}

/// Parses `bytes FIRST-LAST/TOTAL` (a known total; `*` is refused) into
/// `[FIRST, LAST + 1)` of TOTAL. A total of 0 is an empty object, whatever
/// the span says: Garage answers a suffix range of an empty object with
/// `bytes 0-18446744073709551615/0`.
pub fn parse_content_range(v: &str) -> Option<Served> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let digits = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last, total) = (digits(first)?, digits(last)?, digits(total)?);
    if total == 0 {
        return Some(Served {
            start: 0,
            end: 0,
            total: 0,
        });
    }
    (first <= last && last < total).then(|| Served {
        start: first,
        end: last + 1,
        total,
    })
}

fn length(content_length: Option<i64>) -> Result<Option<u64>, String> {
    match content_length {
        None => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as u64)),
        Some(n) => Err(format!("a negative Content-Length ({n})")),
    }
}

fn agrees(served: Served, content_length: Option<u64>) -> Result<Served, String> {
    match content_length {
        Some(n) if n != served.len() => Err(format!(
            "Content-Length {n} disagrees with Content-Range ({served})"
        )),
        _ => Ok(served),
    }
}

/// Checks the answer to `Range: bytes=A-(B-1)` for `[a, b)`: the store may
/// cut the end at the object's end, nothing else. An answer without a
/// Content-Range (a store that ignored the Range) passes only when it is
/// the whole object and that lies within the range.
pub fn check_range_answer(
    (a, b): (u64, u64),
    content_range: Option<&str>,
    content_length: Option<i64>,
) -> Result<Served, String> {
    let cl = length(content_length)?;
    match content_range {
        Some(cr) => {
            let s = parse_content_range(cr)
                .ok_or_else(|| format!("an unreadable Content-Range {cr:?}"))?;
            if s.start != a || s.end > b || (s.end < b && s.end != s.total) {
                return Err(format!(
                    "{s} for a request of bytes {a}-{}",
                    b.saturating_sub(1)
                ));
            }
            agrees(s, cl)
        }
        None => match cl {
            Some(n) if a == 0 && n <= b => Ok(Served {
                start: 0,
                end: n,
                total: n,
            }),
            _ => Err(format!(
                "no Content-Range (the whole object, {} bytes) for a request of bytes {a}-{}",
                cl.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
                b.saturating_sub(1)
            )),
        },
    }
}

/// Checks the answer to `Range: bytes=-N`: the last `min(n, total)` bytes,
/// or (without a Content-Range) the whole object when it is at most `n`.
pub fn check_tail_answer(
    n: u64,
    content_range: Option<&str>,
    content_length: Option<i64>,
) -> Result<Served, String> {
    let cl = length(content_length)?;
    match content_range {
        Some(cr) => {
            let s = parse_content_range(cr)
                .ok_or_else(|| format!("an unreadable Content-Range {cr:?}"))?;
            if s.end != s.total || s.len() != n.min(s.total) {
                return Err(format!("{s} for a request of the last {n} bytes"));
            }
            agrees(s, cl)
        }
        None => match cl {
            Some(len) if len <= n => Ok(Served {
                start: 0,
                end: len,
                total: len,
            }),
            _ => Err(format!(
                "no Content-Range (the whole object, {} bytes) for a request of the last {n} bytes",
                cl.map_or_else(|| "unknown".to_owned(), |l| l.to_string())
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: u64, end: u64, total: u64) -> Served {
        Served { start, end, total }
    }

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(parse_content_range("bytes 0-9/10"), Some(s(0, 10, 10)));
        assert_eq!(parse_content_range(" bytes 5-5/6 "), Some(s(5, 6, 6)));
        assert_eq!(
            parse_content_range("bytes 990-999/1000"),
            Some(s(990, 1000, 1000))
        );
        // An empty object, as Garage writes it.
        assert_eq!(
            parse_content_range("bytes 0-18446744073709551615/0"),
            Some(s(0, 0, 0))
        );
        for bad in [
            "bytes 18446744073709551615-18446744073709551615/18446744073709551615",
            "",
            "bytes",
            "bytes */10",
            "bytes 0-9/*",
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes -1-9/10",
            "bytes +0-9/10",
            "items 0-9/10",
            "bytes 0-9",
            "bytes 0-99999999999999999999/100000000000000000000",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn served_ranges_print_as_http_does() {
        assert_eq!(s(5, 10, 20).to_string(), "bytes 5-9/20");
        assert_eq!(s(0, 0, 0).to_string(), "no bytes of 0");
    }

    #[test]
    fn range_answers() {
        let ok = |asked, cr, cl| check_range_answer(asked, cr, cl).unwrap();
        let bad = |asked, cr, cl| check_range_answer(asked, cr, cl).unwrap_err();
        assert_eq!(ok((0, 10), Some("bytes 0-9/100"), Some(10)), s(0, 10, 100));
        assert_eq!(
            ok((90, 100), Some("bytes 90-99/100"), None),
            s(90, 100, 100)
        );
        // Cut at the object's end.
        assert_eq!(
            ok((90, 200), Some("bytes 90-99/100"), Some(10)),
            s(90, 100, 100)
        );
        // The whole object for a range that covers it.
        assert_eq!(ok((0, 100), None, Some(100)), s(0, 100, 100));
        assert_eq!(ok((0, 200), None, Some(100)), s(0, 100, 100));
        // Another start, more than asked, an end cut short of the object's.
        bad((10, 20), Some("bytes 0-9/100"), Some(10));
        bad((10, 20), Some("bytes 10-29/100"), Some(20));
        bad((10, 20), Some("bytes 10-14/100"), Some(5));
        // Content-Length disagreeing with Content-Range.
        bad((10, 20), Some("bytes 10-19/100"), Some(11));
        bad((10, 20), Some("bytes 10-19/100"), Some(-1));
        // The Range ignored: the whole, larger object, or from byte 0.
        bad((0, 10), None, Some(100));
        bad((10, 20), None, Some(15));
        bad((0, 10), None, None);
        bad((0, 10), Some("bytes 0-9/*"), Some(10));
    }

    #[test]
    fn tail_answers() {
        let ok = |n, cr, cl| check_tail_answer(n, cr, cl).unwrap();
        let bad = |n, cr, cl| check_tail_answer(n, cr, cl).unwrap_err();
        assert_eq!(ok(32, Some("bytes 68-99/100"), Some(32)), s(68, 100, 100));
        assert_eq!(ok(32, Some("bytes 0-9/10"), Some(10)), s(0, 10, 10));
        assert_eq!(ok(32, None, Some(10)), s(0, 10, 10));
        assert_eq!(ok(32, None, Some(32)), s(0, 32, 32));
        // An empty object (Garage's Content-Range), and a lie about one.
        assert_eq!(
            ok(32, Some("bytes 0-18446744073709551615/0"), Some(0)),
            s(0, 0, 0)
        );
        bad(32, Some("bytes 0-18446744073709551615/0"), Some(5));
        // The whole large object, with or without a Content-Range.
        bad(32, None, Some(1 << 30));
        bad(32, Some("bytes 0-1073741823/1073741824"), Some(1 << 30));
        bad(32, None, None);
        // Not the end, not the length asked, or lengths that disagree.
        bad(32, Some("bytes 0-31/100"), Some(32));
        bad(32, Some("bytes 78-99/100"), Some(22));
        bad(32, Some("bytes 68-99/100"), Some(33));
        bad(32, Some("bytes 67-99/100"), Some(33));
    }
}
