//! Ranged GETs on single-part and multipart objects: the exact bytes and
//! Content-Range, or 416 InvalidRange.

use crate::harness::*;

#[derive(Clone, Copy)]
enum Object {
    /// A single-part object of 3 segments and 1000 bytes.
    Single,
    /// A multipart object: a 5 MiB part, then a 3000-byte one.
    Multipart,
}

impl Object {
    fn size(self) -> usize {
        match self {
            Object::Single => 3 * SEG + 1000,
            Object::Multipart => 5 * MIB + 3000,
        }
    }
}

/// The range header, given the object's size.
type RangeOf = fn(usize) -> String;

struct RangeCase {
    object: Object,
    range: RangeOf,
    /// The bytes `[a, e]` served (inclusive), or `None` for 416.
    expect: fn(usize) -> Option<(usize, usize)>,
}

const P1: usize = 5 * MIB;

table! { ranged_get;
    single_first_byte: RangeCase { object: Object::Single,
        range: |_| "bytes=0-0".into(), expect: |_| Some((0, 0)) },
    single_across_a_segment_boundary: RangeCase { object: Object::Single,
        range: |_| format!("bytes={}-{}", SEG - 1, SEG), expect: |_| Some((SEG - 1, SEG)) },
    single_whole_segment: RangeCase { object: Object::Single,
        range: |_| format!("bytes={}-{}", SEG, 2 * SEG - 1), expect: |_| Some((SEG, 2 * SEG - 1)) },
    single_inside_then_across: RangeCase { object: Object::Single,
        range: |_| "bytes=100-70000".into(), expect: |_| Some((100, 70000)) },
    single_open_ended: RangeCase { object: Object::Single,
        range: |n| format!("bytes={}-", n - 10), expect: |n| Some((n - 10, n - 1)) },
    single_suffix: RangeCase { object: Object::Single,
        range: |_| "bytes=-5".into(), expect: |n| Some((n - 5, n - 1)) },
    single_suffix_longer_than_the_object: RangeCase { object: Object::Single,
        range: |n| format!("bytes=-{}", n + 100), expect: |n| Some((0, n - 1)) },
    single_end_past_the_object_is_clamped: RangeCase { object: Object::Single,
        range: |_| "bytes=0-99999999".into(), expect: |n| Some((0, n - 1)) },
    single_last_byte: RangeCase { object: Object::Single,
        range: |n| format!("bytes={}-{}", n - 1, n - 1), expect: |n| Some((n - 1, n - 1)) },
    single_start_at_the_size_is_416: RangeCase { object: Object::Single,
        range: |n| format!("bytes={n}-"), expect: |_| None },
    single_start_past_the_size_is_416: RangeCase { object: Object::Single,
        range: |n| format!("bytes={}-{}", n + 5, n + 10), expect: |_| None },
    multipart_first_bytes: RangeCase { object: Object::Multipart,
        range: |_| "bytes=0-9".into(), expect: |_| Some((0, 9)) },
    multipart_across_the_part_boundary: RangeCase { object: Object::Multipart,
        range: |_| format!("bytes={}-{}", P1 - 10, P1 + 10), expect: |_| Some((P1 - 10, P1 + 10)) },
    multipart_second_part_exactly: RangeCase { object: Object::Multipart,
        range: |_| format!("bytes={P1}-"), expect: |n| Some((P1, n - 1)) },
    multipart_last_byte_of_the_first_part: RangeCase { object: Object::Multipart,
        range: |_| format!("bytes={}-{}", P1 - 1, P1 - 1), expect: |_| Some((P1 - 1, P1 - 1)) },
    multipart_suffix: RangeCase { object: Object::Multipart,
        range: |_| "bytes=-5".into(), expect: |n| Some((n - 5, n - 1)) },
    multipart_inside_a_segment_of_the_first_part: RangeCase { object: Object::Multipart,
        range: |_| "bytes=1000000-1000099".into(), expect: |_| Some((1_000_000, 1_000_099)) },
    multipart_start_past_the_size_is_416: RangeCase { object: Object::Multipart,
        range: |n| format!("bytes={}-", n + 1), expect: |_| None },
}

async fn ranged_get(case: RangeCase) {
    let (b, k) = ("ranges", "obj");
    let (w, gw) = World::with_bucket(b).await;
    let n = case.object.size();
    let d = match case.object {
        Object::Single => {
            let d = data(n, 7);
            gw.put(b, k, &d).await;
            d
        }
        Object::Multipart => crate::multipart::upload(&gw, b, k, &[P1, 3000])
            .await
            .concat(),
    };
    assert_eq!(d.len(), n);
    let range = (case.range)(n);
    let cold = w.gateway(Spec::alice());
    for (which, g) in [("warm", &gw), ("cold", &cold)] {
        let r = g
            .client
            .get_object()
            .bucket(b)
            .key(k)
            .range(&range)
            .send()
            .await;
        match (case.expect)(n) {
            Some((a, e)) => {
                let r = r.unwrap_or_else(|e| panic!("{which} {range}: {}", S3Err::from(e)));
                assert_eq!(
                    r.content_range(),
                    Some(format!("bytes {a}-{e}/{n}").as_str()),
                    "{which} {range}"
                );
                assert_eq!(r.content_length(), Some((e - a + 1) as i64));
                let got = collect(r.body).await.unwrap();
                assert!(got == d[a..=e], "{which} {range}: other bytes");
            }
            None => {
                let e = must_fail(r, &range);
                assert_refused(&e, 416, "InvalidRange", &range);
            }
        }
    }
}
