//! `rediss://`: TLS to Redis with rustls. The options travel in the URL's query, so the same
//! string works in the config file and in `restore --to`:
//! `rediss://user:pass@cache:6380/?ca_file=/etc/redis/ca.crt&cert_file=…&key_file=…`.
//!
//! Without `ca_file` the system trust store is used. `cert_file` + `key_file` present a client
//! certificate, which a stock Redis TLS port demands (`tls-auth-clients yes` is its default).
//! There is deliberately no "skip verification" switch: a backup tool that would hand a
//! snapshot, or a replay of every key, to whoever answers is worse than one that refuses.

use crate::error::{Error, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The query parameters a `rediss://` URL may carry.
pub const PARAMS: [&str; 3] = ["ca_file", "cert_file", "key_file"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOpts {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl TlsOpts {
    /// Read the options from the URL's query; unknown parameters and a half client
    /// identity (certificate without key, or the reverse) are refused here, at parse time.
    pub fn from_url(u: &url::Url) -> std::result::Result<TlsOpts, String> {
        let mut o = TlsOpts::default();
        for (k, v) in u.query_pairs() {
            let slot = match k.as_ref() {
                "ca_file" => &mut o.ca_file,
                "cert_file" => &mut o.cert_file,
                "key_file" => &mut o.key_file,
                other => {
                    return Err(format!(
                        "unknown URL parameter {other:?}: a rediss:// URL takes {}",
                        PARAMS.join(", ")
                    ))
                }
            };
            if v.is_empty() {
                return Err(format!("URL parameter {k} is empty"));
            }
            *slot = Some(PathBuf::from(v.as_ref()));
        }
        if o.cert_file.is_some() != o.key_file.is_some() {
            return Err(
                "cert_file and key_file go together: a client certificate needs its key".into(),
            );
        }
        Ok(o)
    }

    fn config(&self) -> Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(p) => {
                for c in read_certs(p)? {
                    roots.add(c).map_err(|e| bad_file(p, "ca_file", e))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        Error::failed("no trusted CA certificates found on this system")
                            .hint("add ?ca_file=/path/ca.crt to the rediss:// URL"),
                    );
                }
            }
        }
        let b = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::failed(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => {
                let key =
                    PrivateKeyDer::from_pem_file(k).map_err(|e| bad_file(k, "key_file", e))?;
                b.with_client_auth_cert(read_certs(c)?, key)
                    .map_err(|e| bad_file(c, "cert_file", e))
            }
            _ => Ok(b.with_no_client_auth()),
        }
    }

    /// Handshake over an open TCP connection; the server's name is checked against its
    /// certificate (a DNS name, or an IP address SAN when the URL's host is an address).
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
        redacted: &str,
    ) -> Result<TlsStream<TcpStream>> {
        let name =
            ServerName::try_from(host.trim_matches(['[', ']']).to_string()).map_err(|e| {
                Error::usage(format!(
                    "{redacted}: {host:?} is not a TLS server name: {e}"
                ))
            })?;
        TlsConnector::from(Arc::new(self.config()?))
            .connect(name, tcp)
            .await
            .map_err(|e| {
                Error::failed(format!(
                    "TLS handshake with Redis at {redacted} failed: {e}"
                ))
                .hint(
                    "check that the port speaks TLS, that ca_file holds the CA that signed the \
                     server's certificate, and that the certificate names this host; a server \
                     with tls-auth-clients also wants cert_file and key_file",
                )
            })
    }
}

fn read_certs(p: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(p)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad_file(p, "certificate", e))?;
    if certs.is_empty() {
        return Err(bad_file(p, "certificate", "no PEM certificate in it"));
    }
    Ok(certs)
}

fn bad_file(p: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::usage(format!("Redis TLS {what} {}: {e}", p.display()))
        .hint("give a readable PEM file in the rediss:// URL's ca_file / cert_file / key_file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_the_query() {
        let u = url::Url::parse(
            "rediss://c:6380/?ca_file=/x/ca.crt&cert_file=/x/c.crt&key_file=/x/c.key",
        )
        .unwrap();
        let o = TlsOpts::from_url(&u).unwrap();
        assert_eq!(o.ca_file.as_deref(), Some(Path::new("/x/ca.crt")));
        assert_eq!(o.key_file.as_deref(), Some(Path::new("/x/c.key")));
        let bad = url::Url::parse("rediss://c:6380/?insecure=1").unwrap();
        assert!(TlsOpts::from_url(&bad).unwrap_err().contains("insecure"));
        let half = url::Url::parse("rediss://c:6380/?cert_file=/x/c.crt").unwrap();
        assert!(TlsOpts::from_url(&half).unwrap_err().contains("key_file"));
    }
}
