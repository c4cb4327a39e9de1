//! One client connection: buffered reads of requests and buffered writes of replies, encoded in
//! the protocol the session chose. Per-client state lives in [`crate::cmd::Session`].

use crate::frame::{Frame, ParseError, ParseLimits, Protocol};
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

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
    stream: BufWriter<TcpStream>,
    buffer: BytesMut,
    out: Vec<u8>,
    last_read: Instant,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(socket: TcpStream) -> Connection {
        Connection {
            stream: BufWriter::new(socket),
            buffer: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(1024),
            last_read: Instant::now(),
        }
    }

    /// Reads the next non-empty request within `limits`, waiting for more input as needed.
    pub async fn read_request(&mut self, limits: ParseLimits) -> io::Result<Request> {
        loop {
            match Frame::parse_request_with(&self.buffer, limits) {
                Ok((args, used)) => {
                    self.buffer.advance(used);
                    if !args.is_empty() {
                        return Ok(Request::Command(args));
                    }
                    continue;
                }
                Err(ParseError::Incomplete) => {}
                Err(e) => return Ok(Request::ProtocolError(e.to_string())),
            }
            // Replies to pipelined requests go out before waiting for more input.
            self.flush().await?;
            let n = self.stream.get_mut().read_buf(&mut self.buffer).await?;
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
    pub async fn write_frame(&mut self, frame: &Frame, protocol: Protocol) -> io::Result<()> {
        self.out.clear();
        frame.encode(protocol, &mut self.out);
        self.stream.write_all(&self.out).await
    }

    /// When bytes last arrived, also in the middle of a request: a client slowly sending a
    /// large request is not idle (Redis's `lastinteraction`).
    pub fn last_read(&self) -> Instant {
        self.last_read
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }
}
