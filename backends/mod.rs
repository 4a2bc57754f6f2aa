//! Feature-gated backends: the only place in the crate that names a runtime
//! or an HTTP library. Each is a thin adapter with no policy of its own.
//!
//! | module | implements | feature |
//! |---|---|---|
//! | [`tokio`] | [`Spawn`](crate::rt::Spawn) + timer on tokio | `tokio` |
//! | [`reqwest`] | [`HttpClient`](crate::net::HttpClient) on reqwest (rustls) | `reqwest` (implies `tokio`) |
//! | [`async_std`] | [`Spawn`](crate::rt::Spawn) + timer on async-std | `async-std` |
//! | [`surf`] | [`HttpClient`](crate::net::HttpClient) on surf (async-h1, rustls) | `surf` (implies `async-std`) |
//!
//! Any other executor or client plugs in by implementing the two traits.

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "surf")]
pub mod surf;
#[cfg(feature = "tokio")]
pub mod tokio;
