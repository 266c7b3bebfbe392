//! Mutual TLS between the tiers: the internal tier refuses every client but
//! one holding a current certificate from the configured CA.

use std::time::Duration;

use cinemo::telemetry::names::LOG_TLS_RELOAD_FAILED;

use super::certs::{Ca, Leaf, negotiated_alpn, tls_client};
use super::harness::{Cinemo, plain_client, spawn, start, write};

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    client: Leaf,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().expect("temp dir"),
            ca: Ca::new("cinemo test CA"),
            client: Leaf {
                cert_pem: String::new(),
                key_pem: String::new(),
            },
        }
        .with_client()
    }

    fn with_client(mut self) -> Pki {
        self.client = self.ca.client("cinemo-public");
        self
    }

    fn file(&self, name: &str, content: &str) -> String {
        write(self.dir.path(), name, content)
    }

    fn internal_env(&self) -> Vec<(&'static str, String)> {
        let server = self.ca.server();
        vec![
            (
                "CINEMO__INTERNAL__TLS__CERT_FILE",
                self.file("server.crt", &server.cert_pem),
            ),
            (
                "CINEMO__INTERNAL__TLS__KEY_FILE",
                self.file("server.key", &server.key_pem),
            ),
            (
                "CINEMO__INTERNAL__TLS__CLIENT_CA_FILE",
                self.file("client-ca.crt", &self.ca.pem),
            ),
            ("CINEMO__INTERNAL__TLS__REQUIRED", "true".into()),
        ]
    }
}

/// An internal tier serving mutual TLS, proven live with a good client.
async fn internal_tier() -> (Cinemo, Pki, String) {
    let pki = Pki::new();
    let internal = spawn("internal", &pki.internal_env());
    let base = format!("https://localhost:{}", internal.internal_port());
    let good = tls_client(&pki.ca, Some(&pki.client), internal.internal_port());
    let live = good
        .get(format!("{base}/api/health/live"))
        .send()
        .await
        .expect("a good client is served");
    assert_eq!(live.status(), 200);
    (internal, pki, base)
}

async fn assert_refused(client: &reqwest::Client, url: &str, what: &str) {
    match client.get(url).send().await {
        Err(_) => {}
        Ok(r) => panic!("{what} was served: {}", r.status()),
    }
}

#[tokio::test]
async fn internal_tier_refuses_plain_http_client() {
    let (internal, _pki, _) = internal_tier().await;
    let url = format!("{}/api/health/live", internal.internal());
    assert_refused(&plain_client(), &url, "a plain-HTTP client").await;
}

#[tokio::test]
async fn internal_tier_refuses_tls_client_without_certificate() {
    let (internal, pki, base) = internal_tier().await;
    let client = tls_client(&pki.ca, None, internal.internal_port());
    assert_refused(
        &client,
        &format!("{base}/api/health/live"),
        "a client without a certificate",
    )
    .await;
}

#[tokio::test]
async fn internal_tier_refuses_certificate_from_another_ca() {
    let (internal, pki, base) = internal_tier().await;
    let stranger = Ca::new("some other CA").client("cinemo-public");
    let client = tls_client(&pki.ca, Some(&stranger), internal.internal_port());
    assert_refused(
        &client,
        &format!("{base}/api/health/live"),
        "a certificate from another CA",
    )
    .await;
}

#[tokio::test]
async fn internal_tier_refuses_expired_client_certificate() {
    let (internal, pki, base) = internal_tier().await;
    let expired = pki.ca.expired_client("cinemo-public");
    let client = tls_client(&pki.ca, Some(&expired), internal.internal_port());
    assert_refused(
        &client,
        &format!("{base}/api/health/live"),
        "an expired certificate",
    )
    .await;
}

fn public_env(pki: &Pki, ca_pem: &str, internal_port: u16) -> Vec<(&'static str, String)> {
    vec![
        (
            "CINEMO__PUBLIC__INTERNAL_URL",
            format!("https://localhost:{internal_port}"),
        ),
        (
            "CINEMO__PUBLIC__INTERNAL_TLS__CERT_FILE",
            pki.file("client.crt", &pki.client.cert_pem),
        ),
        (
            "CINEMO__PUBLIC__INTERNAL_TLS__KEY_FILE",
            pki.file("client.key", &pki.client.key_pem),
        ),
        (
            "CINEMO__PUBLIC__INTERNAL_TLS__CA_FILE",
            pki.file("internal-ca.crt", ca_pem),
        ),
        ("CINEMO__PUBLIC__INTERNAL_TLS__REQUIRED", "true".into()),
    ]
}

#[tokio::test]
async fn internal_tier_accepts_the_public_tier_for_create_and_read() {
    let (internal, pki, _) = internal_tier().await;
    let public = spawn(
        "public",
        &public_env(&pki, &pki.ca.pem, internal.internal_port()),
    );
    let client = plain_client();

    let ready = client
        .get(format!("{}/api/health", public.public()))
        .send()
        .await
        .expect("health");
    assert_eq!(ready.status(), 200, "readiness goes through mTLS");
    let created = client
        .post(format!("{}/api/customers", public.public()))
        .json(&serde_json::json!({"name": "Ada"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200, "{}", public.logs());
    let id = created.json::<serde_json::Value>().await.expect("json")["customerId"]
        .as_str()
        .expect("customerId")
        .to_owned();
    let read = client
        .get(format!("{}/api/customers/{id}", public.public()))
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), 200);
    let doc: serde_json::Value = read.json().await.expect("json");
    assert_eq!(doc["name"], "Ada");
    assert_eq!(doc["_id"], id.as_str());
    assert_eq!(
        negotiated_alpn(&pki.ca, Some(&pki.client), internal.internal_port()).await,
        "h2",
        "the tier link runs HTTP/2 over mutual TLS"
    );
}

/// Behind the internal tier's load balancer a new connection can land on a
/// target that has just died, which resets or closes it during the TLS
/// handshake, before any request was sent: the public tier connects again
/// and the customer never sees it.
#[tokio::test]
async fn a_handshake_cut_by_a_dead_target_is_made_again() {
    let (internal, pki, _) = internal_tier().await;
    let balancer = crate::common::Balancer::refusing(crate::common::addr_of(internal.internal()));
    let mut env = public_env(&pki, &pki.ca.pem, balancer.addr.port());
    // One worker, so the first request meets both cut handshakes.
    env.push(("CINEMO__HTTP__WORKERS", "1".into()));
    let public = spawn("public", &env);
    // One connection reset and one closed during the handshake, then the
    // live target.
    balancer.open(Duration::ZERO, 2);
    let client = plain_client();
    let created = client
        .post(format!("{}/api/customers", public.public()))
        .json(&serde_json::json!({"name": "Ada"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200, "{}", public.logs());
    let id = created.json::<serde_json::Value>().await.expect("json")["customerId"]
        .as_str()
        .expect("customerId")
        .to_owned();
    let read = client
        .get(format!("{}/api/customers/{id}", public.public()))
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), 200);
}

#[tokio::test]
async fn public_tier_refuses_an_internal_server_from_another_ca() {
    let (internal, pki, _) = internal_tier().await;
    let other = Ca::new("impostor CA");
    let public = spawn(
        "public",
        &public_env(&pki, &other.pem, internal.internal_port()),
    );
    let client = plain_client();
    let r = client
        .post(format!("{}/api/customers", public.public()))
        .json(&serde_json::json!({"name": "Ada"}))
        .send()
        .await
        .expect("create");
    assert_eq!(
        r.status(),
        502,
        "an unverified internal server is unreachable"
    );
}

#[test]
fn tiers_refuse_to_start_without_tls_when_required() {
    for (mode, var, key) in [
        (
            "internal",
            "CINEMO__INTERNAL__TLS__REQUIRED",
            "internal.tls.required",
        ),
        (
            "public",
            "CINEMO__PUBLIC__INTERNAL_TLS__REQUIRED",
            "public.internal_tls.required",
        ),
    ] {
        let mut cinemo = start(mode, &[(var, "true".into())]);
        let status = cinemo.wait_exit(Duration::from_secs(20));
        assert!(!status.success(), "{mode} started without TLS");
        assert!(
            cinemo.logs().contains(key),
            "the refusal names {key}:\n{}",
            cinemo.logs()
        );
    }
}

/// The documented ops procedure (ansible/tools/pki.sh, plain openssl) produces
/// files both tiers accept: one CA, the internal server's and the public
/// tier's certificates, then a create and a read through mTLS.
#[tokio::test]
async fn certificates_from_tools_pki_sh_work_between_the_tiers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ansible/tools/pki.sh");
    for args in [
        vec!["ca", &d],
        vec!["server", &d, "localhost"],
        vec!["client", &d, "cinemo-public"],
    ] {
        let out = std::process::Command::new("bash")
            .arg(script)
            .args(&args)
            .output()
            .expect("run ansible/tools/pki.sh (needs openssl)");
        assert!(
            out.status.success(),
            "pki.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let f = |name: &str| dir.path().join(name).display().to_string();
    let internal = spawn(
        "internal",
        &[
            ("CINEMO__INTERNAL__TLS__CERT_FILE", f("server.crt")),
            ("CINEMO__INTERNAL__TLS__KEY_FILE", f("server.key")),
            ("CINEMO__INTERNAL__TLS__CLIENT_CA_FILE", f("ca.crt")),
            ("CINEMO__INTERNAL__TLS__REQUIRED", "true".into()),
        ],
    );
    let public = spawn(
        "public",
        &[
            (
                "CINEMO__PUBLIC__INTERNAL_URL",
                format!("https://localhost:{}", internal.internal_port()),
            ),
            ("CINEMO__PUBLIC__INTERNAL_TLS__CERT_FILE", f("client.crt")),
            ("CINEMO__PUBLIC__INTERNAL_TLS__KEY_FILE", f("client.key")),
            ("CINEMO__PUBLIC__INTERNAL_TLS__CA_FILE", f("ca.crt")),
            ("CINEMO__PUBLIC__INTERNAL_TLS__REQUIRED", "true".into()),
        ],
    );
    let client = plain_client();
    // Both are ready, so the public tier's readiness check (a call to the
    // internal tier over mutual TLS) passes at once.
    let r = client
        .get(format!("{}/api/health", public.public()))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200, "{}", internal.logs());
    let created = client
        .post(format!("{}/api/customers", public.public()))
        .json(&serde_json::json!({"name": "Grace"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200, "{}", public.logs());
    let id = created.json::<serde_json::Value>().await.expect("json")["customerId"]
        .as_str()
        .expect("id")
        .to_owned();
    let read = client
        .get(format!("{}/api/customers/{id}", public.public()))
        .send()
        .await
        .expect("read");
    assert_eq!(
        read.json::<serde_json::Value>().await.expect("json")["name"],
        "Grace"
    );
}

/// `all` mode with TLS configured: the public tier calls its own internal
/// listener over mutual TLS on loopback, the same path as production.
#[tokio::test]
async fn all_mode_uses_mutual_tls_on_loopback_when_configured() {
    let pki = Pki::new();
    let mut env = pki.internal_env();
    env.extend([
        (
            "CINEMO__PUBLIC__INTERNAL_TLS__CERT_FILE",
            pki.file("client.crt", &pki.client.cert_pem),
        ),
        (
            "CINEMO__PUBLIC__INTERNAL_TLS__KEY_FILE",
            pki.file("client.key", &pki.client.key_pem),
        ),
        (
            "CINEMO__PUBLIC__INTERNAL_TLS__CA_FILE",
            pki.file("internal-ca.crt", &pki.ca.pem),
        ),
    ]);
    let all = spawn("all", &env);
    let client = plain_client();
    let created = client
        .post(format!("{}/api/customers", all.public()))
        .json(&serde_json::json!({"name": "Lin"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200, "{}", all.logs());
    let internal = format!("{}/api/health/live", all.internal());
    assert_refused(
        &client,
        &internal,
        "a plain client on the loopback internal listener",
    )
    .await;
}

/// Optional TLS on the public listener (normally ended at the ALB).
#[tokio::test]
async fn public_listener_serves_tls_when_configured() {
    let pki = Pki::new();
    let server = pki.ca.server();
    let mut cinemo = spawn(
        "all",
        &[
            (
                "CINEMO__PUBLIC__TLS__CERT_FILE",
                pki.file("public.crt", &server.cert_pem),
            ),
            (
                "CINEMO__PUBLIC__TLS__KEY_FILE",
                pki.file("public.key", &server.key_pem),
            ),
        ],
    );
    let port = cinemo.public_port();
    let tls = tls_client(&pki.ca, None, port);
    let base = format!("https://localhost:{port}");
    let r = tls
        .get(format!("{base}/api/version"))
        .send()
        .await
        .expect("version over TLS");
    assert_eq!(r.status(), 200);
    // HTTP/2 stays off the internet-facing listener (RUSTSEC-2026-0258 in
    // actix-http's h2 0.3; see deny.toml), even for a client that asks.
    assert_eq!(negotiated_alpn(&pki.ca, None, port).await, "http/1.1");
    let preferring_h2 = tls
        .get(format!("{base}/api/customers/{}", "0".repeat(24)))
        .send()
        .await
        .expect("read over TLS");
    assert_eq!(preferring_h2.version(), reqwest::Version::HTTP_11);
    assert_eq!(preferring_h2.status(), 404);
    assert_refused(
        &plain_client(),
        &format!("{}/api/version", cinemo.public()),
        "plain HTTP on the TLS listener",
    )
    .await;
    // Graceful shutdown with an idle keep-alive TLS connection open: the
    // listener closes it and the process exits 0 long before the 30 s
    // shutdown deadline.
    let body = tls
        .get(format!("{base}/api/health/live"))
        .send()
        .await
        .expect("live over TLS")
        .text()
        .await
        .expect("body");
    assert!(!body.is_empty());
    cinemo.signal("TERM");
    let status = cinemo.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status}:\n{}", cinemo.logs());
}

/// SIGHUP re-reads the TLS files: a client CA added to the bundle is
/// trusted without a restart, and a broken file keeps the previous material.
#[tokio::test]
async fn sighup_reloads_the_client_ca_and_keeps_the_old_files_on_error() {
    let (mut internal, pki, base) = internal_tier().await;
    let port = internal.internal_port();
    let next = Ca::new("next CA");
    let next_client = next.client("cinemo-public");
    let new_client = tls_client(&pki.ca, Some(&next_client), port);
    let old_client = tls_client(&pki.ca, Some(&pki.client), port);
    let live = format!("{base}/api/health/live");
    assert_refused(
        &new_client,
        &live,
        "a client of the next CA before the reload",
    )
    .await;

    // A broken CA file: the reload fails and the old CA stays in force.
    pki.file("client-ca.crt", "not a certificate");
    internal.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !internal.logs().contains(LOG_TLS_RELOAD_FAILED) {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload attempt logged:\n{}",
            internal.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh_old = tls_client(&pki.ca, Some(&pki.client), port);
    assert_eq!(
        fresh_old
            .get(&live)
            .send()
            .await
            .expect("old CA still trusted")
            .status(),
        200
    );

    // The CA rotation's first step: a bundle of old and next CA.
    pki.file("client-ca.crt", &format!("{}{}", pki.ca.pem, next.pem));
    internal.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = tls_client(&pki.ca, Some(&next_client), port);
        if let Ok(r) = fresh.get(&live).send().await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "next CA never trusted:\n{}",
            internal.logs()
        );
        internal.assert_running();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = old_client.get(&live).send().await.expect("old client");
    assert_eq!(r.status(), 200, "the old CA is still in the bundle");
}
