//! Bodies: executing a read plan over the store's ciphertext stream, and
//! handing streams to s3s with an exact length.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::StreamingBlob;
use s3s::stream::{ByteStream as S3sByteStream, RemainingLength};
use s3s::StdError;

use crate::envelope::layout::{Layout, PieceKind, ReadPlan};
use crate::envelope::stream::Opener;
use crate::envelope::{DataKey, FormatError};
use crate::store::ByteStream;

/// Decrypts the ciphertext `[plan.ct_start, plan.ct_end)` of an object into
/// its plaintext. Yields only authenticated bytes; ends with an error when
/// anything is wrong (the connection to the client is then cut).
pub fn decrypt_plan(
    input: ByteStream,
    plan: ReadPlan,
    layout: &Layout,
    dk: &DataKey,
) -> ByteStream {
    let pieces: VecDeque<(u64, Option<Opener>)> = plan
        .pieces
        .iter()
        .map(|p| {
            let opener = match &p.kind {
                PieceKind::Skip => None,
                PieceKind::Full { index } => {
                    let part = &layout.parts[*index];
                    Some(Opener::full(
                        dk.clone(),
                        part.number,
                        Some((part.salt, part.plaintext_len)),
                    ))
                }
                PieceKind::Range { index, span } => {
                    let part = &layout.parts[*index];
                    Some(Opener::range(
                        dk,
                        &part.salt,
                        part.number,
                        part.plaintext_len,
                        *span,
                    ))
                }
            };
            (p.len, opener)
        })
        .collect();

    struct St {
        input: ByteStream,
        pieces: VecDeque<(u64, Option<Opener>)>,
        ready: VecDeque<Bytes>,
        carry: Option<Bytes>,
        failed: bool,
    }
    fn fail(e: FormatError) -> std::io::Error {
        tracing::error!(error = %e, "stored object failed authentication while streaming");
        std::io::Error::other(e)
    }
    let st = St {
        input,
        pieces,
        ready: VecDeque::new(),
        carry: None,
        failed: false,
    };
    // Fused: a consumer may poll once more after the end (the AWS SDK looks
    // for trailers), and must then get the end again, not a panic.
    Box::pin(
        futures::stream::unfold(st, |mut st| async move {
            loop {
                if st.failed {
                    return None;
                }
                if let Some(b) = st.ready.pop_front() {
                    return Some((Ok(b), st));
                }
                let chunk = match st.carry.take() {
                    Some(c) => Some(Ok(c)),
                    None => st.input.next().await,
                };
                let Some((remaining, opener)) = st.pieces.front_mut() else {
                    // Every piece is done: the store must not send more.
                    return match chunk {
                        Some(Ok(c)) if !c.is_empty() => {
                            st.failed = true;
                            Some((Err(fail(FormatError::TrailingData)), st))
                        }
                        Some(Err(e)) => {
                            st.failed = true;
                            Some((Err(e), st))
                        }
                        _ => None,
                    };
                };
                let mut chunk = match chunk {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                    None => {
                        st.failed = true;
                        return Some((Err(fail(FormatError::Truncated)), st));
                    }
                };
                let n = (*remaining).min(chunk.len() as u64) as usize;
                let mine = chunk.split_to(n);
                if !chunk.is_empty() {
                    st.carry = Some(chunk);
                }
                *remaining -= n as u64;
                let done = *remaining == 0;
                if let Some(o) = opener.as_mut() {
                    let mut out = Vec::new();
                    if let Err(e) = o.push(mine, &mut out) {
                        st.failed = true;
                        return Some((Err(fail(e)), st));
                    }
                    st.ready.extend(out);
                    if done {
                        if let Err(e) = o.finish() {
                            st.failed = true;
                            return Some((Err(fail(e)), st));
                        }
                    }
                }
                if done {
                    st.pieces.pop_front();
                }
            }
        })
        .fuse(),
    )
}

/// A response body of an exact, advertised length. Once it has ended (or
/// failed) it stays ended, however often it is polled.
struct KnownLen {
    inner: sync_wrapper::SyncStream<ByteStream>,
    remaining: u64,
    ended: bool,
}

impl Stream for KnownLen {
    type Item = Result<Bytes, StdError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let p = Pin::new(&mut self.inner).poll_next(cx);
        let out = match p {
            Poll::Ready(Some(Ok(b))) => {
                let n = b.len() as u64;
                if n > self.remaining {
                    Some(Err("body longer than its length".into()))
                } else {
                    self.remaining -= n;
                    return Poll::Ready(Some(Ok(b)));
                }
            }
            Poll::Ready(Some(Err(e))) => Some(Err(Box::new(e) as StdError)),
            Poll::Ready(None) if self.remaining > 0 => {
                Some(Err("body shorter than its length".into()))
            }
            Poll::Ready(None) => None,
            Poll::Pending => return Poll::Pending,
        };
        self.ended = true;
        Poll::Ready(out)
    }
}

impl S3sByteStream for KnownLen {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(self.remaining as usize)
    }
}

pub fn blob(stream: ByteStream, len: u64) -> StreamingBlob {
    StreamingBlob::new(KnownLen {
        inner: sync_wrapper::SyncStream::new(stream),
        remaining: len,
        ended: false,
    })
}
