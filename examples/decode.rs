//! A real decoder on the stream while it downloads: symphonia decodes a
//! generated WAV served (throttled) on 127.0.0.1 through
//! `Stream::<HttpFile>`'s `Read + Seek`, seeks by time (which re-aims the
//! download with a `Range` request), and the decoded PCM is compared with
//! the source's samples.
//!
//! ```text
//! cargo run --example decode
//! ```

mod support;

use std::time::{Duration, Instant};

use kithara_stream::{HttpFile, HttpFileConfig, Stream};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::{Time, Timestamp};

use support::BoxError;

/// Decodes the next packet of `track` as interleaved little-endian i16
/// bytes, with its first frame's timestamp; `None` at the end of the stream.
fn next_pcm(
    format: &mut dyn FormatReader,
    decoder: &mut dyn AudioDecoder,
    track: u32,
) -> Result<Option<(u64, Vec<u8>)>, BoxError> {
    let mut samples: Vec<i16> = Vec::new();
    while let Some(packet) = format.next_packet()? {
        if packet.track_id != track {
            continue;
        }
        decoder
            .decode(&packet)?
            .copy_to_vec_interleaved(&mut samples);
        let bytes = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let ts = u64::try_from(packet.pts.get())?;
        return Ok(Some((ts, bytes)));
    }
    Ok(None)
}

fn main() -> Result<(), BoxError> {
    const HEADER: usize = 44; // the generated WAV's header length
    const FRAME: usize = 4; // stereo i16
    let wav = support::generate_wav(5);
    let addr = support::serve(wav.clone(), "audio/wav", 400 * 1024)?;
    println!(
        "serving a {} byte WAV on http://{addr}/tones.wav at 400 KiB/s",
        wav.len()
    );

    let (rt, downloader) = support::tokio_downloader()?;
    let config = HttpFileConfig::new(&format!("http://{addr}/tones.wav"))?
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    let stream = rt.block_on(Stream::<HttpFile>::new(config))?;
    println!("media: {:?}", stream.source().media_info());
    let storage = stream.source().storage().clone();

    // Decoding happens here, on a plain thread, while the runtime downloads.
    // With the `symphonia` feature a `Stream` is a symphonia `MediaSource`.
    let mss = MediaSourceStream::new(Box::new(stream), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let mut format = symphonia::default::get_probe().probe(
        &hint,
        mss,
        FormatOptions::default(),
        MetadataOptions::default(),
    )?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or("no audio track")?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or("not an audio track")?
        .clone();
    println!(
        "track: {:?}, {} Hz, {} channels",
        params.codec,
        params.sample_rate.unwrap_or(0),
        params.channels.as_ref().map_or(0, |c| c.count())
    );
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())?;
    let check = |ts: u64, pcm: &[u8]| -> Result<(), BoxError> {
        let at = HEADER + ts as usize * FRAME;
        if wav.get(at..at + pcm.len()) != Some(pcm) {
            return Err(format!("decoded samples at frame {ts} differ from the source").into());
        }
        Ok(())
    };

    // One second of audio from the start, while the rest downloads.
    let started = Instant::now();
    let mut frames = 0u64;
    while frames < 44_100 {
        let (ts, pcm) = next_pcm(&mut *format, &mut *decoder, track_id)?.ok_or("ended early")?;
        check(ts, &pcm)?;
        frames += (pcm.len() / FRAME) as u64;
    }
    println!(
        "decoded {frames} frames in {:.0} ms with {} of {} bytes downloaded",
        started.elapsed().as_secs_f64() * 1e3,
        storage.available().covered_len(),
        wav.len()
    );

    // A time seek far ahead of the download: the byte seek under it re-aims.
    let t = Instant::now();
    let seeked = format.seek(
        SeekMode::Accurate,
        SeekTo::Time {
            time: Time::try_new(4, 0).ok_or("4 s is a time")?,
            track_id: Some(track_id),
        },
    )?;
    decoder.reset();
    let (ts, pcm) = next_pcm(&mut *format, &mut *decoder, track_id)?.ok_or("nothing after seek")?;
    check(ts, &pcm)?;
    println!(
        "seek to 4.0 s (frame {}): first packet in {:.1} ms, matches the source",
        seeked.actual_ts.get(),
        t.elapsed().as_secs_f64() * 1e3
    );

    // Back to the start and everything to the end, compared sample by sample.
    let ts = Timestamp::ZERO;
    format.seek(SeekMode::Accurate, SeekTo::Timestamp { ts, track_id })?;
    decoder.reset();
    let mut total = 0u64;
    while let Some((ts, pcm)) = next_pcm(&mut *format, &mut *decoder, track_id)? {
        check(ts, &pcm)?;
        total += (pcm.len() / FRAME) as u64;
    }
    let expected = ((wav.len() - HEADER) / FRAME) as u64;
    if total != expected {
        return Err(format!("decoded {total} frames, the source has {expected}").into());
    }
    println!("decoded all {total} frames; every sample matches the source");
    Ok(())
}
