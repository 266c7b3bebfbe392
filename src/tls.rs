//! rustls configurations for the three TLS endpoints: the internal tier's
//! listener (server certificate + required client certificates), the public
//! tier's client to it (its own certificate + only the private CA as trust
//! root), and the optional TLS listener of the public tier.
//!
//! Certificates, keys and CAs are re-read on SIGHUP (`Reloader`): the
//! configurations hold swappable resolvers and verifiers, so new handshakes
//! use the new files while established connections keep theirs. A reload
//! that fails (a missing file, a key that does not match) keeps the old
//! material and logs why.
//!
//! Every function names the file it failed on: at 17:00 on a bad day the
//! question is "which of the files SSM wrote is wrong".

use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::settings::{ClientTlsSettings, ListenerTlsSettings, ServerTlsSettings};
use crate::telemetry::names::LOG_TLS_RELOAD_FAILED;

/// rustls needs one process-wide crypto provider; several crates enable
/// different ones, so pick explicitly. Called once by each command before
/// any TLS is set up.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The process-wide provider is installed by `install_crypto_provider`,
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

/// Re-reads one endpoint's files into its live configuration.
pub struct Reloader {
    what: &'static str,
    reload: Box<dyn Fn() -> anyhow::Result<()> + Send + Sync>,
}

impl Reloader {
    pub fn reload(&self) {
        match (self.reload)() {
            Ok(()) => tracing::info!(endpoint = self.what, "TLS certificates reloaded"),
            Err(e) => tracing::error!(
                endpoint = self.what,
                error = format!("{e:#}"),
                "{LOG_TLS_RELOAD_FAILED}"
            ),
        }
    }
}

/// A value the handshake code reads and a reload replaces.
#[derive(Debug)]
struct Swap<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Swap<T> {
    fn new(value: Arc<T>) -> Arc<Self> {
        Arc::new(Swap(RwLock::new(value)))
    }
    // A panic while holding the lock cannot leave a half-written Arc, so a
    // poisoned lock is still safe to use.
    fn get(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

fn certified_key(cert_file: &str, key_file: &str) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = CertifiedKey::from_der(certs(cert_file)?, key(key_file)?, &provider())
        .with_context(|| format!("{key_file} does not match {cert_file}"))?;
    Ok(Arc::new(key))
}

fn client_verifier(ca_file: &str) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_file)?), provider())
        .build()
        .with_context(|| format!("cannot build a client verifier from {ca_file}"))
}

fn server_verifier(ca_file: &str) -> anyhow::Result<Arc<dyn ServerCertVerifier>> {
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca_file)?), provider())
            .build()
            .with_context(|| format!("cannot build a server verifier from {ca_file}"))?;
    Ok(verifier)
}

#[derive(Debug)]
struct CurrentCert(Arc<Swap<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct CurrentClientVerifier(Arc<Swap<dyn ClientCertVerifier>>);

impl ClientCertVerifier for CurrentClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.0.get().offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.0.get().client_auth_mandatory()
    }
    /// The CA names a server may hint to clients; optional in TLS, and a
    /// borrowed slice cannot outlive a swap, so none are sent (the public
    /// tier has one certificate and presents it regardless).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .get()
            .verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.get().supported_verify_schemes()
    }
}

#[derive(Debug)]
struct CurrentServerVerifier(Arc<Swap<dyn ServerCertVerifier>>);

impl ServerCertVerifier for CurrentServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .get()
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.get().supported_verify_schemes()
    }
}

/// A server configuration whose certificate (and client CA, if any) a
/// `Reloader` can replace.
fn reloadable_server(
    what: &'static str,
    cert_file: &str,
    key_file: &str,
    client_ca_file: Option<&str>,
) -> anyhow::Result<(Arc<ServerConfig>, Reloader)> {
    let cert = Swap::new(certified_key(cert_file, key_file)?);
    let verifier = client_ca_file
        .map(client_verifier)
        .transpose()?
        .map(Swap::new);
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &verifier {
        Some(v) => builder.with_client_cert_verifier(Arc::new(CurrentClientVerifier(v.clone()))),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(Arc::new(CurrentCert(cert.clone())));
    let (cert_file, key_file) = (cert_file.to_owned(), key_file.to_owned());
    let client_ca_file = client_ca_file.map(str::to_owned);
    let reloader = Reloader {
        what,
        reload: Box::new(move || {
            // Read everything first, so a bad file changes nothing.
            let new_cert = certified_key(&cert_file, &key_file)?;
            let new_verifier = client_ca_file.as_deref().map(client_verifier).transpose()?;
            cert.set(new_cert);
            if let (Some(slot), Some(new)) = (&verifier, new_verifier) {
                slot.set(new);
            }
            Ok(())
        }),
    };
    Ok((Arc::new(config), reloader))
}

/// The internal tier's listener. With `client_ca_file`, a client must
/// present a certificate chaining to that CA (and valid now) or the
/// handshake fails; without it (only allowed when `required` is off), the
/// listener encrypts but does not authenticate clients.
pub fn internal_server(
    settings: &ServerTlsSettings,
) -> anyhow::Result<Option<(Arc<ServerConfig>, Reloader)>> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Ok(None);
    };
    if settings.client_ca_file.is_none() {
        tracing::warn!(
            "internal.tls.client_ca_file is not set: the internal tier accepts TLS clients without certificates"
        );
    }
    reloadable_server(
        "internal listener",
        cert_file,
        key_file,
        settings.client_ca_file.as_deref(),
    )
    .map(Some)
}

/// The public tier's optional TLS listener (normally TLS ends at the ALB).
pub fn public_server(
    settings: &ListenerTlsSettings,
) -> anyhow::Result<Option<(Arc<ServerConfig>, Reloader)>> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Ok(None);
    };
    reloadable_server("public listener", cert_file, key_file, None).map(Some)
}

/// The public tier's client configuration for the internal tier: trusts
/// only `ca_file` (not the web PKI, not the OS store) and presents
/// `cert_file`/`key_file` when set.
pub fn internal_client(
    settings: &ClientTlsSettings,
) -> anyhow::Result<Option<(ClientConfig, Reloader)>> {
    let Some(ca_file) = settings.ca_file.clone() else {
        return Ok(None);
    };
    let verifier = Swap::new(server_verifier(&ca_file)?);
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        // Still full WebPKI verification (chain, validity, name), against
        // the private CA only; "dangerous" is rustls' word for "custom".
        .with_custom_certificate_verifier(Arc::new(CurrentServerVerifier(verifier.clone())));
    let identity = match (&settings.cert_file, &settings.key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone(), Swap::new(certified_key(c, k)?))),
        _ => None,
    };
    let config = match &identity {
        Some((_, _, cert)) => {
            builder.with_client_cert_resolver(Arc::new(CurrentCert(cert.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    let reloader = Reloader {
        what: "client to the internal tier",
        reload: Box::new(move || {
            let new_verifier = server_verifier(&ca_file)?;
            let new_cert = identity
                .as_ref()
                .map(|(c, k, _)| certified_key(c, k))
                .transpose()?;
            verifier.set(new_verifier);
            if let (Some((_, _, slot)), Some(new)) = (&identity, new_cert) {
                slot.set(new);
            }
            Ok(())
        }),
    };
    Ok(Some((config, reloader)))
}

/// Reloads every endpoint's TLS files on each SIGHUP. Installed even when
/// there is nothing to reload, so a stray SIGHUP never kills the process
/// (its default action).
pub fn reload_on_sighup(reloaders: Vec<Arc<Reloader>>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!(
                endpoints = reloaders.len(),
                "SIGHUP: reloading TLS certificates"
            );
            for r in &reloaders {
                r.reload();
            }
        }
    });
    Ok(())
}
