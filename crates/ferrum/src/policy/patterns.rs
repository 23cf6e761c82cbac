//! Name patterns: literal text, `*` (one or more characters, any characters) and the
//! placeholder `{namespace}`, matched without backtracking blow-up (the two-pointer wildcard
//! algorithm: at most one saved star position, so O(pattern × name) in the worst case).

use std::borrow::Cow;

/// The one placeholder.
const PLACEHOLDER: &str = "{namespace}";

/// What a pattern matches, which decides its syntax and case rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PatternKind {
    /// DNS names: letters, digits, `-`, `.`, `_`, `*`; no empty labels; case-insensitive.
    Dns,
    /// Email addresses: exactly one `@`; case-insensitive.
    Email,
    /// URIs: a literal scheme first; case-sensitive.
    Uri,
    /// commonNames: any printable ASCII; case-insensitive.
    CommonName,
}

impl PatternKind {
    fn case_insensitive(self) -> bool {
        !matches!(self, Self::Uri)
    }
}

/// One element of a pattern as written.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Literal text.
    Literal(String),
    /// `{namespace}`.
    Namespace,
    /// `*`.
    Star,
}

/// One element of a pattern with the namespace filled in, for matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    /// This byte.
    Byte(u8),
    /// Any one byte (the first character a `*` must take).
    One,
    /// Any run of bytes, possibly empty (the rest of a `*`).
    Many,
}

/// A checked pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pattern {
    /// As written, for summaries and messages.
    text: String,
    kind: PatternKind,
    parts: Vec<Part>,
    /// The elements when the pattern has no placeholder (the common case needs no work per
    /// match); empty otherwise.
    fixed: Vec<Elem>,
}

impl Pattern {
    /// Checks `text` as a pattern of `kind`; the error says what is wrong, for a person.
    pub(super) fn parse(text: &str, kind: PatternKind) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the pattern is empty".into());
        }
        if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "contains {c:?}, which is not printable ASCII; patterns hold no spaces or control characters"
            ));
        }
        let parts = parts(text)?;
        match kind {
            PatternKind::Dns => check_dns(&parts)?,
            PatternKind::Email => check_email(&parts)?,
            PatternKind::Uri => check_uri(&parts)?,
            PatternKind::CommonName => {}
        }
        check_tenancy(&parts, kind)?;
        let has_placeholder = parts.contains(&Part::Namespace);
        let mut pattern = Self { text: text.to_owned(), kind, parts, fixed: Vec::new() };
        if !has_placeholder {
            pattern.fixed = pattern.elems("").into_owned();
        }
        Ok(pattern)
    }

    /// The pattern with `{namespace}` replaced, for messages.
    pub(super) fn expanded(&self, namespace: &str) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.as_str(),
                Part::Namespace => namespace,
                Part::Star => "*",
            })
            .collect()
    }

    /// Whether `name`, requested from `namespace`, matches. The name is matched as written:
    /// a `*` in it is an ordinary character.
    pub(super) fn matches(&self, name: &str, namespace: &str) -> bool {
        glob(&self.elems(namespace), name.as_bytes(), self.kind.case_insensitive())
    }

    fn elems(&self, namespace: &str) -> Cow<'_, [Elem]> {
        if !self.fixed.is_empty() {
            return Cow::Borrowed(&self.fixed);
        }
        let mut elems = Vec::with_capacity(self.text.len() + namespace.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => elems.extend(text.bytes().map(Elem::Byte)),
                Part::Namespace => elems.extend(namespace.bytes().map(Elem::Byte)),
                Part::Star => elems.extend([Elem::One, Elem::Many]),
            }
        }
        Cow::Owned(elems)
    }
}

/// Splits a pattern into literals, stars and placeholders.
fn parts(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let Some(end) = rest.find('}') else {
                    return Err(format!("unclosed \"{{\"; the only placeholder is {PLACEHOLDER}"));
                };
                let placeholder = &rest[..=end];
                if placeholder != PLACEHOLDER {
                    return Err(format!("unknown placeholder {placeholder}; the only placeholder is {PLACEHOLDER}"));
                }
                flush(&mut literal, &mut parts);
                parts.push(Part::Namespace);
                rest = &rest[end + 1..];
                continue;
            }
            '}' => return Err(format!("\"}}\" without \"{{\"; the only placeholder is {PLACEHOLDER}")),
            '*' => {
                flush(&mut literal, &mut parts);
                parts.push(Part::Star);
            }
            c => literal.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut literal, &mut parts);
    Ok(parts)
}

fn flush(literal: &mut String, parts: &mut Vec<Part>) {
    if !literal.is_empty() {
        parts.push(Part::Literal(std::mem::take(literal)));
    }
}

/// The pattern's shape for syntax checks: `{namespace}` as one letter (a namespace is a DNS
/// label), `*` as itself.
fn shape(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|part| match part {
            Part::Literal(text) => text.as_str(),
            Part::Namespace => "n",
            Part::Star => "*",
        })
        .collect()
}

fn check_dns(parts: &[Part]) -> Result<(), String> {
    let shape = shape(parts);
    if let Some(c) = shape.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '*'))) {
        return Err(format!(
            "contains {c:?}, which a DNS name cannot hold (letters, digits, \"-\", \".\", \"_\", \"*\" and {PLACEHOLDER} only)"
        ));
    }
    if shape.split('.').any(str::is_empty) {
        return Err("has an empty label (\"..\", or a leading or trailing \".\")".into());
    }
    Ok(())
}

fn check_email(parts: &[Part]) -> Result<(), String> {
    let shape = shape(parts);
    let ats = shape.matches('@').count();
    if ats != 1 {
        return Err(format!("an email pattern has exactly one \"@\" (found {ats})"));
    }
    if shape.starts_with('@') || shape.ends_with('@') {
        return Err("an email pattern needs text on both sides of its \"@\"".into());
    }
    Ok(())
}

fn check_uri(parts: &[Part]) -> Result<(), String> {
    let no_scheme =
        || "has no scheme; a URI pattern starts with a literal one, such as \"spiffe:\" or \"https:\"".to_owned();
    let Some(Part::Literal(first)) = parts.first() else {
        return Err(no_scheme());
    };
    let Some((scheme, _)) = first.split_once(':') else {
        return Err(no_scheme());
    };
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(no_scheme());
    }
    Ok(())
}

/// Keeps one namespace's names out of another's. A namespace name is a DNS label (letters,
/// digits, `-`), so `{namespace}` must be set off by a character no namespace holds (`.`, `/`,
/// `@`, `:`...): `{namespace}-*` would give namespace `a` the names of namespace `a-b`, and a
/// `*` right next to it would do the same. And a `*` may not stand on the side of
/// `{namespace}` that names its parent: in a DNS name (or an email's domain) that is the right
/// (`{namespace}.*` gives `a` the name `a.b.svc.cluster.local`, inside `b`'s
/// `*.b.svc.cluster.local`); in a URI the left (`spiffe://*/ns/{namespace}/*` gives `a` the URI
/// `spiffe://x/ns/b/ns/a/y`, which a prefix check reads as `b`'s).
fn check_tenancy(parts: &[Part], kind: PatternKind) -> Result<(), String> {
    let edge = |part: Option<&Part>, last: bool| -> Option<char> {
        match part? {
            Part::Literal(text) => {
                if last {
                    text.chars().last()
                } else {
                    text.chars().next()
                }
            }
            Part::Namespace => Some('a'),
            Part::Star => Some('*'),
        }
    };
    let joined = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*');
    for (i, part) in parts.iter().enumerate() {
        if *part != Part::Namespace {
            continue;
        }
        let before = edge(i.checked_sub(1).and_then(|j| parts.get(j)), true);
        let after = edge(parts.get(i + 1), false);
        if joined(before) || joined(after) {
            return Err(format!(
                "{PLACEHOLDER} must be set off by a character no namespace name holds (such as \".\", \"/\" or \"@\"), \
                 or one namespace would match another's names (\"a\" those of \"a-b\")"
            ));
        }
        let star_after = parts[i + 1..].contains(&Part::Star);
        let star_before = parts[..i].contains(&Part::Star);
        let in_domain = match kind {
            PatternKind::Dns => true,
            PatternKind::Email => parts[..i].iter().any(|p| matches!(p, Part::Literal(t) if t.contains('@'))),
            _ => false,
        };
        if in_domain && star_after {
            return Err(format!(
                "a \"*\" after {PLACEHOLDER} in a domain lets one namespace take names inside another's \
                 (\"a.b.example.com\" is inside \"b.example.com\"); put the \"*\" on the left"
            ));
        }
        if kind == PatternKind::Uri && star_before {
            return Err(format!(
                "a \"*\" before {PLACEHOLDER} in a URI lets one namespace take URIs that read as another's \
                 (\"spiffe://x/ns/b/ns/a\"); put the \"*\" after it"
            ));
        }
    }
    Ok(())
}

/// Two-pointer wildcard matching: on a mismatch, the last `Many` seen takes one more byte and
/// the match resumes after it. Earlier `Many`s never need revisiting, so there is no
/// exponential backtracking.
fn glob(pattern: &[Elem], name: &[u8], case_insensitive: bool) -> bool {
    let same = |a: u8, b: u8| if case_insensitive { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut p, mut n) = (0, 0);
    // (pattern index after the last Many, name index it is matched up to)
    let mut resume: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(Elem::Many) => {
                resume = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(Elem::One) => {
                p += 1;
                n += 1;
                continue;
            }
            Some(Elem::Byte(b)) if same(*b, name[n]) => {
                p += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        let Some((after_many, taken)) = resume else {
            return false;
        };
        resume = Some((after_many, taken + 1));
        p = after_many;
        n = taken + 1;
    }
    pattern[p.min(pattern.len())..].iter().all(|e| *e == Elem::Many)
}

/// Why a URI under a `uris` rule is refused whatever the patterns say, if it is: a dot
/// segment in its path or a percent-encoded `.` or `/` anywhere could make a name that
/// matches a tenant's pattern resolve outside it.
pub(super) fn uri_evasion(uri: &str) -> Option<&'static str> {
    let lower = uri.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") {
        return Some(
            "holds a percent-encoded \".\" or \"/\" (%2e, %2f), which could hide a dot segment or a path separator from the allowed patterns; request the plain form",
        );
    }
    // The path: after the scheme and the authority, before a query or fragment.
    let after_scheme = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let path = match after_scheme.strip_prefix("//") {
        Some(rest) => rest.find('/').map_or("", |i| &rest[i..]),
        None => after_scheme,
    };
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Some(
            "has a \".\" or \"..\" segment in its path, which could resolve outside the allowed patterns; request the resolved form",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str, kind: PatternKind) -> Pattern {
        Pattern::parse(text, kind).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn matching() {
        use PatternKind::*;
        // (kind, pattern, namespace, name, matches)
        let table = [
            (Dns, "*.{namespace}.svc.cluster.local", "a", "db.a.svc.cluster.local", true),
            (Dns, "*.{namespace}.svc.cluster.local", "a", "db.b.svc.cluster.local", false),
            (Dns, "*.{namespace}.svc.cluster.local", "b", "db.b.svc.cluster.local", true),
            // `*` takes dots too.
            (Dns, "*.{namespace}.svc.cluster.local", "a", "x.db.a.svc.cluster.local", true),
            // `*` takes at least one character.
            (Dns, "*.{namespace}.svc.cluster.local", "a", ".a.svc.cluster.local", false),
            (Dns, "*.{namespace}.svc.cluster.local", "a", "a.svc.cluster.local", false),
            (Dns, "web-*.example.com", "a", "web-.example.com", false),
            (Dns, "web-*.example.com", "a", "web-1.example.com", true),
            (Dns, "*", "a", "", false),
            (Dns, "*", "a", "x", true),
            // A requested wildcard is matched as written.
            (Dns, "*.{namespace}.svc.cluster.local", "a", "*.a.svc.cluster.local", true),
            (Dns, "db.{namespace}.example.com", "a", "*.a.example.com", false),
            // Case.
            (Dns, "*.{namespace}.SVC.cluster.local", "a", "DB.A.svc.Cluster.Local", true),
            (Email, "*@{namespace}.example.com", "a", "Ops@A.Example.com", true),
            (Email, "*@{namespace}.example.com", "a", "ops@b.example.com", false),
            (CommonName, "{namespace}:*", "a", "A:Service", true),
            (Uri, "spiffe://cluster.local/ns/{namespace}/*", "a", "spiffe://cluster.local/ns/a/sa/x", true),
            (Uri, "spiffe://cluster.local/ns/{namespace}/*", "a", "spiffe://cluster.local/ns/b/sa/x", false),
            (Uri, "spiffe://cluster.local/ns/{namespace}/*", "a", "spiffe://cluster.local/ns/A/sa/x", false),
            (Uri, "spiffe://cluster.local/ns/{namespace}/*", "a", "spiffe://cluster.local/ns/a/", false),
            // The namespace is literal text, never a wildcard.
            (Dns, "{namespace}.example.com", "a", "b.example.com", false),
            // Several stars, backtracking through the last one.
            (Dns, "*.*.example.com", "a", "a.b.c.example.com", true),
            (Dns, "*-*-*.example.com", "a", "a-b.example.com", false),
            (Dns, "a*b*c", "a", "aXbXbXc", true),
            (Dns, "a*b*c", "a", "aXbXbX", false),
        ];
        for (kind, text, namespace, name, expected) in table {
            assert_eq!(pattern(text, kind).matches(name, namespace), expected, "{kind:?} {text} {namespace} {name}");
        }
    }

    #[test]
    fn many_stars_stay_linear() {
        let text = format!("{}b", "*".repeat(50));
        let name = "a".repeat(10_000);
        let started = std::time::Instant::now();
        assert!(!pattern(&text, PatternKind::CommonName).matches(&name, "a"));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn expanded() {
        let p = pattern("*.{namespace}.{namespace}.x", PatternKind::Dns);
        assert_eq!(p.expanded("a"), "*.a.a.x");
        assert!(p.matches("q.a.a.x", "a"));
    }

    #[test]
    fn refused_patterns() {
        use PatternKind::*;
        let table = [
            (Dns, "", "the pattern is empty"),
            (
                Dns,
                "a b.example.com",
                "contains ' ', which is not printable ASCII; patterns hold no spaces or control characters",
            ),
            (
                CommonName,
                "caf\u{e9}",
                "contains 'é', which is not printable ASCII; patterns hold no spaces or control characters",
            ),
            (Dns, "*.{ns}.example.com", "unknown placeholder {ns}; the only placeholder is {namespace}"),
            (Uri, "spiffe://x/{namespace", "unclosed \"{\"; the only placeholder is {namespace}"),
            (CommonName, "a}b", "\"}\" without \"{\"; the only placeholder is {namespace}"),
            (
                Dns,
                "a/b.example.com",
                "contains '/', which a DNS name cannot hold (letters, digits, \"-\", \".\", \"_\", \"*\" and {namespace} only)",
            ),
            (Dns, "a..b", "has an empty label (\"..\", or a leading or trailing \".\")"),
            (Dns, ".a.b", "has an empty label (\"..\", or a leading or trailing \".\")"),
            (Dns, "a.b.", "has an empty label (\"..\", or a leading or trailing \".\")"),
            (Email, "{namespace}.example.com", "an email pattern has exactly one \"@\" (found 0)"),
            (Email, "a@b@c", "an email pattern has exactly one \"@\" (found 2)"),
            (Email, "@example.com", "an email pattern needs text on both sides of its \"@\""),
            (
                Uri,
                "cluster.local/ns/{namespace}/*",
                "has no scheme; a URI pattern starts with a literal one, such as \"spiffe:\" or \"https:\"",
            ),
            (
                Uri,
                "*://x/*",
                "has no scheme; a URI pattern starts with a literal one, such as \"spiffe:\" or \"https:\"",
            ),
            (
                Uri,
                "1x://y",
                "has no scheme; a URI pattern starts with a literal one, such as \"spiffe:\" or \"https:\"",
            ),
        ];
        for (kind, text, message) in table {
            assert_eq!(Pattern::parse(text, kind).unwrap_err(), message, "{kind:?} {text}");
        }
    }

    /// Patterns that would let one namespace match another's names are refused; each
    /// refusal names the reason.
    #[test]
    fn tenancy_of_patterns() {
        use PatternKind::*;
        for (kind, text, says) in [
            (Dns, "{namespace}-*.example.com", "set off"),
            (Dns, "*{namespace}.example.com", "set off"),
            (Dns, "x{namespace}.example.com", "set off"),
            (Dns, "{namespace}{namespace}.example.com", "set off"),
            (CommonName, "{namespace}-svc", "set off"),
            (Dns, "{namespace}.*", "after {namespace} in a domain"),
            (Dns, "x.{namespace}.*.example.com", "after {namespace} in a domain"),
            (Email, "ops@{namespace}.*", "after {namespace} in a domain"),
            (Uri, "spiffe://*/ns/{namespace}/*", "before {namespace} in a URI"),
            (Uri, "spiffe://cluster.local/ns/{namespace}-*", "set off"),
        ] {
            let error = Pattern::parse(text, kind).unwrap_err();
            assert!(error.contains(says), "{kind:?} {text}: {error}");
        }
        for (kind, text) in [
            (Dns, "*.{namespace}.svc.cluster.local"),
            (Dns, "{namespace}.example.com"),
            (Email, "*@{namespace}.example.com"),
            (Email, "{namespace}.*@example.com"),
            (Uri, "spiffe://cluster.local/ns/{namespace}/*"),
            (CommonName, "{namespace}.svc"),
        ] {
            assert!(Pattern::parse(text, kind).is_ok(), "{kind:?} {text}");
        }
    }

    #[test]
    fn accepted_patterns() {
        for (kind, text) in [
            (PatternKind::Dns, "*.{namespace}.svc.cluster.local"),
            (PatternKind::Dns, "_acme-challenge.{namespace}.example.com"),
            (PatternKind::Dns, "*"),
            (PatternKind::Email, "*@{namespace}.example.com"),
            (PatternKind::Uri, "spiffe://cluster.local/ns/{namespace}/*"),
            (PatternKind::Uri, "urn:example:{namespace}"),
            (PatternKind::CommonName, "{namespace}:*"),
        ] {
            assert!(Pattern::parse(text, kind).is_ok(), "{kind:?} {text}");
        }
    }

    #[test]
    fn uri_evasions() {
        let table = [
            ("spiffe://cluster.local/ns/a/sa/x", false),
            ("spiffe://cluster.local/ns/a/../b/sa/x", true),
            ("spiffe://cluster.local/ns/a/./sa/x", true),
            ("spiffe://cluster.local/ns/a/..", true),
            ("spiffe://cluster.local/ns/a/.", true),
            ("spiffe://cluster.local/ns/a/%2e%2e/b", true),
            ("spiffe://cluster.local/ns/a/%2E%2E/b", true),
            ("spiffe://cluster.local/ns/a%2fb", true),
            ("spiffe://cluster.local/ns/a/%2F", true),
            ("spiffe://cluster.local/ns/a/..x/.y", false),
            ("https://example.com/a?x=/../", false),
            ("urn:a:..", false),
            ("urn:../b", true),
        ];
        for (uri, refused) in table {
            assert_eq!(uri_evasion(uri).is_some(), refused, "{uri}");
        }
        assert!(uri_evasion("spiffe://cluster.local/ns/a/../b").unwrap().contains("\"..\" segment"));
        assert!(uri_evasion("spiffe://cluster.local/ns/a/%2e").unwrap().contains("percent-encoded"));
    }
}
