//! `sealgate inspect`: shows an object's envelope (version, sizes,
//! recipients) without decrypting its content.

use futures::StreamExt;

use super::parse_s3_url;
use crate::cli::InspectArgs;
use crate::config::Config;
use crate::envelope::header::MetaValue;
use crate::envelope::manifest::Manifest;
use crate::envelope::recipient::Algorithm;
use crate::envelope::{BodyBinding, Header, SEGMENT_SIZE};
use crate::gateway::object::manifest_key;
use crate::gateway::{Gateway, META_KEY};

/// The `sealgate inspect` command.
pub async fn run(args: InspectArgs) -> anyhow::Result<()> {
    let rt = crate::app::build(&Config::load(&args.config)?)?;
    let (b, k) = parse_s3_url(&args.object)?;
    print!("{}", inspect(&rt.gateway, &b, &k).await?);
    Ok(())
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
        MetaValue::InManifest { upload_id, .. } => {
            let raw = gw
                .read_small(bucket, &manifest_key(&upload_id), 1 << 20)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?
                .ok_or_else(|| anyhow::anyhow!("the manifest is too large"))?;
            let h = Manifest::parse(&raw)?
                .header
                .ok_or_else(|| anyhow::anyhow!("the manifest holds no header"))?;
            (
                Header::parse(&h)?,
                format!(
                    "multipart manifest {} (too large for metadata)",
                    manifest_key(&upload_id)
                ),
            )
        }
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
    writeln!(
        out,
        "attributes:      {}",
        if header.attributes.is_some() {
            "sealed in the envelope"
        } else {
            "in the store's metadata (written before attributes were sealed)"
        }
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
    let readable = gw.keyring().can_open(&header);
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
