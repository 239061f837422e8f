//! Order statistics for noisy measurements: medians of repeated runs, latency percentiles.

/// Median of `values` (mean of the two middle values for an even count); `None` when empty.
///
/// Repeated runs on a shared, noisy machine are summarised by their median, which one
/// outlier run cannot drag.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Nearest-rank percentile `p` (0..=100) of `values`; `None` when empty.
///
/// Nearest rank returns a value that was really observed, so p99 of 1,000 samples is the
/// 990th smallest, and p100 is the maximum.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        let cases: &[(&[f64], Option<f64>)] = &[
            (&[], None),
            (&[3.0], Some(3.0)),
            (&[5.0, 1.0, 3.0], Some(3.0)),
            (&[4.0, 1.0, 3.0, 2.0], Some(2.5)),
            (&[f64::NAN, 2.0], Some(2.0)),
            (&[1.0, 1.0, 100.0], Some(1.0)),
        ];
        for (input, want) in cases {
            assert_eq!(median(input), *want, "median of {input:?}");
        }
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(500.0));
        assert_eq!(percentile(&v, 99.0), Some(990.0));
        assert_eq!(percentile(&v, 100.0), Some(1000.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    }
}
