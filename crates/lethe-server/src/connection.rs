//! One client connection: buffered reads of requests and buffered writes of replies, encoded in
//! the protocol the session chose. Per-client state lives in [`crate::cmd::Session`].
//!
//! Replies are encoded straight into the connection's output buffer, without waiting; the
//! buffer goes out when the connection runs out of complete requests to serve (so a pipeline's
//! replies leave in one write) or grows past [`FLUSH_AT`].

use crate::frame::{Frame, ParseError, ParseLimits, Protocol};
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Output buffered beyond this many bytes is sent before serving the next request, so a long
/// pipeline of large replies does not pile up in memory.
pub const FLUSH_AT: usize = 64 * 1024;

/// What reading a request produced.
#[derive(Debug)]
pub enum Request {
    /// A command's arguments, name first (never empty).
    Command(Vec<Bytes>),
    /// The client closed the connection cleanly between requests.
    Closed,
    /// Unparseable input; the text is Redis's, sent to the client before closing.
    ProtocolError(String),
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
    /// Encoded replies not yet sent; `out[sent..]` is what is left to write.
    out: Vec<u8>,
    sent: usize,
    last_read: Instant,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(socket: TcpStream) -> Connection {
        Connection {
            stream: socket,
            buffer: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(16 * 1024),
            sent: 0,
            last_read: Instant::now(),
        }
    }

    /// The next request if the input already holds a whole one (or unparseable input), without
    /// waiting or sending anything.
    pub fn try_read_request(&mut self, limits: ParseLimits) -> Option<Request> {
        loop {
            match Frame::parse_request_with(&self.buffer, limits) {
                Ok((args, used)) => {
                    self.buffer.advance(used);
                    if !args.is_empty() {
                        return Some(Request::Command(args));
                    }
                }
                Err(ParseError::Incomplete) => return None,
                Err(e) => return Some(Request::ProtocolError(e.to_string())),
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
            let n = self.stream.read_buf(&mut self.buffer).await?;
            self.last_read = Instant::now();
            if n == 0 {
                return if self.buffer.is_empty() {
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
        self.out.clear();
        self.sent = 0;
        // A huge reply's buffer is not kept for the connection's lifetime.
        if self.out.capacity() > 4 * FLUSH_AT {
            self.out = Vec::with_capacity(16 * 1024);
        }
        Ok(())
    }
}
