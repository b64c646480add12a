//! Operator commands over a config's store: `inspect`, `rewrap` and
//! `reencrypt`. They use the gateway's own code paths (resolution, header
//! placement, sealing), not a second implementation.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;

use crate::envelope::header::MetaValue;
use crate::envelope::manifest::Manifest;
use crate::envelope::recipient::Algorithm;
use crate::envelope::{BodyBinding, Header, Recipient, RecipientStanza, SEGMENT_SIZE};
use crate::gateway::checksum::{ClientChecks, Expected, Fault};
use crate::gateway::object::manifest_key;
use crate::gateway::{Gateway, HIDDEN_PREFIX, META_KEY};
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

fn err(e: s3s::S3Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code().as_str(), e.message().unwrap_or_default())
}

/// Describes a stored object without decrypting its content.
pub async fn inspect(gw: &Gateway, bucket: &str, key: &str) -> anyhow::Result<String> {
    use std::fmt::Write;
    let store = gw.store();
    let (info, _) = store
        .get_tail(bucket, key, 0)
        .await
        .map_err(|e| anyhow::anyhow!("{bucket}/{key}: {} {}", e.code, e.message))?;
    let meta = info.headers.metadata.get(META_KEY).ok_or_else(|| {
        anyhow::anyhow!("{bucket}/{key} was not written by sealgate (no `sg` metadata)")
    })?;
    let mut out = String::new();
    let (header, placement) = match MetaValue::decode(meta)? {
        MetaValue::Inline(raw) => (Header::parse(&raw)?, "object metadata".to_owned()),
        MetaValue::Overflow { header_len, .. } => {
            let (_, mut s) = store
                .get(bucket, key, Some((0, header_len as u64)), None)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let mut raw = Vec::new();
            while let Some(c) = s.next().await {
                raw.extend_from_slice(&c?);
            }
            (
                Header::parse(&raw)?,
                format!("head of the object body ({header_len} bytes; metadata too small)"),
            )
        }
    };
    writeln!(out, "object:          s3://{bucket}/{key}")?;
    writeln!(out, "format version:  {}", header.version)?;
    writeln!(out, "envelope:        {placement}")?;
    writeln!(out, "stored size:     {} bytes (ciphertext)", info.size)?;
    writeln!(out, "segment size:    {SEGMENT_SIZE} bytes")?;
    match header.binding {
        BodyBinding::Single {
            plaintext_len: p, ..
        } => {
            writeln!(out, "layout:          single part")?;
            writeln!(out, "plaintext size:  {p} bytes")?;
        }
        BodyBinding::Multipart { upload_id } => {
            writeln!(
                out,
                "layout:          multipart (manifest {})",
                manifest_key(&upload_id)
            )?;
            match store
                .get(bucket, &manifest_key(&upload_id), None, None)
                .await
            {
                Ok((_, mut s)) => {
                    let mut raw = Vec::new();
                    while let Some(c) = s.next().await {
                        raw.extend_from_slice(&c?);
                    }
                    let m = Manifest::parse(&raw)?;
                    writeln!(out, "parts:           {}", m.parts.len())?;
                    writeln!(
                        out,
                        "plaintext size:  {} bytes (from the manifest)",
                        m.plaintext_len
                    )?;
                }
                Err(e) => writeln!(
                    out,
                    "manifest:        unreadable ({} {})",
                    e.code, e.message
                )?,
            }
        }
    }
    writeln!(
        out,
        "data key commitment: {}",
        hex::encode(&header.commitment[..16])
    )?;
    writeln!(out, "recipients:      {}", header.recipients.len())?;
    for st in &header.recipients {
        let alg = Algorithm::from_byte(st.algorithm).map_or("unknown", |a| a.name());
        let name = gw
            .keyring()
            .name_of(&st.key_id)
            .unwrap_or("(unknown to this config)");
        writeln!(
            out,
            "  - {} {alg} {} bytes  {name}",
            hex::encode(st.key_id),
            st.wrapped.len()
        )?;
    }
    let readable = header.recipients.iter().any(|st| {
        gw.keyring().identities().iter().any(|(_, id)| {
            use crate::envelope::Identity;
            id.key_id() == st.key_id
        })
    });
    writeln!(
        out,
        "this gateway can decrypt it: {}",
        if readable { "yes" } else { "no" }
    )?;
    if readable {
        let r = gw.resolve_tail(bucket, key).await.map_err(err)?;
        writeln!(out, "plaintext ETag:  {}", r.etag)?;
    }
    Ok(out)
}

/// Every visible key under a prefix (or the one object named exactly).
async fn keys_under(gw: &Gateway, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
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

enum Outcome {
    Changed,
    Already,
    Failed(String),
}

struct Progress {
    total: usize,
    done: AtomicUsize,
    tty: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: AtomicUsize::new(0),
            tty: std::io::stderr().is_terminal(),
        }
    }
    fn step(&self, key: &str, what: &str) {
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

/// Changes the recipients of existing objects by rewriting only their
/// envelope: a server-side copy of each object onto itself with new metadata.
/// Safe to interrupt and run again (each object is replaced atomically, and
/// objects already right are skipped).
pub async fn rewrap(
    gw: &Gateway,
    bucket: &str,
    prefix: &str,
    add: &[String],
    remove: &[String],
    concurrency: usize,
) -> anyhow::Result<Summary> {
    let kr = gw.keyring();
    let mut add_ids = Vec::new();
    for n in add {
        let r = kr.recipient(n).ok_or_else(|| {
            anyhow::anyhow!("--add {n}: no identity or recipient of that name in the config")
        })?;
        add_ids.push((r.key.key_id(), r.key.clone()));
    }
    let mut remove_ids = BTreeSet::new();
    for n in remove {
        let r = kr.recipient(n).ok_or_else(|| {
            anyhow::anyhow!("--remove {n}: no identity or recipient of that name in the config")
        })?;
        remove_ids.insert(r.key.key_id());
    }
    let keys = keys_under(gw, bucket, prefix).await?;
    let progress = Progress::new(keys.len());
    let results: Vec<(String, Outcome)> = futures::stream::iter(keys)
        .map(|k| {
            let (add_ids, remove_ids, progress) = (&add_ids, &remove_ids, &progress);
            async move {
                let o = rewrap_one(gw, bucket, &k, add_ids, remove_ids).await;
                progress.step(
                    &k,
                    match &o {
                        Outcome::Changed => "rewrapped",
                        Outcome::Already => "already right",
                        Outcome::Failed(_) => "FAILED",
                    },
                );
                (k, o)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut s = Summary::default();
    for (k, o) in results {
        match o {
            Outcome::Changed => s.changed += 1,
            Outcome::Already => s.already += 1,
            Outcome::Failed(why) => s.failed.push((k, why)),
        }
    }
    s.failed.sort();
    Ok(s)
}

async fn rewrap_one(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    add: &[([u8; 8], std::sync::Arc<crate::envelope::RsaOaepRecipient>)],
    remove: &BTreeSet<[u8; 8]>,
) -> Outcome {
    let r = match gw.resolve_tail(bucket, key).await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Failed(format!(
                "{}: {}",
                e.code().as_str(),
                e.message().unwrap_or_default()
            ))
        }
    };
    let mut stanzas: Vec<RecipientStanza> = r
        .header
        .recipients
        .iter()
        .filter(|s| !remove.contains(&s.key_id))
        .cloned()
        .collect();
    for (id, rec) in add {
        if !stanzas.iter().any(|s| s.key_id == *id) {
            match rec.wrap(&r.dk) {
                Ok(st) => stanzas.push(st),
                Err(e) => return Outcome::Failed(e.to_string()),
            }
        }
    }
    if stanzas.is_empty() {
        return Outcome::Failed("removing every recipient would make the object unreadable".into());
    }
    let same = stanzas.len() == r.header.recipients.len()
        && stanzas
            .iter()
            .all(|s| r.header.recipients.iter().any(|o| o.key_id == s.key_id));
    if same {
        return Outcome::Already;
    }
    if r.layout.parts.first().is_some_and(|p| p.ct_offset > 0) {
        return Outcome::Failed(
            "its envelope is stored in the object body (too large for metadata); use `sealgate reencrypt`".into(),
        );
    }
    let h = match r
        .header
        .rebind(&r.dk, Some(stanzas), r.header.binding, bucket, key)
    {
        Ok(h) => h,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let mut headers = r.info.headers.clone();
    headers.metadata.remove(META_KEY);
    let meta = match crate::gateway::put::place_header(&h, &r.dk, &headers.metadata, bucket, key) {
        Ok((m, None)) => m,
        Ok((_, Some(_))) => {
            return Outcome::Failed(
                "the new envelope does not fit in metadata; use `sealgate reencrypt`".into(),
            )
        }
        Err(e) => return Outcome::Failed(e.message().unwrap_or_default().to_owned()),
    };
    headers.metadata.insert(META_KEY.to_owned(), meta);
    let res = if r.info.size > crate::gateway::copy::MAX_SINGLE_COPY {
        crate::gateway::copy::copy_large(gw, bucket, key, bucket, key, &headers, &r)
            .await
            .map(|_| ())
            .map_err(|e| e.message().unwrap_or_default().to_owned())
    } else {
        gw.store()
            .copy(bucket, key, bucket, key, &headers, Some(&r.info.etag))
            .await
            .map(|_| ())
            .map_err(|e| format!("{} {}", e.code, e.message))
    };
    match res {
        Ok(()) => Outcome::Changed,
        Err(e) => Outcome::Failed(e),
    }
}

/// Encrypts objects again under a fresh data key for the current policy: the
/// real revocation (a removed recipient may have kept an old data key).
/// Content passes through sealgate.
pub async fn reencrypt(
    gw: &Gateway,
    bucket: &str,
    prefix: &str,
    concurrency: usize,
) -> anyhow::Result<Summary> {
    let keys = keys_under(gw, bucket, prefix).await?;
    let progress = Progress::new(keys.len());
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(keys)
        .map(|k| {
            let progress = &progress;
            async move {
                let o = reencrypt_one(gw, bucket, &k).await;
                progress.step(&k, if o.is_ok() { "re-encrypted" } else { "FAILED" });
                (k, o)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut s = Summary::default();
    for (k, o) in results {
        match o {
            Ok(()) => s.changed += 1,
            Err(why) => s.failed.push((k, why)),
        }
    }
    s.failed.sort();
    Ok(s)
}

async fn reencrypt_one(gw: &Gateway, bucket: &str, key: &str) -> Result<(), String> {
    let fmt =
        |e: s3s::S3Error| format!("{}: {}", e.code().as_str(), e.message().unwrap_or_default());
    let r = gw.resolve_tail(bucket, key).await.map_err(fmt)?;
    if r.size > 5 * 1024 * 1024 * 1024 {
        return Err("objects over 5 GiB cannot be re-encrypted yet".into());
    }
    let recipients = crate::gateway::put::policy_recipients(gw, bucket, key).map_err(fmt)?;
    let (stream, len) = crate::gateway::copy::read_plaintext(gw, bucket, key, None)
        .await
        .map_err(fmt)?;
    let mut headers = r.info.headers.clone();
    headers.metadata.remove(META_KEY);
    let fault = Fault::default();
    let checks = ClientChecks::new(
        Expected {
            md5: hex::decode(&r.etag).ok().and_then(|v| v.try_into().ok()),
            ..Default::default()
        },
        None,
        fault.clone(),
    );
    crate::gateway::put::seal_and_store(
        gw,
        bucket,
        key,
        headers,
        stream,
        len,
        &recipients,
        checks,
        &fault,
    )
    .await
    .map_err(fmt)?;
    if let BodyBinding::Multipart { upload_id } = r.header.binding {
        let _ = gw.store().delete(bucket, &manifest_key(&upload_id)).await;
    }
    Ok(())
}
