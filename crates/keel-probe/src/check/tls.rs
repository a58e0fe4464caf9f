//! The `tls` check (days until the served certificate expires, and whether it is trusted), and
//! the rustls configurations the HTTP check shares.
//!
//! Trust roots are the Mozilla set compiled in through `webpki-roots`, not the platform store:
//! the same answer on every host (a slim container without `ca-certificates` does not turn
//! every check red), nothing read from disk when the checker is built, and the same roots the
//! HTTP check uses, so a `tls` and an `http` monitor on one host never disagree about trust.
//! Services signed by a private CA are watched with `verify = false`.
//!
//! The handshake itself always completes (signatures are still checked, so the server proved
//! it holds the key); trust is judged afterwards with the WebPKI verifier. That way one
//! connection yields both the expiry date and the trust verdict, and an expired certificate
//! reads "certificate expired 3 days ago" rather than a bare handshake failure.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use keel_core::config::TlsCheck;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsConnector;

use super::{degraded, io_kind_words, tcp, CheckerError};
use crate::Outcome;

const SECS_PER_DAY: i64 = 86_400;

/// The Mozilla root set, compiled in.
pub(super) fn webpki_root_store() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A rustls client configuration on `provider`, verifying against `roots` or accepting any
/// certificate (while still checking handshake signatures).
pub(super) fn client_config(
    provider: &Arc<CryptoProvider>,
    roots: &Arc<RootCertStore>,
    verify: bool,
) -> Result<ClientConfig, CheckerError> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if verify {
        builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert::new(provider)))
            .with_no_client_auth()
    };
    Ok(config)
}

/// Accepts any certificate chain but still verifies the handshake signatures, so the
/// handshake is real and only the question of trust is skipped.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCert {
    fn new(provider: &CryptoProvider) -> Self {
        AcceptAnyCert {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What the `tls` check needs, built once.
pub(super) struct TlsProbe {
    connector: TlsConnector,
    verifier: Arc<WebPkiServerVerifier>,
}

impl TlsProbe {
    pub(super) fn new(
        provider: &Arc<CryptoProvider>,
        roots: &Arc<RootCertStore>,
    ) -> Result<Self, CheckerError> {
        let config = client_config(provider, roots, false)?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        Ok(TlsProbe {
            connector: TlsConnector::from(Arc::new(config)),
            verifier,
        })
    }

    pub(super) async fn run(&self, check: &TlsCheck, start: Instant) -> Outcome {
        let name = check.server_name.as_deref().unwrap_or(&check.host);
        let server_name = match ServerName::try_from(name.to_owned()) {
            Ok(n) => n,
            Err(e) => {
                return Outcome::down(
                    format!("invalid server name {name:?}: {e}"),
                    start.elapsed(),
                )
            }
        };
        let tcp = match tcp::connect(&check.host, check.port).await {
            Ok(s) => s,
            Err(reason) => return Outcome::down(reason, start.elapsed()),
        };
        let mut stream = match self.connector.connect(server_name.clone(), tcp).await {
            Ok(s) => s,
            Err(e) => return Outcome::down(handshake_failure(&e), start.elapsed()),
        };
        let latency = start.elapsed();

        let chain: Vec<CertificateDer<'static>> = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        // Say goodbye properly so the server logs a clean close; it does not wait for a reply.
        let _ = stream.shutdown().await;

        let Some((leaf, intermediates)) = chain.split_first() else {
            return Outcome::down("TLS: the server sent no certificate", latency);
        };
        let (not_before, not_after) = match validity(leaf) {
            Ok(v) => v,
            Err(e) => return Outcome::down(format!("TLS: unreadable certificate: {e}"), latency),
        };
        let now = unix_now();
        if now > not_after {
            let ago = (now - not_after) / SECS_PER_DAY;
            return Outcome::down(format!("certificate expired {}", days_ago(ago)), latency);
        }
        if now < not_before {
            let until = (not_before - now) / SECS_PER_DAY;
            return Outcome::down(
                format!("certificate is not valid yet ({})", days_from_now(until)),
                latency,
            );
        }
        if check.verify {
            if let Err(e) = self.verifier.verify_server_cert(
                leaf,
                intermediates,
                &server_name,
                &[],
                UnixTime::now(),
            ) {
                return Outcome::down(
                    format!("certificate not trusted: {}", trust_words(&e)),
                    latency,
                );
            }
        }
        let left = (not_after - now) / SECS_PER_DAY;
        let reason = format!("certificate expires {}", days_from_now(left));
        if left < i64::from(check.min_days) {
            degraded(reason, latency)
        } else {
            Outcome::up(reason, latency)
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The leaf's notBefore and notAfter, in Unix seconds.
fn validity(der: &CertificateDer<'_>) -> Result<(i64, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

fn days_from_now(days: i64) -> String {
    match days {
        0 => "in less than a day".into(),
        1 => "in 1 day".into(),
        n => format!("in {n} days"),
    }
}

fn days_ago(days: i64) -> String {
    match days {
        0 => "less than a day ago".into(),
        1 => "1 day ago".into(),
        n => format!("{n} days ago"),
    }
}

/// Why a chain is not trusted, in words.
fn trust_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "unknown issuer (self-signed, or an intermediate is missing)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "not valid for this host name".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not valid yet".into()
            }
            CertificateError::Revoked => "revoked".into(),
            CertificateError::BadSignature => "bad signature".into(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// The full reason for a TLS failure, shared by the `tls` and `http` checks.
pub(super) fn tls_error_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => {
            format!("certificate not trusted: {}", trust_words(e))
        }
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "TLS handshake failed: the server does not speak TLS".into()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("TLS handshake failed: the server sent alert {alert:?}")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The TLS error an I/O error carries, possibly wrapped more than once (`io::Error` hides
/// what it wraps from `source()`, so this looks inside by hand).
pub(super) fn tls_error_in(e: &std::io::Error) -> Option<&rustls::Error> {
    let inner = e.get_ref()?;
    inner.downcast_ref::<rustls::Error>().or_else(|| {
        inner
            .downcast_ref::<std::io::Error>()
            .and_then(tls_error_in)
    })
}

/// Words for a failed handshake: the TLS error when there is one, else what the socket said.
fn handshake_failure(e: &std::io::Error) -> String {
    if let Some(tls) = tls_error_in(e) {
        return tls_error_words(tls);
    }
    match io_kind_words(e.kind()) {
        Some(words) => format!("TLS handshake failed: {words}"),
        None => format!("TLS handshake failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_counts_read_naturally() {
        assert_eq!(days_from_now(0), "in less than a day");
        assert_eq!(days_from_now(1), "in 1 day");
        assert_eq!(days_from_now(6), "in 6 days");
        assert_eq!(days_ago(3), "3 days ago");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02]);
        assert!(validity(&junk).is_err());
        assert!(validity(&CertificateDer::from(Vec::new())).is_err());
    }
}
