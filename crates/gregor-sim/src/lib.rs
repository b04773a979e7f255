//! # gregor-sim
//!
//! What gregor's deterministic simulations share: the seeded randomness
//! that picks a schedule ([`Rng`]) and the runner that plays many seeds,
//! or replays one, and names the seed of a failure ([`run_schedules`]).
//! Each simulation (`tests/simulation.rs` in gregor-replication,
//! gregor-group and gregor-transaction, `tests/txn_simulation.rs` in
//! gregor-group) keeps its own model, steps and invariants.
//!
//! Two environment variables steer every simulation:
//!
//! - `GREGOR_SIM_SCHEDULES`: how many seeds run, `0..n` (each simulation
//!   has its own default);
//! - `GREGOR_SIM_SEED`: replay just this seed (and, on a failure, print
//!   its whole trace rather than the tail).
//!
//! ```
//! use gregor_sim::Rng;
//!
//! // Three seeds (unless GREGOR_SIM_SCHEDULES or GREGOR_SIM_SEED says
//! // otherwise), each rolling dice; an error would fail the run naming
//! // its seed.
//! let mut rolled = 0;
//! gregor_sim::run_schedules(3, |seed| {
//!     let mut rng = Rng::seeded(seed);
//!     for _ in 0..10 {
//!         let die = 1 + rng.below(6);
//!         if !(1..=6).contains(&die) {
//!             return Err(format!("rolled {die}"));
//!         }
//!         rolled += 1;
//!     }
//!     Ok(())
//! });
//! assert!(rolled > 0);
//! ```
//!
//! It is not a simulator: no clock, network or scheduler lives here, and
//! it is only ever a dev-dependency.

mod rng;
mod schedules;

pub use rng::Rng;
pub use schedules::{print_trace, replaying, run_schedules, run_traced};
