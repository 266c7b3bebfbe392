//! rustls configurations for the three TLS endpoints: the internal tier's
//! listener (server certificate + required client certificates), the public
//! tier's client to it (its own certificate + only the private CA as trust
//! root), and the optional TLS listener of the public tier.
//!
//! Every function names the file it failed on: at 17:00 on a bad day the
//! question is "which of the files SSM wrote is wrong".

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::settings::{ClientTlsSettings, ListenerTlsSettings, ServerTlsSettings};

/// The process-wide provider is installed by `cli::install_crypto_provider`,
/// but building against an explicit one keeps these functions usable from
/// tests and never depends on which crates enabled which provider.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certs(path: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {path}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{path} is not a PEM certificate file"))?;
    if certs.is_empty() {
        bail!("{path} holds no PEM certificate");
    }
    Ok(certs)
}

fn key(path: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    // The error never includes key material, only the path.
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read a PEM private key from {path}"))
}

fn roots(path: &str) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in certs(path)? {
        store
            .add(cert)
            .with_context(|| format!("{path} holds a certificate that is not a usable CA"))?;
    }
    Ok(store)
}

/// The internal tier's listener. With `client_ca_file`, a client must
/// present a certificate chaining to that CA (and valid now) or the
/// handshake fails; without it (only allowed when `required` is off), the
/// listener encrypts but does not authenticate clients.
pub fn internal_server(settings: &ServerTlsSettings) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Ok(None);
    };
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca_file {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .with_context(|| format!("cannot build a client verifier from {ca}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => {
            tracing::warn!(
                "internal.tls.client_ca_file is not set: the internal tier accepts TLS clients without certificates"
            );
            builder.with_no_client_auth()
        }
    };
    let config = builder
        .with_single_cert(certs(cert_file)?, key(key_file)?)
        .with_context(|| format!("{key_file} does not match {cert_file}"))?;
    Ok(Some(Arc::new(config)))
}

/// The public tier's optional TLS listener (normally TLS ends at the ALB).
pub fn public_server(settings: &ListenerTlsSettings) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Ok(None);
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs(cert_file)?, key(key_file)?)
        .with_context(|| format!("{key_file} does not match {cert_file}"))?;
    Ok(Some(Arc::new(config)))
}

/// The public tier's client configuration for the internal tier: trusts
/// only `ca_file` (not the web PKI, not the OS store) and presents
/// `cert_file`/`key_file` when set.
pub fn internal_client(settings: &ClientTlsSettings) -> anyhow::Result<Option<ClientConfig>> {
    let Some(ca_file) = &settings.ca_file else {
        return Ok(None);
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_file)?);
    let config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert_file), Some(key_file)) => builder
            .with_client_auth_cert(certs(cert_file)?, key(key_file)?)
            .with_context(|| format!("{key_file} does not match {cert_file}"))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(config))
}
