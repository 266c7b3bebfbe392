//! The binary's spine, driven over HTTP: the old contract on both wirings
//! (two processes, and `--mode all`), failures of the internal tier, limits,
//! graceful shutdown, configuration and systemd notification.

mod common;

mod api {
    mod config;
    mod contract;
    mod failures;
    mod limits;
    mod notify;
    mod shutdown;
}
