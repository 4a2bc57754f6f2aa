//! `Stream<HttpFile>` as a symphonia `MediaSource` (feature `symphonia`):
//! a WAV decoded while it downloads, every sample checked. No network.
#![cfg(feature = "symphonia")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dl_common;

use std::sync::Arc;
use std::time::Duration;

use dl_common::{PoolSpawn, block_on_timeout, within};
use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::{MemoryClient, MemoryResource};
use kithara_stream::{HttpFile, HttpFileConfig, Stream};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error;
use symphonia::core::formats::{FormatOptions, SeekMode, SeekTo};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

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

#[test]
fn symphonia_decodes_and_seeks_a_stream() {
    const URL: &str = "http://127.0.0.1/a.wav";
    let frames = 40_000u32;
    let client = MemoryClient::new();
    client.insert_resource(
        URL,
        MemoryResource::new(wav(frames))
            .content_type("audio/wav")
            .chunk_size(1000),
    );
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(DownloaderConfig::new(Arc::new(spawn), Arc::new(client)));
    let cfg = HttpFileConfig::new(URL)
        .unwrap()
        .downloader(dl)
        .read_timeout(Some(Duration::from_secs(20)));
    let stream = block_on_timeout(Duration::from_secs(20), Stream::<HttpFile>::new(cfg)).unwrap();
    assert!(stream.is_seekable());
    assert_eq!(stream.byte_len(), Some(44 + 2 * u64::from(frames)));

    let decoded = within(
        Duration::from_secs(60),
        "probe, seek and decode",
        move || {
            let mss = MediaSourceStream::new(Box::new(stream), Default::default());
            let mut hint = Hint::new();
            hint.with_extension("wav");
            let probed = symphonia::default::get_probe()
                .format(
                    &hint,
                    mss,
                    &FormatOptions::default(),
                    &MetadataOptions::default(),
                )
                .unwrap();
            let mut format = probed.format;
            let track = format.default_track().unwrap().clone();
            let mut decoder = symphonia::default::get_codecs()
                .make(&track.codec_params, &DecoderOptions::default())
                .unwrap();
            let seeked = format
                .seek(
                    SeekMode::Accurate,
                    SeekTo::TimeStamp {
                        ts: 30_000,
                        track_id: track.id,
                    },
                )
                .unwrap();
            decoder.reset();
            let mut next = seeked.actual_ts;
            let mut got = 0u64;
            loop {
                let packet = match format.next_packet() {
                    Ok(p) => p,
                    Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        break;
                    }
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
        },
    );
    assert!(decoded.0 <= 30_000);
    assert_eq!(decoded.0 + decoded.1, u64::from(frames));
}
