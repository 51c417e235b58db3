//! The timed runner shared by the throughput workloads: one thread per precomputed key stream, all released
//! together, stopped together after a fixed time, their operations and hits summed.
//!
//! Threads look at the stop flag once every [`CHECK_EVERY`] operations, so the flag costs nothing measurable
//! and the run overshoots its time by at most one batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Operations between two looks at the stop flag.
const CHECK_EVERY: usize = 1024;

/// What one timed run measured.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Operations of all threads together per second of wall-clock time.
    pub ops_per_sec: f64,
    /// Fraction of operations the workload counted as hits.
    pub hit_ratio: f64,
}

/// Runs `op` on `cache` from one thread per stream, each looping over its stream, for `secs` seconds.
/// `op` returns true for a hit.
pub fn timed<C, F>(cache: &C, streams: &[Vec<u64>], secs: f64, op: F) -> Rate
where
    C: Sync,
    F: Fn(&C, u64) -> bool + Sync,
{
    let stop = AtomicBool::new(false);
    let start_line = Barrier::new(streams.len() + 1);
    let (ops, hits, elapsed) = std::thread::scope(|scope| {
        let workers: Vec<_> = streams
            .iter()
            .map(|stream| {
                let (stop, start_line, op) = (&stop, &start_line, &op);
                scope.spawn(move || {
                    let (mut ops, mut hits) = (0u64, 0u64);
                    start_line.wait();
                    'run: loop {
                        for chunk in stream.chunks(CHECK_EVERY) {
                            for &key in chunk {
                                hits += u64::from(op(cache, key));
                            }
                            ops += chunk.len() as u64;
                            if stop.load(Ordering::Relaxed) {
                                break 'run;
                            }
                        }
                    }
                    (ops, hits)
                })
            })
            .collect();
        start_line.wait();
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let (mut ops, mut hits) = (0, 0);
        for worker in workers {
            let (o, h) = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            ops += o;
            hits += h;
        }
        (ops, hits, started.elapsed())
    });
    Rate {
        ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
        hit_ratio: hits as f64 / ops.max(1) as f64,
    }
}
