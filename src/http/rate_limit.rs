//! Per-client rate limiting of the public tier: a token bucket per client
//! address (governor's GCRA, keyed), shared by every worker. `governor` is
//! the maintained, lock-free limiter most Rust rate limiters build on; the
//! actix glue is these few lines (the `actix-governor` wrapper is
//! GPL-3.0, which our license policy refuses).
//!
//! The client is the TCP peer, unless the peer is a trusted proxy (the ALB):
//! then it is the right-most `X-Forwarded-For` entry that is not itself a
//! trusted proxy. Entries left of that are whatever the client chose to send,
//! so a forged header from an untrusted peer changes nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use std::num::NonZeroU32;

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use anyhow::Context;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::response::TEXT;
use crate::settings::PublicSettings;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Who a request counts against.
#[derive(Clone, Debug)]
pub struct ClientKey {
    trusted: Arc<Vec<IpNet>>,
}

impl ClientKey {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        ClientKey {
            trusted: Arc::new(trusted),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        // Proxies append, so walk from the right; several header lines
        // are one list in order.
        let entries: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            match parse_forwarded(entry) {
                Some(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                // Garbage written by someone before our proxies: stop at
                // the last address a trusted proxy vouched for.
                None => break,
            }
        }
        client
    }
}

/// The budget an address spends: its own for IPv4, its /64 for IPv6, since
/// one IPv6 host is handed a whole /64 and could otherwise rotate through it
/// for a fresh budget per request.
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// One `X-Forwarded-For` entry: an address, tolerating the `[v6]:port` and
/// `v4:port` forms some proxies write.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    entry
        .rsplit_once(':')
        .and_then(|(host, _)| host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4))
}

/// The limiter of one public tier; clones share the buckets.
#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    key: ClientKey,
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimit {
    pub fn new(settings: &PublicSettings) -> anyhow::Result<Self> {
        let rl = &settings.rate_limit;
        // Validated > 0 when enabled; a disabled limiter is never consulted.
        let per_second =
            NonZeroU32::new(rl.per_second.max(1)).context("public.rate_limit.per_second")?;
        let burst = NonZeroU32::new(rl.burst.max(1)).context("public.rate_limit.burst")?;
        let limit = RateLimit {
            enabled: rl.enabled,
            key: ClientKey::new(settings.trusted_proxies.clone()),
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            )),
        };
        if limit.enabled {
            limit.spawn_cleanup();
        }
        Ok(limit)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Buckets of clients that went quiet are full again and carry no
    /// information; dropping them keeps memory bounded under a spray of
    /// source addresses.
    fn spawn_cleanup(&self) {
        let limiter = self.limiter.clone();
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
}

/// The middleware, with the tier's limiter: `.wrap(Condition::new(limit.enabled(),
/// from_fn(move |req, next| rate_limit::check(limit.clone(), req, next))))`.
pub async fn check(
    limit: RateLimit,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Every TCP connection has a peer; without one there is nothing to key on.
    let Some(peer) = req.peer_addr() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let client = bucket(limit.key.client_ip(peer.ip(), req.headers()));
    match limit.limiter.check_key(&client) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body),
        Err(not_until) => {
            // Whole seconds, rounded up: "0" would invite an immediate,
            // again refused, retry.
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
                .insert_header((RETRY_AFTER, secs))
                .insert_header((CONTENT_TYPE, HeaderValue::from_static(TEXT)))
                .body("too many requests");
            Ok(req.into_response(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(
                HeaderName::from_static(X_FORWARDED_FOR),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn key() -> ClientKey {
        ClientKey::new(vec!["10.0.0.0/16".parse().unwrap()])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_its_own_client_whatever_it_forwards() {
        assert_eq!(
            key().client_ip(ip("203.0.113.9"), &headers(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxy_forwards_the_rightmost_untrusted_entry() {
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.0.1.2"]);
        assert_eq!(key().client_ip(ip("10.0.0.5"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(
            bucket(ip("2001:db8:1:2:aaaa::1")),
            bucket(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(bucket(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn garbage_stops_at_the_last_vouched_address() {
        assert_eq!(
            key().client_ip(ip("10.0.0.5"), &headers(&["nonsense"])),
            ip("10.0.0.5")
        );
        assert_eq!(
            key().client_ip(ip("10.0.0.5"), &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            key().client_ip(ip("10.0.0.5"), &headers(&["192.0.2.1:8080"])),
            ip("192.0.2.1")
        );
    }
}
