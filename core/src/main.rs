//! The `zeroimage` command line.
//!
//! SIGINT (Ctrl-C), SIGTERM and SIGHUP cancel the running command: it stops within a fraction
//! of a second, removes its temporary files, writes nothing, and exits with 128 + the signal
//! number (130, 143, 129), as shells expect. A second signal exits at once.

fn main() {
    let cancel = zeroimage::CancelToken::new();
    let received = signals::cancel_on_signals(&cancel);
    let code = zeroimage::cli::run_with(std::env::args_os().skip(1), &cancel);
    let signal = received.load(std::sync::atomic::Ordering::SeqCst);
    // A command that failed after a signal failed because of it.
    std::process::exit(if code != 0 && signal != 0 { 128 + signal } else { code });
}

#[cfg(unix)]
mod signals {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Arc;

    /// Cancel `cancel` on the first SIGINT, SIGTERM or SIGHUP; exit on the second. Returns
    /// the number of the first signal received (0 while none was).
    pub(super) fn cancel_on_signals(cancel: &zeroimage::CancelToken) -> Arc<AtomicI32> {
        let received = Arc::new(AtomicI32::new(0));
        // Without the handlers, signals keep their default action: the process ends.
        if let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            let (cancel, first) = (cancel.clone(), received.clone());
            std::thread::Builder::new()
                .name("zeroimage-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        if first.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                            std::process::exit(128 + signal);
                        }
                        cancel.cancel();
                    }
                })
                .ok();
        }
        received
    }
}

#[cfg(not(unix))]
mod signals {
    use std::sync::atomic::AtomicI32;
    use std::sync::Arc;

    pub(super) fn cancel_on_signals(_cancel: &zeroimage::CancelToken) -> Arc<AtomicI32> {
        Arc::new(AtomicI32::new(0))
    }
}
