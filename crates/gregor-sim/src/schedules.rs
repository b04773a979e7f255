//! Playing a simulation's schedules: which seeds run, and what a failure
//! prints so that it can be replayed.

use std::panic::{self, AssertUnwindSafe};

/// How many seeds run, `0..n`.
const SCHEDULES: &str = "GREGOR_SIM_SCHEDULES";
/// The one seed to replay.
const SEED: &str = "GREGOR_SIM_SEED";

/// Whether `GREGOR_SIM_SEED` asks to replay one seed.
pub fn replaying() -> bool {
    std::env::var_os(SEED).is_some()
}

/// The seeds to run: `GREGOR_SIM_SEED` alone, or `0..GREGOR_SIM_SCHEDULES`
/// (`0..default_count` when that is unset or not a number).
fn seeds(default_count: u64) -> Vec<u64> {
    seeds_from(std::env::var(SEED).ok(), std::env::var(SCHEDULES).ok(), default_count)
}

/// [`seeds`] given the two variables' values.
fn seeds_from(seed: Option<String>, schedules: Option<String>, default_count: u64) -> Vec<u64> {
    match seed {
        Some(s) => vec![s.parse().expect("GREGOR_SIM_SEED is a number")],
        None => {
            let n = schedules.and_then(|n| n.parse().ok()).unwrap_or(default_count);
            (0..n).collect()
        }
    }
}

/// The line that names a failed seed and how to replay it.
fn failed(seed: u64) -> String {
    format!("simulation failed with seed {seed}: replay with GREGOR_SIM_SEED={seed}")
}

/// Runs `schedule` for every seed (see the crate doc for which), in order.
///
/// A schedule fails by returning an error, which panics with the error
/// and the seed, or by panicking (a broken invariant), after which the
/// seed is printed and the panic goes on. Either stops the run.
#[track_caller]
pub fn run_schedules(default_count: u64, schedule: impl FnMut(u64) -> Result<(), String>) {
    run_seeds(seeds(default_count), schedule);
}

/// [`run_schedules`] over the given seeds.
#[track_caller]
fn run_seeds(seeds: Vec<u64>, mut schedule: impl FnMut(u64) -> Result<(), String>) {
    for seed in seeds {
        match panic::catch_unwind(AssertUnwindSafe(|| schedule(seed))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}\n{}", failed(seed)),
            Err(payload) => {
                eprintln!("{}", failed(seed));
                panic::resume_unwind(payload);
            }
        }
    }
}

/// Prints a failed schedule's trace under a header naming its seed: the
/// last `tail` lines, or all of them when replaying.
pub fn print_trace(seed: u64, trace: &[String], tail: usize) {
    let from = if replaying() {
        0
    } else {
        trace.len().saturating_sub(tail)
    };
    eprintln!("--- trace of seed {seed} (last {} lines) ---", trace.len() - from);
    for line in &trace[from..] {
        eprintln!("{line}");
    }
}

/// Runs `schedule` on `sim`; if it panics, prints the trace that `trace`
/// reads from the sim (see [`print_trace`]) and lets the panic go on.
pub fn run_traced<S, T>(
    seed: u64,
    sim: &mut S,
    tail: usize,
    trace: impl Fn(&S) -> &[String],
    schedule: impl FnOnce(&mut S) -> T,
) -> T {
    match panic::catch_unwind(AssertUnwindSafe(|| schedule(&mut *sim))) {
        Ok(outcome) => outcome,
        Err(payload) => {
            print_trace(seed, trace(sim), tail);
            panic::resume_unwind(payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{run_seeds, run_traced, seeds_from};

    #[test]
    fn a_seed_replays_alone_else_the_count_runs_from_zero() {
        assert_eq!(seeds_from(Some("42".into()), Some("9".into()), 3), [42]);
        assert_eq!(seeds_from(None, Some("4".into()), 3), [0, 1, 2, 3]);
        assert_eq!(seeds_from(None, Some("many".into()), 3), [0, 1, 2]);
        assert_eq!(seeds_from(None, None, 2), [0, 1]);
    }

    #[test]
    fn an_error_stops_the_run_naming_the_seed() {
        let mut ran = Vec::new();
        let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_seeds(vec![0, 1, 2, 3], |seed| {
                ran.push(seed);
                if seed == 2 {
                    Err("broken".into())
                } else {
                    Ok(())
                }
            });
        }))
        .expect_err("seed 2 fails");
        assert_eq!(ran, [0, 1, 2]);
        assert_eq!(
            failure.downcast_ref::<String>().map(String::as_str),
            Some("broken\nsimulation failed with seed 2: replay with GREGOR_SIM_SEED=2")
        );
    }

    #[test]
    fn a_panic_goes_on_after_the_trace() {
        let mut sim = vec!["step 1".to_string()];
        let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_traced(
                0,
                &mut sim,
                10,
                |sim| sim,
                |sim| {
                    sim.push("step 2".into());
                    panic!("invariant broken");
                },
            )
        }))
        .expect_err("the schedule panics");
        assert_eq!(failure.downcast_ref::<&str>(), Some(&"invariant broken"));
        assert_eq!(sim, ["step 1", "step 2"]);
    }
}
