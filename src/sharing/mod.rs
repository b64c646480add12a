//! Sharing through the store (groups): the pure, I/O-free core.
//!
//! - [`fingerprint`]: how people name a public key out loud.
//! - [`signing`]: Ed25519 keys administrators sign group documents with.
//! - [`group`]: the group document (build, parse, sign, verify against
//!   pinned fingerprints and the highest version seen), and the operations
//!   create, add, remove and opening a member's epoch keys.
//!
//! The X25519 recipient type that objects of a group are written for lives
//! with the other key types in [`crate::envelope::x25519`]. The format is
//! `docs/FORMAT.md` sections 5.1 and 15.

pub mod fingerprint;
pub mod group;
pub mod signing;

pub use fingerprint::Fingerprint;
pub use group::{EpochKeys, GroupContent, GroupDocument, GroupError, Member, VerifiedGroup};
pub use signing::{SigningKey, VerifyingKey};
