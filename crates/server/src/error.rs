//! Errors: OpenAI's error JSON for clients, and a startup error enum.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered in OpenAI's shape:
/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, ...
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// A 400 naming the offending parameter.
    pub fn param(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            param: Some(param.into()),
            ..ApiError::invalid(message)
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::invalid(message)
            .with_status(StatusCode::NOT_FOUND)
            .with_code("not_found")
    }

    pub fn unknown_model(model: &str, known: &[String]) -> ApiError {
        ApiError {
            param: Some("model".into()),
            ..ApiError::invalid(format!(
                "the model `{model}` does not exist; this server serves: {}",
                known.join(", ")
            ))
        }
        .with_status(StatusCode::NOT_FOUND)
        .with_code("model_not_found")
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "authentication_error",
            ..ApiError::invalid(message)
        }
        .with_status(StatusCode::UNAUTHORIZED)
        .with_code("invalid_api_key")
    }

    pub fn busy(message: impl Into<String>, retry_after: u32) -> ApiError {
        ApiError {
            kind: "rate_limit_error",
            retry_after: Some(retry_after),
            ..ApiError::invalid(message)
        }
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_code("rate_limit_exceeded")
    }

    /// A failure on our side (never for bad input).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "server_error",
            ..ApiError::invalid(message)
        }
        .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// Why the server could not start.
#[derive(thiserror::Error, Debug)]
pub enum ServerError {
    #[error(
        "refusing to listen on {host} without an API key: anyone who can reach it could use it; \
         pass --api-key KEY (clients send `Authorization: Bearer KEY`) or bind 127.0.0.1"
    )]
    NeedsApiKey { host: String },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("--host {host}: not an IP address or `localhost`")]
    BadHost { host: String },
    #[error("--cors-origin {origin}: not a valid header value")]
    BadOrigin { origin: String },
    #[error("no models to serve")]
    NoModels,
    #[error("two models are both called {name}")]
    DuplicateModel { name: String },
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}
