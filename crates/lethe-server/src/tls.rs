//! TLS for the RESP and HTTP ports (rustls, with the ring provider): loading a certificate
//! chain and private key from PEM files into the acceptor both ports use.
//!
//! With TLS on, both ports speak only TLS (as Redis's `tls-port` with `port 0`); clients verify
//! the server's certificate as usual. Client certificates are not requested.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Why TLS could not be set up.
#[derive(Debug)]
pub struct TlsError {
    message: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

fn fail(message: String) -> TlsError {
    TlsError { message }
}

/// An acceptor serving the certificate chain in `cert` (PEM, leaf first) with the private key
/// in `key` (PEM: PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(fail(format!("{}: no certificate found", cert.display())));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| fail(format!("{}: {e}", key.display())))?;
    acceptor_from(chain, key)
}

/// An acceptor from an already parsed chain and key.
pub fn acceptor_from(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| fail(format!("certificate and key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
