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
    /// The content decrypted but does not match the digest its writer sealed
    /// beside it (a faulty or malicious writer).
    #[error("{0}")]
    Digest(String),
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
    /// The object's ETag (MD5 hex, `-N` for multipart), checked against the
    /// content; `None` for a multipart object walked without its manifest.
    pub etag: Option<String>,
    pub parts: usize,
    pub name_checked: bool,
    /// Whether the part list was checked against the manifest (multipart).
    pub parts_checked: bool,
    /// The sealed attributes, if the object has them.
    pub attributes: Option<crate::envelope::Attributes>,
}

/// What `decrypt` is told besides the object.
#[derive(Default, Clone, Copy)]
pub struct DecryptOptions<'a> {
    /// The object's (bucket, key): the header MAC binds it.
    pub name: Option<(&'a str, &'a str)>,
    /// The raw manifest object of a multipart object.
    pub manifest: Option<&'a [u8]>,
    /// Walk a multipart body without its manifest (unverified part list).
    pub without_manifest: bool,
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
/// opener into `out`; returns its length and MD5, after checking that the
/// MD5 of what was decrypted is the one sealed in the trailer.
fn open_stream<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    dk: &DataKey,
    part: u32,
    header_bytes: [u8; STREAM_HEADER_LEN],
    prefix: &[u8],
    expected: Option<([u8; 16], u64)>,
) -> Result<(u64, [u8; 16]), RecoverError> {
    use md5::{Digest, Md5};
    let p = u64::from_be_bytes(header_bytes[16..].try_into().expect("8"));
    let mut o = Opener::full(dk.clone(), part, expected);
    let mut md5 = Md5::new();
    let mut chunks = Vec::new();
    o.push(Bytes::copy_from_slice(&header_bytes), &mut chunks)?;
    o.push(Bytes::copy_from_slice(prefix), &mut chunks)?;
    for c in &chunks {
        md5.update(c);
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
            md5.update(c);
            out.write_all(c)?;
        }
    }
    o.finish()?;
    let sealed = o.trailer_md5().expect("finished stream has a trailer");
    let got: [u8; 16] = md5.finalize().into();
    if got != sealed {
        return Err(RecoverError::Digest(format!(
            "the content's MD5 {} differs from the one its writer sealed ({}): the object was written wrongly",
            hex::encode(got),
            hex::encode(sealed)
        )));
    }
    Ok((p, got))
}

/// Decrypts `input` (the raw stored object) into `out`, checking what the
/// gateway checks: the header (commitment, and its MAC for the name), the
/// binding, every segment, each stream's sealed MD5 against what was
/// decrypted, and for a multipart object its manifest (part list, lengths,
/// salts, the ETag over the part MD5s).
///
/// Without `opts.name` the MAC cannot be checked (content integrity still
/// rests on the key commitment and the authenticated segments); without a
/// manifest a multipart object is refused unless `opts.without_manifest`
/// asks for a walk of the body, which cannot notice a dropped part or an
/// older upload of one. [`Recovered`] says which checks were made.
pub fn decrypt<R: Read, W: Write>(
    identities: &[&dyn Identity],
    meta_value: &str,
    opts: DecryptOptions<'_>,
    input: R,
    mut out: W,
) -> Result<Recovered, RecoverError> {
    let r = decrypt_inner(identities, meta_value, opts, input, &mut out)?;
    out.flush()?;
    Ok(r)
}

fn decrypt_inner<R: Read, W: Write>(
    identities: &[&dyn Identity],
    meta_value: &str,
    opts: DecryptOptions<'_>,
    mut input: R,
    mut out: W,
) -> Result<Recovered, RecoverError> {
    use md5::{Digest, Md5};
    let DecryptOptions {
        name,
        manifest,
        without_manifest,
    } = opts;
    let parsed = manifest.map(Manifest::parse).transpose()?;
    // Where the header lives decides what it may be (FORMAT.md 6.2, 9).
    let (header, detached_mac, pointed_upload) = match MetaValue::decode(meta_value)? {
        MetaValue::Inline(raw) => {
            if parsed.as_ref().is_some_and(|m| m.header.is_some()) {
                return Err(FormatError::MalformedHeader(
                    "the manifest holds a header although the metadata holds it too",
                )
                .into());
            }
            (Header::parse(&raw)?, None, None)
        }
        MetaValue::Overflow { header_len, mac } => {
            let mut raw = vec![0u8; header_len as usize];
            if read_exact_or_eof(&mut input, &mut raw)? != raw.len() {
                return Err(FormatError::Truncated.into());
            }
            let h = Header::parse(&raw)?;
            if h.is_multipart() {
                return Err(FormatError::MalformedHeader(
                    "a multipart header at the head of a body",
                )
                .into());
            }
            (h, Some(mac), None)
        }
        MetaValue::InManifest { upload_id, mac } => {
            let m = parsed.as_ref().ok_or_else(|| {
                RecoverError::Input(format!(
                    "this object's envelope is in its manifest: pass the manifest object .sealgate/mp/{} with --manifest",
                    hex::encode(upload_id)
                ))
            })?;
            let h = m
                .header
                .as_deref()
                .ok_or(FormatError::MalformedHeader("the manifest holds no header"))?;
            (Header::parse(h)?, Some(mac), Some(upload_id))
        }
    };
    let dk = header.unwrap_with(identities)?;
    match (name, detached_mac) {
        (Some((b, k)), Some(mac)) => header.authenticate_detached(&dk, b, k, &mac)?,
        (Some((b, k)), None) => header.authenticate(&dk, b, k)?,
        (None, _) => dk.check_commitment(&header.commitment)?,
    }
    if let Some(u) = pointed_upload {
        if header.binding != (BodyBinding::Multipart { upload_id: u }) {
            return Err(FormatError::HeaderMac.into());
        }
    }
    let attributes = header.open_attributes(&dk)?;
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
                etag: Some(hex::encode(md5)),
                parts: 1,
                name_checked: name.is_some(),
                parts_checked: true,
                attributes,
            })
        }
        BodyBinding::Multipart { upload_id } => {
            let pinned = match parsed {
                Some(m) => {
                    let (b, k) = name.ok_or_else(|| {
                        RecoverError::Input(
                            "a manifest can only be checked with the object's name (--name)".into(),
                        )
                    })?;
                    let etag_md5 = m.open(&dk, b, k, &upload_id)?;
                    Some((m.parts, etag_md5))
                }
                None if without_manifest => None,
                None => {
                    return Err(RecoverError::Input(format!(
                        "a multipart object: give its manifest, the object .sealgate/mp/{} of the same bucket, with --manifest (or --without-manifest to walk the parts unverified: a dropped part or an older upload of one would go unnoticed)",
                        hex::encode(upload_id)
                    )))
                }
            };
            let mut total = 0u64;
            let mut count = 0usize;
            let mut next_number = 1u32;
            let mut md5s = Vec::new();
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
                    Some((parts, _)) => {
                        let mp = parts.get(count).ok_or(FormatError::TrailingData)?;
                        (mp.number, Some((mp.salt, mp.plaintext_len)), Vec::new())
                    }
                    None => {
                        let (n, first) = find_part_number(&dk, &salt, p, next_number, &mut input)?;
                        (n, None, first)
                    }
                };
                let (len, md5) =
                    open_stream(&mut input, &mut out, &dk, number, sh, &first, expected)?;
                md5s.extend_from_slice(&md5);
                total += len;
                count += 1;
                next_number = number + 1;
            }
            if count == 0 {
                return Err(FormatError::Truncated.into());
            }
            let etag_md5: [u8; 16] = Md5::digest(&md5s).into();
            if let Some((parts, sealed)) = &pinned {
                if parts.len() != count {
                    return Err(FormatError::Truncated.into());
                }
                if *sealed != etag_md5 {
                    return Err(RecoverError::Digest(
                        "the parts' MD5s do not give the ETag sealed in the manifest: the object was written wrongly".into(),
                    ));
                }
            }
            Ok(Recovered {
                plaintext_len: total,
                etag: pinned
                    .is_some()
                    .then(|| format!("{}-{count}", hex::encode(etag_md5))),
                parts: count,
                name_checked: name.is_some(),
                parts_checked: pinned.is_some(),
                attributes,
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
        without_manifest,
        group_doc,
        group,
        admin,
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
    // A group's epoch keys, from its signed document, for objects written
    // for the group.
    let epochs = match (&group_doc, &group) {
        (Some(doc), Some(name)) => {
            let pins = admin
                .iter()
                .map(|a| {
                    a.parse::<crate::sharing::fingerprint::Fingerprint>()
                        .map_err(|e| anyhow::anyhow!("--admin: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let raw = std::fs::read(doc).with_context(|| doc.display().to_string())?;
            let verified = crate::sharing::group::GroupDocument::parse(&raw)
                .and_then(|d| d.verify(name, &pins, 0))
                .map_err(|e| anyhow::anyhow!("group document {}: {e}", doc.display()))?;
            Some(
                verified
                    .open_epochs(id.as_ref())
                    .map_err(|e| anyhow::anyhow!("group {name}: {e}"))?,
            )
        }
        _ => None,
    };
    let mut ids: Vec<&dyn Identity> = vec![id.as_ref()];
    if let Some(e) = &epochs {
        ids.extend(e.identities());
    }
    let res = decrypt(
        &ids,
        &meta,
        DecryptOptions {
            name: name.as_ref().map(|(b, k)| (b.as_str(), k.as_str())),
            manifest: manifest.as_deref(),
            without_manifest,
        },
        inp,
        out,
    );
    match res {
        Ok(r) => {
            std::fs::rename(&tmp, &output)?;
            eprintln!(
                "decrypted {} bytes ({} part(s)){}",
                r.plaintext_len,
                r.parts,
                r.etag
                    .as_ref()
                    .map(|e| format!(", ETag {e} (checked against the content)"))
                    .unwrap_or_default(),
            );
            if let Some(a) = &r.attributes {
                if let Some(ct) = &a.content_type {
                    eprintln!("content type: {ct}");
                }
                for (k, v) in &a.metadata {
                    eprintln!("metadata {k}: {v}");
                }
            }
            if !r.name_checked {
                eprintln!("WARNING: the object's name was not verified (--no-name-check): it may be another object's");
            }
            if !r.parts_checked {
                eprintln!("WARNING: the part list was not verified (--without-manifest): a dropped part, or an older upload of a part, would go unnoticed");
            }
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(anyhow::anyhow!("decryption failed: {e}"))
        }
    }
}
