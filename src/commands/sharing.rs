//! `sealgate keys publish|list` and `sealgate group create|add|remove|show`:
//! the key directory and signed groups at the store (docs/SHARING.md).
//!
//! The library functions take a gateway built from a config with
//! `[sharing]`; the store never gets a private key, encrypted or not: only
//! public keys (the directory) and signed group documents (which carry each
//! member's epoch key wrapped for that member alone).

use std::fmt::Write as _;

use crate::cli::{GroupArgs, GroupCommand, KeysArgs, KeysCommand};
use crate::config::Config;
use crate::envelope::recipient::key_id_of_spki;
use crate::envelope::RsaOaepRecipient;
use crate::gateway::Gateway;
use crate::groups::{read_bounded, GroupFailure, Groups};
use crate::sharing::fingerprint::Fingerprint;
use crate::sharing::group::{
    group_document_key, key_directory_key, GroupContent, DIRECTORY_PREFIX,
};
use crate::sharing::signing::SigningKey;
use crate::store::ListRequest;

fn groups(gw: &Gateway) -> anyhow::Result<&Groups> {
    gw.groups()
        .map(|g| g.as_ref())
        .ok_or_else(|| anyhow::anyhow!("this config has no [sharing] section"))
}

fn store_err(e: crate::store::StoreError) -> anyhow::Error {
    anyhow::anyhow!("the store: {} {}", e.code, e.message)
}

/// The public key as published: SPKI PEM.
fn pem(spki: &[u8]) -> anyhow::Result<String> {
    Ok(crate::keyring::public_pem(spki)?)
}

/// Publishes this user's public key to the key directory. Returns what to
/// tell the user (the fingerprint to read out to administrators).
pub async fn publish(gw: &Gateway) -> anyhow::Result<String> {
    let g = groups(gw)?;
    let s = g.settings();
    let spki = s.me.spki_der();
    let key = key_directory_key(&s.member);
    gw.put_small(&s.bucket, &key, pem(&spki)?.into_bytes().into())
        .await
        .map_err(store_err)?;
    Ok(format!(
        "published {} as s3://{}/{key}\nfingerprint: {}\nTell it to your group administrators by a channel the store does not control (in person, by phone); they check it when they add you.\n",
        s.member,
        s.bucket,
        Fingerprint::of_spki(&spki)
    ))
}

/// A published key read from the directory (the store's word).
async fn published(gw: &Gateway, member: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let s = groups(gw)?.settings();
    let Some(raw) = read_bounded(gw.store(), &s.bucket, &key_directory_key(member))
        .await
        .map_err(store_err)?
    else {
        return Ok(None);
    };
    let text = String::from_utf8(raw).map_err(|_| anyhow::anyhow!("{member}: not a PEM file"))?;
    let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
        .map_err(|_| anyhow::anyhow!("{member}: not a PEM file"))?;
    if label != "PUBLIC KEY" {
        anyhow::bail!("{member}: not a PUBLIC KEY PEM");
    }
    Ok(Some(der))
}

/// The key directory, with what each configured group's signed document
/// says of each name.
pub async fn list(gw: &Gateway) -> anyhow::Result<String> {
    let g = groups(gw)?;
    let s = g.settings();
    let mut out = String::new();
    let prefix = format!("{DIRECTORY_PREFIX}keys/");
    let mut names = Vec::new();
    let mut req = ListRequest {
        prefix: Some(prefix.clone()),
        max_keys: 1000,
        ..Default::default()
    };
    for _ in 0..100 {
        let page = gw.store().list(&s.bucket, &req).await.map_err(store_err)?;
        names.extend(page.entries.iter().filter_map(|e| {
            e.key
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".pem"))
                .map(str::to_owned)
        }));
        match page.next_continuation_token {
            Some(t) if page.is_truncated && req.continuation_token.as_ref() != Some(&t) => {
                req.continuation_token = Some(t)
            }
            _ => break,
        }
    }
    let mut signed = Vec::new();
    for t in &s.groups {
        match g.refresh(&t.name, true).await {
            Ok(c) => signed.push(c),
            // Its message names the group.
            Err(e @ GroupFailure::Untrusted { .. }) => writeln!(out, "{e}")?,
            Err(e) => writeln!(out, "group {}: {e}", t.name)?,
        }
    }
    writeln!(out, "key directory s3://{}/{prefix}", s.bucket)?;
    for n in &names {
        let Some(spki) = published(gw, n).await? else {
            continue;
        };
        let fp = Fingerprint::of_spki(&spki);
        let mut notes = Vec::new();
        for c in &signed {
            if let Some(m) = c.group.content().members.iter().find(|m| &m.name == n) {
                let signers: Vec<String> = c
                    .group
                    .signers()
                    .map(|k| k.fingerprint().to_string())
                    .collect();
                if m.spki == spki {
                    notes.push(format!(
                        "member of {} (v{}, signed by {})",
                        c.group.name(),
                        c.group.version(),
                        signers.join(", ")
                    ));
                } else {
                    notes.push(format!(
                        "WARNING: group {} signed another key for {n} ({}): the published one was replaced",
                        c.group.name(),
                        m.fingerprint()
                    ));
                }
            }
        }
        if notes.is_empty() {
            notes.push("published only (no signed group names it)".into());
        }
        writeln!(
            out,
            "  {n:<16} {fp}  key id {}  {}",
            hex::encode(key_id_of_spki(&spki)),
            notes.join("; ")
        )?;
    }
    Ok(out)
}

/// Writes a group document version, refusing to overwrite one that exists
/// (another administrator got there first: run again).
async fn write_version(gw: &Gateway, name: &str, version: u64, raw: Vec<u8>) -> anyhow::Result<()> {
    let s = groups(gw)?.settings();
    let key = group_document_key(name, version);
    // Two administrators writing the same version: with a store that
    // enforces create-if-absent exactly one wins; the other is told to retry.
    if !gw
        .put_small_if_absent(&s.bucket, &key, raw.into())
        .await
        .map_err(store_err)?
    {
        anyhow::bail!(
            "version {version} of group {name} exists already (changed by someone else meanwhile): run the command again"
        );
    }
    Ok(())
}

fn pinned_check(g: &Groups, name: &str, signer: &SigningKey) -> anyhow::Result<()> {
    let t = g
        .settings()
        .groups
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "add the group to this config first:\n[[groups]]\nname = \"{name}\"\nadmins = [\"{}\"]",
                signer.fingerprint()
            )
        })?;
    if !t.admins.contains(&signer.fingerprint()) {
        anyhow::bail!(
            "this signing key ({}) is not pinned for group {name} in this config: add it to `admins`",
            signer.fingerprint()
        );
    }
    Ok(())
}

/// Creates a group: version 1, this user its first member, `signer` its
/// administrator.
pub async fn create(gw: &Gateway, signer: &SigningKey, name: &str) -> anyhow::Result<String> {
    let g = groups(gw)?;
    pinned_check(g, name, signer)?;
    let s = g.settings();
    let prefix = format!("{DIRECTORY_PREFIX}groups/{name}/");
    let page = gw
        .store()
        .list(
            &s.bucket,
            &ListRequest {
                prefix: Some(prefix),
                max_keys: 1,
                ..Default::default()
            },
        )
        .await
        .map_err(store_err)?;
    if !page.entries.is_empty() {
        anyhow::bail!("group {name} exists already at the store");
    }
    let (content, _keys) =
        GroupContent::create(name, &signer.verifying_key(), &s.member, &s.me.spki_der())?;
    let doc = content.sign(&[signer])?;
    write_version(gw, name, 1, doc.raw().to_vec()).await?;
    let c = g.refresh(name, true).await?;
    Ok(format!(
        "created group {name} (version {}, epoch {}), administrator {}, member {}\nPin the administrator in every member's config:\n[[groups]]\nname = \"{name}\"\nadmins = [\"{}\"]\n",
        c.group.version(),
        c.group.content().epoch,
        signer.fingerprint(),
        s.member,
        signer.fingerprint()
    ))
}

/// Adds `member` (their published key, checked against the fingerprint
/// they gave the administrator) to group `name`.
pub async fn add(
    gw: &Gateway,
    signer: &SigningKey,
    name: &str,
    member: &str,
    fingerprint: &Fingerprint,
) -> anyhow::Result<String> {
    let g = groups(gw)?;
    pinned_check(g, name, signer)?;
    let spki = published(gw, member).await?.ok_or_else(|| {
        anyhow::anyhow!("{member} has published no key (they run `sealgate keys publish`)")
    })?;
    let found = Fingerprint::of_spki(&spki);
    if &found != fingerprint {
        anyhow::bail!(
            "the key published for {member} has fingerprint {found}, not {fingerprint}: it is not the key {member} gave you (the store may have replaced it); nothing was changed"
        );
    }
    RsaOaepRecipient::from_spki_der(&spki)
        .map_err(|e| anyhow::anyhow!("{member}'s published key: {e}"))?;
    let c = g.refresh(name, true).await?;
    let keys = c.group.open_epochs(g.settings().me.as_ref())?;
    let next = c.group.content().add(&keys, member, &spki)?;
    let doc = next.sign(&[signer])?;
    write_version(gw, name, next.version, doc.raw().to_vec()).await?;
    let c = g.refresh(name, true).await?;
    Ok(format!(
        "added {member} ({found}) to {name}: version {}, {} members; no object was touched\n",
        c.group.version(),
        c.group.content().members.len()
    ))
}

/// Removes `member` from group `name`: a new epoch key for everything
/// written afterwards.
pub async fn remove(
    gw: &Gateway,
    signer: &SigningKey,
    name: &str,
    member: &str,
) -> anyhow::Result<String> {
    let g = groups(gw)?;
    pinned_check(g, name, signer)?;
    let c = g.refresh(name, true).await?;
    let keys = c.group.open_epochs(g.settings().me.as_ref())?;
    let (next, _) = c.group.content().remove(&keys, member)?;
    let doc = next.sign(&[signer])?;
    write_version(gw, name, next.version, doc.raw().to_vec()).await?;
    let c = g.refresh(name, true).await?;
    Ok(format!(
        "removed {member} from {name}: version {}, epoch {}. Objects written from now on are not readable by {member}; what {member} could read before stays readable to them until re-encrypted (`sealgate reencrypt`). Raise `min_version` to {} in the members' configs so that no fresh gateway accepts an older version.\n",
        c.group.version(),
        c.group.content().epoch,
        c.group.version()
    ))
}

/// A group as its trusted document says.
pub async fn show(gw: &Gateway, name: &str) -> anyhow::Result<String> {
    let g = groups(gw)?;
    let c = g.refresh(name, true).await?;
    let content = c.group.content();
    let mut out = String::new();
    writeln!(
        out,
        "group {name}: version {}, epoch {}",
        content.version, content.epoch
    )?;
    let signers: Vec<String> = c
        .group
        .signers()
        .map(|k| k.fingerprint().to_string())
        .collect();
    writeln!(out, "signed by:   {}", signers.join(", "))?;
    let admins: Vec<String> = content
        .admins
        .iter()
        .map(|k| k.fingerprint().to_string())
        .collect();
    writeln!(out, "admins:      {}", admins.join(", "))?;
    writeln!(
        out,
        "epoch key:   key id {}",
        hex::encode(c.recipient.key_id())
    )?;
    writeln!(out, "members:")?;
    for m in &content.members {
        writeln!(out, "  {:<16} {}", m.name, m.fingerprint())?;
    }
    writeln!(
        out,
        "this gateway's user ({}) {} a member",
        g.settings().member,
        if c.member { "is" } else { "is not" }
    )?;
    Ok(out)
}

/// The signing key of `[sharing]`, as the group commands load it.
pub fn signing_key(cfg: &Config) -> anyhow::Result<SigningKey> {
    let sh = cfg
        .sharing
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("this config has no [sharing] section"))?;
    let path = sh.signing_key_file.as_ref().ok_or_else(|| {
        anyhow::anyhow!("config error at `sharing.signing_key_file`: administering a group needs a signing key (`sealgate keygen --signing`)")
    })?;
    crate::keyring::check_private_permissions(path)?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
    );
    let pass = crate::app::passphrase_for(
        "the signing key",
        sh.signing_passphrase_env.as_deref(),
        sh.signing_passphrase_file.as_deref(),
    )?;
    SigningKey::from_encrypted_pem(&text, &pass)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `sealgate keys ...`
pub async fn run_keys(args: KeysArgs) -> anyhow::Result<()> {
    let (cfg, list_them) = match args.command {
        KeysCommand::Publish(c) => (c.config, false),
        KeysCommand::List(c) => (c.config, true),
    };
    let rt = crate::app::build(&Config::load(&cfg)?)?;
    let out = if list_them {
        list(&rt.gateway).await?
    } else {
        publish(&rt.gateway).await?
    };
    print!("{out}");
    Ok(())
}

/// `sealgate group ...`
pub async fn run_group(args: GroupArgs) -> anyhow::Result<()> {
    let path = match &args.command {
        GroupCommand::Create { cfg, .. }
        | GroupCommand::Add { cfg, .. }
        | GroupCommand::Remove { cfg, .. }
        | GroupCommand::Show { cfg, .. } => cfg.config.clone(),
    };
    let cfg = Config::load(&path)?;
    let rt = crate::app::build(&cfg)?;
    let gw = &rt.gateway;
    let out = match args.command {
        GroupCommand::Create { name, .. } => create(gw, &signing_key(&cfg)?, &name).await?,
        GroupCommand::Add {
            name,
            member,
            fingerprint,
            ..
        } => {
            let fp: Fingerprint = fingerprint.parse().map_err(
                |e: crate::sharing::fingerprint::FingerprintError| {
                    anyhow::anyhow!("--fingerprint: {e}")
                },
            )?;
            add(gw, &signing_key(&cfg)?, &name, &member, &fp).await?
        }
        GroupCommand::Remove { name, member, .. } => {
            remove(gw, &signing_key(&cfg)?, &name, &member).await?
        }
        GroupCommand::Show { name, .. } => show(gw, &name).await?,
    };
    print!("{out}");
    Ok(())
}
