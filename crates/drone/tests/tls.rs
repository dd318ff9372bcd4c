//! HTTPS: the client's rustls-on-ring setup reaches a TLS server, refuses a
//! certificate nobody vouches for, and accepts it with
//! `DRONE_RPC_SKIP_VERIFY`.

use std::sync::Arc;

use runnerkit_core::ManagerError;
use runnerkit_drone::{DroneConfig, DroneManager, RetryPolicy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const CERT: &[u8] = include_bytes!("fixtures/localhost-cert.pem");
const KEY: &[u8] = include_bytes!("fixtures/localhost-key.pem");

/// A TLS endpoint that answers every request with `200` and no body, the
/// way Drone answers a ping. Returns its `host:port`.
async fn tls_ping_server() -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(CERT).unwrap()],
            PrivateKeyDer::from_pem_slice(KEY).unwrap(),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = tls.write_all(answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    address.to_string()
}

fn config(host: String) -> DroneConfig {
    DroneConfig::new("https", host, "secret").with_retry(RetryPolicy {
        max_elapsed: Some(std::time::Duration::ZERO),
        ..RetryPolicy::default()
    })
}

#[tokio::test]
async fn skip_verify_accepts_a_self_signed_certificate() {
    let host = tls_ping_server().await;
    let manager = DroneManager::new(&config(host).with_skip_verify(true)).unwrap();
    manager.ping().await.unwrap();
}

#[tokio::test]
async fn an_unknown_certificate_is_refused_by_default() {
    let host = tls_ping_server().await;
    let manager = DroneManager::new(&config(host)).unwrap();
    let err = manager.ping().await.unwrap_err();
    assert!(matches!(err, ManagerError::Transport { .. }), "{err:?}");
}
