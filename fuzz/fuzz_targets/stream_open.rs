//! The stream opener under a fixed data key.
//!
//! The first byte picks a mode and a chunk size. Even modes feed the rest of
//! the input as ciphertext (random bytes never authenticate: the opener must
//! refuse them without panicking). Odd modes seal a real stream whose
//! plaintext and one mutation come from the input, so the fuzzer reaches the
//! segment, trailer and end-of-stream logic: the unmutated stream must open to
//! its plaintext, every mutated one must be refused.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sealgate::envelope::stream::{Opener, Sealer};
use sealgate::envelope::DataKey;

fn open(ct: &[u8], chunk: usize, expected: Option<([u8; 16], u64)>) -> Result<Vec<u8>, ()> {
    let mut o = Opener::full(DataKey::from_bytes([0x42; 32]), 0, expected);
    let mut out = Vec::new();
    for piece in ct.chunks(chunk) {
        o.push(Bytes::copy_from_slice(piece), &mut out)
            .map_err(|_| ())?;
    }
    o.finish().map_err(|_| ())?;
    Ok(out.concat())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let chunk = (mode as usize >> 1) * 67 + 1;
        assert!(open(rest, chunk, None).is_err());
        return;
    }
    // Real streams reach 200 KB: feed them in chunks of at least 1 KiB.
    let chunk = (mode as usize >> 1) * 1031 + 1024;
    // rest = op (1) || position (2) || length / 4 (2) || plaintext seed
    if rest.len() < 5 {
        return;
    }
    let op = rest[0] % 4;
    let pos = u16::from_be_bytes([rest[1], rest[2]]) as usize;
    // Up to three segments and a bit: every segment-boundary case.
    let len = u16::from_be_bytes([rest[3], rest[4]]) as usize * 3;
    let seed = if rest.len() > 5 {
        &rest[5..]
    } else {
        &[0u8][..]
    };
    let pt: Vec<u8> = seed.iter().copied().cycle().take(len).collect();
    let salt = [7u8; 16];
    let mut sealer = Sealer::new(&DataKey::from_bytes([0x42; 32]), salt, 0, len as u64);
    let mut ct = Vec::new();
    sealer.push(&pt, &mut ct).unwrap();
    sealer.finish(&mut ct).unwrap();
    let mut ct = ct.concat();
    let expected = Some((salt, len as u64));
    match op {
        0 => {
            assert_eq!(open(&ct, chunk, expected).unwrap(), pt);
            return;
        }
        1 => {
            let i = pos % ct.len();
            ct[i] ^= 1 << (pos % 8);
        }
        2 => ct.truncate(pos % ct.len()),
        _ => ct.push(rest[1]),
    }
    assert!(open(&ct, chunk, expected).is_err());
    assert!(open(&ct, chunk, None).is_err());
});
