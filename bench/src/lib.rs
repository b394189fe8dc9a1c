//! Shared helpers for the baseline programs.

/// The `p`-th percentile (0–100) of already sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    percentile(values, 50.0)
}

/// A native bench client's command line: `URL [n0] [n1] [n2]`, each number defaulting to
/// `defaults`' entry; and a tag that makes this run's store ids fresh.
pub fn url_and_counts(defaults: [usize; 3]) -> (String, [usize; 3], u128) {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "http://127.0.0.1:8787".into());
    let given: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    let counts = std::array::from_fn(|i| given.get(i).copied().unwrap_or(defaults[i]));
    let tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    (base, counts, tag)
}
