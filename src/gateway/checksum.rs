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
