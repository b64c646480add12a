//! `sealgate decrypt`: offline decryption of a raw object downloaded
//! straight from the store, the disaster-recovery path. Needs only a private
//! key file, the object's bytes and its metadata (the JSON `aws s3api
//! head-object` prints); no config, no running gateway.
//!
//! [`decrypt`] is the library part (readers and writers, no files, no
//! prompts); [`run`] is the command around it.

use std::io::{Read, Write};

use anyhow::Context;
use bytes::Bytes;

use crate::cli::DecryptArgs;
use crate::envelope::header::MetaValue;
use crate::envelope::manifest::Manifest;
use crate::envelope::size::stream_len;
use crate::envelope::stream::Opener;
use crate::envelope::{BodyBinding, DataKey, FormatError, Header, Identity, STREAM_HEADER_LEN};

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{0}")]
    Format(#[from] FormatError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Input(String),
}

/// The `sg` metadata value from `head-object` / `get-object` JSON output, or
/// from a bare value.
pub fn meta_value_from_json(text: &str) -> Result<String, RecoverError> {
    let t = text.trim();
    if !t.starts_with('{') {
        return Ok(t.to_owned());
    }
    let v: serde_json::Value =
        serde_json::from_str(t).map_err(|e| RecoverError::Input(format!("metadata JSON: {e}")))?;
    let meta = v
        .get("Metadata")
        .or_else(|| v.get("metadata"))
        .unwrap_or(&v);
    meta.as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("sg")))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            RecoverError::Input("no `sg` entry in the metadata: not a sealgate object".into())
        })
}

/// What was recovered.
pub struct Recovered {
    pub plaintext_len: u64,
    pub md5: Option<[u8; 16]>,
    pub parts: usize,
    pub name_checked: bool,
}

fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Streams one part (or the whole single-part body) from `input` through an
/// opener into `out`; returns the trailer MD5.
fn open_stream<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    dk: &DataKey,
    part: u32,
    header_bytes: [u8; STREAM_HEADER_LEN],
    prefix: &[u8],
    expected: Option<([u8; 16], u64)>,
) -> Result<(u64, [u8; 16]), RecoverError> {
    let p = u64::from_be_bytes(header_bytes[16..].try_into().expect("8"));
    let mut o = Opener::full(dk.clone(), part, expected);
    let mut chunks = Vec::new();
    o.push(Bytes::copy_from_slice(&header_bytes), &mut chunks)?;
    o.push(Bytes::copy_from_slice(prefix), &mut chunks)?;
    for c in &chunks {
        out.write_all(c)?;
    }
    let mut remaining = stream_len(p) - STREAM_HEADER_LEN as u64 - prefix.len() as u64;
    let mut buf = vec![0u8; 1 << 20];
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        let n = read_exact_or_eof(input, &mut buf[..want])?;
        if n == 0 {
            return Err(FormatError::Truncated.into());
        }
        remaining -= n as u64;
        chunks.clear();
        o.push(Bytes::copy_from_slice(&buf[..n]), &mut chunks)?;
        for c in &chunks {
            out.write_all(c)?;
        }
    }
    o.finish()?;
    Ok((p, o.trailer_md5().expect("finished stream has a trailer")))
}

/// Decrypts `input` (the raw stored object) into `out`.
///
/// `name` is the object's (bucket, key): the header MAC binds it, and without
/// it the MAC cannot be checked (content integrity still rests on the key
/// commitment and the authenticated segments). `manifest` (the raw
/// `.sealgate/mp/...` companion object of a multipart object) pins the exact
/// part list; without it, parts are found by walking the body, trying part
/// numbers in increasing order.
pub fn decrypt<R: Read, W: Write>(
    identities: &[&dyn Identity],
    meta_value: &str,
    name: Option<(&str, &str)>,
    manifest: Option<&[u8]>,
    input: R,
    mut out: W,
) -> Result<Recovered, RecoverError> {
    let r = decrypt_inner(identities, meta_value, name, manifest, input, &mut out)?;
    out.flush()?;
    Ok(r)
}

fn decrypt_inner<R: Read, W: Write>(
    identities: &[&dyn Identity],
    meta_value: &str,
    name: Option<(&str, &str)>,
    manifest: Option<&[u8]>,
    mut input: R,
    mut out: W,
) -> Result<Recovered, RecoverError> {
    let (header, detached_mac) = match MetaValue::decode(meta_value)? {
        MetaValue::Inline(raw) => (Header::parse(&raw)?, None),
        MetaValue::Overflow { header_len, mac } => {
            let mut raw = vec![0u8; header_len as usize];
            if read_exact_or_eof(&mut input, &mut raw)? != raw.len() {
                return Err(FormatError::Truncated.into());
            }
            (Header::parse(&raw)?, Some(mac))
        }
    };
    let dk = header.unwrap_with(identities)?;
    match (name, detached_mac) {
        (Some((b, k)), Some(mac)) => header.authenticate_detached(&dk, b, k, &mac)?,
        (Some((b, k)), None) => header.authenticate(&dk, b, k)?,
        (None, _) => dk.check_commitment(&header.commitment)?,
    }
    let mut sh = [0u8; STREAM_HEADER_LEN];
    match header.binding {
        BodyBinding::Single {
            salt,
            plaintext_len,
        } => {
            if read_exact_or_eof(&mut input, &mut sh)? != sh.len() {
                return Err(FormatError::Truncated.into());
            }
            let (p, md5) = open_stream(
                &mut input,
                &mut out,
                &dk,
                0,
                sh,
                &[],
                Some((salt, plaintext_len)),
            )?;
            let mut extra = [0u8; 1];
            if read_exact_or_eof(&mut input, &mut extra)? != 0 {
                return Err(FormatError::TrailingData.into());
            }
            Ok(Recovered {
                plaintext_len: p,
                md5: Some(md5),
                parts: 1,
                name_checked: name.is_some(),
            })
        }
        BodyBinding::Multipart { upload_id } => {
            let pinned = match manifest {
                Some(raw) => {
                    let m = Manifest::parse(raw)?;
                    let (b, k) = name.ok_or_else(|| {
                        RecoverError::Input(
                            "a manifest can only be checked with the object's name (--name)".into(),
                        )
                    })?;
                    m.open(&dk, b, k, &upload_id)?;
                    Some(m.parts)
                }
                None => None,
            };
            let mut total = 0u64;
            let mut count = 0usize;
            let mut next_number = 1u32;
            loop {
                let n = read_exact_or_eof(&mut input, &mut sh)?;
                if n == 0 {
                    break;
                }
                if n != sh.len() {
                    return Err(FormatError::Truncated.into());
                }
                let salt: [u8; 16] = sh[..16].try_into().expect("16");
                let p = u64::from_be_bytes(sh[16..].try_into().expect("8"));
                let (number, expected, first) = match &pinned {
                    Some(parts) => {
                        let mp = parts.get(count).ok_or(FormatError::TrailingData)?;
                        (mp.number, Some((mp.salt, mp.plaintext_len)), Vec::new())
                    }
                    None => {
                        let (n, first) = find_part_number(&dk, &salt, p, next_number, &mut input)?;
                        (n, None, first)
                    }
                };
                let (len, _) =
                    open_stream(&mut input, &mut out, &dk, number, sh, &first, expected)?;
                total += len;
                count += 1;
                next_number = number + 1;
            }
            if let Some(parts) = &pinned {
                if parts.len() != count {
                    return Err(FormatError::Truncated.into());
                }
            }
            if count == 0 {
                return Err(FormatError::Truncated.into());
            }
            Ok(Recovered {
                plaintext_len: total,
                md5: None,
                parts: count,
                name_checked: name.is_some() && manifest.is_some(),
            })
        }
    }
}

/// Without a manifest, a part's number (bound into its key) is found by
/// trying numbers from `from` upward against the part's first segment, which
/// is read here and returned so the caller can decrypt it again in order.
fn find_part_number<R: Read>(
    dk: &DataKey,
    salt: &[u8; 16],
    p: u64,
    from: u32,
    input: &mut R,
) -> Result<(u32, Vec<u8>), RecoverError> {
    use crate::envelope::segment::open_segment;
    use crate::envelope::size::{segment_plaintext_len, segments};
    let len = segment_plaintext_len(p, 0) as usize + crate::envelope::TAG_LEN;
    let mut first = vec![0u8; len];
    if read_exact_or_eof(input, &mut first)? != len {
        return Err(FormatError::Truncated.into());
    }
    let last = segments(p) == 1;
    for n in from..=crate::envelope::manifest::MAX_PARTS {
        let key = dk.payload_key(salt, n, p);
        let mut trial = first.clone();
        if open_segment(&key, 0, last, &mut trial).is_ok() {
            return Ok((n, first));
        }
    }
    Err(FormatError::SegmentAuth.into())
}

/// The `sealgate decrypt` command: decrypts `input` into `output`, through a
/// temporary file so that a failed decryption leaves no output.
pub fn run(args: DecryptArgs) -> anyhow::Result<()> {
    let DecryptArgs {
        identity,
        metadata,
        name,
        no_name_check,
        manifest,
        passphrase_file,
        input,
        output,
    } = args;
    if name.is_none() && !no_name_check {
        anyhow::bail!(
            "give --name s3://BUCKET/KEY (the header is bound to it), or --no-name-check"
        );
    }
    let pass = match &passphrase_file {
        Some(f) => crate::app::passphrase_for("the identity", None, Some(f))?,
        None if std::env::var("SEALGATE_PASSPHRASE").is_ok() => {
            crate::app::passphrase_for("the identity", Some("SEALGATE_PASSPHRASE"), None)?
        }
        None => crate::app::passphrase_for(&identity.display().to_string(), None, None)?,
    };
    let id = crate::keyring::load_identity(&identity, &pass)?;
    let meta_text =
        std::fs::read_to_string(&metadata).with_context(|| metadata.display().to_string())?;
    let meta = meta_value_from_json(&meta_text)?;
    let name = name.map(|n| super::parse_s3_url(&n)).transpose()?;
    let manifest = manifest.map(std::fs::read).transpose()?;
    let inp = std::io::BufReader::new(
        std::fs::File::open(&input).with_context(|| input.display().to_string())?,
    );
    // Write to a temporary file and rename: a failed decryption leaves no output.
    let tmp = output.with_extension("sealgate-partial");
    let out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?,
    );
    let ids: [&dyn Identity; 1] = [&id];
    let res = decrypt(
        &ids,
        &meta,
        name.as_ref().map(|(b, k)| (b.as_str(), k.as_str())),
        manifest.as_deref(),
        inp,
        out,
    );
    match res {
        Ok(r) => {
            std::fs::rename(&tmp, &output)?;
            eprintln!(
                "decrypted {} bytes ({} part(s)){}{}",
                r.plaintext_len,
                r.parts,
                r.md5
                    .map(|m| format!(", MD5 {}", hex::encode(m)))
                    .unwrap_or_default(),
                if r.name_checked {
                    ""
                } else {
                    "; WARNING: the object's name (and, for multipart, its part list) was not verified"
                }
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(anyhow::anyhow!("decryption failed: {e}"))
        }
    }
}
