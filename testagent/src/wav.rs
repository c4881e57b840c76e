//! WAV files in and out: 8 kHz mono 16-bit is what the agent plays and
//! records.

use std::path::Path;

use crate::analysis::SAMPLE_RATE;
use crate::error::{AgentError, Result};

fn wav_error(path: &Path, reason: impl ToString) -> AgentError {
    AgentError::Wav {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads an 8 kHz WAV (16-bit integer or 32-bit float), mixing channels
/// down to mono. Other rates are refused: convert them first, e.g.
/// `sox in.wav -r 8000 -c 1 out.wav`.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<i16>> {
    let path = path.as_ref();
    let mut reader = hound::WavReader::open(path).map_err(|e| wav_error(path, e))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE {
        return Err(wav_error(
            path,
            format!(
                "sample rate is {} Hz; the agent plays 8000 Hz (convert with sox)",
                spec.sample_rate
            ),
        ));
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => reader
            .samples::<i16>()
            .map(|s| s.map(|s| f32::from(s) / 32768.0))
            .collect::<Result<_, _>>()
            .map_err(|e| wav_error(path, e))?,
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| wav_error(path, e))?,
        (format, bits) => {
            return Err(wav_error(
                path,
                format!("unsupported sample format {format:?} with {bits} bits"),
            ))
        }
    };
    Ok(interleaved
        .chunks(channels)
        .map(|frame| {
            let mixed = frame.iter().sum::<f32>() / frame.len() as f32;
            (mixed * 32768.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect())
}

/// Writes 8 kHz mono 16-bit samples.
pub fn write(path: impl AsRef<Path>, samples: &[i16]) -> Result<()> {
    let path = path.as_ref();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(|e| wav_error(path, e))?;
    for &sample in samples {
        writer
            .write_sample(sample)
            .map_err(|e| wav_error(path, e))?;
    }
    writer.finalize().map_err(|e| wav_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refuse_other_rates() {
        let dir = std::env::temp_dir().join(format!("sbagent-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tone.wav");
        let samples: Vec<i16> = (0..800).map(|i| (i * 40 - 16000) as i16).collect();
        write(&path, &samples).expect("write");
        assert_eq!(read(&path).expect("read"), samples);

        let stereo = dir.join("stereo16k.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&stereo, spec).expect("create");
        writer.write_sample(1i16).expect("sample");
        writer.write_sample(1i16).expect("sample");
        writer.finalize().expect("finalize");
        let error = read(&stereo).expect_err("16 kHz is refused");
        assert!(error.to_string().contains("16000 Hz"), "{error}");
        assert!(read(dir.join("missing.wav")).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
