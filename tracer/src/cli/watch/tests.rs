use std::{ffi::OsStr, path::Path};

use super::{args::use_color, out::is_stdout, ColorChoice};

#[test]
fn dash_is_stdout() {
    assert!(is_stdout(Path::new("-")));
    assert!(!is_stdout(Path::new("./-")));
    assert!(!is_stdout(Path::new("/dev/stdout")));
    assert!(!is_stdout(Path::new("events.ndjson")));
}

#[test]
fn no_color_turns_auto_off() {
    let set = Some(OsStr::new("1"));
    let empty = Some(OsStr::new(""));
    assert!(use_color(ColorChoice::Auto, true, None));
    assert!(use_color(ColorChoice::Auto, true, empty));
    assert!(!use_color(ColorChoice::Auto, true, set));
    assert!(!use_color(ColorChoice::Auto, false, None));
    // An explicit flag wins over NO_COLOR.
    assert!(use_color(ColorChoice::Always, false, set));
    assert!(!use_color(ColorChoice::Never, true, None));
}
