//! `tone:` play sources: what `play('tone:440/1000')` means.
//!
//! A spec is a comma-separated list of segments `FREQ[+FREQ...]/MS`, played in
//! order; frequency `0` is silence. Named cadences stand for common ones:
//! `ringback` (440+480 Hz, 2 s on, 4 s off), `busy` (480+620 Hz, 0.5 s on,
//! 0.5 s off), `beep` (1 kHz for 200 ms). `play(spec, {loop: true})` repeats
//! the whole list. The engine renders tones from the parsed [`ToneSpec`]; the
//! simulator uses its length.
//!
//! ```
//! use switchboard_scenarios::tone::ToneSpec;
//! let spec = ToneSpec::parse("tone:350+440/1000,0/500").unwrap();
//! assert_eq!(spec.segments.len(), 2);
//! assert_eq!(spec.duration_ms(), 1500);
//! assert_eq!(ToneSpec::parse("tone:ringback").unwrap().duration_ms(), 6000);
//! ```

/// Longest single segment (a minute).
pub const MAX_SEGMENT_MS: u32 = 60_000;
/// Most segments in one spec.
pub const MAX_SEGMENTS: usize = 32;
/// Most frequencies mixed in one segment.
pub const MAX_FREQUENCIES: usize = 4;
/// Highest frequency (Hz) a narrowband call can carry.
pub const MAX_FREQUENCY_HZ: u32 = 4000;

/// One part of a tone: frequencies played together (none: silence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToneSegment {
    pub frequencies_hz: Vec<u32>,
    pub duration_ms: u32,
}

/// A parsed `tone:` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToneSpec {
    pub segments: Vec<ToneSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tone {spec:?}: {problem}")]
pub struct ToneError {
    pub spec: String,
    pub problem: String,
}

impl ToneSpec {
    /// Parses `tone:...` (the `tone:` prefix is required).
    pub fn parse(source: &str) -> Result<ToneSpec, ToneError> {
        let error = |problem: &str| ToneError {
            spec: source.to_string(),
            problem: problem.to_string(),
        };
        let Some(body) = source.strip_prefix("tone:") else {
            return Err(error("a tone source starts with \"tone:\""));
        };
        let body = match body {
            "ringback" => "440+480/2000,0/4000",
            "busy" => "480+620/500,0/500",
            "beep" => "1000/200",
            other => other,
        };
        if body.is_empty() {
            return Err(error("no segments (write e.g. tone:440/1000)"));
        }
        let mut segments = Vec::new();
        for part in body.split(',') {
            if segments.len() == MAX_SEGMENTS {
                return Err(error(&format!("more than {MAX_SEGMENTS} segments")));
            }
            segments.push(parse_segment(part.trim()).map_err(|p| error(&p))?);
        }
        Ok(ToneSpec { segments })
    }

    /// Length of one pass through the segments.
    pub fn duration_ms(&self) -> u64 {
        self.segments.iter().map(|s| u64::from(s.duration_ms)).sum()
    }
}

fn parse_segment(part: &str) -> Result<ToneSegment, String> {
    let Some((frequencies, duration)) = part.split_once('/') else {
        return Err(format!(
            "segment {part:?} is not FREQ/MS (e.g. 440/1000, 350+440/500, 0/250 for silence)"
        ));
    };
    let duration_ms: u32 = duration
        .trim()
        .parse()
        .map_err(|_| format!("duration {duration:?} is not a whole number of milliseconds"))?;
    if duration_ms == 0 || duration_ms > MAX_SEGMENT_MS {
        return Err(format!(
            "duration {duration_ms} ms is outside 1..={MAX_SEGMENT_MS}"
        ));
    }
    let mut frequencies_hz = Vec::new();
    for frequency in frequencies.split('+') {
        let hz: u32 = frequency
            .trim()
            .parse()
            .map_err(|_| format!("frequency {frequency:?} is not a whole number of Hz"))?;
        if hz > MAX_FREQUENCY_HZ {
            return Err(format!("frequency {hz} Hz is above {MAX_FREQUENCY_HZ} Hz"));
        }
        if hz > 0 {
            frequencies_hz.push(hz);
        }
    }
    if frequencies_hz.len() > MAX_FREQUENCIES {
        return Err(format!("more than {MAX_FREQUENCIES} frequencies at once"));
    }
    Ok(ToneSegment {
        frequencies_hz,
        duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_tone_and_cadences() {
        let spec = ToneSpec::parse("tone:440/1000").unwrap();
        assert_eq!(
            spec.segments,
            vec![ToneSegment {
                frequencies_hz: vec![440],
                duration_ms: 1000
            }]
        );
        let ring = ToneSpec::parse("tone:ringback").unwrap();
        assert_eq!(ring.segments[0].frequencies_hz, vec![440, 480]);
        assert!(ring.segments[1].frequencies_hz.is_empty(), "0 is silence");
        assert_eq!(ToneSpec::parse("tone:busy").unwrap().duration_ms(), 1000);
    }

    #[test]
    fn malformed_specs_say_what_is_wrong() {
        for (spec, part) in [
            ("440/1000", "starts with"),
            ("tone:", "no segments"),
            ("tone:440", "FREQ/MS"),
            ("tone:440/0", "outside"),
            ("tone:99999/10", "above"),
            ("tone:a/10", "not a whole number of Hz"),
            ("tone:1+2+3+4+5/10", "frequencies"),
        ] {
            let err = ToneSpec::parse(spec).unwrap_err();
            assert!(err.to_string().contains(part), "{spec}: {err}");
        }
    }
}
