//! Arbitrary bytes as an envelope header, and as the text of the `sg`
//! metadata value. Nothing may panic; what parses must round-trip exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::envelope::header::{Header, MetaValue};
use sealgate::envelope::DataKey;

fn header(raw: &[u8]) {
    if let Ok(h) = Header::parse(raw) {
        // The parser keeps exactly the bytes it read (the MAC covers them).
        assert_eq!(h.raw(), raw);
        assert!(!h.recipients.is_empty());
        let _ = h.key_ids_hex();
        // Authenticating under an unrelated key must fail, not panic.
        let dk = DataKey::from_bytes([0x42; 32]);
        assert!(h.authenticate(&dk, "bucket", "key").is_err());
    }
}

fuzz_target!(|data: &[u8]| {
    header(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(meta) = MetaValue::decode(text) {
            // Decoding is strict (no padding, canonical): encoding gives the
            // trimmed input back.
            assert_eq!(meta.encode(), text.trim());
            if let MetaValue::Inline(raw) = meta {
                header(&raw);
            }
        }
    }
});
