//! llmos-server: an OpenAI-compatible HTTP API over the llmos engine.
//!
//! `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`,
//! `GET /v1/models`, `/health` and `/metrics` (Prometheus text), on axum.
//! A chat request with an `llmos` object runs the agent loop with built-in
//! tools server-side ([`agent`]).
//!
//! The design decision is the split of work across threads. The async
//! runtime only parses, validates and streams; prompts are rendered and
//! tokenized on its blocking pool; generation runs on one scheduler thread
//! per model ([`llmos_engine::batch::Batcher`]), which batches every running
//! sequence into one forward pass per step. Each request gets an unbounded
//! channel of engine events; when the client disconnects the receiver is
//! dropped and the scheduler cancels the sequence at its next step.
//!
//! Security defaults: loopback only unless an API key is set; no CORS unless
//! origins are configured; limits on body size, `max_tokens`, `n`, queued
//! requests and open connections. Every error is a 4xx/5xx in OpenAI's
//! `{"error": {...}}` shape; malformed input never reaches the engine.
//!
//! ```no_run
//! # fn demo(engine: llmos_engine::Engine) -> Result<(), llmos_server::ServerError> {
//! use llmos_server::{serve, ServerConfig};
//! use std::sync::Arc;
//! let cfg = ServerConfig::default(); // 127.0.0.1:8080
//! serve(cfg, vec![("smollm2-135m-instruct".into(), Arc::new(engine))])
//! # }
//! ```

pub mod agent;
pub mod api;
mod constrain;
mod embed;
mod error;
mod http;
mod listen;
mod metrics;

pub use error::{ApiError, ServerError};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use llmos_engine::batch::{BatchConfig, Batcher};
use llmos_engine::Engine;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Reported as `system_fingerprint`.
pub const FINGERPRINT: &str = concat!("llmos-", env!("CARGO_PKG_VERSION"));

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks a free port (printed at start).
    pub port: u16,
    /// Required (as a Bearer token) when `host` is not loopback.
    pub api_key: Option<String>,
    /// Origins allowed by CORS; empty means no CORS headers at all.
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub limits: api::Limits,
    pub batch: BatchConfig,
    /// Constrain tool calls with a grammar (the default). When false, `tools`
    /// only reach the prompt: the model writes freely and `<tool_call>`
    /// blocks are parsed from its text, as llama.cpp and Ollama do without a
    /// grammar (a malformed block stays content). `response_format` is
    /// still enforced. For measuring what the grammar buys.
    pub tool_grammar: bool,
    /// Built-in tools requests may ask the agent loop for (`llmos` in a chat
    /// request); None: none, and such requests are refused.
    pub builtins: Option<agent::Builtins>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
            cors_origins: Vec::new(),
            max_body_bytes: 4 << 20,
            max_connections: 256,
            limits: api::Limits::default(),
            batch: BatchConfig::default(),
            tool_grammar: true,
            builtins: None,
        }
    }
}

/// One served model.
pub(crate) struct ModelEntry {
    pub name: String,
    pub engine: Arc<Engine>,
    pub batcher: Batcher,
    pub created: u64,
    /// The vocabulary indexed for constrained decoding (None if it failed).
    pub grammar: Option<llmos_grammar::GrammarVocab>,
}

pub(crate) struct AppState {
    pub models: Vec<ModelEntry>,
    /// Served by `/v1/embeddings`.
    pub embedders: Vec<embed::EmbedEntry>,
    pub limits: api::Limits,
    /// [`ServerConfig::tool_grammar`].
    pub tool_grammar: bool,
    /// [`ServerConfig::builtins`].
    pub builtins: Option<agent::Builtins>,
    pub api_key: Option<String>,
    pub metrics: metrics::Metrics,
    pub started: Instant,
}

/// Whether `host` only reaches this machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Builds the router (exposed for tests that drive it without a socket).
fn router(state: Arc<AppState>, cfg: &ServerConfig) -> Result<Router, ServerError> {
    let mut app = Router::new()
        .route("/v1/chat/completions", post(http::chat_completions))
        .route("/v1/completions", post(http::completions))
        .route("/v1/embeddings", post(http::embeddings))
        .route("/v1/models", get(http::models))
        .route("/v1/models/{name}", get(http::model_one))
        .route("/health", get(http::health))
        .route("/metrics", get(http::metrics))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            http::auth,
        ))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(state);
    if !cfg.cors_origins.is_empty() {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let origins = cfg
            .cors_origins
            .iter()
            .map(|o| {
                o.parse::<axum::http::HeaderValue>()
                    .map_err(|_| ServerError::BadOrigin { origin: o.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allow = if cfg.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(origins)
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::CONTENT_TYPE,
                ]),
        );
    }
    Ok(app)
}

/// Starts one scheduler per model and serves until Ctrl-C.
///
/// # Errors
/// A non-loopback host without an API key, a bad host or origin, duplicate
/// model names, or a port that cannot be bound.
pub fn serve(cfg: ServerConfig, models: Vec<(String, Arc<Engine>)>) -> Result<(), ServerError> {
    serve_with_embedders(cfg, models, Vec::new())
}

/// [`serve`], plus sentence-embedding models for `POST /v1/embeddings`
/// (requested by their name, like the chat models).
///
/// # Errors
/// As [`serve`].
pub fn serve_with_embedders(
    cfg: ServerConfig,
    models: Vec<(String, Arc<Engine>)>,
    embedders: Vec<(String, Arc<llmos_embed::Embedder>)>,
) -> Result<(), ServerError> {
    if models.is_empty() {
        return Err(ServerError::NoModels);
    }
    if !is_loopback(&cfg.host) && cfg.api_key.as_deref().is_none_or(str::is_empty) {
        return Err(ServerError::NeedsApiKey {
            host: cfg.host.clone(),
        });
    }
    let ip: IpAddr = if cfg.host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        cfg.host.parse().map_err(|_| ServerError::BadHost {
            host: cfg.host.clone(),
        })?
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut entries: Vec<ModelEntry> = Vec::new();
    for (name, engine) in models {
        if entries.iter().any(|e| e.name == name) {
            return Err(ServerError::DuplicateModel { name });
        }
        let trained = engine.model.cfg.n_ctx_train;
        let mut batch = cfg.batch;
        if batch.n_ctx == 0 {
            batch.n_ctx = trained.min(4096);
        }
        let batcher = Batcher::start(Arc::clone(&engine), batch).map_err(ServerError::Runtime)?;
        let grammar = match llmos_grammar::GrammarVocab::new(&engine.tokenizer) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("llmos serve: {name}: no constrained decoding ({e})");
                None
            }
        };
        entries.push(ModelEntry {
            name,
            engine,
            batcher,
            created,
            grammar,
        });
    }
    let state = Arc::new(AppState {
        models: entries,
        embedders: embedders
            .into_iter()
            .map(|(name, embedder)| embed::EmbedEntry { name, embedder })
            .collect(),
        limits: cfg.limits,
        tool_grammar: cfg.tool_grammar,
        builtins: cfg.builtins.clone(),
        api_key: cfg.api_key.clone().filter(|k| !k.is_empty()),
        metrics: metrics::Metrics::default(),
        started: Instant::now(),
    });
    let app = router(Arc::clone(&state), &cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    rt.block_on(async move {
        let addr = SocketAddr::new(ip, cfg.port);
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = tcp.local_addr().map_err(ServerError::Serve)?;
        eprintln!(
            "llmos serve: listening on http://{local} (models: {})",
            state
                .models
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let listener = listen::Limited::new(tcp, cfg.max_connections, Arc::clone(&state));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(ServerError::Serve)
    })
}
