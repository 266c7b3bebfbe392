//! Security tests: they drive the real binary (`CARGO_BIN_EXE_cinemo`)
//! through the common harness (tests/common: listeners on port 0, readiness
//! from the log), configured only through `CINEMO__*` variables.

mod common;

mod security {
    pub mod certs;
    pub mod harness;
    mod limits;
    mod mtls;
    mod openapi;
    mod properties;
}
