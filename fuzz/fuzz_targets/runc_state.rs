//! runc's state.json (labels and annotations come from the container's creator).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tracer::container::runc_state::parse_runc_state(data);
});
