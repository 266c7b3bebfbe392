//! The binary's spine, driven over HTTP: the old contract on both wirings
//! (two processes, and `--mode all`), failures of the internal tier, limits,
//! graceful shutdown, configuration, systemd notification, what the
//! process logs (access lines, the ready banner), and the link between
//! the tiers (HTTP/2 and HTTP/1.1, reconnects, draining).

mod common;

mod api {
    mod config;
    mod contract;
    mod failures;
    mod limits;
    mod logs;
    mod notify;
    mod shutdown;
    mod tier_link;
}
