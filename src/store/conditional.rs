//! Which conditional writes a store enforces, and the probe that finds out.
//!
//! A conditional write (`If-None-Match: *`, `If-Match: <etag>` on PutObject,
//! CompleteMultipartUpload and CopyObject) is only worth its name when the
//! store checks the condition in the same step as the write: a gateway that
//! checked first and wrote after would let two writers racing on one key
//! both win. So sealgate forwards every condition to the store, and refuses
//! the conditions a store does not enforce rather than fake them.
//!
//! Stores differ, down to the operation: AWS S3 enforces all six; moto 5.2
//! enforces both on PutObject and `If-None-Match` on
//! CompleteMultipartUpload, and ignores the rest; Garage 2.5 accepts them all
//! and overwrites anyway. The embedded store enforces them itself
//! ([`Store::enforced_conditions`]). For an S3 store, `store.conditional_writes`
//! says `enforced` (trust it), `unsupported` (refuse every conditional
//! write), or `auto` (the default): on the first conditional write, one
//! probe ([`probe`]) tries each condition on each operation against a
//! scratch key under `.sealgate/probe/` where it must fail, and, for
//! `If-Match`, where it must succeed, then deletes the key and aborts its
//! uploads. The answer is kept for the life of the process (and logged); a
//! probe the store could not answer (unreachable) is not kept, the next
//! conditional write tries again.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::{CopyConditions, ObjectHeaders, Store, StoreError, StoreResult, WriteCondition};

/// `store.conditional_writes`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Probe the store on the first conditional write.
    #[default]
    Auto,
    /// The store enforces every condition on every operation: no probe.
    Enforced,
    /// Refuse every conditional write.
    Unsupported,
}

/// A write operation that may carry a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp {
    Put,
    Complete,
    Copy,
}

impl WriteOp {
    pub fn name(self) -> &'static str {
        match self {
            WriteOp::Put => "PutObject",
            WriteOp::Complete => "CompleteMultipartUpload",
            WriteOp::Copy => "CopyObject",
        }
    }
}

/// The two kinds of write condition, as the client's header names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CondKind {
    /// `If-None-Match: *`.
    IfNoneMatch,
    /// `If-Match`.
    IfMatch,
}

impl CondKind {
    pub fn of(c: &WriteCondition) -> Self {
        match c {
            WriteCondition::Absent => CondKind::IfNoneMatch,
            WriteCondition::Matches(_) => CondKind::IfMatch,
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            CondKind::IfNoneMatch => "If-None-Match",
            CondKind::IfMatch => "If-Match",
        }
    }
}

/// What a store enforces on one operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enforces {
    pub if_none_match: bool,
    pub if_match: bool,
}

impl Enforces {
    const BOTH: Self = Self {
        if_none_match: true,
        if_match: true,
    };

    fn describe(self) -> &'static str {
        match (self.if_none_match, self.if_match) {
            (true, true) => "If-None-Match and If-Match",
            (true, false) => "If-None-Match only",
            (false, true) => "If-Match only",
            (false, false) => "neither",
        }
    }
}

/// What a store enforces, per operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Support {
    pub put: Enforces,
    pub complete: Enforces,
    pub copy: Enforces,
}

impl Support {
    /// Every condition on every operation.
    pub const ALL: Self = Self {
        put: Enforces::BOTH,
        complete: Enforces::BOTH,
        copy: Enforces::BOTH,
    };
    /// None at all.
    pub const NONE: Self = Self {
        put: Enforces {
            if_none_match: false,
            if_match: false,
        },
        complete: Enforces {
            if_none_match: false,
            if_match: false,
        },
        copy: Enforces {
            if_none_match: false,
            if_match: false,
        },
    };

    pub fn enforces(&self, op: WriteOp, kind: CondKind) -> bool {
        let e = match op {
            WriteOp::Put => self.put,
            WriteOp::Complete => self.complete,
            WriteOp::Copy => self.copy,
        };
        match kind {
            CondKind::IfNoneMatch => e.if_none_match,
            CondKind::IfMatch => e.if_match,
        }
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        format!(
            "PutObject: {}; CompleteMultipartUpload: {}; CopyObject: {}",
            self.put.describe(),
            self.complete.describe(),
            self.copy.describe()
        )
    }
}

/// How the answer was found: said in the refusal a client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The store enforces conditions itself (the embedded store).
    Native,
    /// `store.conditional_writes` said so.
    Config,
    /// The probe found it.
    Probe,
}

/// The conditional writes of one store, found once per process.
pub struct ConditionalWrites {
    mode: Mode,
    native: Option<Support>,
    found: tokio::sync::OnceCell<Support>,
}

impl ConditionalWrites {
    pub fn new(mode: Mode, store: &dyn Store) -> Self {
        Self {
            mode,
            native: store.enforced_conditions(),
            found: tokio::sync::OnceCell::new(),
        }
    }

    /// Which conditions the store enforces: from the configuration, from
    /// the store itself, or from a probe in `bucket` (run once; an answer
    /// the store could not give is not kept).
    pub async fn support(
        &self,
        store: &Arc<dyn Store>,
        bucket: &str,
    ) -> StoreResult<(Support, Source)> {
        match (self.mode, self.native) {
            (Mode::Unsupported, _) => return Ok((Support::NONE, Source::Config)),
            (_, Some(s)) => return Ok((s, Source::Native)),
            (Mode::Enforced, None) => return Ok((Support::ALL, Source::Config)),
            (Mode::Auto, None) => {}
        }
        let s = self
            .found
            .get_or_try_init(|| async {
                // Its own task: a client that goes away mid-probe does not
                // cut it short before it tidies up.
                let (store, bucket) = (store.clone(), bucket.to_owned());
                let s = tokio::spawn(async move { probe(store.as_ref(), &bucket).await })
                    .await
                    .map_err(|e| {
                        StoreError::new(500, "InternalError", format!("the probe failed: {e}"))
                    })??;
                tracing::info!(
                    enforced = %s.describe(),
                    "conditional writes: probed the store (store.conditional_writes = \"auto\"); the others are refused with 501"
                );
                Ok::<_, StoreError>(s)
            })
            .await?;
        Ok((*s, Source::Probe))
    }
}

/// Where the probe writes (hidden from clients, under sealgate's prefix).
pub const PROBE_PREFIX: &str = ".sealgate/probe/";

/// An ETag no object has.
const NO_SUCH_ETAG: &str = "00000000000000000000000000000000";

/// How the store took a conditional write the probe made.
enum Answer<T> {
    /// It wrote.
    Took(T),
    /// It refused, as a store enforcing the condition does (412, or 409).
    Refused,
    /// Some other refusal (the header not understood, a 501...).
    Other,
}

/// A probe answer; an unreachable store fails the probe (not kept).
fn answer<T>(r: StoreResult<T>) -> StoreResult<Answer<T>> {
    match r {
        Ok(v) => Ok(Answer::Took(v)),
        Err(e) if e.unavailable => Err(e),
        Err(e) if e.status == 412 || e.status == 409 => Ok(Answer::Refused),
        Err(e) => {
            tracing::debug!(error = %e, "conditional-write probe: refused otherwise");
            Ok(Answer::Other)
        }
    }
}

fn refused<T>(a: &Answer<T>) -> bool {
    matches!(a, Answer::Refused)
}

fn took<T>(a: &Answer<T>) -> bool {
    matches!(a, Answer::Took(_))
}

fn small(data: &'static [u8]) -> (super::ByteStream, u64) {
    let n = data.len() as u64;
    let s: super::ByteStream = Box::pin(futures::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from_static(data))
    }));
    (s, n)
}

/// Finds which conditions `store` enforces, with a scratch key in `bucket`
/// that it deletes afterwards (as it aborts the probe's uploads).
pub async fn probe(store: &dyn Store, bucket: &str) -> StoreResult<Support> {
    let key = format!("{PROBE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    // A bucket with Object Lock wants a checksum with every write (and
    // gives the probe's scratch objects its default retention).
    let locked = match store.locks() {
        Some(l) => matches!(l.lock_config(bucket).await, Ok(Some(c)) if c.enabled),
        None => false,
    };
    let mut p = Probe {
        store,
        bucket,
        key: &key,
        headers: ObjectHeaders {
            lock: locked.then(super::lock::ObjectLock::default),
            ..Default::default()
        },
        uploads: Vec::new(),
    };
    let found = p.run().await;
    for id in &p.uploads {
        let _ = store.abort_multipart(bucket, &key, id).await;
    }
    for k in [key.clone(), race_key(&key)] {
        if let Err(e) = store.delete(bucket, &k).await {
            tracing::warn!(bucket, key = k, error = %e, "could not delete a conditional-write probe's key");
        }
    }
    found
}

/// The probe's second scratch key, for the races.
fn race_key(key: &str) -> String {
    format!("{key}.race")
}

/// How long a held write waits, once its body has begun, before the write
/// that races it: time for the request to reach the store and for a store
/// that checks conditions when a request begins to do so.
const RACE_HEAD_START: std::time::Duration = std::time::Duration::from_millis(500);

struct Probe<'a> {
    store: &'a dyn Store,
    bucket: &'a str,
    key: &'a str,
    headers: ObjectHeaders,
    /// Uploads begun, to abort at the end.
    uploads: Vec<String>,
}

impl Probe<'_> {
    async fn run(&mut self) -> StoreResult<Support> {
        let absent = WriteCondition::Absent;
        let wrong = WriteCondition::Matches(NO_SUCH_ETAG.to_owned());
        self.put(b"sealgate conditional-write probe", None).await?;
        let mut s = Support::NONE;

        s.put.if_none_match = refused(&answer(self.put(b"1", Some(&absent)).await)?);
        s.put.if_match = refused(&answer(self.put(b"2", Some(&wrong)).await)?) && {
            let now = self.current().await?;
            took(&answer(self.put(b"3", Some(&now)).await)?)
        };

        s.copy.if_none_match = refused(&answer(self.copy(&absent).await)?);
        s.copy.if_match = refused(&answer(self.copy(&wrong).await)?) && {
            let now = self.current().await?;
            took(&answer(self.copy(&now).await)?)
        };

        // One upload per kind: a store that wrongly completes the first
        // cannot spoil the second. (A store that cannot make one enforces
        // nothing on completions.)
        if let Some((id, parts)) = self.upload().await? {
            s.complete.if_none_match = refused(&answer(self.complete(&id, &parts, &absent).await)?);
        }
        if let Some((id, parts)) = self.upload().await? {
            s.complete.if_match = refused(&answer(self.complete(&id, &parts, &wrong).await)?) && {
                let now = self.current().await?;
                took(&answer(self.complete(&id, &parts, &now).await)?)
            };
        }

        // Sequential answers cannot tell a store that checks a condition in
        // the same step as the write from one that checks when the request
        // begins and writes when its body has arrived (s3s-fs 0.14): both
        // refuse a stale condition. A race can: a conditional write whose
        // body is held back while another write of the key completes must be
        // refused. A store caught letting it through fakes atomicity, and
        // is trusted with no condition at all.
        if s.put.if_none_match && !self.held_write_loses(false).await? {
            tracing::warn!("conditional-write probe: the store let a create through after another create of the key completed (it checks conditions before the write, not with it)");
            return Ok(Support::NONE);
        }
        if s.put.if_match && !self.held_write_loses(true).await? {
            tracing::warn!("conditional-write probe: the store let a compare-and-swap through after another write of the key completed (it checks conditions before the write, not with it)");
            return Ok(Support::NONE);
        }
        Ok(s)
    }

    /// Begins a conditional write of the race key (a create, or with
    /// `cas` an `If-Match` of the version there now) and holds its body
    /// back while an unconditional write of the key completes; then lets it
    /// finish. Whether the store refused it, as it must.
    async fn held_write_loses(&self, cas: bool) -> StoreResult<bool> {
        let key = race_key(self.key);
        let cond = if cas {
            let (body, n) = small(b"before");
            self.store
                .put(self.bucket, &key, body, n, &self.headers, None)
                .await?;
            let info = self.store.head(self.bucket, &key).await?;
            WriteCondition::Matches(info.etag)
        } else {
            let _ = self.store.delete(self.bucket, &key).await;
            WriteCondition::Absent
        };
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
        let (begun_tx, begun_rx) = futures::channel::oneshot::channel::<()>();
        let _ = tx.unbounded_send(Ok(Bytes::from_static(b"h")));
        // Signals when the store side asks for more than the first byte:
        // the request is on its way.
        let mut begun = Some(begun_tx);
        let mut first = true;
        let body: super::ByteStream = Box::pin(futures::stream::poll_fn({
            let mut rx = rx;
            move |cx| {
                if !first {
                    if let Some(b) = begun.take() {
                        let _ = b.send(());
                    }
                }
                first = false;
                futures::Stream::poll_next(std::pin::Pin::new(&mut rx), cx)
            }
        }));
        let held = self
            .store
            .put(self.bucket, &key, body, 2, &self.headers, Some(&cond));
        let racer = async {
            let _ = begun_rx.await;
            tokio::time::sleep(RACE_HEAD_START).await;
            let (b, n) = small(b"the other write");
            let r = self
                .store
                .put(self.bucket, &key, b, n, &self.headers, None)
                .await;
            let _ = tx.unbounded_send(Ok(Bytes::from_static(b"d")));
            drop(tx);
            r
        };
        let (held, racer) = futures::join!(held, racer);
        racer?;
        Ok(refused(&answer(held)?))
    }

    async fn put(&self, data: &'static [u8], cond: Option<&WriteCondition>) -> StoreResult<String> {
        let (body, n) = small(data);
        self.store
            .put(self.bucket, self.key, body, n, &self.headers, cond)
            .await
    }

    /// `If-Match` with the key's store ETag now.
    async fn current(&self) -> StoreResult<WriteCondition> {
        let info = self.store.head(self.bucket, self.key).await?;
        Ok(WriteCondition::Matches(info.etag))
    }

    /// A copy of the key onto itself.
    async fn copy(&self, cond: &WriteCondition) -> StoreResult<(String, std::time::SystemTime)> {
        let conds = CopyConditions {
            source_etag: None,
            dest: Some(cond),
        };
        self.store
            .copy(
                self.bucket,
                self.key,
                self.bucket,
                self.key,
                &self.headers,
                conds,
            )
            .await
    }

    /// A new upload of one small part; `None` when the store refuses one.
    async fn upload(&mut self) -> StoreResult<Option<(String, Vec<(i32, String)>)>> {
        let id = match answer(
            self.store
                .create_multipart(self.bucket, self.key, &self.headers)
                .await,
        )? {
            Answer::Took(id) => id,
            _ => return Ok(None),
        };
        self.uploads.push(id.clone());
        let (body, n) = small(b"p");
        Ok(
            match answer(
                self.store
                    .upload_part(self.bucket, self.key, &id, 1, body, n)
                    .await,
            )? {
                Answer::Took(part) => Some((id, vec![(1, part)])),
                _ => None,
            },
        )
    }

    async fn complete(
        &self,
        id: &str,
        parts: &[(i32, String)],
        cond: &WriteCondition,
    ) -> StoreResult<String> {
        self.store
            .complete_multipart(self.bucket, self.key, id, parts, Some(cond))
            .await
    }
}
