//! New envelopes, in one place: the policy's recipients, the client's
//! attributes, the data key and the header (through
//! [`Header::encrypt_for`]), where the header goes (metadata, the head of the
//! body, or the multipart manifest), and a client body sealed on its way to
//! the store with one typed outcome.

use std::sync::Arc;

use bytes::Bytes;
use futures::channel::oneshot;
use s3s::dto::Checksum;
use s3s::{s3_error, S3Result};

use super::checksum::ClientChecks;
use super::error::{from_store, internal};
use super::{Gateway, METADATA_LIMIT, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::stream::adapters::{seal_stream, SealOutcome};
use crate::envelope::stream::Sealer;
use crate::envelope::{Attributes, DataKey, Header, NewBinding, Recipient, Sealed};
use crate::store::{ByteStream, ObjectHeaders, StoreResult};

/// Where an object's header lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderHome {
    /// Whole, in the `sg` metadata entry.
    Metadata,
    /// At the head of a single-part object's body (`sg` holds a pointer).
    Body,
    /// In a multipart object's manifest (`sg` holds a pointer).
    Manifest,
}

/// A header and where it goes.
pub struct Placed {
    /// The `sg` metadata value.
    pub meta: String,
    pub home: HeaderHome,
}

impl Placed {
    /// The store's headers for an object carrying this envelope: `sg` and
    /// nothing else (everything a client said is sealed in the header).
    pub fn store_headers(&self) -> ObjectHeaders {
        let mut h = ObjectHeaders::default();
        h.metadata.insert(META_KEY.to_owned(), self.meta.clone());
        h
    }
}

/// Whether a header of `header_len` bytes fits in metadata beside
/// `other_meta` bytes of other metadata.
pub fn fits_inline(header_len: usize, other_meta: usize) -> bool {
    META_KEY.len() + (4 * header_len).div_ceil(3) + other_meta <= METADATA_LIMIT
}

/// Decides where `header` goes: inline when `sg` fits S3's 2 KB metadata
/// budget beside `other_meta` bytes of other metadata, else behind a pointer
/// (the body's head for a single-part object, the manifest for a multipart
/// one).
pub fn place(
    header: &Header,
    dk: &DataKey,
    other_meta: usize,
    bucket: &str,
    key: &str,
) -> S3Result<Placed> {
    let inline = header.to_meta_inline();
    debug_assert_eq!(
        fits_inline(header.raw().len(), other_meta),
        META_KEY.len() + inline.len() + other_meta <= METADATA_LIMIT
    );
    if META_KEY.len() + inline.len() + other_meta <= METADATA_LIMIT {
        return Ok(Placed {
            meta: inline,
            home: HeaderHome::Metadata,
        });
    }
    let mac = header.mac_for(dk, bucket, key);
    let (pointer, home) = match header.binding {
        crate::envelope::BodyBinding::Single { .. } => (
            MetaValue::Overflow {
                header_len: header.raw().len() as u32,
                mac,
            },
            HeaderHome::Body,
        ),
        crate::envelope::BodyBinding::Multipart { upload_id } => (
            MetaValue::InManifest { upload_id, mac },
            HeaderHome::Manifest,
        ),
    };
    let meta = pointer.encode();
    if META_KEY.len() + meta.len() + other_meta > METADATA_LIMIT {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size."
        ));
    }
    Ok(Placed { meta, home })
}

impl Gateway {
    /// The recipients of a new object at bucket/key (its policy's, a group
    /// resolved to the epoch key of its trusted document), or AccessDenied
    /// when no policy covers it or a group is not trusted.
    pub(crate) async fn policy_recipients(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<Vec<Arc<dyn Recipient>>> {
        let p = self.keyring.policy_for(bucket, key).ok_or_else(|| {
            s3_error!(
                AccessDenied,
                "No encryption policy of this gateway covers {bucket}/{key}; nothing was stored."
            )
        })?;
        let mut out = Vec::with_capacity(p.recipients.len());
        for name in &p.recipients {
            if let Some(g) = name.strip_prefix("group:") {
                let groups = self
                    .groups
                    .as_ref()
                    .ok_or_else(|| internal("a group policy without [sharing]"))?;
                match groups.current(g).await {
                    Ok(c) => out.push(c.recipient.clone()),
                    Err(crate::groups::GroupFailure::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        return Err(s3_error!(
                            AccessDenied,
                            "Cannot encrypt for {name}: {e}; nothing was stored."
                        ))
                    }
                }
            } else if let Some(w) = crate::readback::parse_recipient(name) {
                let w = w.map_err(|_| internal("a policy names a bad read-back window"))?;
                let rb = self
                    .keyring
                    .readback()
                    .ok_or_else(|| internal("a read-back policy without read-back keys"))?;
                match rb.recipient(w) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot make this window's read-back key");
                        return Err(internal("no read-back key"));
                    }
                }
            } else {
                let r = self
                    .keyring
                    .recipient(name)
                    .ok_or_else(|| internal("a policy names an unknown recipient"))?;
                out.push(r.key.clone());
            }
        }
        Ok(out)
    }

    /// A new envelope for bucket/key: a fresh data key wrapped for the
    /// policy's recipients, with `attributes` sealed in, placed.
    pub(crate) async fn new_envelope(
        &self,
        bucket: &str,
        key: &str,
        binding: NewBinding,
        attributes: &Attributes,
    ) -> S3Result<(Sealed, Placed)> {
        let recipients = self.policy_recipients(bucket, key).await?;
        let refs: Vec<&dyn Recipient> = recipients.iter().map(|r| r.as_ref()).collect();
        let sealed = Header::encrypt_for(&refs, binding, attributes, bucket, key)
            .map_err(|e| self.format_err(e, bucket, key))?;
        let placed = place(&sealed.header, &sealed.dk, 0, bucket, key)?;
        Ok((sealed, placed))
    }
}

/// What a sealed upload learned about its plaintext.
pub struct Digests {
    pub md5: [u8; 16],
    /// The `x-amz-checksum-*` values computed (for the response).
    pub checksums: Checksum,
}

/// A client body on its way to the store, encrypted; its outcome arrives
/// once the stream ends.
pub struct SealedBody {
    pub stream: ByteStream,
    outcome: oneshot::Receiver<SealOutcome<ClientChecks>>,
}

/// Seals `input` with `sealer`, verifying the client's digests on the way.
pub fn seal_body<S, E>(input: S, sealer: Sealer, checks: ClientChecks) -> SealedBody
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stream, outcome) = seal_stream(input, sealer, checks);
    SealedBody {
        stream: Box::pin(stream),
        outcome,
    }
}

/// Splits a [`SealedBody`] into the stream for the store and the outcome to
/// settle afterwards.
pub fn split(b: SealedBody) -> (ByteStream, Outcome) {
    (b.stream, Outcome(b.outcome))
}

/// The pending outcome of a sealed body.
pub struct Outcome(oneshot::Receiver<SealOutcome<ClientChecks>>);

impl Outcome {
    /// What to answer once the store is done with the stream: the store's
    /// result and the digests, or, when the upload failed, the client's own
    /// fault (a digest mismatch, a body cut short) in preference to the
    /// store's view of the aborted request.
    pub fn settle<T>(mut self, stored: StoreResult<T>) -> S3Result<(T, Digests)> {
        let outcome = self.0.try_recv();
        match stored {
            Ok(v) => match outcome {
                Ok(Some(Ok((md5, checksums)))) => Ok((v, Digests { md5, checksums })),
                Ok(Some(Err(fault))) => Err(fault),
                _ => Err(internal("the store took an upload whose body never ended")),
            },
            Err(e) => match outcome {
                Ok(Some(Err(fault))) => Err(fault),
                _ => Err(from_store(e)),
            },
        }
    }
}
