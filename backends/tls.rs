//! The rustls client configuration of the bundled HTTP clients (reqwest and
//! the smol client): rustls 0.23 with the **ring** crypto provider and the
//! operating system's trust store (rustls-platform-verifier).
//!
//! ring is chosen over rustls' default aws-lc-rs because it builds with only
//! a C compiler (no cmake, no NASM, no `aws-lc-sys`), and it is what the
//! provider is set to explicitly here, so an application's process-wide
//! default provider (or its absence) does not matter. No system OpenSSL is
//! linked (`openssl-probe`, pulled in by the verifier, only finds the
//! system's certificate paths).

use std::sync::Arc;

use rustls_platform_verifier::BuilderVerifierExt;

/// A client config on ring + the platform verifier, offering `alpn`.
pub(crate) fn client_config(alpn: &[&[u8]]) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
