//! Docker's config.v2.json and hostconfig.json from /var/lib/docker/containers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tracer::docker::config_v2::parse_config_v2(data);
    let _ = tracer::docker::config_v2::parse_hostconfig(data);
});
