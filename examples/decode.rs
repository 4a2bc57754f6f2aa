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

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use kithara_stream::{HttpFile, HttpFileConfig, Stream};
use symphonia_05::core::audio::SampleBuffer;
use symphonia_05::core::codecs::{Decoder, DecoderOptions};
use symphonia_05::core::errors::Error as DecodeError;
use symphonia_05::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia_05::core::io::{MediaSource, MediaSourceStream};
use symphonia_05::core::meta::MetadataOptions;
use symphonia_05::core::probe::Hint;
use symphonia_05::core::units::Time;

use support::BoxError;

/// symphonia reads any `Read + Seek + Send + Sync` that says whether it can
/// seek and how long it is. (With the crate's `symphonia` feature,
/// `Stream<T>` is such a `MediaSource` itself; this wrapper shows what it
/// takes without the feature.)
struct StreamSource(Stream<HttpFile>);

impl Read for StreamSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for StreamSource {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl MediaSource for StreamSource {
    fn is_seekable(&self) -> bool {
        true
    }
    fn byte_len(&self) -> Option<u64> {
        self.0.len()
    }
}

/// Decodes the next packet of `track` as interleaved little-endian i16
/// bytes; `None` at the end of the stream.
fn next_pcm(
    format: &mut dyn FormatReader,
    decoder: &mut dyn Decoder,
    track: u32,
) -> Result<Option<(u64, Vec<u8>)>, BoxError> {
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(DecodeError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if packet.track_id() != track {
            continue;
        }
        let decoded = decoder.decode(&packet)?;
        let mut buf = SampleBuffer::<i16>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        let bytes = buf.samples().iter().flat_map(|s| s.to_le_bytes()).collect();
        return Ok(Some((packet.ts(), bytes)));
    }
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
    let mss = MediaSourceStream::new(Box::new(StreamSource(stream)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let probed = symphonia_05::default::get_probe().format(
        &hint,
        mss,
        &FormatOptions::default(),
        &MetadataOptions::default(),
    )?;
    let mut format = probed.format;
    let track = format.default_track().ok_or("no audio track")?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    println!(
        "track: {:?}, {} Hz, {} channels",
        params.codec,
        params.sample_rate.unwrap_or(0),
        params.channels.map_or(0, |c| c.count())
    );
    let mut decoder =
        symphonia_05::default::get_codecs().make(&params, &DecoderOptions::default())?;
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
            time: Time::new(4, 0.0),
            track_id: Some(track_id),
        },
    )?;
    decoder.reset();
    let (ts, pcm) = next_pcm(&mut *format, &mut *decoder, track_id)?.ok_or("nothing after seek")?;
    check(ts, &pcm)?;
    println!(
        "seek to 4.0 s (frame {}): first packet in {:.1} ms, matches the source",
        seeked.actual_ts,
        t.elapsed().as_secs_f64() * 1e3
    );

    // Back to the start and everything to the end, compared sample by sample.
    format.seek(SeekMode::Accurate, SeekTo::TimeStamp { ts: 0, track_id })?;
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
