//! Ctrl-C during a pull: stop, remove the partial download, report
//! [`StoreError::Interrupted`] so the front end exits with code 130.
//!
//! The first pull installs a SIGINT handler (signal-hook, no unsafe code here) made of
//! three actions, run in this order on every SIGINT:
//! 1. if no pull is running, act as if the handler were not there (default action:
//!    the process dies by SIGINT, which shells report as 130), unless the program
//!    said it handles SIGINT itself ([`set_default_sigint_between_pulls`]);
//! 2. if a Ctrl-C was already seen, do the same: a second Ctrl-C never waits on cleanup;
//! 3. otherwise raise the `cancelled` flag. Pull loops poll it between chunks (and
//!    while pip runs), kill pip, drop their temp dir and return `Interrupted`.
//!
//! A pull killed with SIGKILL cannot clean up; its temp dir is swept by the next pull.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::SIGINT;

use crate::error::StoreError;

struct Handler {
    /// No pull is running and the program wants the default SIGINT action then.
    terminate_when_idle: Arc<AtomicBool>,
    cancelled: Arc<AtomicBool>,
    active: Mutex<usize>,
}

static HANDLER: OnceLock<Result<Handler, String>> = OnceLock::new();

/// See [`set_default_sigint_between_pulls`].
static DEFAULT_BETWEEN_PULLS: AtomicBool = AtomicBool::new(true);

/// Whether Ctrl-C keeps its default effect (ending the process) while no pull runs,
/// once a pull has installed the store's SIGINT handler. On by default.
///
/// Turn it off when the program handles SIGINT itself with signal-hook (for example
/// to stop text generation on the first Ctrl-C): the store's actions were registered
/// first, so otherwise they end the process before the program's own action runs.
/// During a pull, Ctrl-C always cancels the pull.
pub fn set_default_sigint_between_pulls(enabled: bool) {
    DEFAULT_BETWEEN_PULLS.store(enabled, Ordering::SeqCst);
    if let Some(Ok(handler)) = HANDLER.get() {
        let active = handler.active.lock().unwrap_or_else(|p| p.into_inner());
        handler
            .terminate_when_idle
            .store(*active == 0 && enabled, Ordering::SeqCst);
    }
}

fn install() -> Result<Handler, String> {
    let idle = Arc::new(AtomicBool::new(
        DEFAULT_BETWEEN_PULLS.load(Ordering::SeqCst),
    ));
    let cancelled = Arc::new(AtomicBool::new(false));
    let register = || -> std::io::Result<()> {
        signal_hook::flag::register_conditional_default(SIGINT, Arc::clone(&idle))?;
        signal_hook::flag::register_conditional_default(SIGINT, Arc::clone(&cancelled))?;
        signal_hook::flag::register(SIGINT, Arc::clone(&cancelled))?;
        Ok(())
    };
    register().map_err(|e| e.to_string())?;
    Ok(Handler {
        terminate_when_idle: idle,
        cancelled,
        active: Mutex::new(0),
    })
}

/// Marks a pull as running while alive; Ctrl-C cancels instead of killing.
pub(crate) struct ActivePull {
    handler: &'static Handler,
}

/// Installs the handler (once per process) and marks a pull as running.
pub(crate) fn begin() -> Result<ActivePull, StoreError> {
    let handler = HANDLER
        .get_or_init(install)
        .as_ref()
        .map_err(|msg| StoreError::Signal {
            source: std::io::Error::other(msg.clone()),
        })?;
    let mut active = handler.active.lock().unwrap_or_else(|p| p.into_inner());
    if *active == 0 {
        handler.cancelled.store(false, Ordering::SeqCst);
    }
    *active += 1;
    handler.terminate_when_idle.store(false, Ordering::SeqCst);
    Ok(ActivePull { handler })
}

impl Drop for ActivePull {
    fn drop(&mut self) {
        let mut active = self
            .handler
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *active = active.saturating_sub(1);
        if *active == 0 {
            let default = DEFAULT_BETWEEN_PULLS.load(Ordering::SeqCst);
            self.handler
                .terminate_when_idle
                .store(default, Ordering::SeqCst);
        }
    }
}

/// True once Ctrl-C was pressed during the running pull(s).
pub(crate) fn cancelled() -> bool {
    HANDLER
        .get()
        .and_then(|h| h.as_ref().ok())
        .is_some_and(|h| h.cancelled.load(Ordering::SeqCst))
}

/// `Err(Interrupted)` once Ctrl-C was pressed; call between units of work.
pub(crate) fn check(name: &str) -> Result<(), StoreError> {
    if cancelled() {
        Err(StoreError::Interrupted {
            name: name.to_string(),
        })
    } else {
        Ok(())
    }
}
