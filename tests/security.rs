//! Security tests: they drive the real binary (`CARGO_BIN_EXE_cinemo`) on
//! free loopback ports, configured only through `CINEMO__*` variables.
//! The harness is local on purpose (see tests/security/harness.rs).

mod security {
    pub mod certs;
    pub mod harness;
    mod limits;
    mod mtls;
    mod openapi;
    mod properties;
}
