//! Optional logs: with the `tracing` feature, the download's decisions
//! (requests and their answers, re-aims, retries, resumes, commits,
//! failures, version changes) are `tracing` events with target
//! `kithara_stream`; without it, every call site compiles to nothing and
//! its arguments are not evaluated.

/// `trace!(level, fields…; "message", args…)`: a `tracing` event at
/// `level` (`debug`, `info`, `warn`) when the feature is on, nothing when
/// it is off.
macro_rules! trace {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: "kithara_stream", $($arg)+);
        }
    }};
}

pub(crate) use trace;

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    /// A `tracing` writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            crate::cancel::lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_reach_a_subscriber_with_the_crate_target() {
        let out = Capture::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            super::trace!(debug, offset = 7u64, "re-aim");
        });
        let text = String::from_utf8(crate::cancel::lock(&out.0).clone()).unwrap();
        assert!(text.contains("kithara_stream"), "{text}");
        assert!(
            text.contains("re-aim") && text.contains("offset=7"),
            "{text}"
        );
    }
}
