//! TLS for the Drone client: rustls on the `ring` provider.
//!
//! The configuration is built here and handed to reqwest ready-made, so the
//! process-wide default provider is neither needed nor touched (another crate
//! in the same binary may install its own).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::Error;

/// An HTTP client builder for a Drone endpoint (the server or a plugin):
/// TLS as [`client_config`] sets it up, and no redirects (a redirect would
/// carry the token or the signed request elsewhere).
pub(crate) fn http_client(skip_verify: bool) -> Result<reqwest::ClientBuilder, Error> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(skip_verify)?)
        .redirect(reqwest::redirect::Policy::none()))
}

/// A client configuration that verifies the server against the platform's
/// trust store, or, with `skip_verify` (`DRONE_RPC_SKIP_VERIFY`), accepts any
/// certificate while still checking the handshake signature.
pub(crate) fn client_config(skip_verify: bool) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .dangerous();
    let verifier: Arc<dyn ServerCertVerifier> = if skip_verify {
        Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        Arc::new(rustls_platform_verifier::Verifier::new(provider).map_err(Error::Tls)?)
    };
    Ok(builder
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `DRONE_RPC_SKIP_VERIFY`: any certificate chain and name are accepted, the
/// handshake signature is still verified with the certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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

#[cfg(test)]
mod tests {
    use rustls::crypto::CryptoProvider;

    use super::*;

    #[test]
    fn builds_both_verifiers_without_a_process_default_provider() {
        assert!(CryptoProvider::get_default().is_none());
        assert!(client_config(false).is_ok());
        assert!(client_config(true).is_ok());
        assert!(CryptoProvider::get_default().is_none());
    }
}
