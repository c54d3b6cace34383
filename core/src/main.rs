//! The `zeroimage` command line.

fn main() {
    let cancel = zeroimage::CancelToken::new();
    let on_signal = cancel.clone();
    // A second Ctrl-C while cleaning up falls through to the default behaviour.
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    std::process::exit(zeroimage::cli::run_with(std::env::args_os().skip(1), &cancel));
}
