//! Small playout-rate changes without clicks: shorten or lengthen one frame
//! by a few milliseconds by cross-fading it with a copy of itself shifted
//! by the best-matching lag (a one-step WSOLA). That is how the jitter
//! buffer follows its target depth and the sender's clock drift.

/// Largest change per frame: 1/8 of it (2.5 ms of a 20 ms frame).
pub(crate) const MAX_SHIFT_DIVISOR: usize = 8;

/// Writes `out.len()` samples made from more of `input`: the frame's middle
/// cross-fades into `input` shifted ahead by a lag in `[1, max_lag]` chosen
/// for similarity. `input` needs `out.len() + max_lag` samples. Returns the
/// samples consumed (`out.len()` + lag).
pub(crate) fn compress(input: &[i16], out: &mut [i16], max_lag: usize, step: usize) -> usize {
    let n = out.len();
    let max_lag = max_lag.min(input.len().saturating_sub(n));
    if max_lag == 0 {
        out.copy_from_slice(&input[..n]);
        return n;
    }
    let fade = n / 2;
    let start = (n - fade) / 2;
    let lag = best_lag(
        input,
        start,
        fade,
        (max_lag / 2).max(1),
        max_lag,
        step,
        true,
    );
    for i in 0..n {
        out[i] = if i < start {
            input[i]
        } else if i < start + fade {
            let w = (i - start + 1) as f32 / (fade + 1) as f32;
            (f32::from(input[i]) * (1.0 - w) + f32::from(input[i + lag]) * w) as i16
        } else {
            input[i + lag]
        };
    }
    n + lag
}

/// Writes `out.len()` samples made from fewer of `input`: the frame's
/// middle cross-fades into a copy of `input` delayed by a lag in
/// `[min_lag, 2 min_lag]` chosen for similarity. Returns the samples
/// consumed (`out.len()` - lag).
pub(crate) fn expand(input: &[i16], out: &mut [i16], min_lag: usize, step: usize) -> usize {
    let n = out.len().min(input.len());
    let fade = n / 2;
    let start = (n - fade) / 2;
    let max = (2 * min_lag).min(start);
    if min_lag == 0 || min_lag > max {
        out[..n].copy_from_slice(&input[..n]);
        return n;
    }
    let lag = best_lag(input, start, fade, min_lag, max, step, false);
    for i in 0..n {
        out[i] = if i < start {
            input[i]
        } else if i < start + fade {
            let w = (i - start + 1) as f32 / (fade + 1) as f32;
            (f32::from(input[i]) * (1.0 - w) + f32::from(input[i - lag]) * w) as i16
        } else {
            input[i - lag]
        };
    }
    n - lag
}

/// The lag in `[min, max]` whose shifted copy best matches the frame over
/// the fade region (normalised cross-correlation, searched every `step`).
fn best_lag(
    x: &[i16],
    start: usize,
    len: usize,
    min: usize,
    max: usize,
    step: usize,
    ahead: bool,
) -> usize {
    let step = step.max(1);
    let mut best = (max, f64::MIN);
    let mut lag = min.max(1);
    while lag <= max {
        let (mut corr, mut energy) = (0.0f64, 0.0f64);
        let mut i = start;
        while i < start + len {
            let j = if ahead { i + lag } else { i.wrapping_sub(lag) };
            if let (Some(&a), Some(&b)) = (x.get(i), x.get(j)) {
                corr += f64::from(a) * f64::from(b);
                energy += f64::from(b) * f64::from(b);
            }
            i += step;
        }
        let score = corr / (energy.sqrt() + 1.0);
        if score > best.1 {
            best = (lag, score);
        }
        lag += step;
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::goertzel_power;

    fn sine(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (10_000.0 * (std::f64::consts::TAU * 400.0 * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn compress_and_expand_keep_a_tone_whole() {
        let input = sine(180);
        let mut out = [0i16; 160];
        let consumed = compress(&input, &mut out, 20, 1);
        // The lag follows the 20-sample period of 400 Hz.
        assert_eq!(consumed, 180);
        assert!(goertzel_power(&out, 8000, 400.0) > 2.0e7);
        let input = sine(160);
        let mut out = [0i16; 160];
        assert_eq!(expand(&input, &mut out, 20, 1), 140);
        assert!(goertzel_power(&out, 8000, 400.0) > 2.0e7);
        // No dip: every 20-sample period keeps its peak.
        for period in out.chunks(20) {
            let peak = period.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!(peak > 8000, "{peak}");
        }
    }
}
