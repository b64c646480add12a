//! A lying store: an HTTP proxy in front of a real store that passes every
//! request through, except the kind its current [`Lie`] is about, which it
//! answers itself, wrongly: listings whose markers never move or that never
//! end, answers far longer than asked for, endless error documents. It
//! counts the requests it lied to and the bytes of lies the gateway took.
//!
//! One request per connection (every answer says `Connection: close`), so
//! the proxy reads plain HTTP/1.1 heads and Content-Length bodies, which is
//! all an SDK sends.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// ListObjectsV2: a truncated page whose NextContinuationToken is the
    /// token it was asked with.
    ListTokenRepeated,
    /// ListObjectsV2: one endless listing document (chunked).
    ListEndless,
    /// ListObjectsV2: a 500 whose error document never ends (chunked).
    ListErrorEndless,
    /// ListParts: truncated, its NextPartNumberMarker the marker asked after.
    PartsMarkerRepeated,
    /// ListParts: 1,000 more parts on every page, truncated forever.
    PartsEndless,
    /// ListMultipartUploads: the same truncated page whatever the markers.
    UploadsRepeated,
    /// ListMultipartUploads: 1,000 new uploads on every page, forever.
    UploadsEndless,
    /// GetObject `Range: bytes=-N`: the whole (64 MiB) object, as a 200.
    TailWholeObject,
    /// GetObject `Range: bytes=-N`: a 206 that claims the last N bytes and
    /// then never ends (chunked).
    TailEndless,
}

/// Most bytes of one endless answer (so that a gateway without bounds fails
/// the test instead of the machine).
pub const ENDLESS: u64 = 512 * 1024 * 1024;

pub struct LyingStore {
    pub port: u16,
    lie: Arc<Mutex<Option<Lie>>>,
    /// Requests answered with a lie.
    pub lies: Arc<AtomicUsize>,
    /// Bytes of lies written to the gateway.
    pub lie_bytes: Arc<AtomicU64>,
}

impl LyingStore {
    pub fn start(target: u16) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let lie: Arc<Mutex<Option<Lie>>> = Arc::default();
        let lies: Arc<AtomicUsize> = Arc::default();
        let lie_bytes: Arc<AtomicU64> = Arc::default();
        let (l2, n2, b2) = (lie.clone(), lies.clone(), lie_bytes.clone());
        thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let (l, n, b) = (l2.clone(), n2.clone(), b2.clone());
                thread::spawn(move || {
                    let _ = serve(c, target, &l, &n, &b);
                });
            }
        });
        Self {
            port,
            lie,
            lies,
            lie_bytes,
        }
    }

    /// Lies from now on (`None`: an honest proxy). Resets the counters.
    pub fn set(&self, lie: Option<Lie>) {
        *self.lie.lock().unwrap() = lie;
        self.lies.store(0, Ordering::SeqCst);
        self.lie_bytes.store(0, Ordering::SeqCst);
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Request {
    fn q(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    fn h(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Request {
        method,
        path: unescape(path),
        query,
        headers,
    })
}

fn serve(
    mut c: TcpStream,
    target: u16,
    lie: &Mutex<Option<Lie>>,
    lies: &AtomicUsize,
    lie_bytes: &AtomicU64,
) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    // The head, and whatever of the body came with it.
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = c.read(&mut tmp)?;
        if n == 0 || buf.len() > 1 << 20 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let Some(req) = parse(&buf[..end - 4]) else {
        return Ok(());
    };
    let len: usize = req
        .h("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < end + len {
        let n = c.read(&mut tmp)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let current = *lie.lock().unwrap();
    if let Some(l) = current.filter(|l| applies(*l, &req)) {
        lies.fetch_add(1, Ordering::SeqCst);
        let _ = tell(l, &req, &mut c, lie_bytes);
        let _ = c.shutdown(std::net::Shutdown::Both);
        return Ok(());
    }
    // Honest: the request as it came (its signature covers no Connection
    // header), asking the store to close after its answer.
    let mut s = TcpStream::connect(("127.0.0.1", target))?;
    s.write_all(&buf[..end - 2])?;
    s.write_all(b"Connection: close\r\n\r\n")?;
    s.write_all(&buf[end..])?;
    std::io::copy(&mut s, &mut c)?;
    let _ = c.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn is_bucket_path(p: &str) -> bool {
    p.trim_matches('/').split('/').count() == 1
}

fn applies(lie: Lie, r: &Request) -> bool {
    if r.method != "GET" {
        return false;
    }
    match lie {
        Lie::ListTokenRepeated | Lie::ListEndless | Lie::ListErrorEndless => {
            is_bucket_path(&r.path) && r.q("list-type") == Some("2")
        }
        Lie::PartsMarkerRepeated | Lie::PartsEndless => r.q("uploadId").is_some(),
        Lie::UploadsRepeated | Lie::UploadsEndless => {
            is_bucket_path(&r.path) && r.q("uploads").is_some()
        }
        Lie::TailWholeObject | Lie::TailEndless => {
            r.h("range").is_some_and(|v| v.starts_with("bytes=-"))
        }
    }
}

fn write_counted(c: &mut TcpStream, b: &[u8], count: &AtomicU64) -> std::io::Result<()> {
    c.write_all(b)?;
    count.fetch_add(b.len() as u64, Ordering::SeqCst);
    Ok(())
}

fn answer(
    c: &mut TcpStream,
    status: &str,
    headers: &str,
    body: &str,
    count: &AtomicU64,
) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nx-amz-request-id: lying-store\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    write_counted(c, text.as_bytes(), count)
}

/// A chunked answer: `start`, then `unit` again and again, for [`ENDLESS`]
/// bytes or until the gateway stops reading.
fn endless(
    c: &mut TcpStream,
    status: &str,
    headers: &str,
    start: &str,
    unit: &str,
    count: &AtomicU64,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\nx-amz-request-id: lying-store\r\nConnection: close\r\n{headers}\r\n"
    );
    write_counted(c, head.as_bytes(), count)?;
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
    if !start.is_empty() {
        write_counted(c, chunk(start).as_bytes(), count)?;
    }
    let mut block = String::new();
    while block.len() < 64 * 1024 {
        block.push_str(unit);
    }
    let block = chunk(&block);
    let mut sent = 0u64;
    while sent < ENDLESS {
        write_counted(c, block.as_bytes(), count)?;
        sent += block.len() as u64;
    }
    write_counted(c, b"0\r\n\r\n", count)
}

const OBJECT_HEADERS: &str = "ETag: \"0123456789abcdef0123456789abcdef\"\r\nLast-Modified: Wed, 01 Jan 2025 00:00:00 GMT\r\nx-amz-meta-sg: AAAA\r\n";

fn tell(lie: Lie, r: &Request, c: &mut TcpStream, count: &AtomicU64) -> std::io::Result<()> {
    let bucket = r.path.trim_matches('/').split('/').next().unwrap_or("");
    match lie {
        Lie::ListTokenRepeated => {
            let token = r.q("continuation-token").unwrap_or("first");
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><ContinuationToken>{token}</ContinuationToken><NextContinuationToken>{token}</NextContinuationToken><Contents><Key>again</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>100</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
            );
            answer(c, "200 OK", "", &body, count)
        }
        Lie::ListEndless => endless(
            c,
            "200 OK",
            "",
            &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name><IsTruncated>false</IsTruncated>"),
            "<Contents><Key>more-and-more-and-more</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>100</Size></Contents>",
            count,
        ),
        Lie::ListErrorEndless => endless(
            c,
            "500 Internal Server Error",
            "",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>",
            "and on and on and on ",
            count,
        ),
        Lie::PartsMarkerRepeated | Lie::PartsEndless => {
            let marker: u32 = r
                .q("part-number-marker")
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            let (parts, next) = if lie == Lie::PartsMarkerRepeated {
                (marker + 1..=marker + 1, marker.max(1))
            } else {
                (marker + 1..=marker + 1000, marker + 1000)
            };
            let mut body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{bucket}</Bucket><UploadId>{}</UploadId><PartNumberMarker>{marker}</PartNumberMarker><NextPartNumberMarker>{next}</NextPartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>true</IsTruncated>",
                r.q("uploadId").unwrap_or("")
            );
            for n in parts {
                body += &format!("<Part><PartNumber>{n}</PartNumber><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>100</Size></Part>");
            }
            body += "</ListPartsResult>";
            answer(c, "200 OK", "", &body, count)
        }
        Lie::UploadsRepeated | Lie::UploadsEndless => {
            let page: u32 = match (lie, r.q("key-marker")) {
                (Lie::UploadsEndless, Some(m)) => m
                    .strip_prefix("lie-")
                    .and_then(|m| m.get(..5))
                    .and_then(|p| p.parse().ok())
                    .map_or(0, |p: u32| p + 1),
                _ => 0,
            };
            let n = if lie == Lie::UploadsRepeated { 1 } else { 1000 };
            let key = |i: u32| format!("lie-{page:05}-{i:04}");
            let mut body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{bucket}</Bucket><NextKeyMarker>{}</NextKeyMarker><NextUploadIdMarker>id</NextUploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>",
                key(n - 1)
            );
            for i in 0..n {
                body += &format!(
                    "<Upload><Key>{}</Key><UploadId>id</UploadId><Initiated>2025-01-01T00:00:00.000Z</Initiated></Upload>",
                    key(i)
                );
            }
            body += "</ListMultipartUploadsResult>";
            answer(c, "200 OK", "", &body, count)
        }
        Lie::TailWholeObject => {
            let size = 64u64 * 1024 * 1024;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n{OBJECT_HEADERS}Connection: close\r\n\r\n"
            );
            write_counted(c, head.as_bytes(), count)?;
            let block = vec![0u8; 64 * 1024];
            for _ in 0..size / block.len() as u64 {
                write_counted(c, &block, count)?;
            }
            Ok(())
        }
        Lie::TailEndless => {
            let n: u64 = r
                .h("range")
                .and_then(|v| v.strip_prefix("bytes=-"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(32);
            let total = 1u64 << 30;
            endless(
                c,
                "206 Partial Content",
                &format!(
                    "Content-Range: bytes {}-{}/{total}\r\n{OBJECT_HEADERS}",
                    total - n,
                    total - 1
                ),
                "",
                "0123456789abcdef",
                count,
            )
        }
    }
}
