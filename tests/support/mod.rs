//! Shared helpers for the integration tests. Each test file includes them
//! with `mod support;` and uses what it needs:
//!
//! - [`server`]: a loopback HTTP/1.1 server (hyper, own runtime thread) with
//!   fault knobs and stats, plus `closed_port_url`, `BlackHole`, a raw
//!   blocking client and deterministic test data.
//! - [`backends`]: `backend_tests! { fn name(env) { ... } }` runs one async
//!   body on every enabled backend pair (tokio + reqwest, smol + smol-http,
//!   async-std + surf).
#![allow(dead_code, unused_macros, unreachable_pub, clippy::result_large_err)]

pub mod backends;
pub mod server;
