//! Chat templates: the Jinja template a model ships in `tokenizer.chat_template`,
//! rendered the way Hugging Face transformers' `apply_chat_template` renders it
//! (trim_blocks, lstrip_blocks, Python string methods, `raise_exception`,
//! `strftime_now`, and a `tojson` that writes what Python's `json.dumps` writes).

use crate::error::TextError;
use llmos_gguf::GgufFile;
use minijinja::value::Kwargs;
use minijinja::value::ValueKind;
use minijinja::{Environment, ErrorKind, Value};
use std::fmt::Write as _;

/// One chat message, shaped as transformers expects it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message with just a role and text.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            ..Message::default()
        }
    }
}

/// A compiled chat template.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    name: String,
    env: Environment<'static>,
    bos: String,
    eos: String,
}

/// ChatML: `<|im_start|>role\ncontent<|im_end|>\n`.
const CHATML: &str = "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";

/// Gemma: a system message joins the first user turn; the assistant is "model".
const GEMMA: &str = "{{ bos_token }}
{%- if messages and messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = '' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\\n' }}
{%- endif -%}";

/// Llama 3: header-delimited turns ending in `<|eot_id|>`.
const LLAMA3: &str = "{{- bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}";

/// Llama 2: `[INST]` turns, the system prompt inside the first one.
const LLAMA2: &str = "{%- if messages and messages[0]['role'] == 'system' -%}
    {%- set system = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set system = '' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif -%}
    {%- if message['role'] == 'user' -%}
        {{ bos_token + '[INST] ' + (system if loop.first else '') + message['content'] | trim + ' [/INST]' }}
    {%- else -%}
        {{ ' ' + message['content'] | trim + ' ' + eos_token }}
    {%- endif -%}
{%- endfor -%}";

/// (name, source, default BOS text, default EOS text)
const BUILTINS: &[(&str, &str, &str, &str)] = &[
    ("chatml", CHATML, "", "<|im_end|>"),
    ("gemma", GEMMA, "<bos>", "<eos>"),
    ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    ("llama2", LLAMA2, "<s>", "</s>"),
];

/// Marks errors raised by the template's own `raise_exception`.
const RAISED: &str = "raise_exception: ";

impl ChatTemplate {
    /// The template in `tokenizer.chat_template`, with BOS/EOS texts taken from
    /// the vocabulary; `None` when the file has no template.
    ///
    /// # Errors
    /// `TemplateNotString` for a non-string key; `TemplateSyntax` when the
    /// template does not parse.
    pub fn from_gguf(f: &GgufFile) -> Result<Option<ChatTemplate>, TextError> {
        let Some(v) = f.get("tokenizer.chat_template") else {
            return Ok(None);
        };
        let Some(src) = v.as_str() else {
            return Err(TextError::TemplateNotString {
                found: v.type_name().to_string(),
            });
        };
        let token_text = |key: &str| -> String {
            let id = f.get_u64(key);
            let tokens = f.get_array("tokenizer.ggml.tokens");
            match (id, tokens) {
                (Some(id), Some(tokens)) => usize::try_from(id)
                    .ok()
                    .and_then(|i| tokens.get(i))
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string(),
                _ => String::new(),
            }
        };
        let bos = token_text("tokenizer.ggml.bos_token_id");
        let eos = token_text("tokenizer.ggml.eos_token_id");
        ChatTemplate::compile("tokenizer.chat_template", src, &bos, &eos).map(Some)
    }

    /// The built-in template for a model architecture without one of its own
    /// (`gemma*` → Gemma turns, `llama`/`qwen*` and friends → ChatML, which is
    /// also llama.cpp's fallback).
    pub fn builtin_for_arch(arch: &str) -> Option<ChatTemplate> {
        let name = match arch {
            a if a.starts_with("gemma") => "gemma",
            "llama" | "qwen2" | "qwen3" | "qwen2moe" | "qwen3moe" | "smollm" | "olmo" | "phi3" => {
                "chatml"
            }
            _ => return None,
        };
        ChatTemplate::builtin(name).ok()
    }

    /// A built-in template by name: `chatml`, `gemma`, `llama3`, `llama2`.
    ///
    /// # Errors
    /// `UnknownTemplate` for any other name.
    pub fn builtin(name: &str) -> Result<ChatTemplate, TextError> {
        match BUILTINS.iter().find(|b| b.0 == name) {
            Some(&(n, src, bos, eos)) => ChatTemplate::compile(n, src, bos, eos),
            None => Err(TextError::UnknownTemplate {
                name: name.to_string(),
                known: BUILTINS.iter().map(|b| b.0).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// A template from its Jinja source, or, when `src` is a built-in name
    /// (`chatml`, `gemma`, `llama3`, `llama2`), that built-in. `bos`/`eos`
    /// are the texts the template sees as `bos_token`/`eos_token`.
    ///
    /// # Errors
    /// `TemplateSyntax` when the source does not parse.
    pub fn from_source(
        name: &str,
        src: &str,
        bos: &str,
        eos: &str,
    ) -> Result<ChatTemplate, TextError> {
        match BUILTINS.iter().find(|b| b.0 == src.trim()) {
            Some(&(n, builtin_src, _, _)) => ChatTemplate::compile(n, builtin_src, bos, eos),
            None => ChatTemplate::compile(name, src, bos, eos),
        }
    }

    /// Replaces the BOS/EOS texts the template sees.
    pub fn with_special_tokens(mut self, bos: &str, eos: &str) -> ChatTemplate {
        self.bos = bos.to_string();
        self.eos = eos.to_string();
        self
    }

    /// The template's name (a built-in name, or what the caller called it).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn compile(name: &str, src: &str, bos: &str, eos: &str) -> Result<ChatTemplate, TextError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", py_tojson);
        env.add_template_owned(name.to_string(), src.to_string())
            .map_err(|e| TextError::TemplateSyntax {
                name: name.to_string(),
                message: describe(&e),
            })?;
        Ok(ChatTemplate {
            name: name.to_string(),
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// Renders the conversation. `add_generation_prompt` appends the opening of
    /// an assistant turn; `tools` (a JSON list of tool schemas) is passed as
    /// `tools`, `None` as Python's `None`.
    ///
    /// # Errors
    /// `TemplateRaised` when the template calls `raise_exception(msg)`;
    /// `TemplateRender` for other failures (unknown filter, bad operand, ...).
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        tools: Option<&serde_json::Value>,
    ) -> Result<String, TextError> {
        let render_err = |e: minijinja::Error| {
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = cur {
                if let Some(m) = err.downcast_ref::<minijinja::Error>() {
                    if let Some(msg) = m.detail().and_then(|d| d.strip_prefix(RAISED)) {
                        return TextError::TemplateRaised {
                            name: self.name.clone(),
                            message: msg.to_string(),
                        };
                    }
                }
                cur = err.source();
            }
            TextError::TemplateRender {
                name: self.name.clone(),
                message: describe(&e),
            }
        };
        let tmpl = self.env.get_template(&self.name).map_err(render_err)?;
        let ctx = minijinja::context! {
            messages => Value::from_serialize(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
            tools => tools.map(Value::from_serialize).unwrap_or(Value::from(())),
            documents => Value::from(()),
        };
        tmpl.render(ctx).map_err(render_err)
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(inner) = cur {
        let _ = write!(s, ": {inner}");
        cur = inner.source();
    }
    s
}

fn raise_exception(msg: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("{RAISED}{msg}"),
    ))
}

/// Python's `datetime.now().strftime(fmt)`, in UTC.
fn strftime_now(fmt: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    strftime(&fmt, secs)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// `strftime` for a UTC Unix time: %Y %y %m %d %e %j %B %b %A %a %H %I %M %S %p %%.
/// Unknown directives are copied as is.
pub(crate) fn strftime(fmt: &str, unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let sod = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let weekday = ((days + 3) % 7) as usize; // 1970-01-01 was a Thursday (index 3 from Monday)
    let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cum[(month - 1) as usize] + day + i64::from(month > 2 && is_leap(year));
    let (h, m, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let month_name = MONTHS[(month - 1) as usize];
    let day_name = DAYS[weekday];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{year}"),
            Some('y') => write!(out, "{:02}", year % 100),
            Some('m') => write!(out, "{month:02}"),
            Some('d') => write!(out, "{day:02}"),
            Some('e') => write!(out, "{day:>2}"),
            Some('j') => write!(out, "{yday:03}"),
            Some('B') => write!(out, "{month_name}"),
            Some('b') => write!(out, "{}", &month_name[..3]),
            Some('A') => write!(out, "{day_name}"),
            Some('a') => write!(out, "{}", &day_name[..3]),
            Some('H') => write!(out, "{h:02}"),
            Some('I') => write!(out, "{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
            Some('M') => write!(out, "{m:02}"),
            Some('S') => write!(out, "{s:02}"),
            Some('p') => write!(out, "{}", if h < 12 { "AM" } else { "PM" }),
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, with those keyword arguments.
fn py_tojson(value: Value, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => Some(" ".repeat(v.as_usize().unwrap_or(0))),
        },
    };
    let (item_sep, key_sep) = match separators.filter(|v| !v.is_none()) {
        Some(v) => {
            let a = v.get_item_by_index(0)?;
            let b = v.get_item_by_index(1)?;
            (
                a.as_str().unwrap_or(", ").to_string(),
                b.as_str().unwrap_or(": ").to_string(),
            )
        }
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let opts = JsonOpts {
        indent,
        item_sep,
        key_sep,
        ensure_ascii: ensure_ascii.unwrap_or(false),
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    write_json(&value, &opts, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct JsonOpts {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
    sort_keys: bool,
}

fn write_json(
    v: &Value,
    o: &JsonOpts,
    depth: usize,
    out: &mut String,
) -> Result<(), minijinja::Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                out.push_str(&py_float_repr(f64::try_from(v.clone()).unwrap_or(f64::NAN)));
            }
        }
        ValueKind::String => write_json_str(v.as_str().unwrap_or(""), o.ensure_ascii, out),
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if o.sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline_indent(o, depth + 1, out);
                let key = match k.as_str() {
                    Some(s) => s.to_string(),
                    None => k.to_string(),
                };
                write_json_str(&key, o.ensure_ascii, out);
                out.push_str(&o.key_sep);
                write_json(&v.get_item(k)?, o, depth + 1, out)?;
            }
            newline_indent(o, depth, out);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline_indent(o, depth + 1, out);
                write_json(item, o, depth + 1, out)?;
            }
            newline_indent(o, depth, out);
            out.push(']');
        }
        _ => write_json_str(&v.to_string(), o.ensure_ascii, out),
    }
    Ok(())
}

fn newline_indent(o: &JsonOpts, depth: usize, out: &mut String) {
    if let Some(ind) = &o.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

/// A JSON string as Python's json module writes it.
fn write_json_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation
/// below 1e-4 and from 1e16.
fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sci = format!("{x:e}"); // e.g. "-1.5e20", "1e0"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_known_dates() {
        // 2024-02-29 13:05:09 UTC
        let t = 1_709_211_909;
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", t), "2024-02-29 13:05:09");
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %j %I%p %%", t),
            "Thursday February 060 01PM %"
        );
        assert_eq!(strftime("%a", 0), "Thu");
    }

    #[test]
    fn float_repr_like_python() {
        assert_eq!(py_float_repr(1.0), "1.0");
        assert_eq!(py_float_repr(0.1), "0.1");
        assert_eq!(py_float_repr(1e20), "1e+20");
        assert_eq!(py_float_repr(1.5e-7), "1.5e-07");
        assert_eq!(py_float_repr(123456.5), "123456.5");
    }

    #[test]
    fn tojson_matches_json_dumps() {
        let Ok(t) =
            ChatTemplate::from_source("t", "{{ x | tojson }}|{{ x | tojson(indent=2) }}", "", "")
        else {
            panic!("compile")
        };
        let v = serde_json::json!({"b": [1, 2.5, "é\"\n"], "a": {}, "c": null, "d": true});
        let msgs: Vec<Message> = Vec::new();
        let _ = msgs;
        let env_out = t
            .env
            .get_template("t")
            .and_then(|tm| tm.render(minijinja::context! { x => Value::from_serialize(&v) }));
        let Ok(out) = env_out else { panic!("render") };
        assert_eq!(
            out,
            "{\"b\": [1, 2.5, \"é\\\"\\n\"], \"a\": {}, \"c\": null, \"d\": true}|{\n  \"b\": [\n    1,\n    2.5,\n    \"é\\\"\\n\"\n  ],\n  \"a\": {},\n  \"c\": null,\n  \"d\": true\n}"
        );
    }

    #[test]
    fn raise_exception_names_the_message() {
        let Ok(t) = ChatTemplate::builtin("gemma") else {
            panic!("compile")
        };
        let msgs = [Message::new("assistant", "hi")];
        match t.render(&msgs, false, None) {
            Err(TextError::TemplateRaised { message, .. }) => {
                assert!(message.contains("must alternate"), "{message}")
            }
            other => panic!("expected TemplateRaised, got {other:?}"),
        }
    }

    #[test]
    fn unknown_builtin_lists_known_names() {
        match ChatTemplate::builtin("vicuna") {
            Err(TextError::UnknownTemplate { known, .. }) => assert!(known.contains("chatml")),
            other => panic!(
                "expected UnknownTemplate, got {:?}",
                other.map(|t| t.name().to_string())
            ),
        }
    }
}
