//! ICY metadata: the standalone demuxer under random chunk splits and
//! hostile input (property tests), and ICY streams end to end through
//! `HttpFile` on every enabled backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use kithara_stream::file::icy::{IcyDemuxer, IcyMetadata, IcyPart, MAX_METADATA_LEN};
use proptest::prelude::*;

/// One metadata block as sent: the length byte, the text, NUL padding.
fn block(text: &[u8]) -> Vec<u8> {
    let len = text.len().div_ceil(16);
    let mut b = vec![len as u8];
    b.extend_from_slice(text);
    b.resize(1 + len * 16, 0);
    b
}

/// An ICY body: `audio` with `blocks[i]` after every `metaint` audio bytes
/// (an empty block where the list has run out).
fn interleave(audio: &[u8], metaint: usize, blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, piece) in audio.chunks(metaint).enumerate() {
        out.extend_from_slice(piece);
        if piece.len() == metaint {
            match blocks.get(i) {
                Some(b) => out.extend_from_slice(b),
                None => out.push(0),
            }
        }
    }
    out
}

/// Feeds `body` in pieces cut at `cuts` (sorted positions); returns the
/// audio and the metadata results with their offsets.
type Demuxed = (Vec<u8>, Vec<(u64, Result<IcyMetadata, String>)>);

fn demux(body: &[u8], metaint: usize, cuts: &[usize]) -> Demuxed {
    let mut d = IcyDemuxer::new(metaint);
    let mut audio = Vec::new();
    let mut metas = Vec::new();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    points.push(body.len());
    for p in points {
        if p < at {
            continue;
        }
        d.feed(&Bytes::copy_from_slice(&body[at..p]), |part| match part {
            IcyPart::Audio(b) => audio.extend_from_slice(&b),
            IcyPart::Metadata {
                audio_offset,
                metadata,
            } => metas.push((audio_offset, metadata.map_err(|e| e.to_string()))),
        });
        at = p;
    }
    (audio, metas)
}

fn title_block(title: &str) -> Vec<u8> {
    block(format!("StreamTitle='{title}';").as_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// However the body is split, the audio comes out whole and exact and
    /// each titled block is reported once, at the right audio offset.
    #[test]
    fn random_splits_keep_audio_exact(
        metaint in 1usize..300,
        audio_len in 0usize..3000,
        seed in any::<u64>(),
        titles in proptest::collection::vec(proptest::option::of("[ -&(-~]{0,60}"), 0..12),
        mut cuts in proptest::collection::vec(0usize..6000, 0..40),
    ) {
        let audio: Vec<u8> = (0..audio_len).map(|i| (i as u64 ^ seed).wrapping_mul(31) as u8).collect();
        let blocks: Vec<Vec<u8>> = titles
            .iter()
            .map(|t| match t {
                // No quotes (a quote followed by ';' ends a value; the
                // parser tests cover quotes).
                Some(t) => title_block(t),
                None => vec![0],
            })
            .collect();
        let body = interleave(&audio, metaint, &blocks);
        cuts.sort_unstable();
        let (out, metas) = demux(&body, metaint, &cuts);
        prop_assert_eq!(&out, &audio);
        let expected: Vec<(u64, Option<String>)> = titles
            .iter()
            .enumerate()
            .take(audio_len / metaint)
            .filter_map(|(i, t)| t.as_ref().map(|t| ((i as u64 + 1) * metaint as u64, Some(t.clone()))))
            .collect();
        let got: Vec<(u64, Option<String>)> = metas
            .into_iter()
            .map(|(o, m)| (o, m.ok().and_then(|m| m.title)))
            .collect();
        prop_assert_eq!(got, expected);
    }

    /// Garbage blocks (any bytes, up to the 4080-byte maximum) never panic
    /// and never leak into the audio: the audio is exactly what lies
    /// between the blocks.
    #[test]
    fn garbage_blocks_never_leak(
        metaint in 1usize..64,
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..MAX_METADATA_LEN), 0..6),
        cuts in proptest::collection::vec(0usize..30_000, 0..20),
    ) {
        let audio: Vec<u8> = (0..metaint * (blocks.len() + 1)).map(|i| (i % 251) as u8).collect();
        let framed: Vec<Vec<u8>> = blocks.iter().map(|b| block(b)).collect();
        let body = interleave(&audio, metaint, &framed);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let (out, metas) = demux(&body, metaint, &cuts);
        prop_assert_eq!(out, audio);
        // Only blocks with content are reported.
        prop_assert!(metas.len() <= blocks.len());
    }

    /// Arbitrary bodies: no panic, and the audio never exceeds the input.
    #[test]
    fn any_input_is_safe(
        metaint in 0usize..40,
        body in proptest::collection::vec(any::<u8>(), 0..5000),
        cuts in proptest::collection::vec(0usize..5000, 0..10),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let (out, _) = demux(&body, metaint, &cuts);
        prop_assert!(out.len() <= body.len());
    }
}

#[test]
fn the_largest_block_and_non_utf8_titles() {
    let mut text = b"StreamTitle='".to_vec();
    text.extend(std::iter::repeat_n(b'x', MAX_METADATA_LEN - 15));
    text.extend_from_slice(b"';");
    assert_eq!(text.len(), MAX_METADATA_LEN);
    let latin1 = block(b"StreamTitle='Caf\xe9 \xfc';");
    let body = interleave(b"aaaabbbbcc", 4, &[block(&text), latin1]);
    let (audio, metas) = demux(&body, 4, &[1, 2, 3, 100, 4090]);
    assert_eq!(audio, b"aaaabbbbcc");
    assert_eq!(metas.len(), 2);
    let first = metas[0].1.as_ref().unwrap().title.as_ref().unwrap();
    assert_eq!(first.len(), MAX_METADATA_LEN - 15);
    assert_eq!(metas[1].0, 8);
    assert_eq!(
        metas[1].1.as_ref().unwrap().title.as_deref(),
        Some("Caf\u{e9} \u{fc}")
    );
}

#[test]
fn a_malformed_block_is_a_typed_error_and_the_stream_goes_on() {
    let body = interleave(b"aaaabbbb", 4, &[block(b"not metadata at all")]);
    let (audio, metas) = demux(&body, 4, &[]);
    assert_eq!(audio, b"aaaabbbb");
    assert_eq!(metas.len(), 1);
    let err = metas[0].1.as_ref().unwrap_err();
    assert!(
        err.contains("malformed metadata block at audio byte 4"),
        "{err}"
    );
}

#[cfg(any(feature = "reqwest", feature = "surf"))]
mod http {
    use std::io::Read;
    use std::time::Duration;

    use kithara_stream::dl::{Downloader, DownloaderConfig};
    use kithara_stream::file::LiveEvent;
    use kithara_stream::{HttpFile, HttpFileConfig, Stream};

    use super::support::backends::{Env, backend_tests};
    use super::support::server::{GenConfig, GenServer, gen_check, gen_title};

    const STEP: Duration = Duration::from_secs(30);

    /// The (offset, title) of each metadata event.
    fn titles(events: &[LiveEvent]) -> Vec<(u64, Option<String>)> {
        events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Metadata { offset, metadata } => Some((*offset, metadata.title.clone())),
                _ => None,
            })
            .collect()
    }

    /// The station through 2 MiB of bounded storage, ICY metadata on.
    async fn open_icy(env: &Env, server: &GenServer) -> Stream<HttpFile> {
        let cfg = HttpFileConfig::from_url(server.url())
            .downloader(Downloader::new(DownloaderConfig::new(
                env.spawn.clone(),
                env.client.clone(),
            )))
            .read_timeout(Some(STEP))
            .bounded_memory(2 << 20)
            .icy_metadata(true);
        env.timeout(STEP, Stream::<HttpFile>::new(cfg))
            .await
            .expect("opened in time")
            .expect("opened")
    }

    backend_tests! {
        /// An ICY stream through bounded storage: the reader sees the audio
        /// bytes only (exact, in order), each title arrives as an event at
        /// the audio offset where it starts, and the station's headers are
        /// exposed.
        fn icy_stream_is_stripped_and_titles_published(env) {
            let metaint = 16_000;
            let every = 3;
            let server = GenServer::start(GenConfig {
                metaint: Some(metaint),
                title_every: every,
                ..GenConfig::default()
            });
            let mut s = open_icy(&env, &server).await;
            let headers = s.source().icy_headers().expect("icy headers");
            assert_eq!(headers.name.as_deref(), Some("Loopback FM"));
            assert_eq!(headers.genre.as_deref(), Some("Test"));
            assert_eq!(headers.bitrate, Some(128));
            assert_eq!(headers.metaint, Some(metaint));
            assert!(s.source().is_live());
            let total = 6u64 << 20;
            let (events, title) = std::thread::spawn(move || {
                let mut buf = vec![0u8; 50_000];
                let mut pos = 0u64;
                while pos < total {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0);
                    assert!(gen_check(pos, &buf[..n]), "metadata leaked near {pos}");
                    pos += n as u64;
                }
                // The title first: the download goes on meanwhile, so the
                // events drained after it include it (and maybe newer ones).
                let title = s.source().icy_title();
                (s.source().live_events(), title)
            })
            .join()
            .unwrap();
            let metas = titles(&events);
            assert!(metas.len() >= 5, "{} titles", metas.len());
            for (i, (offset, t)) in metas.iter().enumerate() {
                let n = i as u64 + 1;
                assert_eq!(*offset, n * every * metaint as u64);
                assert_eq!(t.as_deref(), Some(gen_title(n).as_str()));
            }
            let title = title.expect("a current title");
            let current = (title.offset, title.metadata.title);
            assert!(metas.contains(&current), "{current:?} is not among {metas:?}");
        }

        /// An ICY stream that drops mid-block: the reconnect starts a new
        /// demuxer (the new connection's blocks are framed from its own
        /// start), the audio stays exact on both sides of the join, and the
        /// titles of the new connection count from the join.
        fn icy_stream_reconnects_with_a_fresh_demuxer(env) {
            let metaint = 8_000usize;
            // The server's block sizes (see `GenServer`): titled every 2nd.
            let block_len = |k: u64| {
                if k.is_multiple_of(2) {
                    let text = format!(
                        "StreamTitle='{}';StreamUrl='http://127.0.0.1/{k}';",
                        gen_title(k / 2)
                    );
                    1 + text.len().div_ceil(16) as u64 * 16
                } else {
                    1
                }
            };
            // Cut 3 bytes into the 40th block (a titled one).
            let raw_cut = 40 * metaint as u64 + (1..40).map(block_len).sum::<u64>() + 3;
            let join = 40 * metaint as u64;
            let server = GenServer::start(GenConfig {
                metaint: Some(metaint),
                title_every: 2,
                drop_after: Some(raw_cut),
                ..GenConfig::default()
            });
            let mut s = open_icy(&env, &server).await;
            let total = join as usize + 30 * metaint;
            let (data, events) = std::thread::spawn(move || {
                let mut data = vec![0u8; total];
                s.read_exact(&mut data).unwrap();
                (data, s.source().live_events())
            })
            .join()
            .unwrap();
            assert!(events.contains(&LiveEvent::Discontinuity { offset: join }), "{events:?}");
            assert!(gen_check(0, &data[..join as usize]), "audio before the join");
            assert!(gen_check(0, &data[join as usize..]), "audio after the join");
            let metas = titles(&events);
            // First connection: blocks 2, 4, ..., 38 (the 40th was cut);
            // second: from the join, blocks 2, 4, ... again.
            let mut expected: Vec<(u64, Option<String>)> = (1..20)
                .map(|n| (2 * n * metaint as u64, Some(gen_title(n))))
                .collect();
            expected.extend((1..=15).map(|n| (join + 2 * n * metaint as u64, Some(gen_title(n)))));
            assert!(metas.len() >= 19 + 14, "{metas:?}");
            let n = expected.len().min(metas.len());
            assert_eq!(&metas[..n], &expected[..n]);
        }
    }
}
