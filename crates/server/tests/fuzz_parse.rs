//! Fuzzing the request parsing: random bytes, random JSON and mutated valid
//! requests never panic, and every rejection is a 4xx in OpenAI's shape.

use llmos_server::api::{self, ChatRequest, CompletionRequest, Limits};
use llmos_server::ApiError;
use proptest::prelude::*;
use serde_json::{json, Value};

fn check(r: Result<(), ApiError>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        prop_assert!(e.status.is_client_error(), "not a 4xx: {e}");
        let body = e.body();
        let err = &body["error"];
        prop_assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        prop_assert!(err["type"].is_string());
        prop_assert!(err.get("param").is_some() && err.get("code").is_some());
    }
    Ok(())
}

fn chat(bytes: &[u8]) -> Result<(), ApiError> {
    let r: ChatRequest = api::parse_json(bytes)?;
    api::validate_chat(r, &Limits::default()).map(|_| ())
}

fn completion(bytes: &[u8]) -> Result<(), ApiError> {
    let r: CompletionRequest = api::parse_json(bytes)?;
    api::validate_completion(r, &Limits::default()).map(|_| ())
}

/// Any JSON value, a few levels deep, biased toward the field names and
/// shapes the API uses so mutations reach the validation rules.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "model",
        "messages",
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "id",
        "type",
        "function",
        "name",
        "arguments",
        "tools",
        "tool_choice",
        "n",
        "stop",
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "logprobs",
        "top_logprobs",
        "stream",
        "stream_options",
        "include_usage",
        "response_format",
        "json_schema",
        "schema",
        "prompt",
        "text",
        "x",
    ])
    .prop_map(String::from);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec![
            "user",
            "assistant",
            "system",
            "tool",
            "function",
            "auto",
            "none",
            "required",
            "text",
            "json_object",
            "json_schema",
            "{}",
            "m",
            ""
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn valid_chat() -> Value {
    json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "max_tokens": 5, "n": 1, "stop": ["x"], "temperature": 0.5, "logprobs": true, "top_logprobs": 2,
        "stream": true, "stream_options": {"include_usage": true},
        "response_format": {"type": "text"}
    })
}

/// Replaces the value at a random path of `v` with `new`.
fn mutate(v: &mut Value, path: &[usize], new: Value) {
    let Some((&first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match v {
        Value::Object(o) if !o.is_empty() => {
            let k = o.keys().nth(first % o.len()).cloned().unwrap_or_default();
            if let Some(child) = o.get_mut(&k) {
                mutate(child, rest, new);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[first % n], rest, new);
        }
        _ => *v = new,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(chat(&bytes))?;
        check(completion(&bytes))?;
    }

    #[test]
    fn random_json_never_panics(v in arb_json()) {
        let b = serde_json::to_vec(&v).unwrap_or_default();
        check(chat(&b))?;
        check(completion(&b))?;
    }

    #[test]
    fn mutated_valid_requests_never_panic(path in prop::collection::vec(any::<usize>(), 0..5), new in arb_json()) {
        let mut v = valid_chat();
        mutate(&mut v, &path, new);
        let b = serde_json::to_vec(&v).unwrap_or_default();
        check(chat(&b))?;
    }

    #[test]
    fn truncated_valid_requests_are_400(cut in 0usize..400) {
        let b = serde_json::to_vec(&valid_chat()).unwrap_or_default();
        let cut = cut.min(b.len().saturating_sub(1));
        let r = chat(&b[..cut]);
        prop_assert!(r.is_err());
        check(r)?;
    }
}

#[test]
fn the_valid_request_is_valid() {
    let b = serde_json::to_vec(&valid_chat()).unwrap_or_default();
    assert!(chat(&b).is_ok(), "{:?}", chat(&b));
}
