//! Waiting on a coordination session's state, for the tests that watch a
//! session live through failures (auth.rs, remote_link.rs).

use std::time::Duration;

use gregor_coord::{Coordinator, SessionState};

/// Waits until `coord`'s session is `want`; fails the test after `within`.
pub async fn wait_for_state(coord: &dyn Coordinator, want: SessionState, within: Duration) {
    let mut state = coord.session_state();
    let reached = tokio::time::timeout(within, state.wait_for(|s| *s == want))
        .await
        .is_ok();
    assert!(reached, "not {want:?} within {within:?}: {:?}", *state.borrow());
}
