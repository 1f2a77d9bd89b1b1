//! The client connection's byte stream, whatever carries it.
//!
//! Connection code (`conn`) and handlers read and write a [`ClientStream`], never a socket
//! type: plain TCP, a TLS session over TCP (`tls.rs`), or one HTTP/3 request stream of a
//! QUIC connection (`h3/pipe.rs`), which carries one request and never parks. Each is a variant here with its own answers to the questions whose answers differ by
//! kind:
//!
//! - **Parking** ([`ClientStream::parking`]): how a connection waits for its next request once
//!   its hot window has passed. A plain TCP connection keeps no state between requests, so it
//!   is handed to the idle set as a bare descriptor and its task ends ([`Parking::Descriptor`]).
//!   A stream that carries session state (a TLS session's keys and sequence numbers) is parked
//!   with it: the descriptor and the session wait in the idle set, and its task ends too
//!   ([`Parking::Session`]); where parking is unavailable it waits in its own task, holding no
//!   buffer.
//! - **Zero-copy sends** ([`ClientStream::sendfile_socket`]): the socket a file may be sent to
//!   with `sendfile`, when bytes written to the socket reach the client as they are (plain
//!   TCP; kernel TLS would qualify, user-space TLS does not: its files go through the stream).
//! - **Tunnels** ([`ClientStream::into_tcp`]): an upgraded connection (WebSocket) is relayed
//!   byte for byte between two sockets; over TLS it is relayed through the stream's halves.
//! - **Splitting** ([`ClientStream::into_split`]): the proxy sends a request body while it
//!   reads the response. A TCP socket splits into its halves; a TLS stream's halves share the
//!   session behind an `Rc<RefCell>` that no step borrows across an `.await` (see `tls.rs`),
//!   so no kind needs monoio's unchecked `Split` promise.
//!
//! The variants dispatch statically: a match per call, no allocation, no virtual call.

use crate::h3::QuicStream;
use crate::tls::{TlsRead, TlsStream, TlsWrite};
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent};
use monoio::io::{OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use monoio::BufResult;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};

/// How an idle connection of a kind waits for its next request (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parking {
    /// Handed to the idle set as a descriptor; the connection's task ends.
    Descriptor,
    /// Handed to the idle set as a descriptor and the session state it carries (a TLS
    /// session); the task ends. Where it cannot be parked, it waits for readiness in its own
    /// task, holding no buffer.
    Session,
    /// Never parked (an HTTP/3 request stream carries one request; its QUIC connection waits
    /// for the next stream).
    InTask,
}

/// A client connection's stream.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// A TLS session over TCP, its handshake done.
    Tls(TlsStream),
    /// One HTTP/3 request stream (see `h3/pipe.rs`).
    Quic(QuicStream),
}

impl From<TcpStream> for ClientStream {
    fn from(s: TcpStream) -> ClientStream {
        ClientStream::Tcp(s)
    }
}

impl ClientStream {
    /// How this kind of stream waits between requests.
    pub fn parking(&self) -> Parking {
        match self {
            ClientStream::Tcp(_) => Parking::Descriptor,
            ClientStream::Tls(_) => Parking::Session,
            ClientStream::Quic(_) => Parking::InTask,
        }
    }

    /// The socket a file may be sent to in the kernel (`sendfile`), when what is written to
    /// it reaches the client unchanged.
    pub fn sendfile_socket(&self) -> Option<RawFd> {
        match self {
            ClientStream::Tcp(s) => Some(s.as_raw_fd()),
            ClientStream::Tls(_) | ClientStream::Quic(_) => None,
        }
    }

    /// The TCP socket underneath, for a tunnel or for parking; the stream back when it has
    /// state of its own that a socket alone would lose.
    pub fn into_tcp(self) -> Result<TcpStream, ClientStream> {
        match self {
            ClientStream::Tcp(s) => Ok(s),
            s @ (ClientStream::Tls(_) | ClientStream::Quic(_)) => Err(s),
        }
    }

    /// The client's address, asked of the socket.
    pub fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            ClientStream::Tcp(s) => s.peer_addr(),
            ClientStream::Tls(s) => s.tcp().peer_addr(),
            ClientStream::Quic(s) => Ok(s.peer_addr()),
        }
    }

    /// The TLS session, on a TLS connection.
    pub fn tls(&self) -> Option<std::cell::Ref<'_, crate::tls::Session>> {
        match self {
            ClientStream::Tcp(_) | ClientStream::Quic(_) => None,
            ClientStream::Tls(s) => Some(s.session()),
        }
    }

    /// Whether what the client sends is encrypted (TLS, QUIC): its requests' scheme is `https`.
    pub fn encrypted(&self) -> bool {
        !matches!(self, ClientStream::Tcp(_))
    }

    /// On an encrypted connection (TLS, QUIC), the verified client certificate's identity if
    /// any: `Some` means `https`, whatever is inside.
    pub fn tls_identity(&self) -> Option<Option<String>> {
        match self {
            ClientStream::Tcp(_) => None,
            ClientStream::Tls(s) => Some(s.session().client_subject.clone()),
            ClientStream::Quic(_) => Some(None),
        }
    }

    /// A read half and a write half that may be used at once (see the module docs).
    pub fn into_split(self) -> (ClientRead, ClientWrite) {
        match self {
            ClientStream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ClientRead::Tcp(r), ClientWrite::Tcp(w))
            }
            ClientStream::Tls(s) => {
                let (r, w) = s.into_split();
                (ClientRead::Tls(r), ClientWrite::Tls(w))
            }
            ClientStream::Quic(s) => (ClientRead::Quic(s.clone()), ClientWrite::Quic(s)),
        }
    }

    /// Wait until the stream can be read (see `TcpStream::readable`).
    pub async fn readable(&self, relaxed: bool) -> std::io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.readable(relaxed).await,
            ClientStream::Tls(s) => s.readable(relaxed).await,
            ClientStream::Quic(s) => s.readable().await,
        }
    }

    /// Wait until the stream can be written.
    pub fn writable(&self, relaxed: bool) -> impl Future<Output = std::io::Result<()>> + '_ {
        let tcp = match self {
            ClientStream::Tcp(s) => Some(s),
            ClientStream::Tls(s) => Some(s.tcp()),
            // Writes to a request stream wait in `write` for room in its buffer.
            ClientStream::Quic(_) => None,
        };
        async move {
            match tcp {
                Some(s) => s.writable(relaxed).await,
                None => Ok(()),
            }
        }
    }
}

impl AsyncReadRent for ClientStream {
    #[inline]
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Tcp(s) => s.read(buf).await,
            ClientStream::Tls(s) => s.read(buf).await,
            ClientStream::Quic(s) => s.read(buf).await,
        }
    }

    #[inline]
    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Tcp(s) => s.readv(buf).await,
            ClientStream::Tls(_) | ClientStream::Quic(_) => (Err(unsupported_readv()), buf),
        }
    }
}

impl CancelableAsyncReadRent for ClientStream {
    #[inline]
    async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        match self {
            ClientStream::Tcp(s) => s.cancelable_read(buf, c).await,
            ClientStream::Tls(s) => s.cancelable_read(buf, c).await,
            // A request stream's read cannot be tied to a canceller: answered as cancelled at
            // once, so the proxy's watch for a departing client stands aside (a client that
            // resets its stream is seen by the bridge instead).
            ClientStream::Quic(_) => (Err(std::io::Error::from_raw_os_error(125)), buf),
        }
    }

    #[inline]
    async fn cancelable_readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        match self {
            ClientStream::Tcp(s) => s.cancelable_readv(buf, c).await,
            ClientStream::Tls(_) | ClientStream::Quic(_) => (Err(unsupported_readv()), buf),
        }
    }
}

impl AsyncWriteRent for ClientStream {
    #[inline]
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Tcp(s) => s.write(buf).await,
            ClientStream::Tls(s) => s.write(buf).await,
            ClientStream::Quic(s) => s.write(buf).await,
        }
    }

    #[inline]
    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Tcp(s) => s.writev(buf).await,
            ClientStream::Tls(s) => s.writev(buf).await,
            ClientStream::Quic(s) => s.writev(buf).await,
        }
    }

    #[inline]
    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.flush().await,
            ClientStream::Tls(s) => s.flush().await,
            ClientStream::Quic(_) => Ok(()),
        }
    }

    #[inline]
    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.shutdown().await,
            ClientStream::Tls(s) => s.shutdown().await,
            ClientStream::Quic(s) => {
                s.shutdown();
                Ok(())
            }
        }
    }
}

/// No connection code reads into vectored buffers; a TLS stream does not offer it.
fn unsupported_readv() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "vectored reads from a TLS stream",
    )
}

/// Two halves given to [`ClientRead::reunite`] that are not halves of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPaired;

/// The read half of a split [`ClientStream`].
pub enum ClientRead {
    Tcp(OwnedReadHalf<TcpStream>),
    Tls(TlsRead),
    Quic(QuicStream),
}

/// The write half of a split [`ClientStream`].
pub enum ClientWrite {
    Tcp(OwnedWriteHalf<TcpStream>),
    Tls(TlsWrite),
    Quic(QuicStream),
}

impl ClientRead {
    /// The stream back from its two halves; `Err` when they are not halves of one stream.
    pub fn reunite(self, w: ClientWrite) -> Result<ClientStream, NotPaired> {
        match (self, w) {
            (ClientRead::Tcp(r), ClientWrite::Tcp(w)) => {
                r.reunite(w).map(ClientStream::Tcp).map_err(|_| NotPaired)
            }
            (ClientRead::Tls(r), ClientWrite::Tls(w)) => {
                r.reunite(w).map(ClientStream::Tls).map_err(|_| NotPaired)
            }
            (ClientRead::Quic(r), ClientWrite::Quic(w)) if r.same(&w) => Ok(ClientStream::Quic(r)),
            _ => Err(NotPaired),
        }
    }
}

impl AsyncReadRent for ClientRead {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientRead::Tcp(s) => s.read(buf).await,
            ClientRead::Tls(s) => s.read(buf).await,
            ClientRead::Quic(s) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientRead::Tcp(s) => s.readv(buf).await,
            ClientRead::Tls(_) | ClientRead::Quic(_) => (Err(unsupported_readv()), buf),
        }
    }
}

impl CancelableAsyncReadRent for ClientRead {
    async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        match self {
            ClientRead::Tcp(s) => s.cancelable_read(buf, c).await,
            ClientRead::Tls(s) => s.cancelable_read(buf, c).await,
            ClientRead::Quic(_) => (Err(std::io::Error::from_raw_os_error(125)), buf),
        }
    }

    async fn cancelable_readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        match self {
            ClientRead::Tcp(s) => s.cancelable_readv(buf, c).await,
            ClientRead::Tls(_) | ClientRead::Quic(_) => (Err(unsupported_readv()), buf),
        }
    }
}

impl AsyncWriteRent for ClientWrite {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientWrite::Tcp(s) => s.write(buf).await,
            ClientWrite::Tls(s) => s.write(buf).await,
            ClientWrite::Quic(s) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientWrite::Tcp(s) => s.writev(buf).await,
            ClientWrite::Tls(s) => s.writev(buf).await,
            ClientWrite::Quic(s) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ClientWrite::Tcp(s) => s.flush().await,
            ClientWrite::Tls(s) => s.flush().await,
            ClientWrite::Quic(_) => Ok(()),
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            ClientWrite::Tcp(s) => s.shutdown().await,
            ClientWrite::Tls(s) => s.shutdown().await,
            ClientWrite::Quic(s) => {
                s.shutdown();
                Ok(())
            }
        }
    }
}
