//! `llmos serve`: loads the models and hands them to llmos-server.

use crate::cli::ServeArgs;
use anyhow::{bail, Context, Result};
use llmos_engine::batch::BatchConfig;
use llmos_engine::{Engine, LoadOptions};
use llmos_server::{api::Limits, ServerConfig};
use llmos_store::Store;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(store: &Store, a: &ServeArgs) -> Result<ExitCode> {
    // Refuse before loading anything.
    if !llmos_server::is_loopback(&a.host) && a.api_key.as_deref().is_none_or(str::is_empty) {
        bail!(llmos_server::ServerError::NeedsApiKey {
            host: a.host.clone()
        });
    }
    let mut models = Vec::new();
    for spec in &a.models {
        let path = crate::resolve(store, spec)?;
        let engine = Engine::load(
            &path,
            LoadOptions {
                threads: a.threads,
                template: None,
            },
        )
        .with_context(|| format!("loading {}", path.display()))?;
        models.push((model_name(spec, &path), Arc::new(engine)));
    }
    let cfg = ServerConfig {
        host: a.host.clone(),
        port: a.port,
        api_key: a.api_key.clone(),
        cors_origins: a.cors_origin.clone(),
        max_body_bytes: a.max_body,
        max_connections: a.max_connections,
        limits: Limits {
            max_tokens: a.max_tokens,
            ..Limits::default()
        },
        batch: BatchConfig {
            slots: a.parallel.max(1),
            n_ctx: a.ctx,
            step_tokens: a.step_tokens,
            queue: a.queue,
        },
        tool_grammar: !a.no_tool_grammar,
        builtins: Some(builtins(a)?),
    };
    let mut embedders = Vec::new();
    for spec in &a.embedding_models {
        let dir = crate::resolve(store, spec)?;
        let e = llmos_embed::Embedder::load_with(
            &dir,
            &llmos_embed::LoadOptions {
                threads: a.threads,
                ..Default::default()
            },
        )
        .with_context(|| format!("loading {}", dir.display()))?;
        embedders.push((spec.clone(), Arc::new(e)));
    }
    llmos_server::serve_with_embedders(cfg, models, embedders)?;
    Ok(ExitCode::SUCCESS)
}

/// The built-in tools requests may ask the agent loop for, as the flags
/// enable them (`llmos agent`'s flags). Built once now, so a bad --files
/// root fails at start; each request then gets fresh ones.
fn builtins(a: &ServeArgs) -> Result<llmos_server::agent::Builtins> {
    let a = &a.tools;
    let all = crate::agent::builtin_tools(a, &mut |n| eprintln!("note: {n}"))?;
    let enabled: Vec<String> = all.iter().map(|t| t.name().to_string()).collect();
    drop(all);
    let mut disabled = Vec::new();
    if !enabled.iter().any(|n| n == "python") {
        let how = if a.no_python {
            "start llmos serve without --no-python"
        } else {
            "it needs bubblewrap (bwrap), which this machine lacks"
        };
        disabled.push(("python".to_string(), how.to_string()));
    }
    if a.files.is_empty() {
        disabled.push(("files".into(), "start llmos serve with --files DIR".into()));
    }
    if a.browse.is_empty() {
        disabled.push((
            "browse".into(),
            "start llmos serve with --browse HOST".into(),
        ));
    }
    let flags = a.clone();
    let make: llmos_server::agent::ToolFactory = Arc::new(move |names: &[String]| {
        // Only what was asked for (no Python session for a calculator request).
        let want = |n: &str| names.iter().any(|x| x == n);
        let t = crate::cli::ToolArgs {
            no_python: flags.no_python || !want("python"),
            ..flags.clone()
        };
        let tools = crate::agent::builtin_tools(&t, &mut |_| {}).map_err(|e| format!("{e:#}"))?;
        Ok(tools.into_iter().filter(|t| want(t.name())).collect())
    });
    Ok(llmos_server::agent::Builtins {
        make,
        enabled,
        disabled,
        browse: a.browse.clone(),
    })
}

/// The name clients use: a catalog name as given, a file by its stem.
fn model_name(spec: &str, path: &Path) -> String {
    let looks_like_path = spec.contains('/') || spec.ends_with(".gguf") || spec.contains("://");
    if looks_like_path {
        path.file_stem()
            .map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned())
    } else {
        spec.to_string()
    }
}
