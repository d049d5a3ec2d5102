use llmos_gguf::GgmlType;

/// Everything that can go wrong loading or running a model.
#[derive(thiserror::Error, Debug)]
pub enum ModelError {
    // --- loading ---
    #[error("unsupported architecture {arch:?}: llmos supports {supported}")]
    UnknownArchitecture { arch: String, supported: String },
    #[error("the GGUF has no general.architecture key; is it a model file?")]
    NoArchitecture,
    #[error("metadata key {key} is missing (needed for the {arch} architecture)")]
    MissingKey { key: String, arch: String },
    #[error("metadata key {key} has a bad value {value}: {why}")]
    BadKey {
        key: String,
        value: String,
        why: String,
    },
    #[error("tensor {name} is missing from the model file")]
    MissingTensor { name: String },
    #[error("tensor {name} has shape {got:?}, expected {expected:?}")]
    BadShape {
        name: String,
        got: Vec<u64>,
        expected: Vec<u64>,
    },
    #[error(
        "tensor {name} has type {ty}, which llmos does not support yet; supported types: {supported}"
    )]
    UnsupportedType {
        name: String,
        ty: GgmlType,
        supported: String,
    },
    #[error("tensor {name}: {source}")]
    Kernel {
        name: String,
        source: llmos_kernels::quant::QuantError,
    },

    // --- running ---
    #[error(
        "context full: {needed} tokens needed but the context holds {n_ctx}; \
         raise --ctx (the model was trained with {n_ctx_train}) or shorten the prompt"
    )]
    ContextFull {
        needed: usize,
        n_ctx: usize,
        n_ctx_train: usize,
    },
    #[error("token id {id} is outside the vocabulary (size {n_vocab})")]
    BadToken { id: u32, n_vocab: usize },
    #[error("position {pos} skips ahead of the {filled} tokens already in the cache")]
    BadPosition { pos: usize, filled: usize },
    #[error("empty batch: forward needs at least one token")]
    EmptyBatch,
    #[error(
        "a step of {tokens} tokens exceeds the batch size {max_batch} the buffers were made for"
    )]
    BatchTooLarge { tokens: usize, max_batch: usize },
    #[error(
        "KV caches of different models (layer count or head sizes differ) cannot share a prefix"
    )]
    CacheMismatch,
}
