//! `parse_tool_calls` on malformed and adversarial text: never panics, and
//! whatever it returns as a tool call has JSON-object arguments.

use llmos_grammar::parse_tool_calls;
use proptest::prelude::*;

fn check(text: &str) {
    let p = parse_tool_calls(text);
    for c in &p.tool_calls {
        let v: serde_json::Value = serde_json::from_str(&c.arguments).expect("arguments parse");
        assert!(v.is_object());
        assert!(!c.name.is_empty());
    }
    if p.tool_calls.is_empty() {
        // Nothing is lost: failed parses return the text.
        assert_eq!(p.content.as_deref().unwrap_or(""), text.trim());
    }
}

const PIECES: &[&str] = &[
    "<tool_call>",
    "</tool_call>",
    "<tool_call",
    "\n",
    " ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\"name\"",
    "\"arguments\"",
    "\"parameters\"",
    "\"f\"",
    "1",
    "null",
    "true",
    "\\",
    "é",
    "\u{0}",
    "{}",
    "\"{\\\"a\\\": 1}\"",
    "text",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        check(&s);
    }

    #[test]
    fn tool_call_shaped_text_never_panics(idx in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let s: String = idx.iter().map(|&i| PIECES[i]).collect();
        check(&s);
    }
}

#[test]
fn edge_cases() {
    for s in [
        "",
        "<tool_call>",
        "<tool_call></tool_call>",
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}",
        "<tool_call>{\"name\": 3}</tool_call>",
        "<tool_call>{\"name\": \"\"}</tool_call>",
        "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",
        "<tool_call>{\"name\": \"f\", \"arguments\": \"not json\"}</tool_call>",
        "<tool_call>{\"name\": \"f\"} trailing</tool_call>",
        "</tool_call>",
        "<tool_call>[1, 2]</tool_call>",
        "<tool_call>\"just a string\"</tool_call>",
    ] {
        check(s);
    }
    // An unclosed final block still counts (EOS right after the JSON).
    let p = parse_tool_calls("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}");
    assert_eq!(p.tool_calls.len(), 1);
    // Closed blocks followed by garbage: all text.
    let p = parse_tool_calls("<tool_call>{\"name\": \"f\"}</tool_call><tool_call>{oops");
    assert!(p.tool_calls.is_empty());
}
