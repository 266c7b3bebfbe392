//! Per-client rate limiting of the public tier: a token bucket per client
//! address (governor's GCRA through actix-governor), shared by every worker.
//!
//! The client is the TCP peer, unless the peer is a trusted proxy (the ALB):
//! then it is the right-most `X-Forwarded-For` entry that is not itself a
//! trusted proxy. Entries left of that are whatever the client chose to send,
//! so a forged header from an untrusted peer changes nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, HttpResponseBuilder};
use anyhow::Context;
use ipnet::IpNet;

use super::{ApiError, TEXT};
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

impl KeyExtractor for ClientKey {
    type Key = IpAddr;
    type KeyExtractionError = ApiError;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, ApiError> {
        // Every TCP connection has a peer; a missing one is a bug, not a client.
        let peer = req.peer_addr().ok_or(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ))?;
        Ok(bucket(self.client_ip(peer.ip(), req.headers())))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        // actix-governor writes whole seconds rounded down, which says
        // "0" for a sub-second wait; a client retrying at once would be
        // refused again, so round up.
        let wait = negative.wait_time_from(DefaultClock::default().now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .insert_header((RETRY_AFTER, secs.max(1)))
            .insert_header((CONTENT_TYPE, HeaderValue::from_static(TEXT)))
            .body("too many requests")
    }
}

type Config = GovernorConfig<ClientKey, NoOpMiddleware<QuantaInstant>>;

/// The limiter of one public tier; clones share the buckets.
#[derive(Clone)]
pub struct RateLimit {
    enabled: bool,
    config: Config,
}

impl RateLimit {
    pub fn new(settings: &PublicSettings) -> anyhow::Result<Self> {
        let rl = &settings.rate_limit;
        // Validated > 0 when enabled; the fallbacks only keep a disabled
        // limiter constructible.
        let per_second = u64::from(rl.per_second.max(1));
        let config = GovernorConfigBuilder::default()
            .period(Duration::from_nanos(1_000_000_000 / per_second))
            .burst_size(rl.burst.max(1))
            .key_extractor(ClientKey::new(settings.trusted_proxies.clone()))
            .finish()
            .context("public.rate_limit: per_second and burst must be greater than 0")?;
        let limit = RateLimit {
            enabled: rl.enabled,
            config,
        };
        if limit.enabled {
            limit.spawn_cleanup();
        }
        Ok(limit)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn middleware(&self) -> Governor<ClientKey, NoOpMiddleware<QuantaInstant>> {
        Governor::new(&self.config)
    }

    /// Buckets of clients that went quiet are full again and carry no
    /// information; dropping them keeps memory bounded under a spray of
    /// source addresses.
    fn spawn_cleanup(&self) {
        let limiter = self.config.limiter();
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
