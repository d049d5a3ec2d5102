//! Constrained decoding over real model logits: the output must parse and
//! validate (checked by the independent `jsonschema` crate), whatever the
//! model would have preferred to write.

mod common;

use common::{generate, Pick};
use llmos_grammar::{
    parse_tool_calls_for, render_tools_prompt, Constraint, ConstraintSpec, ToolChoice, ToolDef,
};
use llmos_text::Message;
use serde_json::{json, Value};

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "languages": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 3},
            "employed": {"type": "boolean"}
        },
        "required": ["name", "age", "languages", "employed"],
        "additionalProperties": false
    })
}

fn assert_valid(schema: &Value, text: &str, what: &str) -> Value {
    let v: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: output is not JSON ({e}): {text:?}"));
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what}: {text:?} does not match the schema: {errors:?}"
    );
    v
}

fn chat(eng: &llmos_engine::Engine, msgs: &[Message], tools: Option<&Value>) -> String {
    eng.template
        .as_ref()
        .expect("template")
        .render(msgs, true, tools)
        .expect("render")
}

#[test]
fn json_schema_argmax_qwen_validates() {
    let Some(eng) = common::engine("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    let vocab = common::vocab(&eng);
    let schema = person_schema();
    let spec = ConstraintSpec::JsonSchema {
        schema: schema.clone(),
        strict: true,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let prompt = chat(
        &eng,
        &[Message::new(
            "user",
            "Describe a fictional programmer as JSON.",
        )],
        None,
    );
    let run = generate(&eng, &mut c, &prompt, 120, Pick::Argmax);
    eprintln!(
        "qwen 0.5b json_schema ({} tokens, mean mask {:?}): {}",
        run.tokens.len(),
        run.mean_mask,
        run.text
    );
    assert!(run.ended, "did not finish in 120 tokens: {:?}", run.text);
    assert_valid(&schema, &run.text, "qwen argmax");
}

#[test]
fn json_schema_random_sampling_smollm_validates() {
    let Some(eng) = common::engine("smollm2-135m-instruct") else {
        return;
    };
    let vocab = common::vocab(&eng);
    let schema = person_schema();
    let spec = ConstraintSpec::JsonSchema {
        schema: schema.clone(),
        strict: true,
    };
    let prompt = chat(
        &eng,
        &[Message::new("user", "Give me a person as JSON.")],
        None,
    );
    // High temperature: the grammar, not the model, has to keep it valid.
    for seed in 1..=3u64 {
        let mut c = Constraint::new(&vocab, &spec).expect("compile");
        let run = generate(
            &eng,
            &mut c,
            &prompt,
            160,
            Pick::Random {
                seed,
                temperature: 1.5,
            },
        );
        eprintln!(
            "smollm seed {seed} ({} tokens, mean mask {:?}): {}",
            run.tokens.len(),
            run.mean_mask,
            run.text
        );
        assert!(
            run.ended,
            "seed {seed}: did not finish in 160 tokens: {:?}",
            run.text
        );
        assert_valid(&schema, &run.text, &format!("smollm seed {seed}"));
    }
}

#[test]
fn json_schema_gemma_validates() {
    let Some(eng) = common::engine("gemma3-270m") else {
        return;
    };
    let vocab = common::vocab(&eng);
    let schema = json!({
        "type": "object",
        "properties": {
            "greeting": {"type": "string", "maxLength": 30},
            "language": {"enum": ["en", "fr", "de"]},
            "formal": {"type": "boolean"}
        },
        "required": ["greeting", "language", "formal"],
        "additionalProperties": false
    });
    let spec = ConstraintSpec::JsonSchema {
        schema: schema.clone(),
        strict: true,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let prompt = chat(
        &eng,
        &[Message::new("user", "Greet me in French, as JSON.")],
        None,
    );
    let run = generate(&eng, &mut c, &prompt, 60, Pick::Argmax);
    eprintln!(
        "gemma json_schema ({} tokens, mean mask {:?}): {}",
        run.tokens.len(),
        run.mean_mask,
        run.text
    );
    assert!(run.ended, "did not finish in 60 tokens: {:?}", run.text);
    assert_valid(&schema, &run.text, "gemma");
}

fn weather_tools() -> (Value, Vec<ToolDef>) {
    let openai = json!([
        {"type": "function", "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 40},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["city", "unit"],
                "additionalProperties": false
            }
        }},
        {"type": "function", "function": {
            "name": "get_time",
            "description": "Get the current local time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string", "maxLength": 40}},
                "required": ["timezone"],
                "additionalProperties": false
            }
        }}
    ]);
    let defs = openai
        .as_array()
        .expect("array")
        .iter()
        .map(|t| ToolDef::from_openai(t).expect("tool"))
        .collect();
    (openai, defs)
}

/// Every call names a tool and its arguments validate against that tool's schema.
fn assert_calls_valid(text: &str, tools: &[ToolDef], want: Option<&str>) {
    let parsed = parse_tool_calls_for(text, tools);
    assert!(!parsed.tool_calls.is_empty(), "no tool call in {text:?}");
    for call in &parsed.tool_calls {
        if let Some(w) = want {
            assert_eq!(call.name, w, "{text:?}");
        }
        let tool = tools
            .iter()
            .find(|t| t.name == call.name)
            .expect("known tool");
        assert_valid(&tool.parameters_schema(), &call.arguments, &call.name);
        assert!(call.id.starts_with("call_"));
    }
}

#[test]
fn forced_tool_call_qwen_parses_and_validates() {
    let Some(eng) = common::engine("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    let vocab = common::vocab(&eng);
    let (openai, tools) = weather_tools();
    let msgs = [Message::new(
        "user",
        "What's the weather like in Paris right now?",
    )];
    let prompt = chat(&eng, &msgs, Some(&openai));

    let spec = ConstraintSpec::ToolCalls {
        tools: tools.clone(),
        choice: ToolChoice::Required,
        parallel: false,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let run = generate(&eng, &mut c, &prompt, 60, Pick::Argmax);
    eprintln!(
        "qwen required ({} tokens, mean mask {:?}): {:?}",
        run.tokens.len(),
        run.mean_mask,
        run.text
    );
    assert!(run.ended, "did not finish: {:?}", run.text);
    assert!(run.text.starts_with("<tool_call>\n"), "{:?}", run.text);
    assert_calls_valid(&run.text, &tools, None);

    // Named: the grammar forces get_time even though the user asked about weather.
    let spec = ConstraintSpec::ToolCalls {
        tools: tools.clone(),
        choice: ToolChoice::Named("get_time".into()),
        parallel: false,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let run = generate(&eng, &mut c, &prompt, 60, Pick::Argmax);
    eprintln!("qwen named get_time: {:?}", run.text);
    assert!(run.ended, "did not finish: {:?}", run.text);
    assert_calls_valid(&run.text, &tools, Some("get_time"));
}

#[test]
fn auto_tool_call_qwen_calls_the_weather_tool() {
    let Some(eng) = common::engine("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    let vocab = common::vocab(&eng);
    let (openai, tools) = weather_tools();
    let spec = ConstraintSpec::ToolCalls {
        tools: tools.clone(),
        choice: ToolChoice::Auto,
        parallel: true,
    };
    let msgs = [Message::new(
        "user",
        "What's the weather like in Paris right now?",
    )];
    let prompt = chat(&eng, &msgs, Some(&openai));
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let run = generate(&eng, &mut c, &prompt, 80, Pick::Argmax);
    eprintln!(
        "qwen auto ({} tokens, mean mask {:?}): {:?}",
        run.tokens.len(),
        run.mean_mask,
        run.text
    );
    assert!(run.ended, "did not finish: {:?}", run.text);
    // Asked about the weather with a weather tool at hand, the model calls
    // it (Qwen2.5-Coder writes the call bare, without the tags; the grammar
    // holds a bare call to the same schema).
    assert_calls_valid(&run.text, &tools, Some("get_weather"));
}

#[test]
fn forced_tool_call_smollm_with_rendered_tools_prompt() {
    let Some(eng) = common::engine("smollm2-135m-instruct") else {
        return;
    };
    let vocab = common::vocab(&eng);
    let (_, tools) = weather_tools();
    let msgs = [
        Message::new("system", render_tools_prompt(&tools)),
        Message::new("user", "What's the weather like in Paris right now?"),
    ];
    let prompt = chat(&eng, &msgs, None);
    let spec = ConstraintSpec::ToolCalls {
        tools: tools.clone(),
        choice: ToolChoice::Required,
        parallel: false,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let run = generate(&eng, &mut c, &prompt, 80, Pick::Argmax);
    eprintln!(
        "smollm required ({} tokens, mean mask {:?}): {:?}",
        run.tokens.len(),
        run.mean_mask,
        run.text
    );
    assert!(run.ended, "did not finish: {:?}", run.text);
    assert_calls_valid(&run.text, &tools, None);
}
