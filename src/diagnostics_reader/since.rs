//! `--since`: how far back to read, as a duration or a point in time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};

/// Where a read starts, before it is pinned to a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// This long before the command started (`15m`, `2h`, `1h30m`).
    Ago(Duration),
    /// An absolute time, in epoch milliseconds.
    At(i64),
}

/// What `--since` accepts, for its error message and help.
pub const FORMS: &str = "a duration (15m, 2h, 1h30m), an RFC 3339 time \
     (2026-11-01T17:03:00Z, or with an offset such as +01:00) or epoch milliseconds \
     (a frame's timestamp)";

impl Since {
    /// The default: the last 15 minutes.
    pub const DEFAULT: Since = Since::Ago(Duration::from_secs(15 * 60));

    pub fn parse(text: &str) -> Result<Since, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // A frame's timestamp (13 digits today); a bare small number is
            // more likely a duration without its unit.
            return match text.parse::<i64>() {
                Ok(ms) if text.len() >= 12 => Ok(Since::At(ms)),
                _ => Err(format!(
                    "{text:?} has no unit: write {text}m, {text}s or {text}h"
                )),
            };
        }
        if let Ok(d) = humantime::parse_duration(text) {
            return Ok(Since::Ago(d));
        }
        if let Some(ms) = DateTime::from_str(text, DateTimeFormat::DateTimeWithOffset)
            .ok()
            .and_then(|t| t.to_millis().ok())
        {
            return Ok(Since::At(ms));
        }
        // A space instead of `T`, no zone (taken as UTC).
        if let Some(ms) = humantime::parse_rfc3339_weak(text)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            return Ok(Since::At(ms.as_millis() as i64));
        }
        Err(format!("{text:?} is not {FORMS}"))
    }

    /// Epoch milliseconds, given the command's start time.
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            Since::Ago(d) => {
                now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            Since::At(ms) => ms,
        }
    }
}

/// The clap value parser of `--since`.
pub fn parse_arg(text: &str) -> Result<Since, String> {
    Since::parse(text)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_times_and_frame_timestamps() {
        assert_eq!(
            Since::parse("15m"),
            Ok(Since::Ago(Duration::from_secs(900)))
        );
        assert_eq!(
            Since::parse("1h30m"),
            Ok(Since::Ago(Duration::from_secs(5400)))
        );
        assert_eq!(
            Since::parse("2026-11-01T17:03:00Z"),
            Ok(Since::At(1_793_552_580_000))
        );
        assert_eq!(
            Since::parse("2026-11-01T18:03:00.250+01:00"),
            Ok(Since::At(1_793_552_580_250))
        );
        // A space instead of `T`, no zone: UTC.
        let spaced = "2026-11-01 17:03:00"; // narration-check: ok (an example time, not a date of work)
        assert_eq!(Since::parse(spaced), Ok(Since::At(1_793_552_580_000)));
        assert_eq!(
            Since::parse("1793552580123"),
            Ok(Since::At(1_793_552_580_123))
        );
    }

    #[test]
    fn what_is_refused_says_why() {
        assert!(Since::parse("15").unwrap_err().contains("15m"));
        assert!(Since::parse("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(Since::parse("").is_err());
        assert!(Since::parse("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn resolves_against_the_start_time() {
        assert_eq!(Since::DEFAULT.resolve(1_000_000), 100_000);
        assert_eq!(Since::At(5).resolve(1_000_000), 5);
        assert_eq!(Since::Ago(Duration::MAX).resolve(0), -i64::MAX);
    }
}
