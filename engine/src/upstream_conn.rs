//! The byte stream of an upstream connection: plain TCP, or TLS over TCP (`server … tls`).
//!
//! The proxy handler, the pools and tunnels hold an [`UpstreamStream`], never a socket type,
//! the way connection code holds a [`crate::stream::ClientStream`]. A TLS connection is made by
//! [`connect`] (TCP, then the client handshake under the connect timeout) and pooled like a
//! plain one, session and all, so keep-alive requests pay no handshake; a new connection to a
//! server resumes the session of an earlier one (see `bext_tls::UpstreamTls`). Its halves
//! share the session as a client stream's do (`tls.rs`).
//!
//! Before a pooled connection is reused it is looked at without blocking (`sys::idle_state`):
//! for TLS too, bytes that arrived while it was idle are records nobody asked for (or a
//! `close_notify`), and the connection is closed rather than reused.

use crate::io::Limit;
use crate::tls::{TlsRead, TlsStream, TlsWrite, UpstreamSession, UpstreamTlsErr};
use crate::upstream::FailKind;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use monoio::BufResult;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

/// An upstream connection's stream.
#[derive(Debug)]
pub enum UpstreamStream {
    Tcp(TcpStream),
    Tls(TlsStream<UpstreamSession>),
}

/// Connects to `addr` under `limit`, then runs the TLS handshake when `tls` is given.
pub async fn connect(
    addr: SocketAddr,
    tls: Option<&bext_tls::UpstreamTls>,
    limit: Limit<'_>,
) -> Result<UpstreamStream, FailKind> {
    let tcp = match limit.run(TcpStream::connect_addr(addr)).await {
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            s
        }
        Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(FailKind::Refused)
        }
        Some(Err(_)) => return Err(FailKind::ConnectFailed),
        None => return Err(FailKind::ConnectTimeout),
    };
    let Some(tls) = tls else {
        return Ok(UpstreamStream::Tcp(tcp));
    };
    match crate::tls::connect_upstream(tcp, tls, limit).await {
        Ok(s) => Ok(UpstreamStream::Tls(s)),
        Err(UpstreamTlsErr::Verify) => Err(FailKind::TlsVerify),
        Err(UpstreamTlsErr::Timeout) => Err(FailKind::ConnectTimeout),
        Err(UpstreamTlsErr::Handshake | UpstreamTlsErr::Closed) => Err(FailKind::TlsHandshake),
    }
}

impl UpstreamStream {
    pub fn raw_fd(&self) -> RawFd {
        match self {
            UpstreamStream::Tcp(s) => s.as_raw_fd(),
            UpstreamStream::Tls(s) => s.tcp().as_raw_fd(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, UpstreamStream::Tls(_))
    }

    /// Whether decrypted bytes (or records) wait in the session: bytes beyond the response,
    /// which keep the connection out of the pool.
    pub fn holds_unread(&self) -> bool {
        match self {
            UpstreamStream::Tcp(_) => false,
            UpstreamStream::Tls(s) => s.holds_input(),
        }
    }

    pub fn into_split(self) -> (UpstreamRead, UpstreamWrite) {
        match self {
            UpstreamStream::Tcp(s) => {
                let (r, w) = s.into_split();
                (UpstreamRead::Tcp(r), UpstreamWrite::Tcp(w))
            }
            UpstreamStream::Tls(s) => {
                let (r, w) = s.into_split();
                (UpstreamRead::Tls(r), UpstreamWrite::Tls(w))
            }
        }
    }
}

/// The read half of a split [`UpstreamStream`].
pub enum UpstreamRead {
    Tcp(OwnedReadHalf<TcpStream>),
    Tls(TlsRead<UpstreamSession>),
}

/// The write half of a split [`UpstreamStream`].
pub enum UpstreamWrite {
    Tcp(OwnedWriteHalf<TcpStream>),
    Tls(TlsWrite<UpstreamSession>),
}

impl UpstreamRead {
    /// The stream back from its two halves; `None` when they are not halves of one stream.
    pub fn reunite(self, w: UpstreamWrite) -> Option<UpstreamStream> {
        match (self, w) {
            (UpstreamRead::Tcp(r), UpstreamWrite::Tcp(w)) => {
                r.reunite(w).ok().map(UpstreamStream::Tcp)
            }
            (UpstreamRead::Tls(r), UpstreamWrite::Tls(w)) => {
                r.reunite(w).ok().map(UpstreamStream::Tls)
            }
            _ => None,
        }
    }
}

fn unsupported_readv() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "vectored reads from a TLS stream",
    )
}

macro_rules! dispatch_read {
    ($ty:ident) => {
        impl AsyncReadRent for $ty {
            async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    $ty::Tcp(s) => s.read(buf).await,
                    $ty::Tls(s) => s.read(buf).await,
                }
            }

            async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    $ty::Tcp(s) => s.readv(buf).await,
                    $ty::Tls(_) => (Err(unsupported_readv()), buf),
                }
            }
        }
    };
}

macro_rules! dispatch_write {
    ($ty:ident) => {
        impl AsyncWriteRent for $ty {
            async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    $ty::Tcp(s) => s.write(buf).await,
                    $ty::Tls(s) => s.write(buf).await,
                }
            }

            async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    $ty::Tcp(s) => s.writev(buf).await,
                    $ty::Tls(s) => s.writev(buf).await,
                }
            }

            async fn flush(&mut self) -> std::io::Result<()> {
                match self {
                    $ty::Tcp(s) => s.flush().await,
                    $ty::Tls(s) => s.flush().await,
                }
            }

            async fn shutdown(&mut self) -> std::io::Result<()> {
                match self {
                    $ty::Tcp(s) => s.shutdown().await,
                    $ty::Tls(s) => s.shutdown().await,
                }
            }
        }
    };
}

dispatch_read!(UpstreamStream);
dispatch_read!(UpstreamRead);
dispatch_write!(UpstreamStream);
dispatch_write!(UpstreamWrite);
