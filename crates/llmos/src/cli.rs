//! Command-line flags.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "llmos",
    version,
    about = "Run local LLMs from GGUF files: one binary, no Python at run time."
)]
pub struct Cli {
    /// Where models and data live (default: $LLMOS_HOME, else ~/.cache/llmos).
    #[arg(long, global = true, env = "LLMOS_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Answer one prompt, streaming the reply to stdout.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        gen: GenArgs,
        /// Send the prompt as-is, without the chat template.
        #[arg(long)]
        raw: bool,
        /// A system message for the chat template.
        #[arg(long)]
        system: Option<String>,
        /// Print prompt and generation speed to stderr.
        #[arg(short, long)]
        verbose: bool,
        /// Read the prompt from a file.
        #[arg(short, long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The prompt ("-" reads stdin).
        prompt: Option<String>,
    },
    /// Interactive multi-turn chat (reads lines from stdin when piped).
    Chat {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        gen: GenArgs,
        /// A system message.
        #[arg(long)]
        system: Option<String>,
        /// Print speed after each reply.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Download a catalog model, or import a .gguf path or http(s) URL.
    Pull {
        /// Catalog name, path or URL.
        model: String,
    },
    /// List downloaded models.
    #[command(alias = "ls")]
    List,
    /// Remove a downloaded model.
    Rm { model: String },
    /// Show the models llmos knows how to pull.
    Catalog,
    /// Show a model's metadata and tensors.
    Info {
        #[command(flatten)]
        model: ModelArgs,
        /// Print long arrays (vocabularies) and every tensor in full.
        #[arg(long)]
        all: bool,
    },
    /// Print the token ids of a text.
    Tokenize {
        #[arg(short, long, default_value = llmos_store::DEFAULT_MODEL)]
        model: String,
        /// Print a JSON array of ids on one line.
        #[arg(long)]
        ids: bool,
        /// Parse special-token text (e.g. <|im_start|>) as special tokens.
        #[arg(long)]
        special: bool,
        /// Do not add BOS/EOS even if the model's metadata asks for them.
        #[arg(long)]
        no_bos: bool,
        /// Read the text from a file.
        #[arg(short, long)]
        file: Option<PathBuf>,
        text: Option<String>,
    },
    /// Perplexity of a text file (llama.cpp's method).
    Perplexity(PerplexityArgs),
    /// Measure prompt (pp) and generation (tg) speed, like llama-bench.
    Bench(BenchArgs),
    /// Serve an OpenAI-compatible HTTP API (chat, completions, models, metrics).
    Serve(ServeArgs),
    /// Solve a task with tools (calculator, sandboxed python, files, browse), step by step.
    Agent(crate::agent::AgentArgs),
    /// The agent's sessions (list, show, rm): every message, paged out or not.
    Sessions(crate::session::SessionsArgs),
    /// Index files or folders for search and ask (text, Markdown, HTML, code, PDF).
    Ingest(crate::rag::IngestArgs),
    /// Search an index: hits with score, file and lines.
    Search(crate::rag::SearchArgs),
    /// Answer a question from an index, citing file:line sources.
    Ask(crate::rag::AskArgs),
    /// Embed texts (one per line of a file, or arguments): JSON Lines of vectors.
    Embed(crate::rag::EmbedArgs),
    /// Serve the built-in tools over MCP (stdio, or streamable HTTP with --http).
    Mcp(crate::mcp::McpArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Models to serve (catalog name, .gguf path or URL; repeatable). A
    /// request's `model` is the catalog name or the file's stem.
    #[arg(short, long = "model", default_value = llmos_store::DEFAULT_MODEL)]
    pub models: Vec<String>,
    /// Address to bind; anything but loopback needs --api-key.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: pick a free one; the address is printed to stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Sequences generated at once per model, each with its own KV cache.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Context per sequence in tokens (default: min(4096, the model's)).
    #[arg(short, long, default_value_t = 0)]
    pub ctx: usize,
    /// Require `Authorization: Bearer KEY` (also read from $LLMOS_API_KEY).
    #[arg(long, env = "LLMOS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Allow browser requests from this origin (repeatable; `*` for any). Off by default.
    #[arg(long)]
    pub cors_origin: Vec<String>,
    /// Requests that may wait for a slot; more get 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Largest `max_tokens` a request may ask for.
    #[arg(long, default_value_t = 4096)]
    pub max_tokens: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_body: usize,
    /// Most open connections; more wait to be accepted.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Most tokens per forward step (decode tokens plus prefill chunks).
    #[arg(long, default_value_t = 128)]
    pub step_tokens: usize,
    /// Threads per model (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
    /// Also serve this sentence-embedding model on /v1/embeddings
    /// (repeatable; e.g. all-minilm-l6-v2).
    #[arg(long = "embedding-model")]
    pub embedding_models: Vec<String>,
    /// Do not constrain tool calls with a grammar: `tools` still reach the
    /// prompt and `<tool_call>` blocks are parsed from free text (as
    /// llama.cpp and Ollama do without a grammar); a malformed block is
    /// returned as content, with no tool call. For comparisons such as
    /// bench/bfcl; `response_format` is still enforced.
    #[arg(long)]
    pub no_tool_grammar: bool,
    /// Built-in tools for the agent loop (a chat request's `llmos.tools`).
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// The built-in tools' flags, the same for `llmos agent`, `serve` and `mcp`.
/// The calculator is always there.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Built-in tools")]
pub struct ToolArgs {
    /// Give the `files` tool read access under DIR (repeatable); the python
    /// tool sees DIR read-only too.
    #[arg(long, value_name = "DIR")]
    pub files: Vec<PathBuf>,
    /// Let `files` write under DIR (inside a --files root). Other writes:
    /// `llmos agent` asks at a terminal; `serve` and `mcp`, with nobody to
    /// ask, refuse them. Once untrusted data is in the context, even these
    /// writes need approval (refused where nobody can give it).
    #[arg(long, value_name = "DIR")]
    pub allow_writes: Vec<PathBuf>,
    /// Give the `browse` tool this host (repeatable).
    #[arg(long, value_name = "HOST")]
    pub browse: Vec<String>,
    /// Leave the python tool out (it is offered when bubblewrap is installed).
    #[arg(long)]
    pub no_python: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Catalog name, .gguf path or URL.
    #[arg(short, long, default_value = llmos_store::DEFAULT_MODEL, env = "LLMOS_MODEL")]
    pub model: String,
}

#[derive(Args, Debug, Clone)]
pub struct GenArgs {
    /// Maximum tokens to generate (default: until the model stops or the context fills).
    #[arg(short = 'n', long, value_name = "N")]
    pub max_tokens: Option<usize>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    /// Keep only the K most likely tokens (0: off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the best (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalise repeats of recent tokens (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub presence_penalty: f32,
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub frequency_penalty: f32,
    /// Random seed (default: from the clock). The same seed gives the same output.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop when this text appears (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Context size in tokens (default: min(4096, the model's)).
    #[arg(short, long, default_value_t = 0)]
    pub ctx: usize,
    /// Threads (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
    /// Chat template: a built-in name (chatml, gemma, llama3, llama2) or a Jinja file.
    #[arg(long)]
    pub template: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct PerplexityArgs {
    #[arg(short, long, default_value = llmos_store::DEFAULT_MODEL)]
    pub model: String,
    /// The text file to score.
    #[arg(short, long)]
    pub file: PathBuf,
    /// Tokens per chunk.
    #[arg(short, long, default_value_t = 512)]
    pub ctx: usize,
    /// Score at most this many chunks (default: all).
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Threads (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(short, long, default_value = llmos_store::DEFAULT_MODEL)]
    pub model: String,
    /// Prompt tokens for the pp test (0: skip it).
    #[arg(short = 'p', long, default_value_t = 512)]
    pub n_prompt: usize,
    /// Generated tokens for the tg test (0: skip it).
    #[arg(short = 'n', long, default_value_t = 128)]
    pub n_gen: usize,
    /// Threads (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
    /// Timed repetitions of each test, after one warm-up run.
    #[arg(short, long, default_value_t = 5)]
    pub reps: usize,
    /// One JSON object per test, one per line.
    #[arg(long)]
    pub json: bool,
}
