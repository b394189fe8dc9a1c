//! What the console's overview shows over time: pushes and events per second for the last few
//! minutes, sampled from the server's own counters (the ones `/metrics` exports).

use crate::lock::lock;
use crate::telemetry;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One sample every 5 s, 5 minutes of them.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
pub const SAMPLES: usize = 60;

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    pub pushes_per_second: f64,
    pub events_per_second: f64,
}

/// The counters a sample is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub pushes: f64,
    pub events: f64,
}

#[derive(Default)]
pub struct Activity {
    samples: Mutex<VecDeque<Sample>>,
    last: Mutex<Option<(SystemTime, Totals)>>,
}

/// The sum of a metric's series in Prometheus text (every label combination).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Not `sum()`: an empty f64 sum is -0.0, which a page would show as "-0".
        .fold(0.0, |a, b| a + b)
}

impl Activity {
    /// Record the counters as they are now (`metrics` is the `/metrics` text).
    pub fn sample(&self, metrics: &str) {
        let totals = Totals {
            pushes: metric_sum(metrics, telemetry::PUSHES_ACCEPTED),
            events: metric_sum(metrics, telemetry::EVENTS_PUSHED),
        };
        self.record(SystemTime::now(), totals);
    }

    pub fn record(&self, now: SystemTime, totals: Totals) {
        let previous = lock(&self.last).replace((now, totals));
        let Some((then, before)) = previous else { return };
        let seconds = now.duration_since(then).unwrap_or_default().as_secs_f64();
        if seconds <= 0.0 {
            return;
        }
        let rate = |now: f64, before: f64| ((now - before).max(0.0) / seconds * 10.0).round() / 10.0;
        let sample = Sample {
            at: now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default(),
            pushes_per_second: rate(totals.pushes, before.pushes),
            events_per_second: rate(totals.events, before.events),
        };
        let mut samples = lock(&self.samples);
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        lock(&self.samples).iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_between_samples_and_the_history_is_bounded() {
        let a = Activity::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        a.record(t0, Totals { pushes: 10.0, events: 100.0 });
        assert!(a.samples().is_empty(), "one reading is not a rate yet");
        a.record(t0 + SAMPLE_EVERY, Totals { pushes: 20.0, events: 600.0 });
        assert_eq!(a.samples()[0].pushes_per_second, 2.0);
        assert_eq!(a.samples()[0].events_per_second, 100.0);
        for i in 2..200u32 {
            a.record(t0 + SAMPLE_EVERY * i, Totals { pushes: 20.0, events: 600.0 });
        }
        assert_eq!(a.samples().len(), SAMPLES);
        assert_eq!(a.samples().last().map(|s| s.pushes_per_second), Some(0.0));
    }

    #[test]
    fn metric_sum_adds_every_series_of_one_name_only() {
        let text = "# TYPE x counter\nx{a=\"1\"} 2\nx{a=\"2\"} 3\nx_total 100\nx 1\n";
        assert_eq!(metric_sum(text, "x"), 6.0);
        assert!(metric_sum(text, "absent").is_sign_positive(), "0, not -0");
    }
}
