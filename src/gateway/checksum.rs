//! Client-supplied digests (Content-MD5, `x-amz-checksum-*` in headers or in
//! an aws-chunked trailer), verified against the plaintext while it streams.
//! A mismatch fails the upload before the store receives its last bytes, so
//! nothing is stored.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm};
use s3s::{s3_error, S3Error, S3Result, TrailingHeaders};

use crate::envelope::stream::adapters::PlaintextCheck;

/// Maps an error from the request body (s3s signature checks, a client that
/// went away) to the S3 error the client should see. s3s 0.14 keeps its body
/// error types private (`UploadStreamError`, `AwsChunkedStreamError`), so
/// their variant names in the message are all there is to go by; this is the
/// one place that reads them.
pub fn body_error(e: &(dyn std::error::Error + 'static)) -> S3Error {
    let text = e.to_string();
    if text.contains("Sha256Mismatch") {
        let mut err = S3Error::with_message(
            s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        err.set_status_code(http::StatusCode::BAD_REQUEST);
        err
    } else if text.contains("SignatureMismatch") {
        s3_error!(
            SignatureDoesNotMatch,
            "a chunk signature of the request body does not match"
        )
    } else {
        S3Error::with_message(
            s3s::S3ErrorCode::IncompleteBody,
            "The request body ended early or could not be read.",
        )
    }
}

#[derive(Default, Clone)]
pub struct Expected {
    pub md5: Option<[u8; 16]>,
    pub sums: Checksum,
    /// Algorithm whose value arrives in the aws-chunked trailer.
    pub trailer_algorithm: Option<String>,
}

fn wants(alg: &str, value: &Option<String>, trailer: &Option<String>) -> bool {
    value.is_some()
        || trailer
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(alg))
}

impl Expected {
    pub fn parse(
        content_md5: Option<&str>,
        sums: Checksum,
        algorithm: Option<&ChecksumAlgorithm>,
        trailing: bool,
    ) -> S3Result<Self> {
        let md5 = match content_md5 {
            None => None,
            Some(s) => {
                let v = STANDARD
                    .decode(s.trim())
                    .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not valid base64"))?;
                Some(
                    v.try_into()
                        .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not 16 bytes"))?,
                )
            }
        };
        let trailer_algorithm = if trailing {
            algorithm.map(|a| a.as_str().to_owned())
        } else {
            None
        };
        Ok(Self {
            md5,
            sums,
            trailer_algorithm,
        })
    }

    pub fn hasher(&self) -> ChecksumHasher {
        let t = &self.trailer_algorithm;
        let s = &self.sums;
        ChecksumHasher {
            crc32: wants("CRC32", &s.checksum_crc32, t).then(Default::default),
            crc32c: wants("CRC32C", &s.checksum_crc32c, t).then(Default::default),
            sha1: wants("SHA1", &s.checksum_sha1, t).then(Default::default),
            sha256: wants("SHA256", &s.checksum_sha256, t).then(Default::default),
            crc64nvme: wants("CRC64NVME", &s.checksum_crc64nvme, t).then(Default::default),
        }
    }
}

/// The [`PlaintextCheck`] of an upload: the client's digests, verified.
pub struct ClientChecks {
    hasher: Option<ChecksumHasher>,
    expected: Expected,
    trailing: Option<TrailingHeaders>,
}

impl ClientChecks {
    pub fn new(expected: Expected, trailing: Option<TrailingHeaders>) -> Self {
        Self {
            hasher: Some(expected.hasher()),
            expected,
            trailing,
        }
    }
}

fn mismatch(what: &str) -> S3Error {
    S3Error::with_message(
        s3s::S3ErrorCode::BadDigest,
        format!("The {what} you specified did not match the calculated checksum."),
    )
}

impl PlaintextCheck for ClientChecks {
    type Output = Checksum;
    type Error = S3Error;

    fn input_failed(&mut self, e: &(dyn std::error::Error + Send + Sync + 'static)) -> S3Error {
        body_error(e)
    }

    fn format_failed(&mut self, e: crate::envelope::FormatError) -> S3Error {
        // The body held more or fewer bytes than its declared length.
        tracing::debug!(error = %e, "request body does not match its length");
        S3Error::with_message(
            s3s::S3ErrorCode::IncompleteBody,
            "The request body did not match the declared Content-Length.",
        )
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
    }

    fn finish(&mut self, md5: &[u8; 16]) -> Result<Checksum, S3Error> {
        if let Some(want) = &self.expected.md5 {
            // Public values (the client sent it); equality need not be constant time.
            if want != md5 {
                return Err(mismatch("Content-MD5"));
            }
        }
        let got = self
            .hasher
            .take()
            .map(ChecksumHasher::finalize)
            .unwrap_or_default();
        let mut want = self.expected.sums.clone();
        if let (Some(alg), Some(tr)) = (&self.expected.trailer_algorithm, &self.trailing) {
            let name = format!("x-amz-checksum-{}", alg.to_ascii_lowercase());
            let v = tr
                .read(|h| {
                    h.get(&name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                })
                .flatten();
            match alg.to_ascii_uppercase().as_str() {
                "CRC32" => want.checksum_crc32 = v,
                "CRC32C" => want.checksum_crc32c = v,
                "SHA1" => want.checksum_sha1 = v,
                "SHA256" => want.checksum_sha256 = v,
                "CRC64NVME" => want.checksum_crc64nvme = v,
                _ => {}
            }
        }
        let pairs = [
            ("CRC32", &want.checksum_crc32, &got.checksum_crc32),
            ("CRC32C", &want.checksum_crc32c, &got.checksum_crc32c),
            ("SHA1", &want.checksum_sha1, &got.checksum_sha1),
            ("SHA256", &want.checksum_sha256, &got.checksum_sha256),
            (
                "CRC64NVME",
                &want.checksum_crc64nvme,
                &got.checksum_crc64nvme,
            ),
        ];
        for (name, w, g) in pairs {
            if let Some(w) = w {
                if Some(w.trim()) != g.as_deref() {
                    return Err(mismatch(&format!(
                        "x-amz-checksum-{}",
                        name.to_ascii_lowercase()
                    )));
                }
            }
        }
        Ok(got)
    }
}

/// Checksum algorithms in sealed records (the attributes, part records,
/// manifests): one byte each. Fixed in v1 (FORMAT.md 4.6).
pub const ALGORITHMS: [(u8, &str); 5] = [
    (1, "CRC32"),
    (2, "CRC32C"),
    (3, "CRC64NVME"),
    (4, "SHA1"),
    (5, "SHA256"),
];

/// Raw checksums of a plaintext, `(algorithm byte, digest)`, sorted by
/// algorithm: what sealed records keep.
pub type Sums = Vec<(u8, Vec<u8>)>;

fn fields(c: &Checksum) -> [&Option<String>; 5] {
    [
        &c.checksum_crc32,
        &c.checksum_crc32c,
        &c.checksum_crc64nvme,
        &c.checksum_sha1,
        &c.checksum_sha256,
    ]
}

/// The raw digests of the computed checksums (base64 in the DTO).
pub fn sums_of(c: &Checksum) -> Sums {
    ALGORITHMS
        .iter()
        .zip(fields(c))
        .filter_map(|((id, _), v)| {
            let raw = STANDARD.decode(v.as_deref()?.split('-').next()?).ok()?;
            Some((*id, raw))
        })
        .collect()
}

/// The DTO form: base64 digests, with `-N` for a composite of N parts.
pub fn checksum_of(sums: &[(u8, Vec<u8>)], parts: Option<usize>) -> Checksum {
    let text = |id: u8| {
        sums.iter().find(|(a, _)| *a == id).map(|(_, raw)| {
            let b = STANDARD.encode(raw);
            match parts {
                Some(n) => format!("{b}-{n}"),
                None => b,
            }
        })
    };
    Checksum {
        checksum_crc32: text(1),
        checksum_crc32c: text(2),
        checksum_crc64nvme: text(3),
        checksum_sha1: text(4),
        checksum_sha256: text(5),
        ..Default::default()
    }
}

/// One digest of `data` with algorithm `id`.
fn digest(id: u8, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest as _;
    Some(match id {
        1 => crc32fast::hash(data).to_be_bytes().to_vec(),
        2 => crc32c::crc32c(data).to_be_bytes().to_vec(),
        3 => {
            let mut d = crc64fast_nvme::Digest::new();
            d.write(data);
            d.sum64().to_be_bytes().to_vec()
        }
        4 => sha1::Sha1::digest(data).to_vec(),
        5 => sha2::Sha256::digest(data).to_vec(),
        _ => return None,
    })
}

/// S3's composite checksum of a multipart object, for every algorithm every
/// part has: the algorithm over the concatenated part digests.
pub fn composite(parts: &[&Sums]) -> Sums {
    let Some(first) = parts.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter_map(|(id, _)| {
            let mut all = Vec::new();
            for p in parts {
                all.extend_from_slice(&p.iter().find(|(a, _)| a == id)?.1);
            }
            Some((*id, digest(*id, &all)?))
        })
        .collect()
}

/// The checksums a client gave in its request headers (known before the
/// body, so they can be sealed in the header); trailer checksums arrive only
/// after it.
pub fn header_sums(e: &Expected) -> Sums {
    if e.trailer_algorithm.is_some() {
        return Vec::new();
    }
    sums_of(&e.sums)
}

#[cfg(test)]
mod sums_tests {
    use super::*;

    #[test]
    fn composite_is_the_checksum_of_checksums() {
        // S3's documented composite: CRC32 of the concatenated part CRC32s.
        let p1 = vec![(1u8, crc32fast::hash(b"hello").to_be_bytes().to_vec())];
        let p2 = vec![(1u8, crc32fast::hash(b"world").to_be_bytes().to_vec())];
        let c = composite(&[&p1, &p2]);
        let mut cat = p1[0].1.clone();
        cat.extend_from_slice(&p2[0].1);
        assert_eq!(c, vec![(1, crc32fast::hash(&cat).to_be_bytes().to_vec())]);
        let dto = checksum_of(&c, Some(2));
        assert!(dto.checksum_crc32.unwrap().ends_with("-2"));
        assert_eq!(sums_of(&checksum_of(&p1, None)), p1);
        // An algorithm only some parts have gives no composite.
        let p3 = vec![(2u8, vec![1, 2, 3, 4])];
        assert!(composite(&[&p1, &p3]).is_empty());
    }
}
