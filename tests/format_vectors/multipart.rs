//! Multipart vectors (FORMAT.md section 10): generation and checks.
//!
//! A multipart vector adds to the single-part schema the manifest object
//! (`manifest`: its store key and bytes, or `null` when the store holds none)
//! and `without_manifest`, the declared outcome of a reader that walks the
//! body without the manifest (FORMAT.md 10.3, last paragraph).
//!
//! Three readers check every multipart vector:
//! - [`open_library`]: the library's pieces put together the way the gateway
//!   reads an object (`Manifest::parse`/`open`, `Manifest::layout`, one
//!   `Opener` per part, fed in chunks), plus ranged reads planned by
//!   `Layout::plan_range` for pass vectors;
//! - [`naive::read`]: FORMAT.md 10.2/10.3 again over raw primitives;
//! - [`walk_without_manifest`]: the manifest-less walk.
//!
//! Pass vectors are also rebuilt from their inputs (header, every part
//! stream, the manifest) by the library and the naive code, byte for byte.
//! Manifests are built by the naive code because the library draws the
//! manifest nonce (layout 1) or block salt (layout 2) at random; the
//! library's own `Manifest::seal_layout1` / `Manifest::seal` must give the
//! same bytes up to those.
//!
//! Two generations of objects: as earlier releases wrote them (layout-1
//! manifest, header inline without attributes), and as this release does
//! (sealed attributes, layout-2 manifest, the header in the manifest behind
//! a `0x81` pointer when it does not fit metadata). Both must stay readable.

use super::*;

use sealgate::envelope::layout::{Layout, PieceKind};
use sealgate::envelope::manifest::{Manifest, ManifestPart};
use sealgate::envelope::stream::open_all;

/// Store key prefix of manifests (FORMAT.md 10.2).
const MANIFEST_PREFIX: &str = ".sealgate/mp/";
/// Highest part number (FORMAT.md 3).
const MAX_PART: u32 = 10_000;

/// One part of a manifest's table: number, plaintext length, salt.
type Entry = (u32, u64, [u8; SALT_LEN]);

fn upload_id(tag: &str) -> [u8; 16] {
    sha256(format!("sealgate/v1/vectors/upload-id/{tag}").as_bytes())[..16]
        .try_into()
        .unwrap()
}

fn manifest_nonce(tag: &str) -> [u8; 12] {
    sha256(format!("sealgate/v1/vectors/manifest-nonce/{tag}").as_bytes())[..12]
        .try_into()
        .unwrap()
}

pub(super) fn manifest_object_key(upload_id: &[u8; 16]) -> String {
    format!("{MANIFEST_PREFIX}{}", hex::encode(upload_id))
}

/// FORMAT.md 10.2 and 10.3 over raw primitives.
mod naive {
    use super::super::naive::{hkdf32, open_block, payload_key, records, seal_block};
    use super::*;

    pub fn manifest_key(dk: &[u8; 32]) -> [u8; 32] {
        hkdf32(&[], dk, b"sealgate/v1/manifest")
    }

    pub fn aad(bucket: &str, key: &str, upload_id: &[u8; 16], before_nonce: &[u8]) -> Vec<u8> {
        let mut a = b"sealgate/v1/manifest".to_vec();
        for s in [bucket, key] {
            a.extend_from_slice(&(s.len() as u16).to_be_bytes());
            a.extend_from_slice(s.as_bytes());
        }
        a.extend_from_slice(upload_id);
        a.extend_from_slice(before_nonce);
        a
    }

    /// Everything before the nonce of a layout-1 manifest (H = 0). `count`
    /// and `total` are given separately so that must-fail vectors can make
    /// them lie.
    pub fn table(count: u32, total: u64, entries: &[Entry]) -> Vec<u8> {
        table_with(1, &[], count, total, entries)
    }

    /// Everything before the digests: layout byte, H and the header, N, the
    /// total, the part table.
    pub fn table_with(
        layout: u8,
        header: &[u8],
        count: u32,
        total: u64,
        entries: &[Entry],
    ) -> Vec<u8> {
        let mut t = vec![layout];
        t.extend_from_slice(&(header.len() as u32).to_be_bytes());
        t.extend_from_slice(header);
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&total.to_be_bytes());
        for (n, len, salt) in entries {
            t.extend_from_slice(&n.to_be_bytes());
            t.extend_from_slice(&len.to_be_bytes());
            t.extend_from_slice(salt);
        }
        t
    }

    fn gcm(key: &[u8; 32]) -> aead::LessSafeKey {
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).unwrap())
    }

    fn gcm_open(key: &[u8; 32], nonce: [u8; 12], ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let mut buf = ct.to_vec();
        let n = gcm(key)
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut buf,
            )
            .ok()?
            .len();
        buf.truncate(n);
        Some(buf)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        dk: &[u8; 32],
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
        table: &[u8],
        nonce: [u8; 12],
        etag_md5: &[u8; 16],
    ) -> Vec<u8> {
        let mut sealed = etag_md5.to_vec();
        gcm(&manifest_key(dk))
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad(bucket, key, upload_id, table)),
                &mut sealed,
            )
            .unwrap();
        [table, &nonce[..], &sealed].concat()
    }

    /// A layout-2 manifest: `table || be32 S || block`, the block sealed
    /// with purpose "manifest" under DK with the manifest AAD.
    #[allow(clippy::too_many_arguments)]
    pub fn seal2(
        dk: &[u8; 32],
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
        table: &[u8],
        salt: &[u8; 16],
        records: &[u8],
    ) -> Vec<u8> {
        let block = seal_block(
            dk,
            "manifest",
            &aad(bucket, key, upload_id, table),
            records,
            salt,
        );
        [table, &(block.len() as u32).to_be_bytes(), &block].concat()
    }

    /// The records of a layout-2 manifest block: `0x01` the ETag MD5, then
    /// any `extra` records.
    pub fn etag_records(etag_md5: &[u8; 16], extra: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut r = Vec::new();
        record(&mut r, 0x01, etag_md5);
        for (t, v) in extra {
            record(&mut r, *t, v);
        }
        r
    }

    /// The ETag MD5 from a layout-2 block's records (FORMAT.md 10.2).
    pub fn etag_from_records(r: &[u8]) -> Result<[u8; 16], &'static str> {
        let mut etag = None;
        for (tag, v) in records(r, &[])? {
            match tag {
                0x01 => etag = Some(v.try_into().map_err(|_| "MalformedHeader")?),
                t if t < 0x80 => return Err("MalformedHeader"),
                _ => {}
            }
        }
        etag.ok_or("MalformedHeader")
    }

    fn stream_nonce(counter: u64, flag: u8) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = flag;
        n
    }

    /// One whole stream of known part number, salt and length (FORMAT.md 7);
    /// returns its plaintext and the MD5 from its trailer.
    fn open_stream(
        dk: &[u8; 32],
        number: u32,
        salt: &[u8; 16],
        p: u64,
        stream: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
        if stream[..16] != salt[..] || stream[16..24] != p.to_be_bytes() {
            return Err("StreamMismatch");
        }
        let key = payload_key(dk, salt, number, p);
        let n = size::segments(p);
        let mut pos = 24;
        let mut pt = Vec::new();
        for i in 0..n {
            let len = (p - i * SEGMENT_SIZE as u64).min(SEGMENT_SIZE as u64) as usize + TAG_LEN;
            let flag = u8::from(i + 1 == n);
            let seg = gcm_open(&key, stream_nonce(i, flag), &stream[pos..pos + len], &[])
                .ok_or("SegmentAuth")?;
            pt.extend_from_slice(&seg);
            pos += len;
        }
        let md5 =
            gcm_open(&key, stream_nonce(n, 2), &stream[pos..pos + 32], &[]).ok_or("SegmentAuth")?;
        assert_eq!(pos + 32, stream.len());
        if md5 != md5_of(&pt) {
            return Err("TrailerMismatch");
        }
        Ok((pt, md5))
    }

    /// FORMAT.md 10.3 steps 2 to 7, after the header (step 1) has given the
    /// data key and the upload id; `header_inline` says whether it came from
    /// metadata (else from the manifest, behind a pointer). Returns the
    /// plaintext, the ETag MD5 and N.
    pub fn read(
        dk: &[u8; 32],
        upload_id: &[u8; 16],
        bucket: &str,
        key: &str,
        manifest: Option<&StoredManifest>,
        body: &[u8],
        header_inline: bool,
    ) -> Result<(Vec<u8>, [u8; 16], usize), &'static str> {
        let m = match manifest {
            Some(m) if m.object_key == manifest_object_key(upload_id) => &m.bytes[..],
            _ => return Err("MissingManifest"),
        };
        let pos = std::cell::Cell::new(0usize);
        let take = |n: usize| -> Result<&[u8], &'static str> {
            let at = pos.get();
            if m.len() - at < n {
                return Err("MalformedHeader");
            }
            pos.set(at + n);
            Ok(&m[at..at + n])
        };
        let layout = take(1)?[0];
        if layout != 1 && layout != 2 {
            return Err("UnsupportedVersion");
        }
        let h = u32::from_be_bytes(take(4)?.try_into().unwrap()) as usize;
        // A header has one home: H > 0 beside an inline header, and H = 0
        // behind a manifest pointer, are refused.
        if h > 65536 || (h > 0) == header_inline {
            return Err("MalformedHeader");
        }
        take(h)?;
        let count = u32::from_be_bytes(take(4)?.try_into().unwrap());
        if count == 0 || count > MAX_PART {
            return Err("MalformedHeader");
        }
        let total = u64::from_be_bytes(take(8)?.try_into().unwrap());
        let mut parts: Vec<Entry> = Vec::new();
        let mut sum = 0u64;
        for _ in 0..count {
            let e = take(28)?;
            let number = u32::from_be_bytes(e[..4].try_into().unwrap());
            let len = u64::from_be_bytes(e[4..12].try_into().unwrap());
            let prev = parts.last().map_or(0, |p| p.0);
            if number == 0 || number > MAX_PART || number <= prev {
                return Err("MalformedHeader");
            }
            sum = sum.checked_add(len).ok_or("MalformedHeader")?;
            parts.push((number, len, e[12..].try_into().unwrap()));
        }
        if sum != total {
            return Err("MalformedHeader");
        }
        let table_end = pos.get();
        let aad = aad(bucket, key, upload_id, &m[..table_end]);
        let etag: [u8; 16] = if layout == 1 {
            let nonce: [u8; 12] = take(12)?.try_into().unwrap();
            let sealed = take(32)?.to_vec();
            if pos.get() != m.len() {
                return Err("MalformedHeader");
            }
            gcm_open(&manifest_key(dk), nonce, &sealed, &aad)
                .ok_or("HeaderMac")?
                .try_into()
                .unwrap()
        } else {
            let s = u32::from_be_bytes(take(4)?.try_into().unwrap()) as usize;
            if !(32..=1 << 20).contains(&s) {
                return Err("MalformedHeader");
            }
            let block = take(s)?;
            if pos.get() != m.len() {
                return Err("MalformedHeader");
            }
            etag_from_records(&open_block(dk, "manifest", &aad, block)?)?
        };
        let want: u64 = parts.iter().map(|p| size::stream_len(p.1)).sum();
        if (body.len() as u64) < want {
            return Err("Truncated");
        }
        if (body.len() as u64) > want {
            return Err("TrailingData");
        }
        let mut off = 0usize;
        let mut pt = Vec::new();
        let mut md5s = Vec::new();
        for (number, len, salt) in &parts {
            let sl = size::stream_len(*len) as usize;
            let (p, md5) = open_stream(dk, *number, salt, *len, &body[off..off + sl])?;
            pt.extend_from_slice(&p);
            md5s.extend_from_slice(&md5);
            off += sl;
        }
        if md5_of(&md5s) != etag {
            return Err("EtagMismatch");
        }
        Ok((pt, etag, parts.len()))
    }
}

// ---------------------------------------------------------------------------
// Readers over the library

/// The gateway's way: header already opened (section 9 steps 1 to 6, which
/// read the manifest when the header is in it), then the manifest, its
/// layout, and one stream per part.
pub(super) fn open_library(
    h: OpenedHeader,
    upload_id: &[u8; 16],
    manifest: &ManifestField,
    body: &[u8],
    bucket: &str,
    key: &str,
    chunk: usize,
) -> Result<Opened, Refused> {
    let m = match h.manifest {
        Some(m) => m,
        None => {
            let raw = find_manifest(manifest, upload_id).ok_or(Refused::MissingManifest)?;
            Manifest::parse(raw)?
        }
    };
    // A header has one home (FORMAT.md 10.2, H).
    if h.home == HeaderHome::Inline && m.header.is_some() {
        return Err(FormatError::MalformedHeader(
            "a header inline in metadata and in the manifest",
        )
        .into());
    }
    let dk = h.dk;
    let etag_md5 = m.open(&dk, bucket, key, upload_id)?;
    let layout = m.layout();
    if (body.len() as u64) < layout.ct_len {
        return Err(FormatError::Truncated.into());
    }
    if (body.len() as u64) > layout.ct_len {
        return Err(FormatError::TrailingData.into());
    }
    let plan = layout.plan_full();
    assert_eq!((plan.ct_start, plan.ct_end), (0, layout.ct_len));
    let mut pos = 0usize;
    let mut pt = Vec::new();
    let mut md5s = Vec::new();
    for piece in &plan.pieces {
        let PieceKind::Full { index } = piece.kind else {
            panic!("a full read is whole streams only");
        };
        let part = &layout.parts[index];
        assert_eq!(part.ct_offset as usize, pos);
        let stream = &body[pos..pos + piece.len as usize];
        let mut o = Opener::full(
            dk.clone(),
            part.number,
            Some((part.salt, part.plaintext_len)),
        );
        let mut out = Vec::new();
        for c in stream.chunks(chunk.max(1)) {
            o.push(Bytes::copy_from_slice(c), &mut out)?;
        }
        o.finish()?;
        pt.extend(out.concat());
        md5s.extend_from_slice(&o.trailer_md5().expect("finished stream"));
        pos += piece.len as usize;
    }
    if md5_of(&md5s) != etag_md5 {
        return Err(Refused::EtagMismatch);
    }
    Ok(Opened {
        plaintext: pt,
        trailer_md5: etag_md5,
        etag: Some(format!("{}-{}", hex::encode(etag_md5), m.parts.len())),
        attributes: h.attributes,
    })
}

/// FORMAT.md 10.3, last paragraph: the body without its manifest. Returns
/// the plaintext and the part numbers found.
fn walk_without_manifest(dk: &DataKey, body: &[u8]) -> Result<(Vec<u8>, Vec<u32>), Refused> {
    let mut pos = 0usize;
    let mut numbers: Vec<u32> = Vec::new();
    let mut pt = Vec::new();
    while pos < body.len() || numbers.is_empty() {
        let rest = &body[pos..];
        if rest.len() < STREAM_HEADER_LEN {
            return Err(FormatError::Truncated.into());
        }
        let salt: [u8; SALT_LEN] = rest[..SALT_LEN].try_into().unwrap();
        let p = u64::from_be_bytes(rest[SALT_LEN..STREAM_HEADER_LEN].try_into().unwrap());
        if p > rest.len() as u64 || size::stream_len(p) > rest.len() as u64 {
            return Err(FormatError::Truncated.into());
        }
        let stream = &rest[..size::stream_len(p) as usize];
        let first = STREAM_HEADER_LEN + (p as usize).min(SEGMENT_SIZE) + TAG_LEN;
        let from = numbers.last().map_or(1, |n| n + 1);
        let number = (from..=MAX_PART)
            .find(|&n| {
                let mut o = Opener::full(dk.clone(), n, None);
                o.push(Bytes::copy_from_slice(&stream[..first]), &mut Vec::new())
                    .is_ok()
            })
            .ok_or(FormatError::SegmentAuth)?;
        pt.extend(open_all(dk, number, Some((salt, p)), stream)?);
        numbers.push(number);
        pos += stream.len();
    }
    Ok((pt, numbers))
}

// ---------------------------------------------------------------------------
// Generation

/// How a multipart object is written: what earlier releases wrote (layout
/// 1, no attributes, header inline), or what this release writes.
#[derive(Clone)]
struct MpOpts {
    /// Manifest layout, 1 or 2.
    layout: u8,
    /// The records of the header's attributes block (flags bit 1), if any.
    attributes: Option<Vec<u8>>,
    /// The header in the manifest, behind a `0x81` pointer.
    header_in_manifest: bool,
    /// Layout 2: records after the ETag (optional tags of a later release).
    extra_records: Vec<(u8, Vec<u8>)>,
    /// What the block salts are derived from: the vector's name.
    salt_tag: String,
}

impl MpOpts {
    fn layout1() -> Self {
        MpOpts {
            layout: 1,
            attributes: None,
            header_in_manifest: false,
            extra_records: Vec::new(),
            salt_tag: String::new(),
        }
    }

    /// Layout 2 with these attribute records, block salts from `salt_tag`.
    fn layout2(salt_tag: &str, attributes: Vec<u8>, header_in_manifest: bool) -> Self {
        MpOpts {
            layout: 2,
            attributes: Some(attributes),
            header_in_manifest,
            extra_records: Vec::new(),
            salt_tag: salt_tag.to_string(),
        }
    }
}

/// A well-formed multipart object, before any tampering.
struct MpObj {
    dk: DataKey,
    upload_id: [u8; 16],
    header: Vec<u8>,
    /// The metadata value: the header inline, or a `0x81` pointer.
    meta: String,
    parts: Vec<Entry>,
    pts: Vec<Vec<u8>>,
    streams: Vec<Vec<u8>>,
    /// Layout 1: the nonce. Layout 2: unused.
    nonce: [u8; 12],
    etag_md5: [u8; 16],
    manifest: Vec<u8>,
    add: u8,
    layout: u8,
    /// Layout 2: the salt and records of the manifest's sealed block.
    block_salt: [u8; 16],
    records: Vec<u8>,
    header_in_manifest: bool,
}

impl MpObj {
    fn meta(&self) -> String {
        self.meta.clone()
    }

    /// The pointer for this object's header under another upload id or MAC.
    fn pointer(&self, upload_id: &[u8; 16], bucket: &str, key: &str) -> String {
        MetaValue::InManifest {
            upload_id: *upload_id,
            mac: Header::parse(&self.header)
                .unwrap()
                .mac_for(&self.dk, bucket, key),
        }
        .encode()
    }

    /// Length of the manifest before its digests (layout, H, header, table).
    fn table_len(&self) -> usize {
        let h = if self.header_in_manifest {
            self.header.len()
        } else {
            0
        };
        17 + h + 28 * self.parts.len()
    }

    /// A layout-2 manifest of this object's data key: `table`, then a block
    /// of `records` sealed (with this object's block salt) for the given
    /// name and upload id.
    fn manifest2_with(
        &self,
        table: &[u8],
        records: &[u8],
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Vec<u8> {
        naive::seal2(
            self.dk.expose(),
            bucket,
            key,
            upload_id,
            table,
            &self.block_salt,
            records,
        )
    }

    fn body(&self) -> Vec<u8> {
        self.streams.concat()
    }

    /// The streams of parts `idx` (indices into the part list), in that order.
    fn body_of(&self, idx: &[usize]) -> Vec<u8> {
        idx.iter().flat_map(|&i| self.streams[i].clone()).collect()
    }

    fn plaintext_of(&self, idx: &[usize]) -> Vec<u8> {
        idx.iter().flat_map(|&i| self.pts[i].clone()).collect()
    }

    fn stored(&self) -> ManifestField {
        self.stored_bytes(self.manifest.clone())
    }

    fn stored_bytes(&self, bytes: Vec<u8>) -> ManifestField {
        ManifestField::Stored(StoredManifest {
            object_key: manifest_object_key(&self.upload_id),
            bytes,
        })
    }

    fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.1).sum()
    }

    /// A layout-1 manifest for this object's data key with the given table,
    /// sealed (with this object's nonce and ETag) for the given name and
    /// upload id.
    fn manifest_with(
        &self,
        table: &[u8],
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> Vec<u8> {
        naive::seal(
            self.dk.expose(),
            bucket,
            key,
            upload_id,
            table,
            self.nonce,
            &self.etag_md5,
        )
    }

    /// The manifest-less walk of this object's intact body: every part, in order.
    fn walk_intact(&self) -> Without {
        let all: Vec<usize> = (0..self.parts.len()).collect();
        Without::Pass(
            self.parts.iter().map(|p| p.0).collect(),
            self.plaintext_of(&all),
        )
    }

    /// Offset of part `i`'s first byte in the manifest.
    fn entry_offset(&self, i: usize) -> usize {
        17 + 28 * i
    }

    /// Offset of the nonce in the manifest.
    fn nonce_offset(&self) -> usize {
        17 + 28 * self.parts.len()
    }
}

/// What a reader without the manifest makes of a vector's body.
enum Without {
    Pass(Vec<u32>, Vec<u8>),
    Fail(&'static str),
}

impl Without {
    fn to_json(&self) -> Value {
        match self {
            Without::Pass(numbers, pt) => json!({
                "expect": "pass",
                "part_numbers": numbers,
                "plaintext_len": pt.len(),
                "plaintext_sha256": hex::encode(sha256(pt)),
            }),
            Without::Fail(e) => json!({ "expect": "fail", "error": e }),
        }
    }
}

/// The data key and identity of every must-fail base object.
const SMALL: &str = "mp-small";
/// The same for the must-fail objects of this release (layout 2).
const SMALL2: &str = "mp-small-2";

impl Gen<'_> {
    #[allow(clippy::too_many_arguments)]
    fn mp_object(
        &self,
        tag: &str,
        parts: &[(u32, usize)],
        add: u8,
        rcpts: &[&str],
        bucket: &str,
        key: &str,
    ) -> MpObj {
        self.mp_object_with(tag, parts, add, rcpts, bucket, key, &MpOpts::layout1())
    }

    #[allow(clippy::too_many_arguments)]
    fn mp_object_with(
        &self,
        tag: &str,
        parts: &[(u32, usize)],
        add: u8,
        rcpts: &[&str],
        bucket: &str,
        key: &str,
        opts: &MpOpts,
    ) -> MpObj {
        let dk = data_key(tag);
        let upload_id = upload_id(tag);
        let rs = self.recipients(rcpts);
        let refs: Vec<&dyn Recipient> = rs.iter().map(|r| r as &dyn Recipient).collect();
        let binding = BodyBinding::Multipart { upload_id };
        let header = match &opts.attributes {
            // As releases before sealed attributes wrote it.
            None => Header::seal(&dk, &refs, binding, bucket, key),
            Some(records) => {
                let stanzas = refs.iter().map(|r| r.wrap(&dk).unwrap()).collect();
                let block = attributes_block(&dk, &opts.salt_tag, records);
                Header::assemble(&dk, binding, stanzas, Some(block), bucket, key)
            }
        }
        .unwrap()
        .raw()
        .to_vec();
        let total: usize = parts.iter().map(|p| p.1).sum();
        let all = pattern(total, add);
        let mut off = 0;
        let (mut entries, mut pts, mut streams, mut md5s) = (vec![], vec![], vec![], vec![]);
        for &(n, len) in parts {
            let s = salt(&format!("{tag}/part-{n}"));
            let pt = all[off..off + len].to_vec();
            off += len;
            streams.push(seal_all(&dk, s, n, &pt).unwrap());
            md5s.extend_from_slice(&md5_of(&pt));
            entries.push((n, len as u64, s));
            pts.push(pt);
        }
        let etag_md5 = md5_of(&md5s);
        let nonce = manifest_nonce(tag);
        let block_salt = salt(&format!("{}/manifest", opts.salt_tag));
        let records = naive::etag_records(&etag_md5, &opts.extra_records);
        let manifest = if opts.layout == 1 {
            assert!(!opts.header_in_manifest, "layout 1 never holds a header");
            let table = naive::table(entries.len() as u32, total as u64, &entries);
            naive::seal(
                dk.expose(),
                bucket,
                key,
                &upload_id,
                &table,
                nonce,
                &etag_md5,
            )
        } else {
            let h: &[u8] = if opts.header_in_manifest {
                &header
            } else {
                &[]
            };
            let table = naive::table_with(2, h, entries.len() as u32, total as u64, &entries);
            naive::seal2(
                dk.expose(),
                bucket,
                key,
                &upload_id,
                &table,
                &block_salt,
                &records,
            )
        };
        let meta = if opts.header_in_manifest {
            MetaValue::InManifest {
                upload_id,
                mac: Header::parse(&header).unwrap().mac_for(&dk, bucket, key),
            }
            .encode()
        } else {
            meta_of(&header)
        };
        MpObj {
            dk,
            upload_id,
            header,
            meta,
            parts: entries,
            pts,
            streams,
            nonce,
            etag_md5,
            manifest,
            add,
            layout: opts.layout,
            block_salt,
            records,
            header_in_manifest: opts.header_in_manifest,
        }
    }

    fn mp_pass(
        &self,
        name: &str,
        description: &str,
        parts: &[(u32, usize)],
        rcpts: &[&str],
        identity_sets: &[&[&str]],
    ) -> Vector {
        self.mp_pass_with(
            name,
            description,
            parts,
            rcpts,
            identity_sets,
            None,
            MpOpts::layout1(),
        )
    }

    /// A multipart pass vector: as earlier releases wrote it (`attrs` none,
    /// `opts` layout 1), or with sealed attributes and a layout-2 manifest.
    #[allow(clippy::too_many_arguments)]
    fn mp_pass_with(
        &self,
        name: &str,
        description: &str,
        parts: &[(u32, usize)],
        rcpts: &[&str],
        identity_sets: &[&[&str]],
        attrs: Option<&AttrSpec>,
        mut opts: MpOpts,
    ) -> Vector {
        let key = object_key(name);
        opts.attributes = attrs.map(AttrSpec::records);
        opts.salt_tag = name.to_string();
        let o = self.mp_object_with(name, parts, 7, rcpts, BUCKET, &key, &opts);
        let dkb = *o.dk.expose();
        let before_mac = &o.header[..o.header.len() - 32];
        let table_len = o.table_len();
        let (mut stream_off, mut pt_off) = (0u64, 0u64);
        let mut part_info = Vec::new();
        for (i, (n, len, s)) in o.parts.iter().enumerate() {
            part_info.push(json!({
                "number": n,
                "plaintext_len": len,
                "plaintext_offset": pt_off,
                "salt": hex::encode(s),
                "payload_key": hex::encode(super::naive::payload_key(&dkb, s, *n, *len)),
                "stream_offset": stream_off,
                "stream_len": size::stream_len(*len),
                "segments": size::segments(*len),
                "plaintext_md5": hex::encode(md5_of(&o.pts[i])),
            }));
            stream_off += size::stream_len(*len);
            pt_off += len;
        }
        let aad = naive::aad(BUCKET, &key, &o.upload_id, &o.manifest[..table_len]);
        let mut intermediate = json!({
            "data_key": hex::encode(dkb),
            "commitment": hex::encode(super::naive::commitment(&dkb)),
            "header_mac_key": hex::encode(super::naive::header_mac_key(&dkb)),
            "header_hex": hex::encode(&o.header),
            "header_len": o.header.len(),
            "mac_input_hex": hex::encode(super::naive::mac_input(BUCKET, &key, before_mac)),
            "upload_id": hex::encode(o.upload_id),
            "manifest_object_key": manifest_object_key(&o.upload_id),
            "manifest_aad_hex": hex::encode(&aad),
            "manifest_len": o.manifest.len(),
            "etag_md5": hex::encode(o.etag_md5),
            "etag": format!("{}-{}", hex::encode(o.etag_md5), o.parts.len()),
            "body_len": stream_off,
            "parts": part_info,
        });
        let mut inputs = json!({
            "data_key": hex::encode(dkb),
            "upload_id": hex::encode(o.upload_id),
            "recipients": rcpts,
            "overflow": false,
            "header_sealed_for_key": key,
            "parts": o.parts.iter().map(|(n, len, s)| json!({
                "number": n, "plaintext_len": len, "salt": hex::encode(s),
            })).collect::<Vec<_>>(),
        });
        {
            let im = intermediate.as_object_mut().unwrap();
            let inp = inputs.as_object_mut().unwrap();
            if o.layout == 1 {
                im.insert(
                    "manifest_key".into(),
                    json!(hex::encode(naive::manifest_key(&dkb))),
                );
                im.insert("manifest_nonce".into(), json!(hex::encode(o.nonce)));
                inp.insert("manifest_nonce".into(), json!(hex::encode(o.nonce)));
            } else {
                let block_key = super::naive::block_key(&dkb, "manifest", &o.block_salt);
                im.insert("manifest_layout".into(), json!(2));
                im.insert(
                    "manifest_block_salt".into(),
                    json!(hex::encode(o.block_salt)),
                );
                im.insert("manifest_block_key".into(), json!(hex::encode(block_key)));
                im.insert(
                    "manifest_records_hex".into(),
                    json!(hex::encode(&o.records)),
                );
                im.insert(
                    "manifest_block_len".into(),
                    json!(o.manifest.len() - table_len - 4),
                );
                inp.insert("manifest_layout".into(), json!(2));
                inp.insert(
                    "manifest_block_salt".into(),
                    json!(hex::encode(o.block_salt)),
                );
                inp.insert("header_in_manifest".into(), json!(o.header_in_manifest));
            }
        }
        if let Some(records) = &opts.attributes {
            attributes_values(&mut inputs, &mut intermediate, &o.dk, name, records);
        }
        let without = if o.header_in_manifest {
            // The header is in the manifest: without it there is no header.
            Without::Fail("MissingManifest")
        } else {
            o.walk_intact()
        };
        Vector {
            name: name.into(),
            description: description.into(),
            expect: Expect::Pass,
            bucket: BUCKET.into(),
            key,
            identity_sets: sets(identity_sets),
            meta: o.meta(),
            body: o.body(),
            plain: Some(Plain {
                len: o.total() as usize,
                add: o.add,
            }),
            inputs: Some(inputs),
            intermediate: Some(intermediate),
            manifest: o.stored(),
            without_manifest: Some(without.to_json()),
            attributes: attrs.map(|a| a.declared.clone()),
        }
    }

    /// The base of the multipart must-fail vectors: parts 1, 2, 3 of 1000,
    /// 1000 and 500 bytes, one RSA-2048 recipient, sealed for `name`. All
    /// share one data key, upload id, salts and nonce; only names differ.
    fn mp_small(&self, name: &str) -> MpObj {
        self.mp_object(
            SMALL,
            &[(1, 1000), (2, 1000), (3, 500)],
            7,
            &["rsa2048-a"],
            BUCKET,
            &object_key(name),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn mp_fail(
        &self,
        name: &str,
        description: &str,
        error: &'static str,
        o: &MpObj,
        body: Vec<u8>,
        manifest: ManifestField,
        without: Without,
    ) -> Vector {
        let mut f = self.fail(name, description, error);
        f.meta = o.meta();
        f.body = body;
        f.manifest = manifest;
        f.without_manifest = Some(without.to_json());
        f
    }

    pub(super) fn multipart_vectors(&self) -> Vec<Vector> {
        let mut v = Vec::new();
        let a = &["rsa2048-a"][..];
        // ---- pass vectors
        v.push(self.mp_pass(
            "pass-mp-70000-1",
            "Two parts of 70000 and 1 bytes (part 1: a full segment and a last one of 4464 \
             bytes). Multipart ETag = hex(MD5(md5(part 1) || md5(part 2)))-2.",
            &[(1, 70000), (2, 1)],
            a,
            &[a],
        ));
        v.push(self.mp_pass(
            "pass-mp-64k-part",
            "Part 1 is exactly one segment (65536 bytes: its only segment is full and last), \
             part 2 holds 100 bytes.",
            &[(1, SEGMENT_SIZE), (2, 100)],
            a,
            &[a],
        ));
        v.push(self.mp_pass(
            "pass-mp-empty-last-part",
            "Parts of 1000 and 0 bytes: the empty last part is a 72-byte stream (one empty \
             segment, just a tag, then the trailer).",
            &[(1, 1000), (2, 0)],
            a,
            &[a],
        ));
        v.push(self.mp_pass(
            "pass-mp-parts-1-3-7",
            "Non-contiguous part numbers 1, 3 and 7 (100, 2000 and 5 bytes): each part's \
             payload key carries its own number.",
            &[(1, 100), (3, 2000), (7, 5)],
            a,
            &[a],
        ));
        v.push(self.mp_pass(
            "pass-mp-part-10000",
            "One part, numbered 10000 (the highest S3 allows), of 10 bytes; ETag ends in -1.",
            &[(10000, 10)],
            a,
            &[a],
        ));
        v.push(self.mp_pass(
            "pass-mp-empty",
            "One empty part: the object's plaintext is empty; ETag = hex(MD5(MD5(\"\")))-1.",
            &[(1, 0)],
            a,
            &[a],
        ));
        v.push(self.mp_pass(
            "pass-mp-2-recipients",
            "Two parts of 500 bytes, two recipients (RSA-2048, RSA-3072): a multipart header \
             with two stanzas. Each identity alone opens it.",
            &[(1, 500), (2, 500)],
            &["rsa2048-b", "rsa3072-a"],
            &[
                &["rsa2048-b"],
                &["rsa3072-a"],
                &["rsa2048-outsider", "rsa3072-a"],
            ],
        ));

        // ---- must-fail: the store re-completes the upload with other parts
        let all = [0usize, 1, 2];
        {
            let n = "fail-mp-drop-middle-part";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "Parts 1, 2, 3 (1000, 1000, 500 bytes); the store re-completed the upload without \
                 part 2 (body = streams 1 and 3). The manifest, which the store cannot forge, \
                 still lists three parts: the body is shorter than its layout.",
                "Truncated",
                &o,
                o.body_of(&[0, 2]),
                o.stored(),
                Without::Pass(vec![1, 3], o.plaintext_of(&[0, 2])),
            ));
        }
        {
            let n = "fail-mp-drop-middle-part-manifest-edited";
            let o = self.mp_small(n);
            // Part 2 cut out of the table, N and total rewritten; nonce and
            // sealed ETag kept (the store cannot seal anew).
            let mut m = naive::table(2, 1500, &[o.parts[0], o.parts[2]]);
            m.extend_from_slice(&o.manifest[o.nonce_offset()..]);
            v.push(self.mp_fail(
                n,
                "As fail-mp-drop-middle-part, with the manifest edited to match: part 2's entry \
                 removed, part count 2, total 1500, nonce and sealed ETag kept. The layout now \
                 matches the body; the manifest no longer authenticates.",
                "HeaderMac",
                &o,
                o.body_of(&[0, 2]),
                o.stored_bytes(m),
                Without::Pass(vec![1, 3], o.plaintext_of(&[0, 2])),
            ));
        }
        {
            let n = "fail-mp-drop-last-part";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "The store re-completed the upload without its last part (body = streams 1 and \
                 2): shorter than the layout. A reader without the manifest cannot tell.",
                "Truncated",
                &o,
                o.body_of(&[0, 1]),
                o.stored(),
                Without::Pass(vec![1, 2], o.plaintext_of(&[0, 1])),
            ));
        }
        {
            let n = "fail-mp-part-duplicated";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "Part 2 duplicated (body = streams 1, 2, 2, 3): longer than the layout.",
                "TrailingData",
                &o,
                o.body_of(&[0, 1, 1, 2]),
                o.stored(),
                Without::Fail("SegmentAuth"),
            ));
        }
        {
            let n = "fail-mp-part-duplicated-in-place";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "Part 1 served twice, in place of part 2 of the same length (body = streams 1, \
                 1, 3): the layout's length matches; the second stream header carries part 1's \
                 salt, not the salt the manifest lists for part 2.",
                "StreamMismatch",
                &o,
                o.body_of(&[0, 0, 2]),
                o.stored(),
                Without::Fail("SegmentAuth"),
            ));
        }
        {
            let n = "fail-mp-parts-reordered";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "Parts 2 and 3 swapped (body = streams 1, 3, 2): same total length; where part 2 \
                 belongs the stream header is part 3's (other salt, 500 bytes).",
                "StreamMismatch",
                &o,
                o.body_of(&[0, 2, 1]),
                o.stored(),
                Without::Fail("SegmentAuth"),
            ));
        }
        let older = |o: &MpObj| {
            let s = salt(&format!("{SMALL}/part-2/older"));
            let pt = pattern(1000, 99);
            (seal_all(&o.dk, s, 2, &pt).unwrap(), pt)
        };
        {
            let n = "fail-mp-part-older-upload";
            let o = self.mp_small(n);
            let (s2, pt2) = older(&o);
            v.push(self.mp_fail(
                n,
                "Part 2 replaced by an earlier upload of part number 2 (same length, other salt \
                 and content): its stream header's salt is not the manifest's.",
                "StreamMismatch",
                &o,
                [&o.streams[0][..], &s2, &o.streams[2]].concat(),
                o.stored(),
                Without::Pass(vec![1, 2, 3], [&o.pts[0][..], &pt2, &o.pts[2]].concat()),
            ));
        }
        {
            let n = "fail-mp-part-older-upload-header-rewritten";
            let o = self.mp_small(n);
            let (mut s2, _) = older(&o);
            s2[..STREAM_HEADER_LEN].copy_from_slice(&o.streams[1][..STREAM_HEADER_LEN]);
            v.push(self.mp_fail(
                n,
                "As fail-mp-part-older-upload, with the older stream's header rewritten to the \
                 manifest's salt and length: the binding agrees, its segments do not open under \
                 the payload key of the listed salt.",
                "SegmentAuth",
                &o,
                [&o.streams[0][..], &s2, &o.streams[2]].concat(),
                o.stored(),
                Without::Fail("SegmentAuth"),
            ));
        }
        {
            let n = "fail-mp-part-renumbered";
            let o = self.mp_small(n);
            let (_, _, s) = o.parts[2];
            let s3 = seal_all(&o.dk, s, 4, &o.pts[2]).unwrap();
            v.push(self.mp_fail(
                n,
                "Part 3's plaintext, salt and length sealed as part number 4: only the part number \
                 in the payload-key info differs from what the manifest lists, so the stream \
                 header agrees and segment 0 does not open.",
                "SegmentAuth",
                &o,
                [&o.streams[0][..], &o.streams[1], &s3].concat(),
                o.stored(),
                Without::Pass(vec![1, 2, 4], o.plaintext_of(&all)),
            ));
        }
        {
            let n = "fail-mp-part-not-in-completion";
            let o = self.mp_small(n);
            let pt4 = pattern(500, 55);
            let s4 = seal_all(&o.dk, salt(&format!("{SMALL}/part-4")), 4, &pt4).unwrap();
            v.push(self.mp_fail(
                n,
                "An uploaded part 4 (500 bytes) that the client left out of its completion, \
                 completed by the store in place of part 3 (same length): its salt is not the one \
                 the manifest lists.",
                "StreamMismatch",
                &o,
                [&o.streams[0][..], &o.streams[1], &s4].concat(),
                o.stored(),
                Without::Pass(vec![1, 2, 4], [&o.pts[0][..], &o.pts[1], &pt4].concat()),
            ));
        }
        {
            let n = "fail-mp-part-segment-bit";
            let o = self.mp_small(n);
            let mut body = o.body();
            body[o.streams[0].len() + STREAM_HEADER_LEN + 10] ^= 0x04;
            v.push(self.mp_fail(
                n,
                "Bit 2 of byte 10 of part 2's segment 0 flipped.",
                "SegmentAuth",
                &o,
                body,
                o.stored(),
                Without::Fail("SegmentAuth"),
            ));
        }
        {
            let n = "fail-mp-body-extra-byte";
            let o = self.mp_small(n);
            let mut body = o.body();
            body.push(0);
            v.push(self.mp_fail(
                n,
                "One zero byte appended to the body: longer than the layout.",
                "TrailingData",
                &o,
                body,
                o.stored(),
                Without::Fail("Truncated"),
            ));
        }
        {
            let n = "fail-mp-body-short-byte";
            let o = self.mp_small(n);
            let mut body = o.body();
            body.pop();
            v.push(self.mp_fail(
                n,
                "The body's last byte (of part 3's trailer) cut off: shorter than the layout.",
                "Truncated",
                &o,
                body,
                o.stored(),
                Without::Fail("Truncated"),
            ));
        }

        // ---- must-fail: the manifest of something else
        let other_body = |o: &MpObj, n: &str| {
            self.mp_object(
                "mp-other",
                &[(1, 1000), (2, 1000), (3, 500)],
                9,
                a,
                BUCKET,
                &object_key(&format!("{n}-other")),
            )
            .manifest_for(o)
        };
        {
            let n = "fail-mp-manifest-of-other-object";
            let o = self.mp_small(n);
            let (_, other_manifest) = other_body(&o, n);
            v.push(self.mp_fail(
                n,
                "Swapped manifests: the store serves, at this object's manifest key, the manifest \
                 of another multipart object (other data key and upload id; same part sizes).",
                "HeaderMac",
                &o,
                o.body(),
                other_manifest,
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-other-object-body-and-manifest";
            let o = self.mp_small(n);
            let (other_streams, other_manifest) = other_body(&o, n);
            v.push(self.mp_fail(
                n,
                "This object's metadata (header) served with another multipart object's body \
                 and manifest (same part sizes): the manifest does not open under this header's \
                 data key.",
                "HeaderMac",
                &o,
                other_streams,
                other_manifest,
                Without::Fail("SegmentAuth"),
            ));
        }
        for (n, desc, bucket, key, up) in [
            (
                "fail-mp-manifest-other-key",
                "The manifest sealed with this object's data key, upload id and part table, but \
                 for another object key (…-elsewhere), as the store could serve it after a copy.",
                BUCKET.to_string(),
                Some("-elsewhere"),
                None,
            ),
            (
                "fail-mp-manifest-other-bucket",
                "The manifest sealed with this object's data key, upload id and part table, but \
                 for another bucket (sealgate-vectors-2).",
                format!("{BUCKET}-2"),
                None,
                None,
            ),
            (
                "fail-mp-manifest-other-upload-id",
                "The manifest sealed with this object's data key, name and part table, but for \
                 another upload id, and stored at this object's manifest key.",
                BUCKET.to_string(),
                None,
                Some(upload_id("mp-small-other-upload")),
            ),
        ] {
            let o = self.mp_small(n);
            let key = format!("{}{}", object_key(n), key.unwrap_or(""));
            let table = &o.manifest[..o.nonce_offset()];
            let m = o.manifest_with(table, &bucket, &key, &up.unwrap_or(o.upload_id));
            v.push(self.mp_fail(
                n,
                desc,
                "HeaderMac",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-wrong-key";
            let o = self.mp_small(n);
            let mut f = self.mp_fail(
                n,
                "An intact multipart object (header, body and manifest) read under another \
                 object key: the header MAC fails before the manifest is read.",
                "HeaderMac",
                &o,
                o.body(),
                o.stored(),
                Without::Fail("HeaderMac"),
            );
            f.key = object_key("fail-mp-wrong-key-elsewhere");
            v.push(f);
        }
        {
            let n = "fail-mp-manifest-missing";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "The store holds no manifest for the header's upload id.",
                "MissingManifest",
                &o,
                o.body(),
                ManifestField::Missing,
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-manifest-uppercase-key";
            let o = self.mp_small(n);
            let m = ManifestField::Stored(StoredManifest {
                object_key: format!("{MANIFEST_PREFIX}{}", hex::encode_upper(o.upload_id)),
                bytes: o.manifest.clone(),
            });
            v.push(self.mp_fail(
                n,
                "The right manifest, but stored under the upload id in uppercase hex; S3 keys are \
                 case-sensitive and the manifest key uses lowercase hex, so there is no manifest.",
                "MissingManifest",
                &o,
                o.body(),
                m,
                o.walk_intact(),
            ));
        }

        // ---- must-fail: the manifest's own bytes
        let flip =
            |n: &str, desc: &str, err: &'static str, at: &dyn Fn(&MpObj) -> usize, bit: u8| {
                let o = self.mp_small(n);
                let mut m = o.manifest.clone();
                m[at(&o)] ^= bit;
                self.mp_fail(
                    n,
                    desc,
                    err,
                    &o,
                    o.body(),
                    o.stored_bytes(m),
                    o.walk_intact(),
                )
            };
        v.push(flip(
            "fail-mp-manifest-salt-bit",
            "Bit 0 of the first salt byte of part 2's manifest entry flipped.",
            "HeaderMac",
            &|o| o.entry_offset(1) + 12,
            0x01,
        ));
        v.push(flip(
            "fail-mp-manifest-part-number-bit",
            "Part 3's number in the manifest changed to 7 (bit 2 of its last byte): the table \
             stays well-formed (1, 2, 7).",
            "HeaderMac",
            &|o| o.entry_offset(2) + 3,
            0x04,
        ));
        v.push(flip(
            "fail-mp-manifest-length-bit",
            "Bit 0 of part 1's plaintext length in the manifest flipped (1000 to 1001): the \
             lengths no longer sum to the total.",
            "MalformedHeader",
            &|o| o.entry_offset(0) + 11,
            0x01,
        ));
        v.push(flip(
            "fail-mp-manifest-total-bit",
            "Bit 0 of the manifest's total plaintext length flipped (2500 to 2501).",
            "MalformedHeader",
            &|_| 16,
            0x01,
        ));
        v.push(flip(
            "fail-mp-manifest-nonce-bit",
            "Bit 0 of the manifest nonce's first byte flipped.",
            "HeaderMac",
            &|o| o.nonce_offset(),
            0x01,
        ));
        v.push(flip(
            "fail-mp-manifest-etag-bit",
            "Bit 0 of the sealed ETag's first byte (its ciphertext) flipped.",
            "HeaderMac",
            &|o| o.nonce_offset() + 12,
            0x01,
        ));
        v.push(flip(
            "fail-mp-manifest-version",
            "Manifest layout byte set to 3 (0x01 ^ 0x02): v1 defines layouts 1 and 2 only.",
            "UnsupportedVersion",
            &|_| 0,
            0x02,
        ));
        {
            let n = "fail-mp-manifest-lengths-shifted";
            let o = self.mp_small(n);
            let mut e = o.parts.clone();
            e[0].1 = 999;
            e[1].1 = 1001;
            let mut m = naive::table(3, 2500, &e);
            m.extend_from_slice(&o.manifest[o.nonce_offset()..]);
            v.push(self.mp_fail(
                n,
                "Part lengths in the manifest edited to 999 and 1001 (total unchanged): the table \
                 is well-formed and its layout has the body's length (both parts are single \
                 segments), so only the manifest's authentication catches it.",
                "HeaderMac",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            ));
        }
        for (n, desc, cut) in [
            (
                "fail-mp-manifest-truncated",
                "The manifest's last byte (of the sealed ETag's tag) cut off.",
                1usize,
            ),
            (
                "fail-mp-manifest-truncated-table",
                "The manifest cut in the middle of part 3's entry.",
                44 + 14,
            ),
        ] {
            let o = self.mp_small(n);
            let m = o.manifest[..o.manifest.len() - cut].to_vec();
            v.push(self.mp_fail(
                n,
                desc,
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-manifest-empty";
            let o = self.mp_small(n);
            v.push(self.mp_fail(
                n,
                "The manifest object exists but is empty.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(Vec::new()),
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-manifest-trailing-byte";
            let o = self.mp_small(n);
            let mut m = o.manifest.clone();
            m.push(0);
            v.push(self.mp_fail(
                n,
                "One zero byte appended to the manifest after the sealed ETag.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-manifest-header-len-too-large";
            let o = self.mp_small(n);
            let mut m = o.manifest.clone();
            m[1..5].copy_from_slice(&65537u32.to_be_bytes());
            v.push(self.mp_fail(
                n,
                "The manifest's header length H set to 65537, above the 65536 limit.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            ));
        }

        // ---- must-fail: a writer's malformed manifest, correctly sealed
        let sealed = |n: &str,
                      desc: &str,
                      count: u32,
                      total: u64,
                      entries: &[Entry],
                      order: &[usize],
                      without: Without| {
            let o = self.mp_small(n);
            let m = o.manifest_with(
                &naive::table(count, total, entries),
                BUCKET,
                &object_key(n),
                &o.upload_id,
            );
            self.mp_fail(
                n,
                desc,
                "MalformedHeader",
                &o,
                o.body_of(order),
                o.stored_bytes(m),
                without,
            )
        };
        let base = self.mp_small("base");
        let (p1, p2, p3) = (base.parts[0], base.parts[1], base.parts[2]);
        v.push(sealed(
            "fail-mp-manifest-total-not-sum",
            "A manifest sealed by its writer (it authenticates) whose total, 2501, is not the \
             sum of its part lengths, 2500.",
            3,
            2501,
            &[p1, p2, p3],
            &all,
            base.walk_intact(),
        ));
        v.push(sealed(
            "fail-mp-manifest-zero-parts",
            "A manifest sealed by its writer with part count 0 and total 0 (no entries).",
            0,
            0,
            &[],
            &all,
            base.walk_intact(),
        ));
        v.push(sealed(
            "fail-mp-manifest-parts-not-increasing",
            "A manifest sealed by its writer listing parts 2, 1, 3 (body in that order too): \
             part numbers must strictly increase.",
            3,
            2500,
            &[p2, p1, p3],
            &[1, 0, 2],
            Without::Fail("SegmentAuth"),
        ));
        v.push(sealed(
            "fail-mp-manifest-part-number-0",
            "A manifest sealed by its writer whose first part is numbered 0 (salt and length of \
             part 1, whose stream is sealed as part 1): part numbers are 1..=10000.",
            3,
            2500,
            &[(0, p1.1, p1.2), p2, p3],
            &all,
            base.walk_intact(),
        ));
        v.push(sealed(
            "fail-mp-manifest-part-number-10001",
            "A manifest sealed by its writer whose last part is numbered 10001: part numbers are \
             1..=10000.",
            3,
            2500,
            &[p1, p2, (10001, p3.1, p3.2)],
            &all,
            base.walk_intact(),
        ));
        v.extend(self.layout2_vectors());
        v
    }

    /// The base of the must-fail vectors of this release's multipart
    /// objects: as [`Gen::mp_small`] (parts 1, 2, 3 of 1000, 1000 and 500
    /// bytes), with sealed attributes (a Content-Type) and a layout-2
    /// manifest; the header inline, or in the manifest behind a pointer.
    fn mp_small2(&self, name: &str, header_in_manifest: bool) -> MpObj {
        let mut attrs = Vec::new();
        record(&mut attrs, 0x01, b"application/octet-stream");
        self.mp_object_with(
            SMALL2,
            &[(1, 1000), (2, 1000), (3, 500)],
            7,
            &["rsa2048-a"],
            BUCKET,
            &object_key(name),
            &MpOpts::layout2(name, attrs, header_in_manifest),
        )
    }

    /// Multipart objects as this release writes them: sealed attributes,
    /// manifest layout 2, the header in the manifest behind a `0x81` pointer
    /// when it does not fit metadata (FORMAT.md 4.6, 6.2, 10.2).
    fn layout2_vectors(&self) -> Vec<Vector> {
        let mut v = Vec::new();
        let a = &["rsa2048-a"][..];
        let five = [
            "rsa4096-a",
            "rsa3072-a",
            "rsa2048-a",
            "rsa2048-b",
            "rsa2048-c",
        ];
        // ---- pass vectors
        v.push(self.mp_pass_with(
            "pass-mp-attributes",
            "A multipart object as this release writes it: the header inline with sealed \
             attributes (flags 0x03), a layout-2 manifest whose sealed block holds the ETag \
             MD5 (record 0x01). Parts of 1000 and 300 bytes.",
            &[(1, 1000), (2, 300)],
            a,
            &[a],
            Some(&AttrSpec::new(json!({
                "content_type": "application/x-tar",
                "content_encoding": "zstd",
                "metadata": { "mtime": "1700000000", "note": "ünïcødé ✓" },
            }))),
            MpOpts::layout2("", Vec::new(), false),
        ));
        v.push(self.mp_pass_with(
            "pass-mp-header-in-manifest",
            "Five recipients: the header does not fit metadata, so metadata holds a 0x81 \
             pointer (upload id, MAC for this name) and the header is the manifest's H field \
             (layout 2). Parts 1 and 3 of 2000 and 10 bytes. Without the manifest there is no \
             header, so the manifest-less walk is impossible (MissingManifest).",
            &[(1, 2000), (3, 10)],
            &five,
            &[&["rsa2048-c"], &["rsa4096-a"]],
            Some(&AttrSpec::new(json!({
                "content_type": "video/mp4",
                "cache_control": "no-store",
                "metadata": {
                    "camera": "Ünïcam ✓",
                    "mtime": "1700000000",
                    "owner": "zoë",
                },
            }))),
            MpOpts::layout2("", Vec::new(), true),
        ));
        v.push(self.mp_pass_with(
            "pass-mp-manifest-unknown-optional",
            "A layout-2 manifest from a later release: after the ETag record its block holds \
             a record with the optional tag 0x90, which a reader of this release skips. One \
             part of 100 bytes; an empty attributes block.",
            &[(1, 100)],
            a,
            &[a],
            Some(&AttrSpec::new(json!({ "metadata": {} }))),
            MpOpts {
                extra_records: vec![(0x90, b"part checksums of a later release".to_vec())],
                ..MpOpts::layout2("", Vec::new(), false)
            },
        ));

        // ---- must-fail: the manifest pointer (0x81)
        {
            let n = "fail-mp-pointer-upload-id-differs";
            let o = self.mp_small2(n, true);
            let other = upload_id("mp-small-2-elsewhere");
            let mut f = self.mp_fail(
                n,
                "The store edited the 0x81 pointer's upload id (not covered by its MAC) and \
                 copied the manifest to the key that id names: the header in it authenticates \
                 with the pointer's MAC, but its upload id is not the pointer's.",
                "HeaderMac",
                &o,
                o.body(),
                ManifestField::Stored(StoredManifest {
                    object_key: manifest_object_key(&other),
                    bytes: o.manifest.clone(),
                }),
                Without::Fail("MissingManifest"),
            );
            f.meta = o.pointer(&other, BUCKET, &object_key(n));
            v.push(f);
        }
        {
            let n = "fail-mp-pointer-manifest-without-header";
            let o = self.mp_small2(n, true);
            let table = naive::table_with(2, &[], 3, o.total(), &o.parts);
            let m = o.manifest2_with(&table, &o.records, BUCKET, &object_key(n), &o.upload_id);
            v.push(self.mp_fail(
                n,
                "A 0x81 pointer to a manifest (sealed by its writer) with H = 0: there is no \
                 header to read.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                Without::Fail("MissingManifest"),
            ));
        }
        {
            let n = "fail-mp-pointer-manifest-missing";
            let o = self.mp_small2(n, true);
            v.push(self.mp_fail(
                n,
                "A 0x81 pointer naming a manifest the store does not hold.",
                "MissingManifest",
                &o,
                o.body(),
                ManifestField::Missing,
                Without::Fail("MissingManifest"),
            ));
        }
        {
            let n = "fail-mp-pointer-mac-bit";
            let o = self.mp_small2(n, true);
            let mut ptr = URL_SAFE_NO_PAD.decode(o.meta()).unwrap();
            ptr[49] ^= 0x01;
            let mut f = self.mp_fail(
                n,
                "Bit 0 of the last byte of the 0x81 pointer (its MAC) flipped; the MAC field \
                 inside the header is intact but is not what a reader checks.",
                "HeaderMac",
                &o,
                o.body(),
                o.stored(),
                Without::Fail("MissingManifest"),
            );
            f.meta = URL_SAFE_NO_PAD.encode(&ptr);
            v.push(f);
        }
        {
            let n = "fail-mp-pointer-short";
            let o = self.mp_small2(n, true);
            let ptr = URL_SAFE_NO_PAD.decode(o.meta()).unwrap();
            let mut f = self.mp_fail(
                n,
                "A 0x81 pointer of 49 bytes (its MAC's last byte missing): v1 manifest \
                 pointers are exactly 50 bytes.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored(),
                Without::Fail("MalformedHeader"),
            );
            f.meta = URL_SAFE_NO_PAD.encode(&ptr[..49]);
            v.push(f);
        }
        {
            let n = "fail-mp-pointer-wrong-key";
            let o = self.mp_small2(n, true);
            let mut f = self.mp_fail(
                n,
                "An intact object with its header in the manifest, read under another object \
                 key: the pointer's MAC is for this one.",
                "HeaderMac",
                &o,
                o.body(),
                o.stored(),
                Without::Fail("MissingManifest"),
            );
            f.key = object_key("fail-mp-pointer-wrong-key-elsewhere");
            v.push(f);
        }
        {
            let n = "fail-mp-pointer-header-attributes-bit";
            let o = self.mp_small2(n, true);
            let mut m = o.manifest.clone();
            // The header's attributes block lies just before its MAC.
            let at = 5 + o.header.len() - 32 - 10;
            m[at] ^= 0x01;
            v.push(self.mp_fail(
                n,
                "A bit of the attributes block of the header kept in the manifest flipped: \
                 the pointer's MAC covers the header (and the manifest no longer \
                 authenticates either, but the header is checked first).",
                "HeaderMac",
                &o,
                o.body(),
                o.stored_bytes(m),
                Without::Fail("MissingManifest"),
            ));
        }
        {
            let n = "fail-mp-pointer-to-single-part-header";
            let o = self.mp_small2(n, true);
            let key = object_key(n);
            let binding = BodyBinding::Single {
                salt: salt(&format!("{n}/stream")),
                plaintext_len: o.total(),
            };
            let mut attrs = Vec::new();
            record(&mut attrs, 0x01, b"application/octet-stream");
            let single = Header::assemble(
                &o.dk,
                binding,
                vec![self.stanza("rsa2048-a", &o.dk)],
                Some(attributes_block(&o.dk, n, &attrs)),
                BUCKET,
                &key,
            )
            .unwrap();
            let table = naive::table_with(2, single.raw(), 3, o.total(), &o.parts);
            let m = o.manifest2_with(&table, &o.records, BUCKET, &key, &o.upload_id);
            let mut f = self.mp_fail(
                n,
                "A 0x81 pointer (MAC'd by its writer) to a manifest holding a single-part \
                 header: a header behind a manifest pointer is a multipart one.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                Without::Fail("MissingManifest"),
            );
            f.meta = MetaValue::InManifest {
                upload_id: o.upload_id,
                mac: single.mac_for(&o.dk, BUCKET, &key),
            }
            .encode();
            v.push(f);
        }

        // ---- must-fail: a header in two homes, or in the wrong one
        {
            let n = "fail-mp-manifest-header-and-inline";
            let o = self.mp_small2(n, false);
            let table = naive::table_with(2, &o.header, 3, o.total(), &o.parts);
            let m = o.manifest2_with(&table, &o.records, BUCKET, &object_key(n), &o.upload_id);
            v.push(self.mp_fail(
                n,
                "The header inline in metadata, and a manifest (sealed by its writer) that \
                 holds it too (H > 0): a header has one home.",
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            ));
        }
        {
            let n = "fail-mp-body-pointer-to-multipart-header";
            let o = self.mp_small2(n, false);
            let mut f = self.mp_fail(
                n,
                "A multipart header at the head of the body behind a 0x80 pointer (MAC'd for \
                 this name), the manifest beside it: a header behind a body pointer is a \
                 single-part one.",
                "MalformedHeader",
                &o,
                [o.header.clone(), o.body()].concat(),
                o.stored(),
                Without::Fail("MalformedHeader"),
            );
            f.meta = MetaValue::Overflow {
                header_len: o.header.len() as u32,
                mac: Header::parse(&o.header)
                    .unwrap()
                    .mac_for(&o.dk, BUCKET, &object_key(n)),
            }
            .encode();
            v.push(f);
        }

        // ---- must-fail: the layout-2 manifest
        let resealed = |n: &str, desc: &str, records: &dyn Fn(&MpObj) -> Vec<u8>| {
            let o = self.mp_small2(n, false);
            let table = &o.manifest[..o.table_len()];
            let m = o.manifest2_with(table, &records(&o), BUCKET, &object_key(n), &o.upload_id);
            self.mp_fail(
                n,
                &format!("A layout-2 manifest sealed by its writer (it opens) {desc}"),
                "MalformedHeader",
                &o,
                o.body(),
                o.stored_bytes(m),
                o.walk_intact(),
            )
        };
        v.push(resealed(
            "fail-mp-manifest-unknown-critical",
            "whose block holds, after the ETag, a record with tag 0x02: critical and unknown \
             to v1.",
            &|o| naive::etag_records(&o.etag_md5, &[(0x02, Vec::new())]),
        ));
        v.push(resealed(
            "fail-mp-manifest-no-etag",
            "whose block holds no records: the ETag record 0x01 is required.",
            &|_| Vec::new(),
        ));
        v.push(resealed(
            "fail-mp-manifest-etag-short",
            "whose ETag record holds 15 bytes instead of 16.",
            &|o| {
                let mut r = Vec::new();
                record(&mut r, 0x01, &o.etag_md5[..15]);
                r
            },
        ));
        let edited =
            |n: &str, desc: &str, err: &'static str, edit: &dyn Fn(&MpObj, &mut Vec<u8>)| {
                let o = self.mp_small2(n, false);
                let mut m = o.manifest.clone();
                edit(&o, &mut m);
                self.mp_fail(
                    n,
                    desc,
                    err,
                    &o,
                    o.body(),
                    o.stored_bytes(m),
                    o.walk_intact(),
                )
            };
        v.push(edited(
            "fail-mp-manifest-block-past-end",
            "A layout-2 manifest whose S is one more than the bytes of the block that follow: \
             the block runs past the end.",
            "MalformedHeader",
            &|o, m| {
                let at = o.table_len();
                let s = u32::from_be_bytes(m[at..at + 4].try_into().unwrap());
                m[at..at + 4].copy_from_slice(&(s + 1).to_be_bytes());
            },
        ));
        v.push(edited(
            "fail-mp-manifest-block-short",
            "A layout-2 manifest with S = 31 and its block cut to 31 bytes: below the 32 of \
             salt and tag.",
            "MalformedHeader",
            &|o, m| {
                let at = o.table_len();
                m.truncate(at + 4 + 31);
                m[at..at + 4].copy_from_slice(&31u32.to_be_bytes());
            },
        ));
        v.push(edited(
            "fail-mp-manifest-block-bit",
            "Bit 0 of the first ciphertext byte of the layout-2 manifest's sealed block (after \
             its salt) flipped.",
            "HeaderMac",
            &|o, m| m[o.table_len() + 4 + 16] ^= 0x01,
        ));
        v.push(edited(
            "fail-mp-manifest-layout2-salt-bit",
            "Bit 0 of the first salt byte of part 2's entry in a layout-2 manifest flipped: the \
             block's AAD covers the part table.",
            "HeaderMac",
            &|o, m| m[o.entry_offset(1) + 12] ^= 0x01,
        ));
        v
    }
}

impl MpObj {
    /// This object's streams and its manifest stored at `victim`'s manifest key.
    fn manifest_for(&self, victim: &MpObj) -> (Vec<u8>, ManifestField) {
        (
            self.body(),
            ManifestField::Stored(StoredManifest {
                object_key: manifest_object_key(&victim.upload_id),
                bytes: self.manifest.clone(),
            }),
        )
    }
}

// ---------------------------------------------------------------------------
// Checks

fn hex_arr<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// A pass vector opened by the library: its ETag is the declared one.
pub(super) fn check_opened(v: &Value, opened: &Opened) {
    let name = v["name"].as_str().unwrap();
    let im = &v["intermediate"];
    assert_eq!(
        opened.etag.as_deref(),
        im["etag"].as_str(),
        "{name}: multipart ETag"
    );
    assert_eq!(
        hex::encode(opened.trailer_md5),
        im["etag_md5"].as_str().unwrap(),
        "{name}: ETag MD5"
    );
}

/// The checks of a multipart vector beyond the library read: the naive
/// reader, the manifest-less walk, and (pass vectors) re-encryption and
/// ranged reads.
pub(super) fn check_vector(
    keys: &Keys,
    v: &Value,
    meta: &str,
    body: &[u8],
    manifest: &ManifestField,
) {
    let name = v["name"].as_str().unwrap();
    let bucket = v["bucket"].as_str().unwrap();
    let key = v["key"].as_str().unwrap();
    let sets: Vec<Vec<String>> = serde_json::from_value(v["identity_sets"].clone()).unwrap();
    let pass = v["expect"] == "pass";
    let without = &v["without_manifest"];
    assert!(without.is_object(), "{name}: without_manifest missing");
    for set in &sets {
        let ids = keys.identities(set);
        // Without the manifest (10.3, last paragraph): the header must come
        // from metadata or the body; one kept in the manifest is out of reach.
        let walked =
            open_header(meta, body, &ManifestField::Missing, &ids, bucket, key).and_then(|h| {
                assert!(h.header.is_multipart(), "{name}: single-part header");
                walk_without_manifest(&h.dk, body)
            });
        check_walk(name, without, walked);
        // Step 1 (the header, from wherever it lives) is shared by the
        // library and the naive reader.
        let h = match open_header(meta, body, manifest, &ids, bucket, key) {
            Ok(h) => h,
            Err(e) => {
                assert!(!pass, "{name}: header refused: {e:?}");
                let want = v["error"].as_str().unwrap();
                assert_eq!(e.kind(), want, "{name}: header");
                continue;
            }
        };
        let BodyBinding::Multipart { upload_id } = h.header.binding else {
            panic!("{name}: a multipart vector with a single-part header");
        };
        // The naive reader.
        let got = naive::read(
            h.dk.expose(),
            &upload_id,
            bucket,
            key,
            manifest.stored(),
            body,
            h.home == HeaderHome::Inline,
        );
        if pass {
            let (pt, etag, parts) =
                got.unwrap_or_else(|e| panic!("{name} with {set:?}: naive reader: {e}"));
            let p = &v["plaintext"];
            assert_eq!(p["sha256"].as_str().unwrap(), hex::encode(sha256(&pt)));
            assert_eq!(
                format!("{}-{parts}", hex::encode(etag)),
                v["intermediate"]["etag"].as_str().unwrap(),
                "{name}: naive ETag"
            );
        } else {
            let want = v["error"].as_str().unwrap();
            match got {
                Ok(_) => panic!("{name} with {set:?}: naive reader opened it, want {want}"),
                Err(e) => assert_eq!(e, want, "{name} with {set:?}: naive reader"),
            }
        }
    }
    if pass {
        check_reencrypt(
            keys,
            v,
            meta,
            body,
            manifest.stored().expect("pass vector has a manifest"),
        );
        check_ranges(keys, v, meta, body, manifest);
    }
}

/// The manifest-less walk gave what the vector declares.
fn check_walk(name: &str, without: &Value, walked: Result<(Vec<u8>, Vec<u32>), Refused>) {
    {
        match (without["expect"].as_str().unwrap(), walked) {
            ("pass", Ok((pt, numbers))) => {
                let want: Vec<u32> =
                    serde_json::from_value(without["part_numbers"].clone()).unwrap();
                assert_eq!(numbers, want, "{name}: parts found without the manifest");
                assert_eq!(
                    without["plaintext_len"].as_u64().unwrap() as usize,
                    pt.len()
                );
                assert_eq!(
                    without["plaintext_sha256"].as_str().unwrap(),
                    hex::encode(sha256(&pt)),
                    "{name}: plaintext without the manifest"
                );
            }
            ("fail", Err(e)) => assert_eq!(
                e.kind(),
                without["error"].as_str().unwrap(),
                "{name}: without the manifest"
            ),
            (want, got) => panic!(
                "{name}: without the manifest: want {want}, got {:?}",
                got.map(|(_, n)| n)
            ),
        }
    }
}

/// Rebuilds a pass vector from its inputs, with the library and naively.
fn check_reencrypt(keys: &Keys, v: &Value, meta: &str, body: &[u8], m: &StoredManifest) {
    let name = v["name"].as_str().unwrap();
    let bucket = v["bucket"].as_str().unwrap();
    let key = v["key"].as_str().unwrap();
    let inputs = &v["inputs"];
    let dkb: [u8; 32] = hex_arr(&inputs["data_key"]);
    let dk = DataKey::from_bytes(dkb);
    let upload_id: [u8; 16] = hex_arr(&inputs["upload_id"]);
    assert_eq!(
        inputs["overflow"], false,
        "{name}: a multipart header never leads the body"
    );
    assert_eq!(inputs["header_sealed_for_key"].as_str(), Some(key));
    let p = &v["plaintext"];
    let pt = pattern(
        p["len"].as_u64().unwrap() as usize,
        p["generator_add"].as_u64().unwrap() as u8,
    );
    let entries: Vec<Entry> = inputs["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["number"].as_u64().unwrap() as u32,
                e["plaintext_len"].as_u64().unwrap(),
                hex_arr(&e["salt"]),
            )
        })
        .collect();

    let layout = m.bytes[0];
    assert_eq!(
        inputs
            .get("manifest_layout")
            .map_or(1, |l| l.as_u64().unwrap()),
        layout as u64,
        "{name}: manifest layout"
    );
    let in_manifest = inputs.get("header_in_manifest").is_some_and(|b| b == true);

    // Header: where the metadata says it is, sealed again with the stored
    // wrapped keys.
    let header = match MetaValue::decode(meta).unwrap() {
        MetaValue::Inline(raw) => {
            assert!(!in_manifest, "{name}: header inline");
            raw
        }
        MetaValue::InManifest {
            upload_id: named, ..
        } => {
            assert!(in_manifest, "{name}: header in the manifest");
            assert_eq!(named, upload_id, "{name}: pointer's upload id");
            Manifest::parse(&m.bytes).unwrap().header.unwrap()
        }
        MetaValue::Overflow { .. } => panic!("{name}: a body pointer"),
    };
    let parsed = Header::parse(&header).unwrap();
    let cache: WrapCache = Mutex::new(HashMap::new());
    for st in &parsed.recipients {
        cache
            .lock()
            .unwrap()
            .insert((st.key_id, dkb), st.wrapped.clone());
    }
    let names: Vec<String> = serde_json::from_value(inputs["recipients"].clone()).unwrap();
    let rs: Vec<CachedRecipient> = names
        .iter()
        .map(|n| CachedRecipient {
            inner: &keys.get(n).recipient,
            cache: &cache,
        })
        .collect();
    let refs: Vec<&dyn Recipient> = rs.iter().map(|r| r as &dyn Recipient).collect();
    let resealed = reseal_header(
        v,
        &dk,
        &refs,
        BodyBinding::Multipart { upload_id },
        &header,
        key,
    );
    assert_eq!(resealed.raw(), &header[..], "{name}: header differs");
    let (before, mac) = header.split_at(header.len() - 32);
    let naive_mac = super::naive::header_mac(&dkb, &super::naive::mac_input(bucket, key, before));
    if in_manifest {
        let pointer = MetaValue::InManifest {
            upload_id,
            mac: naive_mac.clone().try_into().unwrap(),
        }
        .encode();
        assert_eq!(meta, pointer, "{name}: metadata differs");
        assert_eq!(resealed.mac_for(&dk, bucket, key).to_vec(), naive_mac);
    } else {
        assert_eq!(meta, resealed.to_meta_inline(), "{name}: metadata differs");
    }
    assert_eq!(header[1] & 0x01, 0x01, "{name}: multipart flag");
    assert_eq!(
        &header[35..51],
        &upload_id[..],
        "{name}: upload id in the header"
    );
    assert_eq!(naive_mac, mac, "{name}: naive MAC differs");

    // Streams: library whole, library in ragged chunks, naive.
    let mut off = 0usize;
    let mut pt_off = 0usize;
    let mut md5s = Vec::new();
    for (number, len, salt) in &entries {
        let part_pt = &pt[pt_off..pt_off + *len as usize];
        let sl = size::stream_len(*len) as usize;
        let stored = &body[off..off + sl];
        assert!(
            seal_all(&dk, *salt, *number, part_pt).unwrap() == stored,
            "{name}: part {number}: re-encryption differs"
        );
        let mut sealer = Sealer::new(&dk, *salt, *number, *len);
        let mut out = Vec::new();
        for piece in part_pt.chunks(7919) {
            sealer.push(piece, &mut out).unwrap();
        }
        sealer.finish(&mut out).unwrap();
        assert!(
            out.concat() == *stored,
            "{name}: part {number}: chunked re-encryption differs"
        );
        assert!(
            super::naive::stream(&dkb, salt, *number, part_pt) == stored,
            "{name}: part {number}: naive stream differs"
        );
        md5s.extend_from_slice(&md5_of(part_pt));
        off += sl;
        pt_off += *len as usize;
    }
    assert_eq!(
        off,
        body.len(),
        "{name}: body is the part streams, nothing else"
    );
    assert_eq!(pt_off, pt.len());
    let etag_md5 = md5_of(&md5s);

    // Manifest: naive rebuild, and the library's own seal (random nonce or
    // block salt: the same bytes up to those).
    assert_eq!(m.object_key, manifest_object_key(&upload_id));
    let total: u64 = entries.iter().map(|e| e.1).sum();
    let kept: &[u8] = if in_manifest { &header } else { &[] };
    let table = naive::table_with(layout, kept, entries.len() as u32, total, &entries);
    let parts: Vec<ManifestPart> = entries
        .iter()
        .map(|&(number, plaintext_len, salt)| ManifestPart {
            number,
            plaintext_len,
            salt,
        })
        .collect();
    let im = &v["intermediate"];
    let aad = naive::aad(bucket, key, &upload_id, &table);
    assert_eq!(im["manifest_aad_hex"].as_str().unwrap(), hex::encode(&aad));
    let (naive_m, canonical) = if layout == 1 {
        let nonce: [u8; 12] = hex_arr(&inputs["manifest_nonce"]);
        assert_eq!(
            im["manifest_key"].as_str().unwrap(),
            hex::encode(naive::manifest_key(&dkb))
        );
        let naive_m = naive::seal(&dkb, bucket, key, &upload_id, &table, nonce, &etag_md5);
        (naive_m, true)
    } else {
        let salt: [u8; 16] = hex_arr(&inputs["manifest_block_salt"]);
        assert_eq!(im["manifest_block_salt"], inputs["manifest_block_salt"]);
        assert_eq!(
            im["manifest_block_key"].as_str().unwrap(),
            hex::encode(super::naive::block_key(&dkb, "manifest", &salt))
        );
        let records = hex::decode(im["manifest_records_hex"].as_str().unwrap()).unwrap();
        let block = &m.bytes[table.len() + 4..];
        assert_eq!(
            im["manifest_block_len"].as_u64().unwrap() as usize,
            block.len()
        );
        assert_eq!(
            super::naive::open_block(&dkb, "manifest", &aad, block).unwrap(),
            records,
            "{name}: manifest records"
        );
        assert_eq!(naive::etag_from_records(&records), Ok(etag_md5));
        assert!(
            sealed::seal_with_salt(&dkb[..], "manifest", &aad, &records, salt).unwrap() == block,
            "{name}: library manifest block"
        );
        let canonical = records == naive::etag_records(&etag_md5, &[]);
        let naive_m = naive::seal2(&dkb, bucket, key, &upload_id, &table, &salt, &records);
        (naive_m, canonical)
    };
    assert!(naive_m == m.bytes, "{name}: naive manifest differs");
    let lib = if layout == 1 {
        Manifest::seal_layout1(&dk, None, parts, &etag_md5, bucket, key, &upload_id)
    } else {
        let h = in_manifest.then_some(&header[..]);
        Manifest::seal(&dk, h, parts, &etag_md5, bucket, key, &upload_id)
    }
    .unwrap();
    if canonical {
        // (A later release's records make the stored block longer.)
        assert_eq!(
            lib.raw().len(),
            m.bytes.len(),
            "{name}: library manifest length"
        );
    }
    assert_eq!(
        lib.raw()[..table.len()],
        m.bytes[..table.len()],
        "{name}: library manifest table"
    );
    assert_eq!(lib.open(&dk, bucket, key, &upload_id).unwrap(), etag_md5);
    let parsed = Manifest::parse(&m.bytes).unwrap();
    assert_eq!(parsed.layout, layout);
    assert_eq!(parsed.header.as_deref(), in_manifest.then_some(&header[..]));
    assert_eq!(parsed.open(&dk, bucket, key, &upload_id).unwrap(), etag_md5);

    // Intermediate values against the library's layout and naive keys.
    assert_eq!(im["etag_md5"].as_str().unwrap(), hex::encode(etag_md5));
    let layout: Layout = parsed.layout();
    assert_eq!(layout.ct_len, body.len() as u64);
    assert_eq!(im["body_len"].as_u64().unwrap(), layout.ct_len);
    let ip = im["parts"].as_array().unwrap();
    assert_eq!(ip.len(), layout.parts.len());
    for (j, lp) in ip.iter().zip(&layout.parts) {
        assert_eq!(j["number"].as_u64().unwrap() as u32, lp.number);
        assert_eq!(j["stream_offset"].as_u64().unwrap(), lp.ct_offset);
        assert_eq!(j["plaintext_offset"].as_u64().unwrap(), lp.pt_offset);
        assert_eq!(
            j["payload_key"].as_str().unwrap(),
            hex::encode(super::naive::payload_key(
                &dkb,
                &lp.salt,
                lp.number,
                lp.plaintext_len
            ))
        );
    }
}

/// Ranged reads the way the gateway plans them: `Layout::plan_range`, one
/// contiguous ciphertext range, an `Opener` per piece.
fn check_ranges(keys: &Keys, v: &Value, meta: &str, body: &[u8], stored: &ManifestField) {
    let name = v["name"].as_str().unwrap();
    let bucket = v["bucket"].as_str().unwrap();
    let key = v["key"].as_str().unwrap();
    let p = &v["plaintext"];
    let pt = pattern(
        p["len"].as_u64().unwrap() as usize,
        p["generator_add"].as_u64().unwrap() as u8,
    );
    let set: Vec<String> = serde_json::from_value(v["identity_sets"][0].clone()).unwrap();
    let h = open_header(meta, body, stored, &keys.identities(&set), bucket, key).unwrap();
    let BodyBinding::Multipart { upload_id } = h.header.binding else {
        panic!("{name}: not multipart");
    };
    let dk = h.dk;
    let manifest = match h.manifest {
        Some(m) => m,
        None => Manifest::parse(find_manifest(stored, &upload_id).unwrap()).unwrap(),
    };
    manifest.open(&dk, bucket, key, &upload_id).unwrap();
    let layout = manifest.layout();
    let n = pt.len() as u64;
    if n == 0 {
        assert!(layout.plan_range(0, 0).is_none());
        return;
    }
    let mut ranges = vec![(0, 0), (n - 1, n - 1), (0, n - 1)];
    for lp in &layout.parts {
        // Across each part boundary, and the middle of each part.
        if lp.pt_offset > 0 && lp.pt_offset < n {
            ranges.push((lp.pt_offset - 1, lp.pt_offset));
        }
        if lp.plaintext_len > 2 {
            let mid = lp.pt_offset + lp.plaintext_len / 2;
            ranges.push((mid - 1, (mid + SEGMENT_SIZE as u64).min(n - 1)));
        }
    }
    for (a, b) in ranges {
        let plan = layout.plan_range(a, b).unwrap();
        let mut pos = plan.ct_start as usize;
        let mut out = Vec::new();
        for piece in &plan.pieces {
            let bytes = Bytes::copy_from_slice(&body[pos..pos + piece.len as usize]);
            pos += piece.len as usize;
            let mut o = match &piece.kind {
                PieceKind::Skip => continue,
                PieceKind::Full { index } => {
                    let lp = &layout.parts[*index];
                    Opener::full(dk.clone(), lp.number, Some((lp.salt, lp.plaintext_len)))
                }
                PieceKind::Range { index, span } => {
                    let lp = &layout.parts[*index];
                    Opener::range(&dk, &lp.salt, lp.number, lp.plaintext_len, *span)
                }
            };
            let mut chunks = Vec::new();
            o.push(bytes, &mut chunks).unwrap();
            o.finish().unwrap();
            out.extend(chunks.concat());
        }
        assert_eq!(pos as u64, plan.ct_end, "{name}: range {a}-{b}");
        assert!(
            out[..] == pt[a as usize..=b as usize],
            "{name}: range {a}-{b} differs"
        );
    }
}
