//! A raw HTTP/1.1 client with its own SigV4 signer, for the requests real S3
//! clients refuse to send: malformed bodies, skewed clocks, lying payload
//! hashes and digests, bodies cut off in the middle. Every socket operation
//! is bounded by a timeout, so a gateway that hangs fails the test instead of
//! stalling it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

pub struct Signer {
    pub ak: String,
    pub sk: String,
    pub region: String,
}

impl Signer {
    pub fn new(ak: &str, sk: &str) -> Self {
        Self {
            ak: ak.into(),
            sk: sk.into(),
            region: "us-east-1".into(),
        }
    }
}

/// A request to sign and send. `path` is the unencoded `/bucket/key`.
#[derive(Clone, Default)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `x-amz-content-sha256` to claim (default: the body's real hash).
    pub payload_hash: Option<String>,
    /// Signing time (default: now).
    pub time: Option<SystemTime>,
    /// Content-Length to declare (default: the body's length).
    pub content_length: Option<u64>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            ..Default::default()
        }
    }
    pub fn query(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `<Code>` of an S3 error answer (empty if none).
    pub fn code(&self) -> String {
        xml_text(&self.text(), "Code").unwrap_or_default()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn xml_text(s: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = s.find(&open)? + open.len();
    let len = s[start..].find(&format!("</{name}>"))?;
    Some(s[start..start + len].to_owned())
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
        .as_ref()
        .to_vec()
}

/// RFC 3986 encoding as SigV4 wants it (`/` kept in paths only).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut o = String::new();
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                o.push(b as char)
            }
            b'/' if keep_slash => o.push('/'),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

fn amz_times(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    let date = format!("{:04}{:02}{:02}", dt.year(), dt.month() as u8, dt.day());
    let full = format!(
        "{date}T{:02}{:02}{:02}Z",
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    (date, full)
}

fn canonical_query(q: &[(String, String)]) -> String {
    let mut v: Vec<(String, String)> = q
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    v.sort();
    v.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[allow(clippy::too_many_arguments)]
fn signature(
    s: &Signer,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload: &str,
    date: &str,
    full: &str,
) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    hs.sort();
    let canon_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: String = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let creq = format!(
        "{method}\n{}\n{query}\n{canon_headers}\n{signed}\n{payload}",
        uri_encode(path, true)
    );
    let scope = format!("{date}/{}/s3/aws4_request", s.region);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{full}\n{scope}\n{}",
        sha256_hex(creq.as_bytes())
    );
    let mut k = hmac(format!("AWS4{}", s.sk).as_bytes(), date.as_bytes());
    for part in [s.region.as_bytes(), b"s3", b"aws4_request"] {
        k = hmac(&k, part);
    }
    (hex::encode(hmac(&k, sts.as_bytes())), signed)
}

/// The request's head (request line and signed headers), for `port`.
pub fn head(port: u16, s: &Signer, r: &Req) -> String {
    let t = r.time.unwrap_or_else(SystemTime::now);
    let (date, full) = amz_times(t);
    let payload = r
        .payload_hash
        .clone()
        .unwrap_or_else(|| sha256_hex(&r.body));
    let mut headers = r.headers.clone();
    headers.push(("host".into(), format!("127.0.0.1:{port}")));
    headers.push(("x-amz-date".into(), full.clone()));
    headers.push(("x-amz-content-sha256".into(), payload.clone()));
    let query = canonical_query(&r.query);
    let (sig, signed) = signature(
        s, &r.method, &r.path, &query, &headers, &payload, &date, &full,
    );
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{date}/{}/s3/aws4_request, SignedHeaders={signed}, Signature={sig}",
        s.ak, s.region
    );
    let mut text = format!(
        "{} {}{}{} HTTP/1.1\r\n",
        r.method,
        uri_encode(&r.path, true),
        if query.is_empty() { "" } else { "?" },
        query
    );
    for (k, v) in &headers {
        text += &format!("{k}: {v}\r\n");
    }
    text += &format!("authorization: {auth}\r\n");
    text += &format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        r.content_length.unwrap_or(r.body.len() as u64)
    );
    text
}

/// A presigned URL path+query (`/bucket/key?X-Amz-...`) for `method`.
pub fn presign(
    port: u16,
    s: &Signer,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    time: SystemTime,
    expires: u64,
) -> String {
    let (date, full) = amz_times(time);
    let mut q: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    q.push(("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()));
    q.push((
        "X-Amz-Credential".into(),
        format!("{}/{date}/{}/s3/aws4_request", s.ak, s.region),
    ));
    q.push(("X-Amz-Date".into(), full.clone()));
    q.push(("X-Amz-Expires".into(), expires.to_string()));
    q.push(("X-Amz-SignedHeaders".into(), "host".into()));
    let query = canonical_query(&q);
    let headers = vec![("host".to_owned(), format!("127.0.0.1:{port}"))];
    let (sig, _) = signature(
        s,
        method,
        path,
        &query,
        &headers,
        "UNSIGNED-PAYLOAD",
        &date,
        &full,
    );
    format!("{}?{query}&X-Amz-Signature={sig}", uri_encode(path, true))
}

pub fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
    c.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(90))).unwrap();
    c
}

/// Sends a signed request and reads the whole answer.
pub fn send(port: u16, s: &Signer, r: &Req) -> Resp {
    let mut c = connect(port);
    let h = head(port, s, r);
    c.write_all(h.as_bytes()).unwrap();
    // The gateway may answer (and close) before reading the whole body.
    let _ = c.write_all(&r.body);
    read_response(&mut c)
}

/// Like [`send`], but a connection closed or reset without a complete
/// answer is an `Err` (with the time it took) instead of a panic.
pub fn try_send(port: u16, s: &Signer, r: &Req) -> Result<Resp, String> {
    let mut c = connect(port);
    let h = head(port, s, r);
    c.write_all(h.as_bytes())
        .map_err(|e| format!("writing the head: {e}"))?;
    let write_err = c.write_all(&r.body).err();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        match c.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("reading: {e} (writing the body: {write_err:?})")),
        }
    }
    if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("no answer (writing the body: {write_err:?})"));
    }
    Ok(parse_response(&buf))
}

/// Sends a raw request text (already complete) and reads the answer.
pub fn send_raw(port: u16, text: &[u8]) -> Resp {
    let mut c = connect(port);
    c.write_all(text).unwrap();
    read_response(&mut c)
}

pub fn read_response(c: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        match c.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !buf.is_empty() => break,
            Err(e) => panic!("reading the answer: {e} (after {} bytes)", buf.len()),
        }
    }
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&b[..p]);
        let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < p + 2 + n {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[(p + 4 + n).min(b.len())..];
    }
    out
}
