#!/usr/bin/env python3
"""An independent decryptor for the sealgate object format, version 1.

Written from docs/FORMAT.md alone (not from the Rust sources), to prove the
specification is complete, and to give users a second way to recover their
data. It needs Python 3.8+ and the `cryptography` package (AES-GCM, RSA-OAEP);
HKDF and HMAC come from the standard library.

Two modes:

  Check the test vectors (every pass vector must open to its plaintext and
  its declared attributes, every must-fail vector must be refused with its
  declared error); a line "ATTRS  <name> <json>" reports the attributes
  opened from each pass vector (null: the header has none):

      sealgate_decrypt.py --vectors tests/vectors
      sealgate_decrypt.py --vectors tests/vectors/pass-1-byte.json

  Decrypt one object downloaded straight from the store:

      sealgate_decrypt.py decrypt --identity me.pem --bucket B --key K \\
          --meta "$(value of x-amz-meta-sg)" -o plain.bin object.bin

  A multipart object also needs its manifest, the object
  .sealgate/mp/<hex upload id> of the same bucket (FORMAT.md section 10):

      sealgate_decrypt.py decrypt ... --manifest manifest.bin object.bin

  Without the manifest (offline recovery, FORMAT.md 10.3, last paragraph),
  --no-manifest walks the body part by part. It cannot detect a dropped part
  or a part replaced by an older upload, and says so. An object whose header
  is in its manifest (a 0x81 pointer in metadata) cannot be read without it.

  The object's sealed attributes (FORMAT.md 4.6: Content-Type and the other
  standard headers, user metadata), when its header has them, are printed
  to stderr once the object has been read.

  An object written for a group (FORMAT.md 15) also needs the group's
  document, the object .sealgate/dir/groups/<name>/v<version> of the
  directory bucket; the member's RSA key opens the group's epoch keys:

      sealgate_decrypt.py decrypt ... --group-doc doc.bin [--pin FINGERPRINT] object.bin

Exit status: 0 success; 1 a vector misbehaved or the object was refused;
2 usage error; 3 the `cryptography` package is missing.
"""

import argparse
import base64
import hashlib
import hmac
import io
import json
import os
import re
import stat
import struct
import sys

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:  # pragma: no cover - exercised by CI setup only
    sys.stderr.write(
        "sealgate_decrypt: the Python package 'cryptography' is required "
        "(pip install cryptography): %s\n" % exc
    )
    sys.exit(3)

# ---------------------------------------------------------------------------
# Constants of format v1 (FORMAT.md section 2)

VERSION = 1
SEGMENT = 65536
SEGMENT_LOG2 = 16
TAG = 16
SALT = 16
STREAM_HEADER = SALT + 8
TRAILER = 16 + TAG
COMMITMENT = 32
KEY_ID = 8
MAC = 32
MAX_HEADER = 65536
MAX_META_CHARS = 2 * MAX_HEADER
FLAG_MULTIPART = 0x01
FLAG_ATTRIBUTES = 0x02
OVERFLOW_MARKER = 0x80
OVERFLOW_POINTER = 2 + 4 + MAC  # version, marker, be32 header length, MAC
MANIFEST_MARKER = 0x81
MANIFEST_POINTER = 2 + 16 + MAC  # version, marker, upload id, MAC
ALG_RSA_OAEP_256 = 1
ALG_X25519 = 2

# Sealed blocks (FORMAT.md 4.5)
INFO_SEALED = b"sealgate/v1/sealed/"
BLOCK_SALT = 16
MIN_BLOCK = BLOCK_SALT + TAG
MAX_BLOCK = 1 << 20
FIRST_OPTIONAL_TAG = 0x80
PURPOSE_ATTRIBUTES = "attributes"
PURPOSE_MANIFEST = "manifest"

# Attribute records (FORMAT.md 4.6), named as in the vectors' `attributes`.
ATTRIBUTE_FIELDS = {
    0x01: "content_type",
    0x02: "content_encoding",
    0x03: "content_disposition",
    0x04: "content_language",
    0x05: "cache_control",
    0x06: "expires",
}
ATTRIBUTE_META = 0x10
ATTRIBUTE_HEADERS = {
    "content_type": "Content-Type",
    "content_encoding": "Content-Encoding",
    "content_disposition": "Content-Disposition",
    "content_language": "Content-Language",
    "cache_control": "Cache-Control",
    "expires": "Expires",
}

INFO_COMMITMENT = b"sealgate/v1/commitment"
INFO_HEADER_MAC = b"sealgate/v1/header-mac"
INFO_PAYLOAD = b"sealgate/v1/payload"
INFO_MANIFEST = b"sealgate/v1/manifest"
MANIFEST_CONTEXT = b"sealgate/v1/manifest"
MANIFEST_PREFIX = ".sealgate/mp/"
MANIFEST_ENTRY = 4 + 8 + SALT  # be32 part number, be64 length, salt
MANIFEST_NONCE = 12
MANIFEST_SEALED = 16 + TAG  # layout 1: encrypted ETag MD5 and its tag
MANIFEST_LAYOUTS = (1, 2)
MANIFEST_ETAG = 0x01  # layout 2: the ETag MD5 record
MAX_PARTS = 10000
MAC_CONTEXT = b"sealgate/v1/header"
OAEP_LABEL = b"sealgate/v1/data-key"

NONCE_SEGMENT, NONCE_LAST, NONCE_TRAILER = 0, 1, 2


class FormatError(Exception):
    """A refusal, named as in FORMAT.md section 9."""

    def __init__(self, kind, detail=""):
        super().__init__("%s%s" % (kind, ": " + detail if detail else ""))
        self.kind = kind
        self.detail = detail


# ---------------------------------------------------------------------------
# Primitives (FORMAT.md sections 2 and 3)


def hkdf_sha256(salt, ikm, info, length=32):
    """RFC 5869 with SHA-256; an empty salt is the same as 32 zero bytes."""
    prk = hmac.new(salt if salt else b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def commitment_of(dk):
    return hkdf_sha256(b"", dk, INFO_COMMITMENT)


def header_mac_key(dk):
    return hkdf_sha256(b"", dk, INFO_HEADER_MAC)


def payload_key(dk, salt, part, plaintext_len):
    info = INFO_PAYLOAD + struct.pack(">IQ", part, plaintext_len)
    return hkdf_sha256(salt, dk, info)


def manifest_key(dk):
    return hkdf_sha256(b"", dk, INFO_MANIFEST)


def name_bytes(bucket, key):
    out = bytearray()
    for name in (bucket, key):
        b = name.encode("utf-8")
        out += struct.pack(">H", len(b)) + b
    return bytes(out)


def manifest_aad(bucket, key, upload_id, before_digests):
    return MANIFEST_CONTEXT + name_bytes(bucket, key) + upload_id + before_digests


def nonce(counter, flag):
    # be88(counter) || flag: three zero bytes, a 64-bit counter, the flag.
    return b"\x00\x00\x00" + struct.pack(">QB", counter, flag)


def mac_input(bucket, key, header_before_mac):
    return MAC_CONTEXT + name_bytes(bucket, key) + header_before_mac


def segments(p):
    return max(1, -(-p // SEGMENT))


def stream_len(p):
    return STREAM_HEADER + p + TAG * segments(p) + TRAILER


def plaintext_len(c):
    """Inverse of stream_len (FORMAT.md 8.1); None if no length gives c."""
    if c < STREAM_HEADER + TRAILER + TAG:
        return None
    b = c - STREAM_HEADER - TRAILER
    q, r = divmod(b, SEGMENT + TAG)
    if r == 0:
        p = q * SEGMENT
    elif r < TAG or (r == TAG and q > 0):
        return None
    else:
        p = q * SEGMENT + (r - TAG)
    return p if stream_len(p) == c else None


# ---------------------------------------------------------------------------
# Identities (FORMAT.md section 5)


class Identity:
    def __init__(self, name, private_key):
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("%s: not an RSA private key" % name)
        self.name = name
        self.key = private_key
        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spki = spki
        self.key_id = hashlib.sha256(spki).digest()[:KEY_ID]
        self.algorithm = ALG_RSA_OAEP_256

    @classmethod
    def from_pem(cls, name, pem, password=None):
        return cls(name, serialization.load_pem_private_key(pem, password=password))

    def unwrap(self, wrapped, label=OAEP_LABEL):
        try:
            dk = self.key.decrypt(
                wrapped,
                padding.OAEP(
                    mgf=padding.MGF1(algorithm=hashes.SHA256()),
                    algorithm=hashes.SHA256(),
                    label=label,
                ),
            )
        except ValueError:
            raise FormatError("Unwrap", "RSA-OAEP decryption failed")
        if len(dk) != 32:
            raise FormatError("Unwrap", "unwrapped key is not 32 bytes")
        return dk


# ---------------------------------------------------------------------------
# Metadata value and header (FORMAT.md sections 4 and 6)


def b64url_decode_strict(text):
    if len(text) > MAX_META_CHARS:
        raise FormatError("MalformedHeader", "metadata value too long")
    t = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]*", t):
        raise FormatError("MalformedHeader", "metadata value is not unpadded base64url")
    if len(t) % 4 == 1:
        raise FormatError("MalformedHeader", "impossible base64url length")
    raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != t:
        raise FormatError("MalformedHeader", "non-canonical base64url")
    return raw


def decode_meta(text):
    """FORMAT.md 6. Returns ("inline", header bytes, None), ("overflow",
    header length, MAC) or ("manifest", upload id, MAC)."""
    raw = b64url_decode_strict(text)
    if len(raw) < 2:
        raise FormatError("MalformedHeader", "metadata value too short")
    if raw[0] != VERSION:
        raise FormatError("UnsupportedVersion", "unsupported format version %d" % raw[0])
    if raw[1] == OVERFLOW_MARKER:
        if len(raw) != OVERFLOW_POINTER:
            raise FormatError("MalformedHeader", "bad overflow pointer")
        (n,) = struct.unpack(">I", raw[2:6])
        if not 1 <= n <= MAX_HEADER:
            raise FormatError("MalformedHeader", "overflow header length out of range")
        return "overflow", n, raw[6:]
    if raw[1] == MANIFEST_MARKER:
        if len(raw) != MANIFEST_POINTER:
            raise FormatError("MalformedHeader", "bad manifest pointer")
        return "manifest", raw[2:18], raw[18:]
    return "inline", raw, None


# ---------------------------------------------------------------------------
# Sealed blocks and attributes (FORMAT.md 4.5, 4.6)


def block_key(root, purpose, salt):
    return hkdf_sha256(salt, root, INFO_SEALED + purpose.encode("ascii"))


def open_block(root, purpose, aad, block):
    """The records of a sealed block. Its length was checked by whoever
    parsed the structure holding it; it is checked again here."""
    if not MIN_BLOCK <= len(block) <= MAX_BLOCK:
        raise FormatError("MalformedHeader", "sealed block length out of range")
    salt = block[:BLOCK_SALT]
    try:
        return AESGCM(block_key(root, purpose, salt)).decrypt(
            b"\x00" * 12, block[BLOCK_SALT:], aad
        )
    except InvalidTag:
        raise FormatError("HeaderMac", "sealed block (%s) does not open" % purpose)


def parse_records(b, repeatable=()):
    """A record list in canonical order: [(tag, value)]."""
    out = []
    pos = 0
    while pos < len(b):
        if len(b) - pos < 3:
            raise FormatError("MalformedHeader", "record truncated")
        tag = b[pos]
        (n,) = struct.unpack(">H", b[pos + 1 : pos + 3])
        pos += 3
        if len(b) - pos < n:
            raise FormatError("MalformedHeader", "record value runs past the end")
        value = b[pos : pos + n]
        pos += n
        if out:
            prev_tag, prev_value = out[-1]
            # Python compares bytes lexicographically, a prefix first.
            repeat_ok = tag == prev_tag and tag in repeatable and value > prev_value
            if not (tag > prev_tag or repeat_ok):
                raise FormatError("MalformedHeader", "records out of order or repeated")
        out.append((tag, value))
    return out


def utf8(value, what):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("MalformedHeader", "%s is not UTF-8" % what)


def parse_attributes(records):
    """The attributes of an opened attributes block, in the vectors' form:
    the standard fields present, and `metadata` (key -> value)."""
    attrs = {}
    metadata = {}
    for tag, value in parse_records(records, repeatable=(ATTRIBUTE_META,)):
        if tag in ATTRIBUTE_FIELDS:
            attrs[ATTRIBUTE_FIELDS[tag]] = utf8(value, ATTRIBUTE_FIELDS[tag])
        elif tag == ATTRIBUTE_META:
            nul = value.find(b"\x00")
            if nul < 0:
                raise FormatError("MalformedHeader", "metadata entry without 0x00")
            k = utf8(value[:nul], "metadata key")
            if not k or re.search(r"[A-Z]", k):
                raise FormatError("MalformedHeader", "bad metadata key %r" % k)
            if k in metadata:
                raise FormatError("MalformedHeader", "repeated metadata key %r" % k)
            metadata[k] = utf8(value[nul + 1 :], "metadata value")
        elif tag < FIRST_OPTIONAL_TAG:
            raise FormatError("MalformedHeader", "unknown critical record 0x%02x" % tag)
        # unknown optional records are skipped
    attrs["metadata"] = metadata
    return attrs


class Header:
    """A parsed, not yet authenticated, header."""

    def __init__(self, raw):
        if len(raw) > MAX_HEADER:
            raise FormatError("MalformedHeader", "header too long")
        self.raw = bytes(raw)
        pos = 0

        def take(n):
            nonlocal pos
            if pos + n > len(self.raw):
                raise FormatError("MalformedHeader", "header truncated")
            s = self.raw[pos : pos + n]
            pos += n
            return s

        self.version = take(1)[0]
        if self.version != VERSION:
            raise FormatError(
                "UnsupportedVersion", "unsupported format version %d" % self.version
            )
        self.flags = take(1)[0]
        if self.flags & ~(FLAG_MULTIPART | FLAG_ATTRIBUTES):
            raise FormatError("MalformedHeader", "unknown flags 0x%02x" % self.flags)
        if take(1)[0] != SEGMENT_LOG2:
            raise FormatError("MalformedHeader", "unsupported segment size")
        self.commitment = take(COMMITMENT)
        self.multipart = bool(self.flags & FLAG_MULTIPART)
        if self.multipart:
            self.upload_id = take(16)
            self.salt, self.plaintext_len = None, None
        else:
            self.salt = take(SALT)
            (self.plaintext_len,) = struct.unpack(">Q", take(8))
        count = take(1)[0]
        if count == 0:
            raise FormatError("MalformedHeader", "no recipients")
        self.stanzas = []
        for _ in range(count):
            alg = take(1)[0]
            kid = take(KEY_ID)
            (n,) = struct.unpack(">H", take(2))
            self.stanzas.append((alg, kid, take(n)))
        self.attributes = None
        if self.flags & FLAG_ATTRIBUTES:
            (a,) = struct.unpack(">H", take(2))
            if a < MIN_BLOCK:
                raise FormatError("MalformedHeader", "attributes block shorter than 32 bytes")
            self.attributes = take(a)
        self.mac = take(MAC)
        if pos != len(self.raw):
            raise FormatError("MalformedHeader", "trailing bytes after MAC")

    def key_ids(self):
        return [kid.hex() for _, kid, _ in self.stanzas]

    def unwrap(self, identities):
        for alg, kid, wrapped in self.stanzas:
            # Stanzas of algorithms no identity has are skipped (FORMAT.md 5).
            for ident in identities:
                if ident.algorithm == alg and ident.key_id == kid:
                    return ident.unwrap(wrapped)
        raise FormatError(
            "NoMatchingRecipient", "object is for key ids " + ", ".join(self.key_ids())
        )

    def authenticate(self, dk, bucket, key, detached_mac=None):
        """Commitment, then MAC. For an overflow object the MAC is the one in
        the metadata pointer, and the MAC field of the header is ignored."""
        if not hmac.compare_digest(commitment_of(dk), self.commitment):
            raise FormatError("Commitment", "key commitment mismatch")
        expected = hmac.new(
            header_mac_key(dk), mac_input(bucket, key, self.raw[:-MAC]), hashlib.sha256
        ).digest()
        mac = self.mac if detached_mac is None else detached_mac
        if not hmac.compare_digest(expected, mac):
            raise FormatError("HeaderMac", "header authentication failed")

    def open_attributes(self, dk):
        """FORMAT.md 4.6, after authenticate(): the attributes, or None for a
        header without a block (written before attributes were sealed)."""
        if self.attributes is None:
            return None
        return parse_attributes(open_block(dk, PURPOSE_ATTRIBUTES, b"", self.attributes))


# ---------------------------------------------------------------------------
# Streams (FORMAT.md section 7)


def read_exact(f, n):
    out = bytearray()
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def open_stream(f, dk, part, expected, out, last=True):
    """Decrypts one stream from file `f` into `out`; returns the trailer MD5.

    With last=False (a part followed by others) the input goes on after it."""
    sh = read_exact(f, STREAM_HEADER)
    if len(sh) < STREAM_HEADER:
        raise FormatError("Truncated", "stream header")
    salt = sh[:SALT]
    (p,) = struct.unpack(">Q", sh[SALT:])
    if expected is not None and (salt, p) != expected:
        raise FormatError("StreamMismatch", "stream header does not match the envelope")
    aead = AESGCM(payload_key(dk, salt, part, p))
    n = segments(p)
    md5 = hashlib.md5()
    for i in range(n):
        seg_pt = min(SEGMENT, p - i * SEGMENT)
        ct = read_exact(f, seg_pt + TAG)
        if len(ct) < seg_pt + TAG:
            raise FormatError("Truncated", "segment %d" % i)
        flag = NONCE_LAST if i == n - 1 else NONCE_SEGMENT
        try:
            pt = aead.decrypt(nonce(i, flag), ct, None)
        except InvalidTag:
            raise FormatError("SegmentAuth", "segment %d" % i)
        md5.update(pt)
        out.write(pt)
    t = read_exact(f, TRAILER)
    if len(t) < TRAILER:
        raise FormatError("Truncated", "trailer")
    try:
        trailer_md5 = aead.decrypt(nonce(n, NONCE_TRAILER), t, None)
    except InvalidTag:
        raise FormatError("SegmentAuth", "trailer")
    if not hmac.compare_digest(trailer_md5, md5.digest()):
        raise FormatError("TrailerMismatch", "trailer MD5 differs from the plaintext's")
    if last and f.read(1):
        raise FormatError("TrailingData", "bytes after the trailer")
    return trailer_md5


# ---------------------------------------------------------------------------
# Multipart objects (FORMAT.md section 10)


def manifest_object_key(upload_id):
    return MANIFEST_PREFIX + upload_id.hex()


class Manifest:
    """A parsed, not yet authenticated, manifest (FORMAT.md 10.2; 10.3 step 3).

    `header_inline` says where the object's header came from: metadata
    (then H must be 0) or this manifest, behind a pointer (then H > 0)."""

    def __init__(self, raw, header_inline):
        self.raw = bytes(raw)
        pos = 0

        def take(n):
            nonlocal pos
            if pos + n > len(self.raw):
                raise FormatError("MalformedHeader", "manifest truncated")
            s = self.raw[pos : pos + n]
            pos += n
            return s

        self.layout = take(1)[0]
        if self.layout not in MANIFEST_LAYOUTS:
            raise FormatError("UnsupportedVersion", "unsupported manifest layout %d" % self.layout)
        (h,) = struct.unpack(">I", take(4))
        if h > MAX_HEADER:
            raise FormatError("MalformedHeader", "manifest header length out of range")
        if header_inline and h > 0:
            raise FormatError("MalformedHeader", "header inline in metadata and in the manifest")
        if not header_inline and h == 0:
            raise FormatError("MalformedHeader", "manifest pointer to a manifest without a header")
        self.header = take(h) if h else None
        (count,) = struct.unpack(">I", take(4))
        if not 1 <= count <= MAX_PARTS:
            raise FormatError("MalformedHeader", "manifest part count out of range")
        (self.total,) = struct.unpack(">Q", take(8))
        self.parts = []
        prev, total = 0, 0
        for _ in range(count):
            entry = take(MANIFEST_ENTRY)
            number, length = struct.unpack(">IQ", entry[:12])
            if number == 0 or number > MAX_PARTS or number <= prev:
                raise FormatError("MalformedHeader", "manifest part numbers out of order")
            prev = number
            total += length
            self.parts.append((number, length, entry[12:]))
        if total != self.total:
            raise FormatError("MalformedHeader", "manifest total is not the sum of its parts")
        # Everything the AAD covers: before the nonce (1) or before S (2).
        self.before_digests = self.raw[:pos]
        if self.layout == 1:
            self.nonce = take(MANIFEST_NONCE)
            self.sealed = take(MANIFEST_SEALED)
        else:
            (n,) = struct.unpack(">I", take(4))
            if not MIN_BLOCK <= n <= MAX_BLOCK:
                raise FormatError("MalformedHeader", "manifest block length out of range")
            self.block = take(n)
        if pos != len(self.raw):
            raise FormatError("MalformedHeader", "bytes after the manifest's digests")

    def open(self, dk, bucket, key, upload_id):
        """Authenticates the manifest for this object; returns the ETag MD5."""
        aad = manifest_aad(bucket, key, upload_id, self.before_digests)
        if self.layout == 1:
            try:
                return AESGCM(manifest_key(dk)).decrypt(self.nonce, self.sealed, aad)
            except InvalidTag:
                raise FormatError("HeaderMac", "manifest authentication failed")
        etag = None
        for tag, value in parse_records(open_block(dk, PURPOSE_MANIFEST, aad, self.block)):
            if tag == MANIFEST_ETAG:
                if len(value) != 16:
                    raise FormatError("MalformedHeader", "manifest ETag record is not 16 bytes")
                etag = value
            elif tag < FIRST_OPTIONAL_TAG:
                raise FormatError("MalformedHeader", "unknown critical manifest record 0x%02x" % tag)
        if etag is None:
            raise FormatError("MalformedHeader", "manifest without an ETag record")
        return etag


def read_manifest(fetch, upload_id, header_inline):
    """FORMAT.md 10.3 steps 2 and 3."""
    raw = fetch(manifest_object_key(upload_id))
    if raw is None:
        raise FormatError("MissingManifest", "no manifest %s" % manifest_object_key(upload_id))
    return Manifest(raw, header_inline)


def open_multipart(header, dk, bucket, key, manifest, body, body_len, out):
    """FORMAT.md 10.3 steps 4 to 7, the manifest parsed. Returns the ETag MD5."""
    etag_md5 = manifest.open(dk, bucket, key, header.upload_id)
    want = sum(stream_len(length) for _, length, _ in manifest.parts)
    if body_len < want:
        raise FormatError("Truncated", "body shorter than the manifest's layout")
    if body_len > want:
        raise FormatError("TrailingData", "body longer than the manifest's layout")
    md5s = b""
    for i, (number, length, salt) in enumerate(manifest.parts):
        last = i == len(manifest.parts) - 1
        md5s += open_stream(body, dk, number, (salt, length), out, last=last)
    if not hmac.compare_digest(hashlib.md5(md5s).digest(), etag_md5):
        raise FormatError("EtagMismatch", "part MD5s do not give the manifest's ETag")
    return etag_md5


def walk_without_manifest(dk, body, body_len, out):
    """FORMAT.md 10.3, last paragraph: the part streams without the manifest.

    Returns the part numbers found. Cannot detect a dropped part, nor a part
    replaced by an older upload of the same number."""
    numbers = []
    while body.tell() < body_len or not numbers:
        start = body.tell()
        sh = read_exact(body, STREAM_HEADER)
        if len(sh) < STREAM_HEADER:
            raise FormatError("Truncated", "stream header")
        salt = sh[:SALT]
        (p,) = struct.unpack(">Q", sh[SALT:])
        if body_len - start < stream_len(p):
            raise FormatError("Truncated", "stream shorter than its header says")
        seg0 = read_exact(body, min(SEGMENT, p) + TAG)
        flag = NONCE_LAST if segments(p) == 1 else NONCE_SEGMENT
        found = None
        for n in range((numbers[-1] if numbers else 0) + 1, MAX_PARTS + 1):
            try:
                AESGCM(payload_key(dk, salt, n, p)).decrypt(nonce(0, flag), seg0, None)
            except InvalidTag:
                continue
            found = n
            break
        if found is None:
            raise FormatError("SegmentAuth", "no part number opens the stream at %d" % start)
        body.seek(start)
        open_stream(body, dk, found, (salt, p), out, last=False)
        numbers.append(found)
    return numbers


# ---------------------------------------------------------------------------
# Objects (FORMAT.md section 9)


class Opened:
    """What reading an object gave. `md5` is the trailer MD5 of a single-part
    object, the ETag MD5 of a multipart one (None when walked without its
    manifest)."""

    def __init__(self, header, dk, md5, attributes, manifest=None, part_numbers=None):
        self.header = header
        self.dk = dk
        self.md5 = md5
        self.attributes = attributes
        self.manifest = manifest
        self.part_numbers = part_numbers

    def etag(self):
        if self.md5 is None:
            return None
        if self.manifest is None:
            return self.md5.hex()
        return "%s-%d" % (self.md5.hex(), len(self.manifest.parts))


def open_object(meta, body, identities, bucket, key, out, fetch=None, body_len=None,
                without_manifest=False):
    """FORMAT.md section 9: metadata value + body file -> plaintext in `out`.

    `fetch(object key)` returns another object of the bucket (a multipart
    manifest) or None; `body_len` is the body's length (needed for multipart
    objects). `without_manifest` walks a multipart body without its
    manifest instead (10.3, last paragraph), which an object whose header
    is in its manifest does not allow."""
    fetch = fetch or (lambda _key: None)
    # Steps 1 and 2: where the header is, and which MAC authenticates it.
    form, value, detached_mac = decode_meta(meta)
    manifest = None
    if form == "overflow":
        raw = read_exact(body, value)
        if len(raw) < value:
            raise FormatError("Truncated", "overflow header longer than the body")
    elif form == "manifest":
        if without_manifest:
            raise FormatError(
                "MissingManifest",
                "the header is in the manifest %s: this object cannot be read without it"
                % manifest_object_key(value),
            )
        manifest = read_manifest(fetch, value, header_inline=False)
        raw = manifest.header
    else:
        raw = value
    # Steps 3 to 6.
    header = Header(raw)
    dk = header.unwrap(identities)
    header.authenticate(dk, bucket, key, detached_mac)
    if form == "overflow" and header.multipart:
        raise FormatError("MalformedHeader", "a multipart header behind a body pointer")
    if form == "manifest":
        if not header.multipart:
            raise FormatError("MalformedHeader", "a single-part header behind a manifest pointer")
        if header.upload_id != value:
            raise FormatError("HeaderMac", "the header's upload id is not the pointer's")
    attributes = header.open_attributes(dk)
    if not header.multipart:
        md5 = open_stream(body, dk, 0, (header.salt, header.plaintext_len), out)
        return Opened(header, dk, md5, attributes)
    if body_len is None:
        raise ValueError("a multipart object's body must be a regular file (its length is needed)")
    if without_manifest:
        numbers = walk_without_manifest(dk, body, body_len, out)
        return Opened(header, dk, None, attributes, part_numbers=numbers)
    if manifest is None:
        manifest = read_manifest(fetch, header.upload_id, header_inline=True)
    etag_md5 = open_multipart(header, dk, bucket, key, manifest, body, body_len, out)
    return Opened(header, dk, etag_md5, attributes, manifest, [n for n, _, _ in manifest.parts])


# ---------------------------------------------------------------------------
# X25519 recipients (FORMAT.md 5.1) and groups (FORMAT.md 15)

X25519_SPKI_PREFIX = bytes.fromhex("302a300506032b656e032100")
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
X25519_WRAP_INFO = b"sealgate/v1/x25519-wrap"
X25519_WRAP_AAD = b"sealgate/v1/x25519"
X25519_WRAPPED = 32 + 32 + TAG
GROUP_MAGIC = b"sealgate/v1/group"
GROUP_SIGNATURE_CONTEXT = b"sealgate/v1/group-signature"
GROUP_EPOCH_KEY_LABEL = b"sealgate/v1/group-epoch-key"
GROUP_CHAIN_CONTEXT = b"sealgate/v1/group-chain"
GROUP_MAX_LEN = 16 * 1024 * 1024
GROUP_MAX_MEMBERS = 10000
GROUP_VECTOR_FORMAT = "sealgate-format-v1-group-vector"
GROUP_NAME_RE = re.compile(r"[a-z0-9._-]{1,64}")
MEMBER_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class GroupError(Exception):
    """A refusal of a group document, named as in FORMAT.md 15.4 and 15.5."""

    def __init__(self, kind, detail=""):
        super().__init__("%s%s" % (kind, ": " + detail if detail else ""))
        self.kind = kind


def x25519_public(private):
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(*raw)


def x25519_shared(private, public):
    """X25519(private, public); None when the result is all zero."""
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public)
        )
    except ValueError:  # OpenSSL refuses an all-zero result itself
        return None
    return None if shared == b"\x00" * 32 else shared


def fingerprint(spki):
    """FORMAT.md 15.1."""
    h = hashlib.sha256(spki).digest()[:10].hex().upper()
    return "-".join(h[i : i + 4] for i in range(0, 20, 4))


def normalize_fingerprint(text):
    t = text.strip().replace("-", "").upper()
    if not re.fullmatch(r"[0-9A-F]{20}", t):
        raise ValueError("not a fingerprint: %r" % text)
    return "-".join(t[i : i + 4] for i in range(0, 20, 4))


class X25519Identity:
    """An X25519 private key (a group's epoch key): FORMAT.md 5.1."""

    def __init__(self, name, private):
        self.name = name
        self.private = bytes(private)
        self.public = x25519_public(self.private)
        self.key_id = hashlib.sha256(X25519_SPKI_PREFIX + self.public).digest()[:KEY_ID]
        self.algorithm = ALG_X25519

    def unwrap(self, wrapped):
        if len(wrapped) != X25519_WRAPPED:
            raise FormatError("Unwrap", "X25519 wrapped key is not 80 bytes")
        e_pub = wrapped[:32]
        shared = x25519_shared(self.private, e_pub)
        if shared is None:
            raise FormatError("Unwrap", "X25519 shared secret is all zero")
        kek = hkdf_sha256(e_pub + self.public, shared, X25519_WRAP_INFO)
        try:
            dk = AESGCM(kek).decrypt(b"\x00" * 12, wrapped[32:], X25519_WRAP_AAD)
        except InvalidTag:
            raise FormatError("Unwrap", "X25519 wrap does not open")
        return dk


def chain_key(newer_private, epoch):
    return hkdf_sha256(b"", newer_private, GROUP_CHAIN_CONTEXT + struct.pack(">I", epoch))


class GroupDocument:
    """A parsed, not yet verified, group document (FORMAT.md 15.3)."""

    def __init__(self, raw):
        bad = lambda detail: GroupError("Malformed", detail)  # noqa: E731
        raw = bytes(raw)
        if len(raw) > GROUP_MAX_LEN:
            raise bad("document longer than 16 MiB")
        if not raw.startswith(GROUP_MAGIC) or len(raw) < len(GROUP_MAGIC) + 4:
            raise bad("not a group document")
        (l,) = struct.unpack(">I", raw[17:21])
        if len(raw) < 22 + l:
            raise bad("document truncated")
        self.raw = raw
        self.signed = raw[: 21 + l]
        n = raw[21 + l]
        entries = raw[22 + l :]
        if len(entries) < 96 * n:
            raise bad("document truncated")
        if len(entries) > 96 * n:
            raise bad("bytes after the signatures")
        self.signatures = [(entries[i : i + 32], entries[i + 32 : i + 96]) for i in range(0, 96 * n, 96)]
        for a, b in zip(self.signatures, self.signatures[1:]):
            if not a[0] < b[0]:
                raise bad("signers out of order or repeated")
        fields = {}
        self.members, self.chain, self.admins = [], {}, []
        prev = None
        records, pos = raw[21 : 21 + l], 0
        while pos < len(records):
            if len(records) - pos < 3:
                raise bad("record truncated")
            tag = records[pos]
            (n_val,) = struct.unpack(">H", records[pos + 1 : pos + 3])
            value = records[pos + 3 : pos + 3 + n_val]
            if len(value) < n_val:
                raise bad("record truncated")
            pos += 3 + n_val
            if prev is not None:
                ptag, pvalue = prev
                repeatable = tag in (0x05, 0x06, 0x07)
                if tag < ptag or (tag == ptag and not (repeatable and value > pvalue)):
                    raise bad("records out of order or repeated")
            prev = (tag, value)
            if tag in (0x01, 0x02, 0x03, 0x04):
                fields[tag] = value
            elif tag == 0x05:
                if len(self.members) == GROUP_MAX_MEMBERS:
                    raise bad("too many members")
                self.members.append(self._member(value))
            elif tag == 0x06:
                if len(value) != 4 + 32 + 48:
                    raise bad("chain link has the wrong length")
                (e,) = struct.unpack(">I", value[:4])
                self.chain[e] = (value[4:36], value[36:])
            elif tag == 0x07:
                if len(value) != 32:
                    raise bad("administrator key has the wrong length")
                self.admins.append(value)
            elif tag < 0x80:
                raise bad("unknown critical record 0x%02x" % tag)
        for tag in (0x01, 0x02, 0x03, 0x04):
            if tag not in fields:
                raise bad("record 0x%02x missing" % tag)
        try:
            self.name = fields[0x01].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("group name is not UTF-8")
        if not GROUP_NAME_RE.fullmatch(self.name) or self.name.startswith("."):
            raise bad("bad group name")
        if len(fields[0x02]) != 8 or len(fields[0x03]) != 4 or len(fields[0x04]) != 32:
            raise bad("a record has the wrong length")
        (self.version,) = struct.unpack(">Q", fields[0x02])
        (self.epoch,) = struct.unpack(">I", fields[0x03])
        self.epoch_key = fields[0x04]
        if self.version == 0 or self.epoch == 0:
            raise bad("version or epoch 0")
        if not self.members or not self.admins:
            raise bad("no member or no administrator")
        names = [m[0] for m in self.members]
        kids = [hashlib.sha256(m[1]).digest()[:KEY_ID] for m in self.members]
        if len(set(names)) != len(names) or len(set(kids)) != len(kids):
            raise bad("two members share a name or a key")
        if sorted(self.chain) != list(range(1, self.epoch)):
            raise bad("the epoch chain is not one link per older epoch")

    @staticmethod
    def _member(value):
        bad = lambda detail: GroupError("Malformed", detail)  # noqa: E731
        pos, fields = 0, []
        for _ in range(2):
            if len(value) - pos < 2:
                raise bad("member record truncated")
            (n,) = struct.unpack(">H", value[pos : pos + 2])
            if len(value) - pos - 2 < n:
                raise bad("member record truncated")
            fields.append(value[pos + 2 : pos + 2 + n])
            pos += 2 + n
        wrapped = value[pos:]
        try:
            name = fields[0].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("member name is not UTF-8")
        if not MEMBER_NAME_RE.fullmatch(name) or name.startswith("."):
            raise bad("bad member name")
        try:
            key = serialization.load_der_public_key(fields[1])
        except ValueError:
            raise bad("member key is not a public key")
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise bad("member key is not an RSA key of 2048 bits or more")
        if len(wrapped) != (key.key_size + 7) // 8:
            raise bad("wrapped epoch key is not the member key's size")
        return name, fields[1], wrapped

    def signer_fingerprints(self):
        return [fingerprint(ED25519_SPKI_PREFIX + pk) for pk, _ in self.signatures]

    def verify(self, name, pinned, min_version):
        """FORMAT.md 15.4 steps 2 to 6 (step 1 is the parse). `pinned` None
        skips step 4 (decrypt mode without --pin: reading needs no trust in
        the document, FORMAT.md 15.5; `name` None skips step 5."""
        if not self.signatures:
            raise GroupError("Unsigned", "the document carries no signature")
        message = GROUP_SIGNATURE_CONTEXT + self.signed
        for pk, sig in self.signatures:
            try:
                Ed25519PublicKey.from_public_bytes(pk).verify(sig, message)
            except (InvalidSignature, ValueError):
                raise GroupError("BadSignature", "a signature does not verify")
        if pinned is not None and not {normalize_fingerprint(p) for p in pinned}.intersection(
            self.signer_fingerprints()
        ):
            raise GroupError("UnknownSigner", "no signer is pinned for this group")
        if name is not None and self.name != name:
            raise GroupError("WrongName", "document of group %r, not %r" % (self.name, name))
        if self.version < min_version:
            raise GroupError(
                "RolledBack", "version %d, but %d was accepted before" % (self.version, min_version)
            )

    def open_epochs(self, identities):
        """FORMAT.md 15.5: every epoch key, oldest first, as X25519 identities."""
        current = None
        for ident in identities:
            if getattr(ident, "algorithm", None) != ALG_RSA_OAEP_256:
                continue
            for name, spki, wrapped in self.members:
                if hashlib.sha256(spki).digest()[:KEY_ID] == ident.key_id:
                    try:
                        current = ident.unwrap(wrapped, label=GROUP_EPOCH_KEY_LABEL)
                    except FormatError:
                        raise GroupError("Malformed", "the epoch key wrapped for %s does not open" % name)
                    break
            if current is not None:
                break
        if current is None:
            raise GroupError("NotAMember", "no identity is a member of group %s" % self.name)
        if x25519_public(current) != self.epoch_key:
            raise GroupError("Malformed", "the wrapped epoch key is not the current one")
        secrets = [current]
        for e in range(self.epoch - 1, 0, -1):
            public, sealed = self.chain[e]
            aad = GROUP_CHAIN_CONTEXT + struct.pack(">I", e)
            try:
                older = AESGCM(chain_key(secrets[-1], e)).decrypt(b"\x00" * 12, sealed, aad)
            except InvalidTag:
                raise GroupError("Malformed", "the chain link of epoch %d does not open" % e)
            if x25519_public(older) != public:
                raise GroupError("Malformed", "the chain link of epoch %d holds another key" % e)
            secrets.append(older)
        secrets.reverse()
        return [
            X25519Identity("%s epoch %d" % (self.name, e + 1), s) for e, s in enumerate(secrets)
        ]


def check_group_pass(v, doc, epochs):
    """Problems with a verified, opened pass group vector."""
    problems = []
    ex = v["expected"]
    members = [
        {
            "name": name,
            "key_id": hashlib.sha256(spki).digest()[:KEY_ID].hex(),
            "fingerprint": fingerprint(spki),
        }
        for name, spki, _ in doc.members
    ]
    got = {
        "version": doc.version,
        "epoch": doc.epoch,
        "epoch_key": doc.epoch_key.hex(),
        "epoch_key_id": hashlib.sha256(X25519_SPKI_PREFIX + doc.epoch_key).digest()[:KEY_ID].hex(),
        "members": members,
        "admins": sorted(fingerprint(ED25519_SPKI_PREFIX + a) for a in doc.admins),
        "signers": doc.signer_fingerprints(),
        "epoch_keys": [
            {"epoch": i + 1, "public": k.public.hex(), "key_id": k.key_id.hex()}
            for i, k in enumerate(epochs)
        ],
    }
    for name, value in got.items():
        if ex.get(name) != value:
            problems.append("expected %s differs" % name)
    im = v.get("intermediate", {})
    if im.get("signed_len") != len(doc.signed):
        problems.append("intermediate signed_len differs")
    message = GROUP_SIGNATURE_CONTEXT + doc.signed
    if im.get("signed_message_sha256") != hashlib.sha256(message).hexdigest():
        problems.append("intermediate signed_message_sha256 differs")
    for link in im.get("chain_link_keys", []):
        e = link["epoch"]
        if chain_key(epochs[e].private, e).hex() != link["key"]:
            problems.append("chain link key of epoch %d differs" % e)
    for i, s in enumerate(v["inputs"]["epoch_secrets"]):
        if epochs[i].private.hex() != s["secret"]:
            problems.append("epoch %d secret differs" % (i + 1))
    return problems


def check_group_object(o, opened, pt, epochs):
    problems = []
    want = vector_plaintext(o["plaintext"])
    if pt != want:
        problems.append("object %s: plaintext differs" % o["key"])
    if opened.md5.hex() != o["plaintext"]["md5"]:
        problems.append("object %s: trailer MD5 differs" % o["key"])
    inp = o.get("inputs")
    if inp is not None:
        if opened.dk.hex() != inp["data_key"]:
            problems.append("object %s: data key differs" % o["key"])
        e_secret = bytes.fromhex(inp["x25519_ephemeral_secret"])
        r_pub = bytes.fromhex(inp["x25519_recipient_public"])
        e_pub = x25519_public(e_secret)
        shared = x25519_shared(e_secret, r_pub)
        if e_pub.hex() != inp["x25519_ephemeral_public"] or shared.hex() != inp["x25519_shared_secret"]:
            problems.append("object %s: X25519 values differ" % o["key"])
        if hkdf_sha256(e_pub + r_pub, shared, X25519_WRAP_INFO).hex() != inp["x25519_kek"]:
            problems.append("object %s: KEK differs" % o["key"])
        if epochs[o["epoch"] - 1].public != r_pub:
            problems.append("object %s: not written for epoch %d" % (o["key"], o["epoch"]))
    return problems


def run_group_vector(v, keys):
    """A group vector (tests/vectors/README.md): returns (ok, message)."""
    name = v["name"]
    raw = bytes.fromhex(v["document"]["hex"])
    if hashlib.sha256(raw).hexdigest() != v["document"]["sha256"] or len(raw) != v["document"]["len"]:
        return False, "%s: document does not match its declared sha256/length" % name
    problems = []
    for id_set in v["identity_sets"]:
        idents = [keys[n] for n in id_set]
        outcome, found = None, []
        try:
            doc = GroupDocument(raw)
            doc.verify(v["group"], v["pinned"], v["min_version"])
            epochs = doc.open_epochs(idents)
            for o in v["objects"]:
                body = bytes.fromhex(o["body_hex"])
                if hashlib.sha256(body).hexdigest() != o["body_sha256"]:
                    raise ValueError("object body does not match its declared sha256")
                out = io.BytesIO()
                opened = open_object(
                    o["metadata"]["x-amz-meta-sg"], io.BytesIO(body), list(reversed(epochs)) + idents,
                    o["bucket"], o["key"], out, body_len=len(body),
                )
                found.append((o, opened, out.getvalue()))
        except (GroupError, FormatError) as e:
            outcome = e
        if v["expect"] == "pass":
            if outcome is not None:
                problems.append("%s: refused (%s)" % (id_set, outcome))
                continue
            problems += ["%s: %s" % (id_set, p) for p in check_group_pass(v, doc, epochs)]
            for o, opened, pt in found:
                problems += ["%s: %s" % (id_set, p) for p in check_group_object(o, opened, pt, epochs)]
                if opened.attributes != o.get("attributes"):
                    problems.append("%s: object %s: attributes differ" % (id_set, o["key"]))
        elif outcome is None:
            problems.append("%s: opened, but must fail with %s" % (id_set, v["error"]))
        elif outcome.kind != v["error"]:
            problems.append("%s: refused with %s, declared %s" % (id_set, outcome, v["error"]))
    if v["expect"] == "pass":
        # The objects' attributes were checked above, one by one; the vector
        # itself declares none (the ATTRS line of every pass vector).
        print("ATTRS  %s %s" % (name, json.dumps(v.get("attributes"))))
    if problems:
        return False, "%s: %s" % (name, "; ".join(problems))
    if v["expect"] == "pass":
        return True, "%s: group %s v%d opened, %d objects read" % (
            name, v["group"], v["expected"]["version"], len(v["objects"]))
    return True, "%s: refused with %s" % (name, v["error"])


# ---------------------------------------------------------------------------
# Vector mode


def load_vector_keys(path):
    with open(path) as fh:
        doc = json.load(fh)
    keys = {}
    for k in doc["keys"]:
        ident = Identity.from_pem(k["name"], k["private_key_pkcs8_pem"].encode())
        if ident.key_id.hex() != k["key_id"]:
            raise SystemExit("keys.json: key id of %s does not match its key" % k["name"])
        keys[k["name"]] = ident
    return keys


def vector_plaintext(spec):
    mul, add = spec["generator_mul"], spec["generator_add"]
    return bytes((mul * i + add) % 256 for i in range(spec["len"]))


def check_pass(v, pt, opened):
    """Problems with an opened pass vector, as a list of strings."""
    problems = []
    spec = v["plaintext"]
    want = vector_plaintext(spec)
    if hashlib.sha256(want).hexdigest() != spec["sha256"]:
        problems.append("plaintext generator does not give the declared sha256")
    if "hex" in spec and spec["hex"] != want.hex():
        problems.append("plaintext hex differs from the generator")
    if hashlib.md5(want).hexdigest() != spec["md5"]:
        problems.append("plaintext md5 differs from the generator")
    if pt != want:
        problems.append("plaintext differs (%d bytes, want %d)" % (len(pt), len(want)))
    header, dk = opened.header, opened.dk
    im = v.get("intermediate", {})
    checks = {
        "data_key": dk.hex(),
        "commitment": commitment_of(dk).hex(),
        "header_mac_key": header_mac_key(dk).hex(),
        "header_hex": header.raw.hex(),
        "mac_input_hex": mac_input(v["bucket"], v["key"], header.raw[:-MAC]).hex(),
    }
    declared = v.get("attributes")
    if opened.attributes != declared:
        problems.append("attributes %s, declared %s" % (
            json.dumps(opened.attributes, sort_keys=True), json.dumps(declared, sort_keys=True)))
    problems += check_attributes_intermediate(v, im, opened)
    if header.multipart:
        problems += check_multipart_intermediate(v, im, opened)
    else:
        if opened.md5.hex() != spec["md5"]:
            problems.append("trailer MD5 differs")
        checks["payload_key"] = payload_key(dk, header.salt, 0, header.plaintext_len).hex()
    for name, value in checks.items():
        if name in im and im[name] != value:
            problems.append("intermediate %s differs" % name)
    if "stream_len" in im:
        if stream_len(header.plaintext_len) != im["stream_len"]:
            problems.append("stream_len formula differs")
        if plaintext_len(im["stream_len"]) != header.plaintext_len:
            problems.append("plaintext_len inverse differs")
        if im.get("stream_offset", 0) + im["stream_len"] != len(bytes.fromhex(v["body_hex"])):
            problems.append("body length is not stream offset + stream_len")
    return problems


def check_attributes_intermediate(v, im, opened):
    """The attributes block's intermediate values, when the header has one."""
    header, dk = opened.header, opened.dk
    if header.attributes is None:
        return ["intermediate attributes_* without a block"] if "attributes_key" in im else []
    block = header.attributes
    checks = {
        "attributes_key": block_key(dk, PURPOSE_ATTRIBUTES, block[:BLOCK_SALT]).hex(),
        "attributes_records_hex": open_block(dk, PURPOSE_ATTRIBUTES, b"", block).hex(),
        "attributes_len": len(block),
        "attributes_block_hex": block.hex(),
    }
    problems = []
    for name, value in checks.items():
        if im.get(name) != value:
            problems.append("intermediate %s differs" % name)
    if v.get("inputs", {}).get("attributes_salt") != block[:BLOCK_SALT].hex():
        problems.append("input attributes_salt differs")
    return problems


def check_multipart_intermediate(v, im, opened):
    problems = []
    header, dk, m = opened.header, opened.dk, opened.manifest
    checks = {
        "upload_id": header.upload_id.hex(),
        "manifest_object_key": manifest_object_key(header.upload_id),
        "manifest_aad_hex": manifest_aad(
            v["bucket"], v["key"], header.upload_id, m.before_digests
        ).hex(),
        "manifest_len": len(m.raw),
        "etag_md5": opened.md5.hex(),
        "etag": opened.etag(),
        "body_len": sum(stream_len(length) for _, length, _ in m.parts),
    }
    if m.layout == 1:
        checks["manifest_key"] = manifest_key(dk).hex()
        checks["manifest_nonce"] = m.nonce.hex()
    else:
        aad = manifest_aad(v["bucket"], v["key"], header.upload_id, m.before_digests)
        checks["manifest_layout"] = 2
        checks["manifest_block_salt"] = m.block[:BLOCK_SALT].hex()
        checks["manifest_block_key"] = block_key(dk, PURPOSE_MANIFEST, m.block[:BLOCK_SALT]).hex()
        checks["manifest_records_hex"] = open_block(dk, PURPOSE_MANIFEST, aad, m.block).hex()
        checks["manifest_block_len"] = len(m.block)
    for name, value in checks.items():
        if im.get(name) != value:
            problems.append("intermediate %s differs" % name)
    want = vector_plaintext(v["plaintext"])
    parts = im.get("parts", [])
    if len(parts) != len(m.parts):
        return problems + ["intermediate parts: %d, manifest has %d" % (len(parts), len(m.parts))]
    stream_off, pt_off, md5s = 0, 0, b""
    for j, (number, length, salt) in zip(parts, m.parts):
        part_md5 = hashlib.md5(want[pt_off : pt_off + length]).digest()
        md5s += part_md5
        expect = {
            "number": number,
            "plaintext_len": length,
            "plaintext_offset": pt_off,
            "salt": salt.hex(),
            "payload_key": payload_key(dk, salt, number, length).hex(),
            "stream_offset": stream_off,
            "stream_len": stream_len(length),
            "segments": segments(length),
            "plaintext_md5": part_md5.hex(),
        }
        for name, value in expect.items():
            if j.get(name) != value:
                problems.append("intermediate part %d %s differs" % (number, name))
        stream_off += stream_len(length)
        pt_off += length
    if hashlib.md5(md5s).hexdigest() != im.get("etag_md5"):
        problems.append("ETag MD5 is not the MD5 of the part MD5s")
    return problems


def vector_fetch(v):
    """The store of a vector: its manifest object, if any, at its own key."""
    m = v.get("manifest")
    if m is None:
        return lambda _key: None
    raw = bytes.fromhex(m["hex"])
    if hashlib.sha256(raw).hexdigest() != m["sha256"] or len(raw) != m["len"]:
        raise ValueError("manifest does not match its declared sha256/length")
    return lambda key: raw if key == m["object_key"] else None


def check_without_manifest(v, meta, body, idents):
    """Problems with the declared outcome of a read without the manifest."""
    w = v["without_manifest"]
    out = io.BytesIO()
    try:
        opened = open_object(
            meta, io.BytesIO(body), idents, v["bucket"], v["key"], out,
            body_len=len(body), without_manifest=True,
        )
    except FormatError as e:
        if w["expect"] != "fail":
            return ["without manifest: refused (%s)" % e]
        if e.kind != w["error"]:
            return ["without manifest: refused with %s, declared %s" % (e, w["error"])]
        return []
    if w["expect"] != "pass":
        return ["without manifest: opened, but must fail with %s" % w["error"]]
    pt = out.getvalue()
    problems = []
    if opened.part_numbers != w["part_numbers"]:
        problems.append(
            "without manifest: parts %s, declared %s" % (opened.part_numbers, w["part_numbers"])
        )
    if len(pt) != w["plaintext_len"] or hashlib.sha256(pt).hexdigest() != w["plaintext_sha256"]:
        problems.append("without manifest: plaintext differs")
    return problems


def run_vector(path, keys):
    """Returns (ok, message)."""
    with open(path) as fh:
        v = json.load(fh)
    if v.get("format") == GROUP_VECTOR_FORMAT:
        return run_group_vector(v, keys)
    name = v["name"]
    body = bytes.fromhex(v["body_hex"])
    if hashlib.sha256(body).hexdigest() != v["body_sha256"] or len(body) != v["body_len"]:
        return False, "%s: body does not match its declared sha256/length" % name
    meta = v["metadata"]["x-amz-meta-sg"]
    fetch = vector_fetch(v)
    problems = []
    attributes = []  # what each identity set opened (pass vectors)
    for id_set in v["identity_sets"]:
        idents = [keys[n] for n in id_set]
        out = io.BytesIO()
        try:
            opened = open_object(
                meta, io.BytesIO(body), idents, v["bucket"], v["key"], out,
                fetch=fetch, body_len=len(body),
            )
            outcome = None
        except FormatError as e:
            outcome = e
        if v["expect"] == "pass":
            if outcome is not None:
                problems.append("%s: refused (%s)" % (id_set, outcome))
            else:
                attributes.append(opened.attributes)
                problems += ["%s: %s" % (id_set, p) for p in check_pass(v, out.getvalue(), opened)]
        else:
            if outcome is None:
                problems.append("%s: opened, but must fail with %s" % (id_set, v["error"]))
            elif outcome.kind != v["error"]:
                problems.append(
                    "%s: refused with %s, declared %s" % (id_set, outcome, v["error"])
                )
        if "without_manifest" in v:
            problems += ["%s: %s" % (id_set, p) for p in check_without_manifest(v, meta, body, idents)]
    if attributes:
        # What a reader shows, for the interop test to compare with the
        # vector itself: one line, JSON with ASCII escapes, null for none.
        print("ATTRS  %s %s" % (name, json.dumps(attributes[0], sort_keys=True)))
        if any(a != attributes[0] for a in attributes):
            problems.append("identity sets opened different attributes")
    if problems:
        return False, "%s: %s" % (name, "; ".join(problems))
    extra = " (and without its manifest)" if "without_manifest" in v else ""
    if v["expect"] == "pass":
        return True, "%s: opened (%d bytes)%s" % (name, v["plaintext"]["len"], extra)
    return True, "%s: refused with %s%s" % (name, v["error"], extra)


def vectors_main(target):
    if os.path.isdir(target):
        directory = target
        files = sorted(
            os.path.join(target, f)
            for f in os.listdir(target)
            if f.endswith(".json") and f != "keys.json"
        )
    else:
        directory = os.path.dirname(target) or "."
        files = [target]
    keys = load_vector_keys(os.path.join(directory, "keys.json"))
    counts = {"pass": 0, "fail": 0, "wrong": 0}
    for path in files:
        try:
            ok, msg = run_vector(path, keys)
        except Exception as e:  # a crash on a vector is a wrong verdict
            ok, msg = False, "%s: crashed: %r" % (os.path.basename(path), e)
        if ok:
            with open(path) as fh:
                counts[json.load(fh)["expect"]] += 1
            print("ok     " + msg)
        else:
            counts["wrong"] += 1
            print("WRONG  " + msg)
    print(
        "sealgate_decrypt: %d pass vectors opened, %d must-fail vectors refused, %d wrong"
        % (counts["pass"], counts["fail"], counts["wrong"])
    )
    print("RESULT pass=%d fail=%d wrong=%d" % (counts["pass"], counts["fail"], counts["wrong"]))
    return 0 if counts["wrong"] == 0 and files else 1


# ---------------------------------------------------------------------------
# Decrypt mode


def regular_file_size(f):
    st = os.fstat(f.fileno())
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def decrypt_main(args):
    password = None
    if args.passphrase_env:
        if args.passphrase_env not in os.environ:
            sys.stderr.write("environment variable %s is not set\n" % args.passphrase_env)
            return 2
        password = os.environ[args.passphrase_env].encode()
    elif args.passphrase_file:
        with open(args.passphrase_file, "rb") as fh:
            password = fh.read().rstrip(b"\r\n")
    identities = []
    for path in args.identity:
        with open(path, "rb") as fh:
            pem = fh.read()
        try:
            identities.append(Identity.from_pem(path, pem, password))
        except (TypeError, ValueError) as e:
            sys.stderr.write("%s: cannot load private key: %s\n" % (path, e))
            return 2
    if args.meta_file:
        with open(args.meta_file) as fh:
            meta = fh.read()
    else:
        meta = args.meta
    manifest = None
    if args.manifest:
        with open(args.manifest, "rb") as fh:
            manifest = fh.read()
    for path in args.group_doc or []:
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            pins = [normalize_fingerprint(p) for p in args.pin] if args.pin else None
        except ValueError as e:
            sys.stderr.write("sealgate_decrypt: %s\n" % e)
            return 2
        try:
            doc = GroupDocument(raw)
            doc.verify(args.group, pins, args.min_version)
            epochs = doc.open_epochs(identities)
        except GroupError as e:
            sys.stderr.write("sealgate_decrypt: group document %s refused: %s\n" % (path, e))
            return 1
        if pins is None:
            sys.stderr.write(
                "sealgate_decrypt: group %s v%d: signed by %s, not checked against a pinned "
                "administrator (--pin); reading needs no trust in the document\n"
                % (doc.name, doc.version, ", ".join(doc.signer_fingerprints()))
            )
        else:
            sys.stderr.write(
                "sealgate_decrypt: group %s v%d verified, %d epoch keys opened\n"
                % (doc.name, doc.version, len(epochs))
            )
        identities = list(reversed(epochs)) + identities
    out_path = args.output
    out = open(out_path + ".partial", "wb") if out_path and out_path != "-" else sys.stdout.buffer
    try:
        with open(args.body, "rb") as body:
            opened = open_object(
                meta, body, identities, args.bucket, args.key, out,
                fetch=lambda _key: manifest,
                body_len=regular_file_size(body),
                without_manifest=args.no_manifest,
            )
    except (FormatError, ValueError) as e:
        if out is not sys.stdout.buffer:
            out.close()
            os.unlink(out_path + ".partial")
        if isinstance(e, ValueError):
            sys.stderr.write("sealgate_decrypt: %s\n" % e)
            return 2
        sys.stderr.write("sealgate_decrypt: refused: %s\n" % e)
        return 1
    if out is not sys.stdout.buffer:
        out.close()
        os.replace(out_path + ".partial", out_path)
    if opened.header.multipart and args.no_manifest:
        sys.stderr.write(
            "sealgate_decrypt: ok, read WITHOUT the manifest: parts %s. A dropped part "
            "(in the middle or at the end) or a part replaced by an older upload of the "
            "same number cannot be detected this way, and there is no ETag.\n"
            % ", ".join(str(n) for n in opened.part_numbers)
        )
    elif opened.header.multipart:
        sys.stderr.write("sealgate_decrypt: ok, %d parts, ETag %s\n"
                         % (len(opened.manifest.parts), opened.etag()))
    else:
        sys.stderr.write("sealgate_decrypt: ok, plaintext MD5 %s\n" % opened.md5.hex())
    write_attributes(opened.attributes)
    return 0


def write_attributes(attributes):
    """The sealed attributes, as the HTTP headers a client would see."""
    if attributes is None:
        sys.stderr.write(
            "sealgate_decrypt: no sealed attributes (written before they were sealed; "
            "the store's own headers are not authenticated)\n"
        )
        return
    lines = ["%s: %s" % (ATTRIBUTE_HEADERS[k], attributes[k])
             for k in ATTRIBUTE_HEADERS if k in attributes]
    lines += ["x-amz-meta-%s: %s" % kv for kv in sorted(attributes["metadata"].items())]
    sys.stderr.write("sealgate_decrypt: sealed attributes: %d\n" % len(lines))
    for line in lines:
        sys.stderr.write("  %s\n" % line)


def main(argv):
    if len(argv) >= 1 and argv[0] == "decrypt":
        p = argparse.ArgumentParser(prog="sealgate_decrypt.py decrypt")
        p.add_argument("body", help="object body as downloaded from the store")
        p.add_argument("--identity", "-i", action="append", required=True,
                       help="PKCS#8 PEM private key (repeatable)")
        p.add_argument("--passphrase-env", help="env var holding the key passphrase")
        p.add_argument("--passphrase-file", help="file holding the key passphrase")
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--meta", help="value of the x-amz-meta-sg metadata entry")
        g.add_argument("--meta-file", help="file holding that value")
        p.add_argument("--bucket", required=True)
        p.add_argument("--key", required=True, help="object key")
        p.add_argument("--output", "-o", help="plaintext file (default: stdout)")
        m = p.add_mutually_exclusive_group()
        m.add_argument("--manifest",
                       help="multipart objects: the manifest object .sealgate/mp/<hex upload id>")
        m.add_argument("--no-manifest", action="store_true",
                       help="multipart objects: walk the body without the manifest "
                            "(recovery; cannot detect dropped parts)")
        p.add_argument("--group-doc", action="append",
                       help="objects of a group: the group's document "
                            ".sealgate/dir/groups/<name>/v<version> (repeatable)")
        p.add_argument("--pin", action="append",
                       help="fingerprint of an administrator trusted for the group (repeatable)")
        p.add_argument("--group", help="the group's name (checked against the document)")
        p.add_argument("--min-version", type=int, default=0,
                       help="lowest acceptable group document version")
        return decrypt_main(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(
        description="Independent decryptor for sealgate format v1 (see docs/FORMAT.md)."
    )
    p.add_argument("--vectors", required=True, help="vector directory or one vector file")
    args = p.parse_args(argv)
    return vectors_main(args.vectors)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
