//! What several commands share: object URLs, walking a prefix, the summary
//! and progress output of the bulk commands (`rewrap`, `reencrypt`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::gateway::{Gateway, HIDDEN_PREFIX};
use crate::store::ListRequest;

/// Splits `s3://bucket[/key-or-prefix]`.
pub fn parse_s3_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow::anyhow!("expected s3://BUCKET[/KEY], got {url:?}"))?;
    let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
    if b.is_empty() {
        anyhow::bail!("no bucket in {url:?}");
    }
    Ok((b.to_owned(), k.to_owned()))
}

/// Every visible key under a prefix (or the one object named exactly).
pub(super) async fn keys_under(
    gw: &Gateway,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    if !prefix.is_empty() && !prefix.ends_with('/') && gw.store().head(bucket, prefix).await.is_ok()
    {
        return Ok(vec![prefix.to_owned()]);
    }
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = gw
            .store()
            .list(
                bucket,
                &ListRequest {
                    prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                    max_keys: 1000,
                    continuation_token: token.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("listing {bucket}: {} {}", e.code, e.message))?;
        keys.extend(
            page.entries
                .into_iter()
                .map(|e| e.key)
                .filter(|k| !k.starts_with(HIDDEN_PREFIX)),
        );
        if !page.is_truncated || page.next_continuation_token.is_none() {
            break;
        }
        token = page.next_continuation_token;
    }
    Ok(keys)
}

/// What a bulk command did, printed as its result.
#[derive(Default, Debug)]
pub struct Summary {
    pub changed: usize,
    pub already: usize,
    pub failed: Vec<(String, String)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "changed: {}, already right: {}, failed: {}",
            self.changed,
            self.already,
            self.failed.len()
        )?;
        for (k, why) in &self.failed {
            writeln!(f, "  failed {k}: {why}")?;
        }
        Ok(())
    }
}

pub(super) struct Progress {
    total: usize,
    done: AtomicUsize,
    tty: bool,
}

impl Progress {
    pub(super) fn new(total: usize) -> Self {
        Self {
            total,
            done: AtomicUsize::new(0),
            tty: std::io::stderr().is_terminal(),
        }
    }
    pub(super) fn step(&self, key: &str, what: &str) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.tty {
            let width = 30;
            let filled = n * width / self.total.max(1);
            eprint!(
                "\r[{}{}] {n}/{}  ",
                "#".repeat(filled),
                " ".repeat(width - filled),
                self.total
            );
            if n == self.total {
                eprintln!();
            }
        } else {
            eprintln!("[{n}/{}] {what} {key}", self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

    #[test]
    fn s3_urls() {
        let ok = |u: &str| parse_s3_url(u).expect(u);
        assert_eq!(ok("s3://b"), ("b".into(), "".into()));
        assert_eq!(ok("s3://b/"), ("b".into(), "".into()));
        assert_eq!(ok("s3://b/k"), ("b".into(), "k".into()));
        assert_eq!(ok("s3://b/dir/"), ("b".into(), "dir/".into()));
        assert_eq!(ok("s3://b/a/b/c"), ("b".into(), "a/b/c".into()));
        for bad in ["b/k", "s3:/b/k", "http://b/k", "s3://", "s3:///k", ""] {
            assert!(parse_s3_url(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
