//! Small signal measurements for tests and diagnostics (tone detection).

/// Power of the `freq` component of `samples` (Goertzel): `|X(f)|² / N²`, so a
/// sine of amplitude `a` at exactly `freq` gives about `a² / 4`.
pub fn goertzel_power(samples: &[i16], rate: u32, freq: f64) -> f64 {
    if samples.is_empty() || rate == 0 {
        return 0.0;
    }
    let w = std::f64::consts::TAU * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power.max(0.0) / (n * n)
}

/// Root-mean-square level of `samples`.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// `10 log10(a / b)`, with a floor so silence does not give infinities.
pub fn db_ratio(a: f64, b: f64) -> f64 {
    10.0 * ((a + 1e-9) / (b + 1e-9)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (std::f64::consts::TAU * freq * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn goertzel_finds_the_tone() {
        let s = sine(440.0, 10_000.0, 4000);
        let at = goertzel_power(&s, 8000, 440.0);
        let off = goertzel_power(&s, 8000, 1000.0);
        assert!((at - 10_000.0f64.powi(2) / 4.0).abs() < 0.02 * at, "{at}");
        assert!(db_ratio(at, off) > 40.0);
        assert_eq!(goertzel_power(&[], 8000, 440.0), 0.0);
    }

    #[test]
    fn rms_of_sine() {
        let s = sine(1000.0, 10_000.0, 8000);
        assert!((rms(&s) - 10_000.0 / 2f64.sqrt()).abs() < 50.0);
        assert_eq!(rms(&[]), 0.0);
    }
}
