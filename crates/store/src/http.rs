//! `pull URL`: stream an http(s) download into a [`Sink`].

use std::time::Duration;

use crate::catalog::cache_name;
use crate::error::StoreError;
use crate::progress::Reporter;
use crate::staging::{describe_magic, read_magic, Sink, GGUF_MAGIC};

/// True for `http://` and `https://` specs (case-insensitive scheme).
pub(crate) fn is_url(spec: &str) -> bool {
    let lower = spec.get(..8).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The cache name for a URL: its last path segment without `.gguf`, with characters
/// other than letters, digits, `.`, `-`, `_` replaced by `-`.
pub(crate) fn url_model_name(url: &str) -> Result<String, StoreError> {
    let bad = |reason| StoreError::BadName {
        spec: url.to_string(),
        reason,
    };
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("");
    let segment = path.rsplit('/').find(|s| !s.is_empty()).ok_or_else(|| {
        bad("the URL has no file name in its path; use a URL that ends in the model file (.gguf)")
    })?;
    cache_name(strip_gguf(segment), url)
}

pub(crate) fn strip_gguf(s: &str) -> &str {
    match s.len().checked_sub(5) {
        Some(i) if s.is_char_boundary(i) && s[i..].eq_ignore_ascii_case(".gguf") => &s[..i],
        _ => s,
    }
}

/// Downloads `url` into `sink`, refusing anything that does not start with the GGUF
/// magic before writing the rest.
pub(crate) fn download(
    url: &str,
    sink: &mut Sink,
    reporter: &Reporter,
    name: &str,
) -> Result<(), StoreError> {
    let http_err = |e: ureq::Error| StoreError::Http {
        url: url.to_string(),
        source: Box::new(e),
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled server must not hang the pull forever.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("llmos/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let response = agent.get(url).call().map_err(http_err)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(StoreError::HttpStatus {
            url: url.to_string(),
            status,
        });
    }
    let body = response.into_body();
    let total = body.content_length();
    let mut reader = body.into_reader();
    let read_err = |e: std::io::Error| StoreError::Http {
        url: url.to_string(),
        source: Box::new(e),
    };
    let mut phase = reporter.phase(format!("download {name}"), total);
    let magic = read_magic(&mut reader).map_err(read_err)?;
    if magic != GGUF_MAGIC {
        return Err(StoreError::NotGguf {
            what: url.to_string(),
            found: describe_magic(&magic),
        });
    }
    sink.write(&magic)?;
    phase.inc(magic.len() as u64);
    sink.copy_from(&mut reader, &mut phase, name, &read_err)?;
    phase.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised() {
        assert!(is_url("https://x/y.gguf"));
        assert!(is_url("HTTP://x/y.gguf"));
        assert!(!is_url("ftp://x/y.gguf"));
        assert!(!is_url("./http.gguf"));
        assert!(!is_url("h"));
    }

    #[test]
    fn url_names_come_from_the_last_segment() {
        assert_eq!(
            url_model_name("https://h/a/b/Tiny.Q8_0.gguf?x=1").unwrap(),
            "Tiny.Q8_0"
        );
        assert_eq!(
            url_model_name("http://h:8080/m%20x.GGUF#frag").unwrap(),
            "m-20x"
        );
        assert_eq!(url_model_name("http://h/dir/model/").unwrap(), "model");
        assert!(url_model_name("http://h/").is_err());
        assert!(url_model_name("http://h").is_err());
        assert!(url_model_name("http://h/.gguf").is_err());
    }
}
