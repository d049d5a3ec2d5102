//! The pre-tokenizer each `tokenizer.ggml.pre` name selects, with the
//! tokenizer flags that come with it, as in llama.cpp's llama-vocab.cpp.

pub(crate) const GPT2: &str =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
pub(crate) const LLAMA3: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
pub(crate) const LLAMA3_I: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
pub(crate) const QWEN2: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
pub(crate) const NEWLINES: &str = "[^\\n]+|[\\n]+";
pub(crate) const STARCODER_DIGITS: &str = "\\p{N}";
pub(crate) const DEFAULT: [&str; 4] = [
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    GPT2,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
];
const DEEPSEEK3: [&str; 3] = [
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];
const DEEPSEEK_CODER: [&str; 5] = [
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
];
const FALCON: [&str; 3] = [
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
];
const PORO: &str = " ?[^(\\s|.,!?…。，、।۔،)]+";
const TEKKEN: &str = "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CHAMELEON: [&str; 6] = [
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    GPT2,
];
const GPT4O: &str = "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const JAIS2: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}";
const BAILINGMOE: &str = "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
const SEED_CODER: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const UFAKZEKA: &str = "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const EXAONE_MOE: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
const MINICPM5: [&str; 2] = [
    "\\p{N}{1,3}",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];

/// What a `tokenizer.ggml.pre` name selects in llama.cpp (llama-vocab.cpp).
pub(crate) struct PreSpec {
    pub(crate) exprs: &'static [&'static str],
    /// detokenize: drop spaces before punctuation (`clean_up_tokenization_spaces`)
    pub(crate) clean_spaces: bool,
    /// a whole word that is a token is taken as is, before merges
    pub(crate) ignore_merges: bool,
    /// default for `add_bos` when the metadata does not say
    pub(crate) add_bos: bool,
    /// the type has no BOS unless the metadata names one
    pub(crate) no_default_bos: bool,
}

const fn spec(exprs: &'static [&'static str], clean_spaces: bool) -> PreSpec {
    PreSpec {
        exprs,
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
        no_default_bos: false,
    }
}

/// `(names, spec)`: every name llama.cpp accepts, grouped by what it selects.
pub(crate) const PRE_TYPES: &[(&[&str], PreSpec)] = &[
    (&["", "default"], spec(&DEFAULT, true)),
    (
        &["minicpm5"],
        PreSpec {
            ignore_merges: true,
            ..spec(&MINICPM5, true)
        },
    ),
    (
        &[
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "jina-v5-nano",
        ],
        PreSpec {
            ignore_merges: true,
            add_bos: true,
            ..spec(&[LLAMA3], true)
        },
    ),
    (&["dbrx", "smaug-bpe"], spec(&[LLAMA3], true)),
    (&["deepseek-coder"], spec(&DEEPSEEK_CODER, false)),
    (
        &["deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"],
        spec(&DEEPSEEK3, false),
    ),
    (&["falcon"], spec(&FALCON, true)),
    (
        &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "modern-bert",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
            "mpt",
            "olmo",
            "jais",
            "exaone4",
        ],
        spec(&[GPT2], true),
    ),
    (&["trillion", "granite-docling"], spec(&[GPT2], false)),
    (&["jais-2"], spec(&[JAIS2], true)),
    (
        &[
            "starcoder",
            "refact",
            "codeshell",
            "exaone",
            "minerva-7b",
            "mellum2",
        ],
        spec(&[STARCODER_DIGITS, GPT2], true),
    ),
    (
        &["command-r", "smollm"],
        spec(&[STARCODER_DIGITS, GPT2], false),
    ),
    (
        &[
            "qwen2",
            "deepseek-r1-qwen",
            "kormo",
            "f2llmv2",
            "hunyuan",
            "solar-open",
        ],
        spec(&[QWEN2], false),
    ),
    (&["stablelm2", "megrez"], spec(&[QWEN2], true)),
    (&["poro-chat"], spec(&[PORO], false)),
    (&["bloom", "gpt3-finnish"], spec(&[PORO], true)),
    (&["viking"], spec(&[PORO, STARCODER_DIGITS], false)),
    (
        &["chatglm-bpe"],
        PreSpec {
            no_default_bos: true,
            ..spec(&[LLAMA3], true)
        },
    ),
    (
        &["glm4", "glm5"],
        PreSpec {
            no_default_bos: true,
            ignore_merges: true,
            ..spec(&[LLAMA3], true)
        },
    ),
    (
        &["tekken"],
        PreSpec {
            ignore_merges: true,
            add_bos: true,
            ..spec(&[TEKKEN], false)
        },
    ),
    (
        &["chameleon"],
        PreSpec {
            add_bos: true,
            ..spec(&CHAMELEON, false)
        },
    ),
    (
        &["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"],
        spec(&[GPT4O], false),
    ),
    (
        &["bailingmoe", "bailingmoe2", "llada-moe"],
        spec(&[BAILINGMOE], false),
    ),
    (&["seed-coder"], spec(&[SEED_CODER], false)),
    (&["ufakzeka"], spec(&[UFAKZEKA], false)),
    (&["grok-2"], spec(&[QWEN2], false)),
    (&["laguna"], spec(&[NEWLINES, QWEN2], false)),
    (&["exaone-moe"], spec(&[EXAONE_MOE], true)),
];

/// Names llama.cpp knows but whose pre-tokenizer needs code llmos lacks.
pub(crate) const UNSUPPORTED_PRE: &[&str] = &[
    "qwen35",
    "kimi-k2",
    "afmoe",
    "tiny_aya",
    "cohere2moe",
    "superbpe",
    "gemma4",
    "granite-embed-multi-311m",
    "granite-embed-multi-97m",
    "sarvam-moe",
    "whitespace",
    "youtu",
    "spark2_5",
    // its Latin-letter class needs exact code points our copy of the pattern lost
    "deepseek-llm",
];

pub(crate) fn lookup_pre(name: &str) -> Option<&'static PreSpec> {
    PRE_TYPES
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, s)| s)
}

pub(crate) fn known_pre_names() -> String {
    let mut names: Vec<&str> = PRE_TYPES
        .iter()
        .flat_map(|(n, _)| n.iter().copied())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort_unstable();
    names.join(", ")
}
