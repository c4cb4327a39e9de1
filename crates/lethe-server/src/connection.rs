//! One client connection: buffered reads of requests and buffered writes of replies, encoded in
//! the protocol the session chose, over plain TCP or TLS. Per-client state lives in
//! [`crate::cmd::Session`].
//!
//! Requests are parsed incrementally ([`crate::request`]): each read hands only the new bytes to
//! the parser, and big arguments are read straight into their own exactly sized buffer. The input
//! buffer goes back to its small initial size once a large request is served, so an idle client
//! does not keep the memory of its largest request (Redis shrinks its query buffers likewise).
//!
//! Replies are encoded straight into the connection's output buffer, without waiting; the
//! buffer goes out when the connection runs out of complete requests to serve (so a pipeline's
//! replies leave in one write) or grows past [`FLUSH_AT`].

use crate::frame::{Frame, Protocol};
use crate::request::{ParseLimits, RequestParser};
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Output buffered beyond this many bytes is sent before serving the next request, so a long
/// pipeline of large replies does not pile up in memory.
pub const FLUSH_AT: usize = 64 * 1024;
/// The input buffer's size between requests; also the least room offered to each read.
const READ_BUFFER: usize = 16 * 1024;
/// An input buffer grown past this (by a large request) is replaced once the connection has
/// nothing buffered.
const SHRINK_ABOVE: usize = 64 * 1024;

/// A byte stream a client connection runs over: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What reading a request produced.
#[derive(Debug)]
pub enum Request {
    /// A command's arguments, name first (never empty).
    Command(Vec<Bytes>),
    /// The client closed the connection cleanly between requests.
    Closed,
    /// Unparseable input; the text (after `-ERR `) is Redis's, byte for byte, sent to the
    /// client before closing.
    ProtocolError(Vec<u8>),
}

/// A client connection.
pub struct Connection {
    stream: Box<dyn Stream>,
    buffer: BytesMut,
    parser: RequestParser,
    /// Set once the parser failed: the connection only closes after that.
    failed: bool,
    /// Encoded replies not yet sent; `out[sent..]` is what is left to write.
    out: Vec<u8>,
    sent: usize,
    last_read: Instant,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("buffered", &self.buffer.len())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Wraps an accepted (and, for TLS, handshaken) stream.
    pub fn new(stream: impl Stream + 'static) -> Connection {
        Connection {
            stream: Box::new(stream),
            buffer: BytesMut::with_capacity(READ_BUFFER),
            parser: RequestParser::new(),
            failed: false,
            out: Vec::with_capacity(READ_BUFFER),
            sent: 0,
            last_read: Instant::now(),
        }
    }

    /// The next request if the input already holds a whole one (or unparseable input), without
    /// waiting or sending anything.
    pub fn try_read_request(&mut self, limits: ParseLimits) -> Option<Request> {
        if self.failed {
            return None;
        }
        loop {
            match self.parser.parse(&mut self.buffer, limits) {
                Ok(Some(args)) => {
                    if self.buffer.is_empty() && self.buffer.capacity() > SHRINK_ABOVE {
                        self.buffer = BytesMut::with_capacity(READ_BUFFER);
                    }
                    if !args.is_empty() {
                        return Some(Request::Command(args));
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Request::ProtocolError(e.text().to_vec()));
                }
            }
        }
    }

    /// Reads the next non-empty request within `limits`, waiting for more input as needed.
    /// Cancel-safe: bytes read and bytes sent are kept in the connection.
    pub async fn read_request(&mut self, limits: ParseLimits) -> io::Result<Request> {
        loop {
            if let Some(request) = self.try_read_request(limits) {
                return Ok(request);
            }
            // Replies to pipelined requests go out before waiting for more input.
            self.flush().await?;
            let n = match self.parser.big_arg() {
                // A big argument's bytes go to its own buffer, and no further: what follows it
                // belongs in the input buffer.
                Some(big) => {
                    big.reserve();
                    let wanted = big.wanted() as u64;
                    (&mut self.stream)
                        .take(wanted)
                        .read_buf(big.buffer())
                        .await?
                }
                None => {
                    if self.buffer.capacity() - self.buffer.len() < READ_BUFFER / 4 {
                        self.buffer.reserve(READ_BUFFER);
                    }
                    self.stream.read_buf(&mut self.buffer).await?
                }
            };
            self.last_read = Instant::now();
            if n == 0 {
                return if self.buffer.is_empty() && self.parser.is_idle() {
                    Ok(Request::Closed)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "connection closed mid-request",
                    ))
                };
            }
        }
    }

    /// Queues a reply encoded in `protocol`; [`Self::flush`] or the next read sends it.
    pub fn queue_frame(&mut self, frame: &Frame, protocol: Protocol) {
        frame.encode(protocol, &mut self.out);
    }

    /// Queues bytes as they are (a refusal line written before any request).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Queues an error reply whose text is raw bytes (`-ERR <text>`), as Redis sends protocol
    /// errors quoting the client's input; CR and LF become spaces so the reply stays one line.
    pub fn queue_raw_error(&mut self, text: &[u8]) {
        self.out.extend_from_slice(b"-ERR ");
        self.out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.out.extend_from_slice(b"\r\n");
    }

    /// Queues a reply and, past [`FLUSH_AT`] bytes queued, sends what is queued.
    pub async fn write_frame(&mut self, frame: &Frame, protocol: Protocol) -> io::Result<()> {
        self.queue_frame(frame, protocol);
        if self.queued() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Bytes queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Bytes of input held: the input buffer's capacity (what an idle client costs).
    pub fn input_capacity(&self) -> usize {
        self.buffer.capacity()
    }

    /// When bytes last arrived, also in the middle of a request: a client slowly sending a
    /// large request is not idle (Redis's `lastinteraction`).
    pub fn last_read(&self) -> Instant {
        self.last_read
    }

    /// Sends everything queued. Cancel-safe: what was sent stays sent.
    pub async fn flush(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            let n = self.stream.write(&self.out[self.sent..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent += n;
        }
        if !self.out.is_empty() {
            self.stream.flush().await?;
        }
        self.out.clear();
        self.sent = 0;
        // A huge reply's buffer is not kept for the connection's lifetime.
        if self.out.capacity() > 4 * FLUSH_AT {
            self.out = Vec::with_capacity(READ_BUFFER);
        }
        Ok(())
    }

    /// Sends what is queued and closes the write side (TLS: with a close_notify).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.stream.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn request(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[tokio::test]
    async fn big_arguments_arrive_whole_and_the_buffer_shrinks_after() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut conn = Connection::new(server);
        let big = vec![b'v'; 3 << 20];
        let mut wire = request(&[b"SET", b"k", &big]);
        // Many mid-sized arguments, which do go through the input buffer.
        let mid = vec![b'm'; 30_000];
        let many: Vec<&[u8]> = std::iter::once(&b"MSET"[..])
            .chain(std::iter::repeat_n(&mid[..], 20))
            .collect();
        wire.extend_from_slice(&request(&many));
        wire.extend_from_slice(&request(&[b"PING"]));
        let writer = tokio::spawn(async move {
            let mut client = client;
            client.write_all(&wire).await.unwrap();
            client
        });
        let limits = ParseLimits::default();
        let Request::Command(args) = conn.read_request(limits).await.unwrap() else {
            panic!("a command")
        };
        assert_eq!(args[2].len(), big.len());
        assert!(args[2].iter().all(|&b| b == b'v'));
        let Request::Command(args) = conn.read_request(limits).await.unwrap() else {
            panic!("a command")
        };
        assert_eq!(args.len(), 21);
        let Request::Command(args) = conn.read_request(limits).await.unwrap() else {
            panic!("a command")
        };
        assert_eq!(args, vec![Bytes::from_static(b"PING")]);
        assert!(
            conn.input_capacity() <= SHRINK_ABOVE,
            "an idle connection keeps {} bytes",
            conn.input_capacity()
        );
        drop(writer.await.unwrap());
        assert!(matches!(
            conn.read_request(limits).await.unwrap(),
            Request::Closed
        ));
    }

    #[tokio::test]
    async fn protocol_errors_are_sent_raw_and_end_the_connection() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(server);
        client.write_all(b"*1\r\n\xff\r\n").await.unwrap();
        let Request::ProtocolError(text) = conn.read_request(ParseLimits::default()).await.unwrap()
        else {
            panic!("a protocol error")
        };
        conn.queue_raw_error(&text);
        conn.shutdown().await.unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"-ERR Protocol error: expected '$', got '\xff'\r\n");
        assert!(conn.try_read_request(ParseLimits::default()).is_none());
    }
}
