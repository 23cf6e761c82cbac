//! API requests counted by kube-apiserver (`apiserver_request_total` on its `/metrics`), to see
//! what a contender asks of the API per request beyond its status write.

use std::collections::BTreeMap;

use anyhow::Context;

/// Requests by `(verb, resource[/subresource])`.
pub type Counts = BTreeMap<(String, String), f64>;

/// Reads `apiserver_request_total`, summed over codes, groups and versions.
pub async fn read(client: &kube::Client) -> anyhow::Result<Counts> {
    let request = http::Request::get("/metrics").body(Vec::new()).context("building the request")?;
    let text = client.request_text(request).await.context("GET /metrics")?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Counts {
    let mut counts = Counts::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let Some((labels, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let label = |name: &str| {
            let key = format!("{name}=\"");
            let start = labels.find(&key)? + key.len();
            Some(labels[start..].split('"').next()?.to_owned())
        };
        let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else { continue };
        let resource = match label("subresource").filter(|s| !s.is_empty()) {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource,
        };
        *counts.entry((verb, resource)).or_default() += value;
    }
    counts
}

/// `after − before`, without zero entries.
pub fn delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// One line: `VERB resource: n, ...`, largest first.
pub fn describe(counts: &Counts) -> String {
    let mut entries: Vec<_> = counts.iter().collect();
    entries.sort_by(|a, b| b.1.total_cmp(a.1));
    entries.iter().map(|((verb, resource), n)| format!("{verb} {resource}: {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let before = parse(
            "# HELP x\napiserver_request_total{code=\"201\",resource=\"events\",subresource=\"\",verb=\"POST\"} 3\n",
        );
        let after = parse(concat!(
            "apiserver_request_total{code=\"201\",resource=\"events\",subresource=\"\",verb=\"POST\"} 5\n",
            "apiserver_request_total{code=\"200\",resource=\"certificaterequests\",subresource=\"status\",verb=\"APPLY\"} 7\n",
        ));
        let d = delta(&before, &after);
        assert_eq!(d[&("POST".into(), "events".into())], 2.0);
        assert_eq!(d[&("APPLY".into(), "certificaterequests/status".into())], 7.0);
        assert_eq!(describe(&d), "APPLY certificaterequests/status: 7, POST events: 2");
    }
}
