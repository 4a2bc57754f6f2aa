//! `Stream<HttpFile>` as a symphonia `MediaSource`, for symphonia 0.6
//! (feature `symphonia`) and 0.5 (feature `symphonia-05`): a WAV decoded and
//! seeked while it downloads, every sample checked. No network.
#![cfg(any(feature = "symphonia", feature = "symphonia-05"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dl_common;

use std::sync::Arc;
use std::time::Duration;

use dl_common::{PoolSpawn, block_on_timeout, bounded_thread};
use futures::FutureExt;
use futures::StreamExt;
use futures::channel::oneshot;
use futures::future::Shared;
use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::{
    HttpClient, HttpRequest, HttpResponse, MemoryClient, MemoryResource, NetError,
};
use kithara_stream::rt::BoxFuture;
use kithara_stream::{HttpFile, HttpFileConfig, Stream};

const FRAMES: u32 = 40_000;
/// Where the decoders seek to (in frames), well past what has arrived.
const SEEK_TS: u64 = 30_000;

/// A mono 16-bit PCM WAV of `frames` samples `i as i16`.
fn wav(frames: u32) -> Vec<u8> {
    let data_len = frames * 2;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames {
        out.extend_from_slice(&(i as i16).to_le_bytes());
    }
    out
}

/// Holds every response body after its first `HOLD` bytes until `open`
/// fires: the decoder starts on a stream whatever the machine's load.
struct Gate {
    inner: MemoryClient,
    open: Shared<oneshot::Receiver<()>>,
}

/// Body bytes let through before the gate opens.
const HOLD: usize = 4000;

impl HttpClient for Gate {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let response = self.inner.send(request).await?;
            let open = self.open.clone();
            let mut seen = 0;
            let body = response.body.then(move |chunk| {
                let wait = seen >= HOLD;
                seen += chunk.as_ref().map_or(0, |c| c.len());
                let open = open.clone();
                async move {
                    if wait {
                        let _ = open.await;
                    }
                    chunk
                }
            });
            Ok(HttpResponse::new(
                response.status,
                response.headers,
                Box::pin(body),
            ))
        })
    }
}

/// A stream of a `FRAMES`-frame WAV, served in 1000-byte chunks from memory,
/// its download held after [`HOLD`] bytes until the returned sender is
/// dropped or fired.
fn open_stream() -> (Stream<HttpFile>, oneshot::Sender<()>) {
    const URL: &str = "http://127.0.0.1/a.wav";
    let inner = MemoryClient::new();
    inner.insert_resource(
        URL,
        MemoryResource::new(wav(FRAMES))
            .content_type("audio/wav")
            .chunk_size(1000),
    );
    let (release, open) = oneshot::channel();
    let client = Gate {
        inner,
        open: open.shared(),
    };
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(DownloaderConfig::new(Arc::new(spawn), Arc::new(client)));
    let cfg = HttpFileConfig::new(URL)
        .unwrap()
        .downloader(dl)
        .read_timeout(Some(Duration::from_secs(20)));
    let stream = block_on_timeout(Duration::from_secs(20), Stream::<HttpFile>::new(cfg)).unwrap();
    (stream, release)
}

/// Starts `decode` on a plain thread (reads block) while the download is
/// held, then lets the download go on, and checks what the decoder saw:
/// `(first timestamp after the seek, samples decoded from there)`.
fn check(
    stream: Stream<HttpFile>,
    release: oneshot::Sender<()>,
    decode: impl FnOnce(Stream<HttpFile>) -> (u64, u64) + Send + 'static,
) {
    let storage = stream.source().storage().clone();
    let total = 44 + 2 * u64::from(FRAMES);
    assert!(storage.available().covered_len() <= HOLD as u64);
    let decoder = bounded_thread("probe, seek and decode", move || decode(stream));
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        storage.available().covered_len() < total,
        "the decoder started before the download ended"
    );
    let _ = release.send(());
    let (seeked_to, got) = decoder.join(Duration::from_secs(60));
    assert!(seeked_to <= SEEK_TS, "seeked to {seeked_to}");
    assert_eq!(
        seeked_to + got,
        u64::from(FRAMES),
        "every sample after the seek"
    );
}

/// symphonia 0.6.
#[cfg(feature = "symphonia")]
#[test]
fn symphonia_06_decodes_and_seeks_a_stream() {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, SeekMode, SeekTo, TrackType};
    use symphonia::core::io::{MediaSource, MediaSourceStream};
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::units::Timestamp;

    let (stream, release) = open_stream();
    assert!(stream.is_seekable());
    assert_eq!(stream.byte_len(), Some(44 + 2 * u64::from(FRAMES)));
    check(stream, release, |stream| {
        let mss = MediaSourceStream::new(Box::new(stream), Default::default());
        let mut hint = Hint::new();
        hint.with_extension("wav");
        let mut format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .unwrap();
        let track = format.default_track(TrackType::Audio).unwrap().clone();
        let params = track.codec_params.as_ref().unwrap().audio().unwrap();
        let mut decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .unwrap();
        let ts = Timestamp::new(SEEK_TS as i64);
        let seeked = format
            .seek(
                SeekMode::Accurate,
                SeekTo::Timestamp {
                    ts,
                    track_id: track.id,
                },
            )
            .unwrap();
        decoder.reset();
        let first = seeked.actual_ts.get() as u64;
        let (mut next, mut got) = (first, 0u64);
        let mut samples: Vec<i16> = Vec::new();
        while let Some(packet) = format.next_packet().unwrap() {
            let buf = decoder.decode(&packet).unwrap();
            buf.copy_to_vec_interleaved(&mut samples);
            let pts = packet.pts.get() as u64;
            assert_eq!(pts, next);
            for (k, s) in samples.iter().enumerate() {
                assert_eq!(*s, (pts + k as u64) as i16);
            }
            next += samples.len() as u64;
            got += samples.len() as u64;
        }
        (first, got)
    });
}

/// symphonia 0.5.
#[cfg(feature = "symphonia-05")]
#[test]
fn symphonia_05_decodes_and_seeks_a_stream() {
    use symphonia_05::core::audio::SampleBuffer;
    use symphonia_05::core::codecs::DecoderOptions;
    use symphonia_05::core::errors::Error;
    use symphonia_05::core::formats::{FormatOptions, SeekMode, SeekTo};
    use symphonia_05::core::io::{MediaSource, MediaSourceStream};
    use symphonia_05::core::meta::MetadataOptions;
    use symphonia_05::core::probe::Hint;

    let (stream, release) = open_stream();
    assert!(stream.is_seekable());
    assert_eq!(stream.byte_len(), Some(44 + 2 * u64::from(FRAMES)));
    check(stream, release, |stream| {
        let mss = MediaSourceStream::new(Box::new(stream), Default::default());
        let mut hint = Hint::new();
        hint.with_extension("wav");
        let probed = symphonia_05::default::get_probe()
            .format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .unwrap();
        let mut format = probed.format;
        let track = format.default_track().unwrap().clone();
        let mut decoder = symphonia_05::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .unwrap();
        let seeked = format
            .seek(
                SeekMode::Accurate,
                SeekTo::TimeStamp {
                    ts: SEEK_TS,
                    track_id: track.id,
                },
            )
            .unwrap();
        decoder.reset();
        let (mut next, mut got) = (seeked.actual_ts, 0u64);
        loop {
            let packet = match format.next_packet() {
                Ok(p) => p,
                Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("{e}"),
            };
            let buf = decoder.decode(&packet).unwrap();
            let mut samples = SampleBuffer::<i16>::new(buf.capacity() as u64, *buf.spec());
            samples.copy_interleaved_ref(buf);
            assert_eq!(packet.ts(), next);
            for (k, s) in samples.samples().iter().enumerate() {
                assert_eq!(*s, (packet.ts() + k as u64) as i16);
            }
            next += samples.samples().len() as u64;
            got += samples.samples().len() as u64;
        }
        (seeked.actual_ts, got)
    });
}
