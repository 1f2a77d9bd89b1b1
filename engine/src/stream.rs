//! The client connection's byte stream, whatever carries it.
//!
//! Connection code (`conn`) and handlers read and write a [`ClientStream`], never a socket
//! type: plain TCP today; a TLS session over TCP and a QUIC stream are further kinds, each a
//! variant here with its own answers to the questions whose answers differ by kind:
//!
//! - **Parking** ([`ClientStream::parking`]): how a connection waits for its next request once
//!   its hot window has passed. A plain TCP connection keeps no state between requests, so it
//!   is handed to the idle set as a bare descriptor and its task ends ([`Parking::Descriptor`]).
//!   A stream that carries session state (a TLS session's keys and sequence numbers) cannot be
//!   reduced to a descriptor: it waits in its own task, holding no buffer
//!   ([`Parking::InTask`]).
//! - **Zero-copy sends** ([`ClientStream::sendfile_socket`]): the socket a file may be sent to
//!   with `sendfile`, when bytes written to the socket reach the client as they are (plain
//!   TCP; kernel TLS would qualify, user-space TLS does not: its files go through the stream).
//! - **Tunnels** ([`ClientStream::into_tcp`]): an upgraded connection (WebSocket) is relayed
//!   byte for byte between two sockets.
//!
//! The variants dispatch statically: a match per call, no allocation, no virtual call.

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};

/// How an idle connection of a kind waits for its next request (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parking {
    /// Handed to the idle set as a descriptor; the connection's task ends.
    Descriptor,
    /// Waits for readiness in its own task, holding no buffer.
    InTask,
}

/// A client connection's stream.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Tcp(TcpStream),
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
        }
    }

    /// The socket a file may be sent to in the kernel (`sendfile`), when what is written to
    /// it reaches the client unchanged.
    pub fn sendfile_socket(&self) -> Option<RawFd> {
        match self {
            ClientStream::Tcp(s) => Some(s.as_raw_fd()),
        }
    }

    /// The TCP socket underneath, for a tunnel or for parking; the stream back when it has
    /// state of its own that a socket alone would lose.
    pub fn into_tcp(self) -> Result<TcpStream, ClientStream> {
        match self {
            ClientStream::Tcp(s) => Ok(s),
        }
    }

    /// The client's address, asked of the socket.
    pub fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            ClientStream::Tcp(s) => s.peer_addr(),
        }
    }

    /// Wait until the stream can be read (see `TcpStream::readable`).
    pub fn readable(&self, relaxed: bool) -> impl Future<Output = std::io::Result<()>> + '_ {
        match self {
            ClientStream::Tcp(s) => s.readable(relaxed),
        }
    }

    /// Wait until the stream can be written.
    pub fn writable(&self, relaxed: bool) -> impl Future<Output = std::io::Result<()>> + '_ {
        match self {
            ClientStream::Tcp(s) => s.writable(relaxed),
        }
    }
}

impl AsyncReadRent for ClientStream {
    #[inline]
    fn read<T: IoBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        match self {
            ClientStream::Tcp(s) => s.read(buf),
        }
    }

    #[inline]
    fn readv<T: IoVecBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        match self {
            ClientStream::Tcp(s) => s.readv(buf),
        }
    }
}

impl CancelableAsyncReadRent for ClientStream {
    #[inline]
    fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> impl Future<Output = BufResult<usize, T>> {
        match self {
            ClientStream::Tcp(s) => s.cancelable_read(buf, c),
        }
    }

    #[inline]
    fn cancelable_readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> impl Future<Output = BufResult<usize, T>> {
        match self {
            ClientStream::Tcp(s) => s.cancelable_readv(buf, c),
        }
    }
}

impl AsyncWriteRent for ClientStream {
    #[inline]
    fn write<T: IoBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        match self {
            ClientStream::Tcp(s) => s.write(buf),
        }
    }

    #[inline]
    fn writev<T: IoVecBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        match self {
            ClientStream::Tcp(s) => s.writev(buf),
        }
    }

    #[inline]
    fn flush(&mut self) -> impl Future<Output = std::io::Result<()>> {
        match self {
            ClientStream::Tcp(s) => s.flush(),
        }
    }

    #[inline]
    fn shutdown(&mut self) -> impl Future<Output = std::io::Result<()>> {
        match self {
            ClientStream::Tcp(s) => s.shutdown(),
        }
    }
}
