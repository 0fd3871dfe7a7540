//! Integration tests that load the whole machine: floods of records, a stalled reader, busy
//! loops against CPU quotas, bursts of kills. They are a test binary of their own, so cargo
//! runs them after the main suite, never beside it (their load would stretch every other
//! test's timing), and each takes [`ctrace_tests::storm`] so they run one at a time.

mod bounded;
mod caps;
mod faults;
mod flood;
mod journal;
mod loss;
mod stall;
mod throttle;
