//! What the benchmarks share: the median of timed runs after a warm-up.
use std::time::{Duration, Instant};

pub fn median(warmup: usize, runs: usize, mut run: impl FnMut()) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for index in 0..warmup + runs {
        let started = Instant::now();
        run();
        if index >= warmup {
            times.push(started.elapsed());
        }
    }
    times.sort();
    times[runs / 2]
}
