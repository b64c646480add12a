//! Arbitrary bytes as a group document (FORMAT.md 15.3), with and without
//! the magic in front. Nothing may panic; what parses is canonical (its
//! content encodes to exactly the signed part it was read from) and does
//! not verify under a pinned key that signed nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::sharing::group::GROUP_MAGIC;
use sealgate::sharing::{Fingerprint, GroupDocument};

fn document(raw: &[u8]) {
    if let Ok(d) = GroupDocument::parse(raw) {
        assert_eq!(d.raw(), raw);
        let signed = d.unverified_content().encode().expect("a parsed document encodes");
        assert_eq!(&raw[..signed.len()], &signed[..]);
        let pin = Fingerprint::from_bytes([0x42; 10]);
        assert!(d.verify("team", &[pin], 0).is_err());
    }
}

fuzz_target!(|data: &[u8]| {
    document(data);
    let mut with_magic = GROUP_MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    document(&with_magic);
});
