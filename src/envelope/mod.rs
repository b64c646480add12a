//! The sealgate object format, version 1: pure code, no I/O, no HTTP, no config.
//!
//! Everything in this module is part of the on-store contract described in
//! `docs/FORMAT.md`. Constants marked "fixed in v1" can never change without a
//! new format version: objects already written depend on them.
//!
//! Layers, bottom up:
//! - [`keys`]: the data key and everything derived from it (HKDF-SHA256).
//! - [`segment`]: seal/open of one AES-256-GCM segment and of the stream trailer.
//! - [`size`]: exact plaintext/ciphertext size and range arithmetic.
//! - [`sealed`]: sealed blocks, the one structure for small secret records.
//! - [`attributes`]: what a client says about an object, sealed in the header.
//! - [`header`]: the envelope header (metadata), its MAC, its text encoding,
//!   and [`Header::encrypt_for`], the one entry point for new objects.
//! - [`recipient`]: the one joint where key types plug in (RSA-OAEP-256).
//! - [`x25519`]: X25519 recipients (groups' epoch keys).
//! - [`stream`]: incremental encryptor/decryptor state machines plus async adapters.

pub mod attributes;
pub mod header;
pub mod keys;
pub mod layout;
pub mod manifest;
pub mod recipient;
pub mod sealed;
pub mod segment;
pub mod size;
pub mod stream;
pub mod x25519;

pub use attributes::Attributes;
pub use header::{BodyBinding, Header, NewBinding, RecipientStanza, Reseal, Sealed};
pub use keys::{DataKey, PayloadKey};
pub use recipient::{Identity, Recipient, RsaOaepIdentity, RsaOaepRecipient};
pub use x25519::{X25519Identity, X25519Recipient};

/// Format version written by this release. Fixed in v1.
pub const VERSION: u8 = 1;
/// Plaintext bytes per segment (64 KiB). Fixed in v1.
pub const SEGMENT_SIZE: usize = 64 * 1024;
/// log2 of [`SEGMENT_SIZE`], as recorded in the header. Fixed in v1.
pub const SEGMENT_SIZE_LOG2: u8 = 16;
/// AES-GCM tag length. Fixed in v1.
pub const TAG_LEN: usize = 16;
/// Per-stream random salt. Fixed in v1.
pub const SALT_LEN: usize = 16;
/// Stream header: salt (16) || plaintext length (u64 big-endian). Fixed in v1.
pub const STREAM_HEADER_LEN: usize = SALT_LEN + 8;
/// Plaintext MD5 carried in the trailer record. Fixed in v1.
pub const TRAILER_PLAINTEXT_LEN: usize = 16;
/// Trailer record: encrypted MD5 of the stream's plaintext plus its tag. Fixed in v1.
pub const TRAILER_LEN: usize = TRAILER_PLAINTEXT_LEN + TAG_LEN;
/// Length of a data key. Fixed in v1.
pub const DATA_KEY_LEN: usize = 32;
/// Length of the key commitment. Fixed in v1.
pub const COMMITMENT_LEN: usize = 32;
/// Length of a recipient key id (truncated SHA-256 of SPKI DER). Fixed in v1.
pub const KEY_ID_LEN: usize = 8;
/// Length of the header MAC (HMAC-SHA256). Fixed in v1.
pub const MAC_LEN: usize = 32;

/// Errors of the format layer. Decryption failures are deliberately coarse:
/// the gateway shows one opaque error to clients and logs the variant.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum FormatError {
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    #[error("malformed header: {0}")]
    MalformedHeader(&'static str),
    #[error("header authentication failed")]
    HeaderMac,
    #[error("key commitment mismatch")]
    Commitment,
    #[error("no identity matches any recipient of this object")]
    NoMatchingRecipient { key_ids: Vec<String> },
    #[error("wrapped key could not be unwrapped")]
    Unwrap,
    #[error("segment authentication failed")]
    SegmentAuth,
    #[error("stream truncated")]
    Truncated,
    #[error("stream has trailing data")]
    TrailingData,
    #[error("stream header does not match the envelope")]
    StreamMismatch,
    #[error("crypto backend failure")]
    Crypto,
}

pub type Result<T> = std::result::Result<T, FormatError>;
