//! An OCI bundle's config.json.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tracer::container::oci_config::parse_oci_config(data);
});
