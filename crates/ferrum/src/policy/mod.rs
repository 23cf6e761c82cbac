//! The per-issuer policy (`spec.policy`): which names, keys, lifetimes and usages an issuer
//! signs, whether it signs CA certificates, and which namespaces a cluster issuer serves.
//! Pure: no Kubernetes, no clock.
//!
//! [`IssuerPolicy`] is the spec as users write it; [`IssuerPolicy::compile`] checks it once
//! (a bad policy makes the issuer not Ready, with [`InvalidPolicy`]'s message) into a
//! [`CompiledPolicy`], whose [`CompiledPolicy::check`] judges one request: a
//! [`PolicyViolation`] fails it naming the rule; a [`PolicyOutcome`] gives the lifetime to
//! issue (cut to `maxDuration` if need be) and the warnings for the request's event.
//!
//! Name patterns may use the requesting namespace, `{namespace}`, so that one issuer can
//! serve many tenants without one naming another's services.

mod patterns;
mod ranges;
mod selector;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::flagset::FlagSet;
use x509_cert::ext::pkix::KeyUsages;

use self::patterns::{Pattern, PatternKind, uri_evasion};
use self::ranges::IpRange;
use self::selector::Selector;
pub use self::spec::{AllowedKey, AllowedNames, IssuerPolicy, KeyAlgorithmName};
use crate::api::IssuerScope;
use crate::signer::Warning;
use crate::x509::cert_names::CertNames;
use crate::x509::csr::{MAX_RSA_BITS, MIN_RSA_BITS};
use crate::x509::template::{MAX_DURATION, MIN_DURATION, Usage, usage};
use crate::x509::{CertificateTemplate, Curve, KeyAlgorithm, NamePolicy, SanType, ValidatedCsr, parse_go_duration};

/// Issuer condition reason: the policy cannot be applied (a malformed pattern, an impossible
/// range...); the message says which field and why.
pub const INVALID_POLICY: &str = "InvalidPolicy";
/// Request event reason: the certificate lives `maxDuration`, less than requested.
pub const DURATION_CLAMPED_BY_POLICY: &str = "DurationClampedByPolicy";

/// Items listed in a message before the rest are counted instead.
const LISTED: usize = 5;
/// Characters of a requested name shown in a message before it is cut.
const SHOWN_CHARS: usize = 200;

/// A policy that cannot be applied. Its message names the field and says what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidPolicy {
    message: String,
}

impl InvalidPolicy {
    fn new(message: String) -> Self {
        Self { message }
    }

    /// The message, e.g. `spec.policy.maxDuration: 30m is shorter than 1h, ...`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a request may not be signed under the issuer's policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The issuer selects namespaces by label and the request's namespace's labels are not
    /// known yet: not a verdict; wait and check again.
    #[error(
        "the labels of namespace {namespace:?} are not known yet; they are needed for the issuer's spec.policy.namespaceSelector"
    )]
    NamespaceLabelsUnknown {
        /// The request's namespace.
        namespace: String,
    },
    /// A rule refuses the request; the message names the rule, for the request's `Failed`
    /// condition.
    #[error("{0}")]
    Rule(String),
}

/// One request, as the policy judges it.
#[derive(Clone, Copy, Debug)]
pub struct PolicyInput<'a> {
    /// The request's namespace.
    pub namespace: &'a str,
    /// The labels of the request's namespace; `None` when they are not known (needed only
    /// when [`CompiledPolicy::needs_namespace_labels`]).
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The request's checked CSR.
    pub csr: &'a ValidatedCsr,
    /// The certificate that would be issued.
    pub template: &'a CertificateTemplate,
}

/// A request the policy accepts, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// The lifetime to issue: the template's, or `maxDuration` when that is shorter.
    pub duration: Duration,
    /// Where the certificate differs from the request, for the request's event.
    pub warnings: Vec<Warning>,
}

/// A checked policy, ready to judge requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPolicy {
    allowed_san_types: Vec<SanType>,
    names: Option<NameRules>,
    keys: Vec<AllowedKey>,
    min_duration: Option<Duration>,
    max_duration: Option<Duration>,
    usages: Option<UsageRules>,
    allow_ca: bool,
    namespace_selector: Option<Selector>,
}

/// `allowedNames`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NameRules {
    common_names: Option<Vec<Pattern>>,
    dns: Vec<Pattern>,
    ips: Vec<IpRange>,
    uris: Vec<Pattern>,
    emails: Vec<Pattern>,
}

/// `allowedUsages`, resolved through cert-manager's names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UsageRules {
    key: FlagSet<KeyUsages>,
    extended: Vec<ObjectIdentifier>,
    /// As written, for messages.
    names: Vec<String>,
}

impl IssuerPolicy {
    /// Checks the policy of an issuer of `scope`. The error names the first field that is
    /// wrong, e.g. `spec.policy.allowedNames.dnsNames[1]: "*.{ns}.example.com": unknown
    /// placeholder {ns}; the only placeholder is {namespace}`.
    pub fn compile(&self, scope: IssuerScope) -> Result<CompiledPolicy, InvalidPolicy> {
        let names = self.allowed_names.as_ref().map(compile_names).transpose()?;
        if names.is_some()
            && let Some(san_type) = self.allowed_subject_alt_name_types.first()
        {
            return Err(InvalidPolicy::new(format!(
                "spec.policy.allowedSubjectAltNameTypes: {san_type} cannot be allowed together with \
                 spec.policy.allowedNames, which has no rule for that type; remove one of the two"
            )));
        }
        compile_keys(&self.allowed_keys)?;
        let min = compile_duration("minDuration", self.min_duration.as_deref())?;
        let max = compile_duration("maxDuration", self.max_duration.as_deref())?;
        if let Some((max, text)) = max
            && max < MIN_DURATION
        {
            return Err(InvalidPolicy::new(format!(
                "spec.policy.maxDuration: {text} is shorter than 1h, the shortest lifetime cert-manager requests"
            )));
        }
        if let Some((min, text)) = min
            && min > MAX_DURATION
        {
            return Err(InvalidPolicy::new(format!(
                "spec.policy.minDuration: {text} is longer than 100 years, the longest lifetime cert-manager requests"
            )));
        }
        if let (Some((min, min_text)), Some((max, max_text))) = (min, max)
            && min > max
        {
            return Err(InvalidPolicy::new(format!(
                "spec.policy.minDuration: {min_text} is longer than spec.policy.maxDuration {max_text}; no lifetime satisfies both"
            )));
        }
        let usages = compile_usages(&self.allowed_usages)?;
        let namespace_selector = match (&self.namespace_selector, scope) {
            (None, _) => None,
            (Some(_), IssuerScope::Namespaced) => {
                return Err(InvalidPolicy::new(
                    "spec.policy.namespaceSelector: applies only to cluster-scoped issuers; a namespaced issuer serves its own namespace only"
                        .into(),
                ));
            }
            (Some(selector), IssuerScope::Cluster) => {
                Some(Selector::compile(selector, "spec.policy.namespaceSelector").map_err(InvalidPolicy::new)?)
            }
        };
        Ok(CompiledPolicy {
            allowed_san_types: self.allowed_subject_alt_name_types.clone(),
            names,
            keys: self.allowed_keys.clone(),
            min_duration: min.map(|(d, _)| d),
            max_duration: max.map(|(d, _)| d),
            usages,
            allow_ca: self.allow_ca,
            namespace_selector,
        })
    }
}

/// Most patterns (or IP ranges) in one `allowedNames` list: every name of every request is
/// matched against the list, on workers all issuers share.
pub const MAX_PATTERNS: usize = 256;
/// Longest pattern, in bytes (a URI pattern may be long; a DNS name is at most 253).
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Refuses a list longer than [`MAX_PATTERNS`] or holding a pattern longer than
/// [`MAX_PATTERN_BYTES`].
fn check_list_size(field: &str, texts: &[String]) -> Result<(), InvalidPolicy> {
    if texts.len() > MAX_PATTERNS {
        return Err(InvalidPolicy::new(format!(
            "spec.policy.allowedNames.{field}: {} entries; at most {MAX_PATTERNS} are accepted",
            texts.len()
        )));
    }
    match texts.iter().position(|t| t.len() > MAX_PATTERN_BYTES) {
        Some(i) => Err(InvalidPolicy::new(format!(
            "spec.policy.allowedNames.{field}[{i}]: {} bytes; at most {MAX_PATTERN_BYTES} are accepted",
            texts[i].len()
        ))),
        None => Ok(()),
    }
}

fn compile_names(names: &AllowedNames) -> Result<NameRules, InvalidPolicy> {
    let patterns = |field: &str, texts: &[String], kind| {
        check_list_size(field, texts)?;
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Pattern::parse(text, kind).map_err(|why| {
                    InvalidPolicy::new(format!("spec.policy.allowedNames.{field}[{i}]: {text:?}: {why}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    check_list_size("ipRanges", &names.ip_ranges)?;
    let ips = names
        .ip_ranges
        .iter()
        .enumerate()
        .map(|(i, text)| {
            IpRange::parse(text)
                .map_err(|why| InvalidPolicy::new(format!("spec.policy.allowedNames.ipRanges[{i}]: {text:?}: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NameRules {
        common_names: names
            .common_names
            .as_ref()
            .map(|texts| patterns("commonNames", texts, PatternKind::CommonName))
            .transpose()?,
        dns: patterns("dnsNames", &names.dns_names, PatternKind::Dns)?,
        ips,
        uris: patterns("uris", &names.uris, PatternKind::Uri)?,
        emails: patterns("emails", &names.emails, PatternKind::Email)?,
    })
}

fn compile_keys(keys: &[AllowedKey]) -> Result<(), InvalidPolicy> {
    for (i, key) in keys.iter().enumerate() {
        let Some(size) = key.min_size else { continue };
        let at = format!("spec.policy.allowedKeys[{i}].minSize");
        match key.algorithm {
            KeyAlgorithmName::Rsa if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&size) => {
                return Err(InvalidPolicy::new(format!(
                    "{at}: {size} is outside the RSA sizes Ferrum accepts ({MIN_RSA_BITS} to {MAX_RSA_BITS} bits)"
                )));
            }
            KeyAlgorithmName::Ecdsa if ![256, 384, 521].contains(&size) => {
                return Err(InvalidPolicy::new(format!(
                    "{at}: {size} is not an ECDSA curve size: 256 (P-256), 384 (P-384) or 521 (P-521)"
                )));
            }
            KeyAlgorithmName::Ed25519 => {
                return Err(InvalidPolicy::new(format!("{at}: Ed25519 keys have one size; leave minSize unset")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A duration field and its text, for messages.
fn compile_duration<'a>(field: &str, text: Option<&'a str>) -> Result<Option<(Duration, &'a str)>, InvalidPolicy> {
    text.map(|text| {
        parse_go_duration(text)
            .map(|duration| (duration, text))
            .map_err(|why| InvalidPolicy::new(format!("spec.policy.{field}: {why}")))
    })
    .transpose()
}

fn compile_usages(names: &[String]) -> Result<Option<UsageRules>, InvalidPolicy> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut rules = UsageRules { key: FlagSet::default(), extended: Vec::new(), names: names.to_vec() };
    for (i, name) in names.iter().enumerate() {
        match usage(name) {
            Some(Usage::Key(bit)) => rules.key |= bit,
            Some(Usage::Extended(oid)) => rules.extended.push(oid),
            None => {
                return Err(InvalidPolicy::new(format!(
                    "spec.policy.allowedUsages[{i}]: unknown usage {name:?}; use cert-manager's names, such as \
                     \"digital signature\", \"key encipherment\", \"server auth\" or \"client auth\""
                )));
            }
        }
    }
    Ok(Some(rules))
}

impl CompiledPolicy {
    /// The longest lifetime this policy allows, at most the 100 years any request may ask
    /// for; `None`: no limit of its own.
    pub(crate) fn max_duration(&self) -> Option<Duration> {
        self.max_duration.map(|max| max.min(MAX_DURATION))
    }

    /// Judges one request. Rules are checked in this order, and the first one broken is
    /// reported: the namespace selector, `allowCA`, `allowedNames`, `allowedKeys`,
    /// `allowedUsages`, `minDuration`; then `maxDuration` cuts the lifetime.
    pub fn check(&self, input: &PolicyInput<'_>) -> Result<PolicyOutcome, PolicyViolation> {
        self.check_namespace(input.namespace, input.namespace_labels)?;
        if input.template.is_ca() && !self.allow_ca {
            return Err(PolicyViolation::Rule(
                "the issuer does not allow CA certificates (spec.isCA); set spec.policy.allowCA on the issuer to allow them"
                    .into(),
            ));
        }
        self.check_names(input.namespace, input.template).map_err(PolicyViolation::Rule)?;
        self.check_key(input.csr.key()).map_err(PolicyViolation::Rule)?;
        self.check_usages(input.template).map_err(PolicyViolation::Rule)?;
        self.lifetime(input.template.duration())
    }

    /// Whether [`check`](Self::check) needs the labels of the request's namespace (the
    /// issuer selects namespaces).
    pub fn needs_namespace_labels(&self) -> bool {
        self.namespace_selector.is_some()
    }

    /// subjectAltName types allowed although approvers cannot see them
    /// (`allowedSubjectAltNameTypes`).
    pub fn allowed_san_types(&self) -> &[SanType] {
        &self.allowed_san_types
    }

    /// The policy for [`crate::x509::check_names`].
    pub fn name_policy(&self) -> NamePolicy {
        NamePolicy::allowing(&self.allowed_san_types)
    }

    /// One short line for a printer column or the issuer's status, e.g. `names: 2 dns, 1 uri;
    /// keys: RSA>=3072, ECDSA>=256; duration: 1h-720h; isCA: no; namespaces: selector`; the
    /// default policy reads `names: any; keys: any; duration: any; isCA: no`.
    pub fn summary(&self) -> String {
        let mut line = String::from("names: ");
        match &self.names {
            None => line.push_str("any"),
            Some(rules) => {
                let counts = [
                    (rules.dns.len(), "dns"),
                    (rules.ips.len(), "ip"),
                    (rules.uris.len(), "uri"),
                    (rules.emails.len(), "email"),
                    (rules.common_names.as_ref().map_or(0, Vec::len), "cn"),
                ];
                let parts: Vec<String> =
                    counts.iter().filter(|(n, _)| *n > 0).map(|(n, kind)| format!("{n} {kind}")).collect();
                line.push_str(&if parts.is_empty() { "none".to_owned() } else { parts.join(", ") });
            }
        }
        line.push_str("; keys: ");
        line.push_str(&if self.keys.is_empty() { "any".to_owned() } else { keys_text(&self.keys) });
        line.push_str("; duration: ");
        line.push_str(&match (self.min_duration, self.max_duration) {
            (None, None) => "any".to_owned(),
            (Some(min), None) => format!(">={}", go_duration(min)),
            (None, Some(max)) => format!("<={}", go_duration(max)),
            (Some(min), Some(max)) => format!("{}-{}", go_duration(min), go_duration(max)),
        });
        if let Some(usages) = &self.usages {
            let _ = write!(line, "; usages: {}", listed(usages.names.iter().cloned()));
        }
        line.push_str(if self.allow_ca { "; isCA: yes" } else { "; isCA: no" });
        if !self.allowed_san_types.is_empty() {
            let types: Vec<String> = self.allowed_san_types.iter().map(SanType::to_string).collect();
            let _ = write!(line, "; extra SAN types: {}", types.join(", "));
        }
        if self.namespace_selector.is_some() {
            line.push_str("; namespaces: selector");
        }
        line
    }

    fn check_namespace(
        &self,
        namespace: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Result<(), PolicyViolation> {
        let Some(selector) = &self.namespace_selector else {
            return Ok(());
        };
        let Some(labels) = labels else {
            return Err(PolicyViolation::NamespaceLabelsUnknown { namespace: namespace.to_owned() });
        };
        if selector.matches(labels) {
            return Ok(());
        }
        Err(PolicyViolation::Rule(format!(
            "spec.policy.namespaceSelector: namespace {namespace:?} is not selected by the issuer's namespaceSelector ({})",
            cut(&selector.to_string())
        )))
    }

    fn check_names(&self, namespace: &str, template: &CertificateTemplate) -> Result<(), String> {
        let Some(rules) = &self.names else {
            return Ok(());
        };
        let names = CertNames::of(template)
            .map_err(|why| format!("spec.policy.allowedNames: the certificate's names cannot be checked: {why}"))?;
        if !names.directory_names.is_empty() {
            return Err(unjudgeable("directoryName"));
        }
        if let Some(&tag) = names.other_types.first() {
            return Err(unjudgeable(match tag {
                0 => "otherName",
                3 => "x400Address",
                5 => "ediPartyName",
                8 => "registeredID",
                _ => "unknown",
            }));
        }
        let refuse = |field: &str, what: &str, name: &str, allowed: &[Pattern]| {
            format!(
                "spec.policy.allowedNames.{field}: {what} {} is not allowed for namespace {namespace:?} (allowed: {})",
                shown(name),
                listed(allowed.iter().map(|p| format!("{:?}", p.expanded(namespace))))
            )
        };
        for dns in &names.dns {
            if !any_match(&rules.dns, dns, namespace) {
                return Err(refuse("dnsNames", "DNS name", dns, &rules.dns));
            }
        }
        for ip in &names.ips {
            if !rules.ips.iter().any(|range| range.contains(*ip)) {
                return Err(refuse_ip(*ip, &rules.ips));
            }
        }
        for uri in &names.uris {
            if let Some(why) = uri_evasion(uri) {
                return Err(format!("spec.policy.allowedNames.uris: URI {} {why}", shown(uri)));
            }
            if !any_match(&rules.uris, uri, namespace) {
                return Err(refuse("uris", "URI", uri, &rules.uris));
            }
        }
        for email in &names.emails {
            if !any_match(&rules.emails, email, namespace) {
                return Err(refuse("emails", "email address", email, &rules.emails));
            }
        }
        if let Some(cn) = &names.common_name {
            match &rules.common_names {
                Some(patterns) if !any_match(patterns, cn, namespace) => {
                    return Err(refuse("commonNames", "commonName", cn, patterns));
                }
                None if !any_match(&rules.dns, cn, namespace) => {
                    return Err(format!(
                        "{}; with commonNames unset, the commonName must match dnsNames",
                        refuse("dnsNames", "commonName", cn, &rules.dns)
                    ));
                }
                _ => {}
            }
        }
        for email in &names.subject_emails {
            if !any_match(&rules.emails, email, namespace) {
                return Err(refuse("emails", "subject emailAddress", email, &rules.emails));
            }
        }
        Ok(())
    }

    fn check_key(&self, key: KeyAlgorithm) -> Result<(), String> {
        if self.keys.is_empty() || self.keys.iter().any(|allowed| key_allowed(allowed, key)) {
            return Ok(());
        }
        let described = match key {
            KeyAlgorithm::Rsa { bits } => format!("RSA {bits} bits"),
            KeyAlgorithm::Ecdsa(curve) => format!("ECDSA {}", curve_name(curve)),
            KeyAlgorithm::Ed25519 => "Ed25519".to_owned(),
        };
        Err(format!(
            "spec.policy.allowedKeys: the CSR's key is {described}, which is not allowed (allowed: {})",
            keys_text(&self.keys)
        ))
    }

    fn check_usages(&self, template: &CertificateTemplate) -> Result<(), String> {
        let Some(rules) = &self.usages else {
            return Ok(());
        };
        let allowed = || listed(rules.names.iter().map(|n| format!("{n:?}")));
        for bit in template.key_usage() {
            // `cert sign` on a CA is there because of spec.isCA, which allowCA governs.
            if bit == KeyUsages::KeyCertSign && template.is_ca() {
                continue;
            }
            if !rules.key.contains(bit) {
                let hint = if matches!(bit, KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment) {
                    "; a request without spec.usages gets cert-manager's defaults, \"digital signature\" and \"key encipherment\""
                } else {
                    ""
                };
                return Err(format!(
                    "spec.policy.allowedUsages: usage {:?} is not allowed (allowed: {}){hint}",
                    key_usage_name(bit),
                    allowed()
                ));
            }
        }
        for oid in template.ext_key_usage() {
            if !rules.extended.contains(oid) {
                return Err(format!(
                    "spec.policy.allowedUsages: usage {:?} is not allowed (allowed: {})",
                    ext_usage_name(oid),
                    allowed()
                ));
            }
        }
        Ok(())
    }

    fn lifetime(&self, requested: Duration) -> Result<PolicyOutcome, PolicyViolation> {
        if let Some(min) = self.min_duration
            && requested < min
        {
            return Err(PolicyViolation::Rule(format!(
                "spec.policy.minDuration: spec.duration {} is shorter than the issuer's minDuration {}",
                go_duration(requested),
                go_duration(min)
            )));
        }
        if let Some(max) = self.max_duration
            && requested > max
        {
            let warning = Warning::new(
                DURATION_CLAMPED_BY_POLICY,
                format!(
                    "spec.duration {} exceeds the issuer's maxDuration {}; the certificate lives {}",
                    go_duration(requested),
                    go_duration(max),
                    go_duration(max)
                ),
            );
            return Ok(PolicyOutcome { duration: max, warnings: vec![warning] });
        }
        Ok(PolicyOutcome { duration: requested, warnings: Vec::new() })
    }
}

fn any_match(patterns: &[Pattern], name: &str, namespace: &str) -> bool {
    patterns.iter().any(|p| p.matches(name, namespace))
}

fn unjudgeable(san_type: &str) -> String {
    format!(
        "spec.policy.allowedNames: the request has a {san_type} subjectAltName, which no rule can allow: \
         under allowedNames only DNS names, IP addresses, URIs and email addresses are accepted"
    )
}

fn refuse_ip(ip: IpAddr, ranges: &[IpRange]) -> String {
    format!(
        "spec.policy.allowedNames.ipRanges: IP address {ip} is not allowed (allowed: {})",
        listed(ranges.iter().map(IpRange::to_string))
    )
}

fn key_allowed(allowed: &AllowedKey, key: KeyAlgorithm) -> bool {
    let at_least = |size: u32| allowed.min_size.is_none_or(|min| size >= min);
    match (allowed.algorithm, key) {
        (KeyAlgorithmName::Rsa, KeyAlgorithm::Rsa { bits }) => at_least(bits),
        (KeyAlgorithmName::Ecdsa, KeyAlgorithm::Ecdsa(curve)) => at_least(curve_size(curve)),
        (KeyAlgorithmName::Ed25519, KeyAlgorithm::Ed25519) => true,
        _ => false,
    }
}

fn curve_size(curve: Curve) -> u32 {
    match curve {
        Curve::P256 => 256,
        Curve::P384 => 384,
        Curve::P521 => 521,
    }
}

fn curve_name(curve: Curve) -> &'static str {
    match curve {
        Curve::P256 => "P-256",
        Curve::P384 => "P-384",
        Curve::P521 => "P-521",
    }
}

/// `RSA>=3072, ECDSA>=256, Ed25519`.
fn keys_text(keys: &[AllowedKey]) -> String {
    listed(keys.iter().map(|key| match key.min_size {
        Some(min) => format!("{}>={min}", key.algorithm),
        None => key.algorithm.to_string(),
    }))
}

/// cert-manager's names for key usage bits and extended key usages, one per meaning (the
/// first of aliases such as `signing` / `digital signature`), resolved through
/// [`usage`] so that they cannot drift from what the template understands.
const KEY_USAGE_NAMES: [&str; 9] = [
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
];
const EXT_USAGE_NAMES: [&str; 12] = [
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

fn key_usage_name(bit: KeyUsages) -> String {
    KEY_USAGE_NAMES
        .iter()
        .find(|name| matches!(usage(name), Some(Usage::Key(k)) if k == bit))
        .map_or_else(|| format!("{bit:?}"), |name| (*name).to_owned())
}

fn ext_usage_name(oid: &ObjectIdentifier) -> String {
    EXT_USAGE_NAMES
        .iter()
        .find(|name| matches!(usage(name), Some(Usage::Extended(o)) if o == *oid))
        .map_or_else(|| oid.to_string(), |name| (*name).to_owned())
}

/// A requested name, quoted, cut to [`SHOWN_CHARS`] characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{:?}...", &name[..at]),
        None => format!("{name:?}"),
    }
}

/// Text cut to a bounded length for a message.
fn cut(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// The first [`LISTED`] items joined, the rest counted; `none` when there are none.
fn listed(items: impl ExactSizeIterator<Item = String>) -> String {
    let total = items.len();
    if total == 0 {
        return "none".to_owned();
    }
    let mut text = items.take(LISTED).map(|item| cut(&item)).collect::<Vec<_>>().join(", ");
    if total > LISTED {
        let _ = write!(text, " and {} more", total - LISTED);
    }
    text
}

/// A duration as Go writes it, without zero units: `720h`, `1h30m`, `90s`, `1.5s`, `0s`.
fn go_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s, nanos) = (secs / 3600, secs % 3600 / 60, secs % 60, duration.subsec_nanos());
    let mut text = String::new();
    if h > 0 {
        let _ = write!(text, "{h}h");
    }
    if m > 0 {
        let _ = write!(text, "{m}m");
    }
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        let _ = write!(text, "{s}.{}s", fraction.trim_end_matches('0'));
    } else if s > 0 || text.is_empty() {
        let _ = write!(text, "{s}s");
    }
    text
}
