//! A ring-buffer record as the kernel side hands it over: any bytes decode or fail cleanly.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tracer::event::decode(data);
});
