//! Text extraction: a file's bytes → plain text whose lines the chunker
//! counts. For plain text, Markdown and source code the lines are the file's
//! own; for HTML and PDF they are the lines of the extracted text (HTML main
//! text from `html2text`, which drops markup, scripts and styles; PDF text
//! from `pdf-extract`, pages separated by form feeds).

use crate::RagError;
use std::path::Path;

/// How a file is read and chunked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// `#` headings start sections.
    Markdown,
    Html,
    Pdf,
    /// Source code: blank lines separate blocks, no headings.
    Code,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Markdown => "markdown",
            Kind::Html => "html",
            Kind::Pdf => "pdf",
            Kind::Code => "code",
        }
    }
}

const CODE: &[&str] = &[
    "rs",
    "py",
    "js",
    "mjs",
    "ts",
    "tsx",
    "jsx",
    "c",
    "h",
    "cc",
    "cpp",
    "hpp",
    "cxx",
    "go",
    "java",
    "kt",
    "swift",
    "rb",
    "php",
    "cs",
    "scala",
    "sh",
    "bash",
    "zsh",
    "fish",
    "ps1",
    "sql",
    "lua",
    "pl",
    "r",
    "jl",
    "hs",
    "ml",
    "ex",
    "exs",
    "erl",
    "clj",
    "dart",
    "zig",
    "nim",
    "vue",
    "svelte",
    "css",
    "scss",
    "toml",
    "yaml",
    "yml",
    "json",
    "xml",
    "ini",
    "cfg",
    "conf",
    "mk",
    "cmake",
    "gradle",
    "proto",
    "tf",
    "nix",
    "dockerfile",
];
const TEXT: &[&str] = &[
    "txt", "text", "rst", "org", "adoc", "asciidoc", "tex", "csv", "tsv", "log",
];

/// The kind of a file from its name; `None` for files not worth indexing by
/// name alone (they are indexed as text if their bytes are UTF-8 text).
pub fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_string());
    match ext.as_deref() {
        Some("md" | "markdown" | "mdx") => Some(Kind::Markdown),
        Some("html" | "htm" | "xhtml") => Some(Kind::Html),
        Some("pdf") => Some(Kind::Pdf),
        Some(e) if CODE.contains(&e) => Some(Kind::Code),
        Some(e) if TEXT.contains(&e) => Some(Kind::Text),
        _ if matches!(
            name.as_str(),
            "makefile" | "dockerfile" | "readme" | "license"
        ) =>
        {
            Some(Kind::Text)
        }
        _ => None,
    }
}

/// Extracts the text of a file's bytes. `Ok(None)`: not text (binary, or an
/// unknown extension whose bytes are not UTF-8), so skipped.
///
/// # Errors
/// A PDF the extractor cannot read.
pub fn extract(path: &Path, bytes: &[u8]) -> Result<Option<(Kind, String)>, RagError> {
    let kind = kind_of(path);
    match kind {
        Some(Kind::Pdf) => {
            let text =
                pdf_extract::extract_text_from_mem(bytes).map_err(|e| RagError::Extract {
                    path: path.to_path_buf(),
                    msg: e.to_string(),
                })?;
            Ok(Some((Kind::Pdf, text)))
        }
        Some(Kind::Html) => {
            let text = html_text(bytes);
            Ok(Some((Kind::Html, text)))
        }
        Some(k) => Ok(utf8_text(bytes).map(|t| (k, t))),
        None => Ok(utf8_text(bytes).map(|t| (Kind::Text, t))),
    }
}

/// UTF-8 text without NUL bytes (a cheap binary test), BOM removed.
fn utf8_text(bytes: &[u8]) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    let s = std::str::from_utf8(bytes).ok()?;
    Some(s.strip_prefix('\u{feff}').unwrap_or(s).to_string())
}

/// The readable text of an HTML page, one paragraph per line group; links are
/// kept as their text, images and markup dropped.
pub fn html_text(bytes: &[u8]) -> String {
    let cfg = html2text::config::plain_no_decorate();
    cfg.string_from_read(bytes, 100)
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(kind_of(Path::new("a/B.MD")), Some(Kind::Markdown));
        assert_eq!(kind_of(Path::new("x.rs")), Some(Kind::Code));
        assert_eq!(kind_of(Path::new("index.html")), Some(Kind::Html));
        assert_eq!(kind_of(Path::new("paper.pdf")), Some(Kind::Pdf));
        assert_eq!(kind_of(Path::new("notes")), None);
    }

    #[test]
    fn html_drops_markup_and_scripts() {
        let html = b"<html><head><style>p{color:red}</style><script>var x=1;</script></head>\
            <body><h1>Title</h1><p>Hello <b>bold</b> world.</p></body></html>";
        let t = html_text(html);
        assert!(
            t.contains("Title") && t.contains("Hello bold world."),
            "{t}"
        );
        assert!(!t.contains("var x") && !t.contains("color:red"), "{t}");
    }

    #[test]
    fn binary_is_skipped() {
        let r = extract(Path::new("blob.bin"), b"\x00\x01\x02").expect("extract");
        assert!(r.is_none());
        let r = extract(Path::new("notes"), "héllo".as_bytes()).expect("extract");
        assert_eq!(r, Some((Kind::Text, "héllo".to_string())));
    }
}
