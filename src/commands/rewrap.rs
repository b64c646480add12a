//! `sealgate rewrap`: adds or removes recipients of existing objects by
//! rewriting only their envelope (a server-side copy of each object onto
//! itself; no content passes through sealgate).

use std::collections::BTreeSet;

use futures::StreamExt;

use super::common::{keys_under, Progress, Summary};
use super::parse_s3_url;
use crate::cli::RewrapArgs;
use crate::config::Config;
use crate::envelope::RecipientStanza;
use crate::gateway::Gateway;

/// The `sealgate rewrap` command; fails (after doing what it can) when any
/// object failed.
pub async fn run(args: RewrapArgs) -> anyhow::Result<()> {
    let RewrapArgs {
        config,
        add,
        remove,
        concurrency,
        target,
    } = args;
    if add.is_empty() && remove.is_empty() {
        anyhow::bail!("nothing to do: give --add NAME and/or --remove NAME");
    }
    let rt = crate::app::build(&Config::load(&config)?)?;
    let (b, p) = parse_s3_url(&target)?;
    let s = rewrap(&rt.gateway, &b, &p, &add, &remove, concurrency).await?;
    print!("{s}");
    if !s.failed.is_empty() {
        anyhow::bail!("{} object(s) failed", s.failed.len());
    }
    Ok(())
}

enum Outcome {
    Changed,
    Already,
    Failed(String),
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
    add: &[([u8; 8], crate::keyring::SharedRecipient)],
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
    // One rewrite for copies and rewraps: the envelope bound to the same
    // name with the new stanzas (a multipart object gets a new manifest);
    // an envelope kept at the head of the body cannot change server-side,
    // and the error says to use `sealgate reencrypt`. On a bucket with
    // Object Lock the new version keeps the lock the old one has now (the
    // old version stays, locked, wrapped as it was).
    let lock = match gw.carried_lock(bucket, &r.info.headers).await {
        Ok(l) => l,
        Err(e) => return Outcome::Failed(e.message().unwrap_or_default().to_owned()),
    };
    match crate::gateway::copy::rewrite(
        gw,
        &r,
        (bucket, key),
        (bucket, key),
        crate::gateway::copy::Stanzas::Given(stanzas),
        None,
        crate::gateway::lock::Write {
            cond: None,
            lock: lock.as_ref(),
        },
    )
    .await
    {
        Ok(_) => Outcome::Changed,
        Err(e) => Outcome::Failed(e.message().unwrap_or_default().to_owned()),
    }
}
