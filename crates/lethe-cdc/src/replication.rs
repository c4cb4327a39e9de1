//! The replication connection: a PostgreSQL wire-protocol session in `replication=database`
//! mode that runs `START_REPLICATION ... LOGICAL` and then carries the CopyBoth stream.
//!
//! Message framing, authentication (cleartext, MD5, SCRAM-SHA-256) and error parsing come from
//! `postgres-protocol`, the protocol crate under `tokio-postgres`; `tokio-postgres` itself has
//! no replication mode, so the session setup is done here. Plain connections only (TCP or a
//! Unix socket); TLS is not supported yet.

use crate::error::{Error, ErrorKind, Result};
use crate::pgoutput::{Lsn, format_lsn};
use crate::rules::quote_ident;
use bytes::{Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::Host;

/// Either socket kind, boxed, so the session code is written once.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One replication session. Reads are cancel-safe ([`ReplicationConn::recv`] may be raced
/// against timers in a `select!`); writes are not and are awaited to completion.
pub(crate) struct ReplicationConn {
    io: Box<dyn Io>,
    read: BytesMut,
    write: BytesMut,
}

impl std::fmt::Debug for ReplicationConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationConn").finish_non_exhaustive()
    }
}

/// What a server-side error says, with its SQLSTATE for callers that branch on it.
pub(crate) fn server_error(context: &str, fields: ErrorFields<'_>) -> Error {
    let mut fields = fields;
    let mut code = String::new();
    let mut message = String::new();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            _ => {}
        }
    }
    // Authentication, pg_hba.conf, privilege and limit failures stay until the setup
    // changes: report them rather than retry them forever.
    let kind = match code.as_str() {
        "28000" | "28P01" | "42501" | "53400" => ErrorKind::Setting,
        _ => ErrorKind::Connection,
    };
    Error::new(kind, format!("{context}: {message} (SQLSTATE {code})"))
}

impl ReplicationConn {
    /// Connects to the first reachable host of `config` and authenticates.
    pub async fn connect(config: &tokio_postgres::Config) -> Result<ReplicationConn> {
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let ports = config.get_ports();
        let mut last = None;
        for (i, host) in config.get_hosts().iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match tokio::time::timeout(timeout, open(host, port)).await {
                Ok(Ok(io)) => {
                    let mut conn = ReplicationConn {
                        io,
                        read: BytesMut::with_capacity(64 * 1024),
                        write: BytesMut::with_capacity(1024),
                    };
                    conn.startup(config).await?;
                    return Ok(conn);
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    last = Some(Error::new(
                        ErrorKind::Connection,
                        format!("replication connection: timed out after {timeout:?}"),
                    ));
                }
            }
        }
        Err(last
            .unwrap_or_else(|| Error::new(ErrorKind::Config, "connection string names no host")))
    }

    async fn startup(&mut self, config: &tokio_postgres::Config) -> Result<()> {
        let user = config
            .get_user()
            .ok_or_else(|| Error::new(ErrorKind::Config, "connection string names no user"))?
            .to_owned();
        let dbname = config.get_dbname().unwrap_or(&user).to_owned();
        let params = [
            ("user", user.as_str()),
            ("database", dbname.as_str()),
            ("replication", "database"),
            ("application_name", "lethe-cdc"),
        ];
        frontend::startup_message(params.iter().copied(), &mut self.write).map_err(io_err)?;
        self.flush().await?;
        let password = config.get_password().map(<[u8]>::to_vec);
        let need_password = || {
            password.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    "the server asks for a password and the connection string has none",
                )
            })
        };
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            match self.next_message().await? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(&need_password()?, &mut self.write)
                        .map_err(io_err)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(user.as_bytes(), &need_password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.write).map_err(io_err)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut found = false;
                    while let Some(m) = fallible_next(&mut mechanisms)? {
                        found |= m == sasl::SCRAM_SHA_256;
                    }
                    if !found {
                        return Err(Error::new(
                            ErrorKind::Connection,
                            "the server offers no SASL mechanism this client supports",
                        ));
                    }
                    let s = sasl::ScramSha256::new(
                        &need_password()?,
                        sasl::ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s.message(),
                        &mut self.write,
                    )
                    .map_err(io_err)?;
                    self.flush().await?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::protocol("SASL continue before SASL start"))?;
                    s.update(body.data()).map_err(io_err)?;
                    frontend::sasl_response(s.message(), &mut self.write).map_err(io_err)?;
                    self.flush().await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::protocol("SASL final before SASL start"))?;
                    s.finish(body.data()).map_err(io_err)?;
                }
                Message::ErrorResponse(body) => {
                    return Err(server_error("replication connection", body.fields()));
                }
                Message::ReadyForQuery(_) => return Ok(()),
                // Parameter status, backend key data, notices: nothing to act on.
                _ => {}
            }
        }
    }

    /// Starts streaming the slot from `start` (0 means "where the slot's confirmed position
    /// is"), with the pgoutput options this crate decodes.
    pub async fn start_replication(
        &mut self,
        slot: &str,
        publication: &str,
        start: Lsn,
    ) -> Result<()> {
        // The option value is a list of identifiers inside a string literal: quote the
        // identifier, then double single quotes for the literal.
        let publications = quote_ident(publication).replace('\'', "''");
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (\"proto_version\" '1', \"publication_names\" \
             '{publications}', \"messages\" 'true')",
            quote_ident(slot),
            format_lsn(start)
        );
        frontend::query(&sql, &mut self.write).map_err(io_err)?;
        self.flush().await?;
        loop {
            if self.take_copy_both_response()? {
                return Ok(());
            }
            match self.try_parse()? {
                Some(Message::ErrorResponse(body)) => {
                    return Err(server_error("START_REPLICATION", body.fields()));
                }
                Some(_) => {}
                None => self.fill().await?,
            }
        }
    }

    /// The next CopyData payload; `None` when the server ended the stream. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.try_parse()? {
                Some(Message::CopyData(body)) => return Ok(Some(body.into_bytes())),
                Some(Message::CopyDone) => return Ok(None),
                Some(Message::ErrorResponse(body)) => {
                    return Err(server_error("replication stream", body.fields()));
                }
                Some(_) => {}
                None => self.fill().await?,
            }
        }
    }

    /// Sends a CopyData message (a standby status update).
    pub async fn send(&mut self, data: Bytes) -> Result<()> {
        frontend::CopyData::new(data)
            .map_err(io_err)?
            .write(&mut self.write);
        self.flush().await
    }

    /// Ends the session politely (best effort: the connection is dropped either way).
    pub async fn close(mut self) {
        frontend::copy_done(&mut self.write);
        frontend::terminate(&mut self.write);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
    }

    /// Whether a whole message is already buffered, so [`ReplicationConn::recv`] returns
    /// without waiting.
    pub fn has_buffered_message(&self) -> bool {
        if self.read.len() < 5 {
            return false;
        }
        let len = u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]);
        self.read.len() > len as usize
    }

    async fn next_message(&mut self) -> Result<Message> {
        loop {
            if let Some(m) = self.try_parse()? {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// `postgres-protocol` does not know CopyBothResponse (`W`), which only replication
    /// sessions see; consume it here.
    fn take_copy_both_response(&mut self) -> Result<bool> {
        if self.read.len() < 5 || self.read[0] != b'W' {
            return Ok(false);
        }
        let len = u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]);
        let total = len as usize + 1;
        if self.read.len() < total {
            return Ok(false);
        }
        let _ = self.read.split_to(total);
        Ok(true)
    }

    fn try_parse(&mut self) -> Result<Option<Message>> {
        Message::parse(&mut self.read).map_err(|e| {
            Error::new(ErrorKind::Protocol, "malformed message from PostgreSQL").with_source(e)
        })
    }

    /// Reads more bytes; an error at end of stream.
    async fn fill(&mut self) -> Result<()> {
        let n = self.io.read_buf(&mut self.read).await.map_err(|e| {
            Error::new(ErrorKind::Connection, "replication connection lost").with_source(e)
        })?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Connection,
                "replication connection closed by the server",
            ));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let buf = self.write.split();
        self.io.write_all(&buf).await.map_err(|e| {
            Error::new(ErrorKind::Connection, "replication connection lost").with_source(e)
        })?;
        self.io.flush().await.map_err(|e| {
            Error::new(ErrorKind::Connection, "replication connection lost").with_source(e)
        })
    }
}

async fn open(host: &Host, port: u16) -> Result<Box<dyn Io>> {
    let err = |e: std::io::Error| {
        Error::new(
            ErrorKind::Connection,
            format!("cannot connect to PostgreSQL at {host:?} port {port}"),
        )
        .with_source(e)
    };
    match host {
        Host::Tcp(name) => {
            let s = tokio::net::TcpStream::connect((name.as_str(), port))
                .await
                .map_err(err)?;
            // Status updates are tiny and latency-sensitive.
            let _ = s.set_nodelay(true);
            Ok(Box::new(s))
        }
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            let s = tokio::net::UnixStream::connect(path).await.map_err(err)?;
            Ok(Box::new(s))
        }
    }
}

fn fallible_next<'a>(
    m: &mut postgres_protocol::message::backend::SaslMechanisms<'a>,
) -> Result<Option<&'a str>> {
    m.next().map_err(io_err)
}

fn io_err(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Protocol, "replication protocol").with_source(e)
}
