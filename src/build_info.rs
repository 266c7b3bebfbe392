//! What this binary is: baked in at build time by build.rs.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_SHA: &str = env!("CINEMO_GIT_SHA");
/// `dev`, `edge` or `stable`.
pub const CHANNEL: &str = env!("CINEMO_CHANNEL");

/// `cinemo 0.1.0 (abc123def456, edge)`
pub fn long_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("CINEMO_GIT_SHA"),
        ", ",
        env!("CINEMO_CHANNEL"),
        ")"
    )
}
