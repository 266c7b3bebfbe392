//! The public tier under abuse: rate limits, size limits, slow clients, and
//! what it gives away about itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::harness::{Cinemo, plain_client, spawn};

async fn started(env: &[(&str, String)]) -> Cinemo {
    spawn("all", env)
}

fn rate_limited(trusted: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CINEMO__PUBLIC__RATE_LIMIT__ENABLED", "true".into()),
        ("CINEMO__PUBLIC__RATE_LIMIT__PER_SECOND", "1".into()),
        ("CINEMO__PUBLIC__RATE_LIMIT__BURST", "3".into()),
        ("CINEMO__PUBLIC__TRUSTED_PROXIES", trusted.into()),
    ]
}

/// Sends GETs to the version route with `xff` until one is refused; returns
/// how many were served and the refusal.
async fn until_refused(base: &str, xff: Option<&str>) -> (usize, reqwest::Response) {
    let client = plain_client();
    for served in 0..50 {
        let mut req = client.get(format!("{base}/api/version"));
        if let Some(xff) = xff {
            req = req.header("X-Forwarded-For", xff);
        }
        let r = req.send().await.expect("request");
        if r.status() != 200 {
            return (served, r);
        }
    }
    panic!("50 requests in a row were served");
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("429 carries Retry-After in seconds")
}

/// Sends `xffs.len()` requests as fast as it can, one per forwarded-for
/// value; returns how many were served and the seconds it took.
async fn burst(base: &str, xffs: &[String]) -> (usize, f64) {
    let client = plain_client();
    let started = Instant::now();
    let mut served = 0;
    for xff in xffs {
        let r = client
            .get(format!("{base}/api/version"))
            .header("X-Forwarded-For", xff)
            .send()
            .await
            .expect("request");
        match r.status().as_u16() {
            200 => served += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    (served, started.elapsed().as_secs_f64())
}

/// Most a bucket of burst 3 refilled at 1/s can serve in `secs`.
fn budget(secs: f64) -> usize {
    3 + secs.ceil() as usize
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_recovers() {
    let cinemo = started(&rate_limited("")).await;
    let base = cinemo.public();
    // Nothing has been sent yet (readiness comes from the log), so the
    // whole burst is available.
    let t = Instant::now();
    let (served, refused) = until_refused(base, None).await;
    assert!(
        served >= 3 && served <= budget(t.elapsed().as_secs_f64()),
        "burst 3 at 1/s served {served}"
    );
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(refused.text().await.unwrap(), "too many requests");

    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = plain_client()
        .get(format!("{base}/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the budget refills after Retry-After");
}

#[tokio::test]
async fn forged_forwarded_for_from_untrusted_peer_does_not_evade_the_limit() {
    // Loopback is not trusted here, so every request counts against
    // 127.0.0.1 whatever X-Forwarded-For it carries: twelve different forged
    // addresses get no more than one client's budget.
    let cinemo = started(&rate_limited("10.0.0.0/8")).await;
    let forged: Vec<String> = (1..=12).map(|i| format!("198.51.100.{i}")).collect();
    let (served, secs) = burst(cinemo.public(), &forged).await;
    assert!(
        served <= budget(secs),
        "{served} of 12 forged requests served in {secs:.1}s"
    );
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_keys_on_the_forwarded_client() {
    let cinemo = started(&rate_limited("127.0.0.0/8")).await;
    let base = cinemo.public();
    // Twelve clients behind the proxy: each has its own budget.
    let clients: Vec<String> = (1..=12).map(|i| format!("198.51.100.{i}")).collect();
    let (served, _) = burst(base, &clients).await;
    assert_eq!(
        served, 12,
        "distinct forwarded clients are limited separately"
    );
    // One client writing a different address left of the proxy's entry
    // each time is still one client.
    let spoofs: Vec<String> = (1..=12)
        .map(|i| format!("203.0.113.{i}, 192.0.2.50"))
        .collect();
    let (served, secs) = burst(base, &spoofs).await;
    assert!(
        served <= budget(secs),
        "{served} of 12 served in {secs:.1}s"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let cinemo = started(&[]).await;
    let client = plain_client();
    let body = format!("{{\"name\":\"{}\"}}", "a".repeat(70 * 1024));
    let r = client
        .post(format!("{}/api/customers", cinemo.public()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let big = format!("{{\"k\":\"{}\"}}", "a".repeat(1100 * 1024));
    let r = client
        .post(format!("{}/api/cache", cinemo.internal()))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn over_long_uri_gets_414() {
    let cinemo = started(&[]).await;
    let client = plain_client();
    for len in [5_000, 20_000] {
        let r = client
            .get(format!(
                "{}/api/customers/{}",
                cinemo.public(),
                "a".repeat(len)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 414, "a {len}-byte path");
    }
    // actix itself refuses request heads beyond its buffer; still a 4xx.
    let r = client
        .get(format!(
            "{}/api/customers/{}",
            cinemo.public(),
            "a".repeat(200_000)
        ))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
}

#[tokio::test]
async fn no_server_header_on_any_answer() {
    let cinemo = started(&[]).await;
    let client = plain_client();
    let base = cinemo.public();
    let answers = [
        client
            .get(format!("{base}/api/version"))
            .send()
            .await
            .unwrap(),
        client.get(format!("{base}/nope")).send().await.unwrap(),
        client
            .get(format!("{base}/api/customers/xyz"))
            .send()
            .await
            .unwrap(),
        client
            .post(format!("{base}/api/customers"))
            .body("{")
            .send()
            .await
            .unwrap(),
        client
            .post(format!("{base}/api/customers"))
            .body(vec![b'a'; 100_000])
            .send()
            .await
            .unwrap(),
    ];
    for r in answers {
        assert!(
            r.headers().get("server").is_none(),
            "{} leaks Server",
            r.status()
        );
        assert!(r.headers().get("x-powered-by").is_none());
    }
}

fn slow_env() -> Vec<(&'static str, String)> {
    vec![
        ("CINEMO__HTTP__REQUEST_HEAD_TIMEOUT_MS", "1000".into()),
        ("CINEMO__HTTP__REQUEST_BODY_TIMEOUT_MS", "1000".into()),
    ]
}

/// Writes `head` and then `trickle` one byte every 100 ms from a thread;
/// returns how long until the server answered or closed, and what it sent.
fn trickle(port: u16, head: &'static [u8], trickle: &'static [u8]) -> (Duration, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let started = Instant::now();
    std::thread::spawn(move || {
        if writer.write_all(head).is_err() {
            return;
        }
        for b in trickle.iter().cycle().take(600) {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

#[tokio::test]
async fn slow_loris_head_is_cut_off_while_normal_clients_are_served() {
    let cinemo = started(&slow_env()).await;
    let port = cinemo.public_port();
    let loris = std::thread::spawn(move || {
        trickle(
            port,
            b"",
            b"GET /api/version HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaa",
        )
    });
    // While the slow client trickles, a normal one is served promptly.
    for _ in 0..5 {
        let t = Instant::now();
        let r = plain_client()
            .get(format!("{}/api/version", cinemo.public()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(t.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (took, answer) = loris.join().unwrap();
    assert!(
        took < Duration::from_secs(4),
        "the slow head was allowed {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn slow_body_is_cut_off_with_408() {
    let cinemo = started(&slow_env()).await;
    let port = cinemo.public_port();
    let (took, answer) = std::thread::spawn(move || {
        trickle(
            port,
            b"POST /api/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n",
            b"{\"name\":\"slow\"}",
        )
    })
    .join()
    .unwrap();
    assert!(
        took < Duration::from_secs(4),
        "the slow body was allowed {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let r = plain_client()
        .get(format!("{}/api/version", cinemo.public()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
