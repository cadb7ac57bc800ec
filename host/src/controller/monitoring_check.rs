//! The chart's alerting rules and Grafana dashboard load, and name only
//! metrics the operator exports: every `expr` parses as PromQL (the
//! `promql-parser` crate, in place of `promtool check rules`), the rule
//! file has the structure Prometheus requires, and each metric a query
//! names is in [`CATALOG`]. So the code, the docs' table (see
//! `metrics::tests`), the dashboard and the rules cannot drift apart.

use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use serde_yaml::Value;

use super::metrics::CATALOG;

const RULES: &str =
    include_str!("../../../charts/tarantool-operator/rules/tarantool-operator.rules.yaml");
const DASHBOARD: &str =
    include_str!("../../../charts/tarantool-operator/dashboards/tarantool-operator.json");

/// The alerts the rules must have (issue 15: stuck and paused rollouts,
/// Degraded objects, refusals, errors, latency, drains, switches, leader).
const REQUIRED_ALERTS: &[&str] = &[
    "TarantoolOperatorRolloutStuck",
    "TarantoolOperatorRolloutPausedLong",
    "TarantoolOperatorRoleDegraded",
    "TarantoolOperatorStrategyDecisionsRefused",
    "TarantoolOperatorReconcileErrors",
    "TarantoolOperatorReconcileSlow",
    "TarantoolOperatorDrainSlow",
    "TarantoolOperatorSwitchWriteUnavailableLong",
    "TarantoolOperatorNoLeader",
    "TarantoolOperatorLeaderFlapping",
];

/// Every metric name `expr` selects; an error for a selector whose name is
/// not a plain string (a regex over names cannot be checked).
fn metric_names(expr: &Expr, names: &mut BTreeSet<String>) -> Result<(), String> {
    let selector = |vs: &promql_parser::parser::VectorSelector,
                    names: &mut BTreeSet<String>|
     -> Result<(), String> {
        if let Some(name) = &vs.name {
            names.insert(name.clone());
            return Ok(());
        }
        let by_name: Vec<_> = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == "__name__")
            .collect();
        match by_name.as_slice() {
            [m] if matches!(m.op, MatchOp::Equal) => {
                names.insert(m.value.clone());
                Ok(())
            }
            _ => Err(format!("a selector without a plain metric name: {vs}")),
        }
    };
    match expr {
        Expr::Aggregate(a) => {
            metric_names(&a.expr, names)?;
            if let Some(p) = &a.param {
                metric_names(p, names)?;
            }
            Ok(())
        }
        Expr::Unary(u) => metric_names(&u.expr, names),
        Expr::Binary(b) => {
            metric_names(&b.lhs, names)?;
            metric_names(&b.rhs, names)
        }
        Expr::Paren(p) => metric_names(&p.expr, names),
        Expr::Subquery(s) => metric_names(&s.expr, names),
        Expr::VectorSelector(vs) => selector(vs, names),
        Expr::MatrixSelector(ms) => selector(&ms.vs, names),
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| metric_names(a, names)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

/// The metric names of a query, checked to be the operator's: an error
/// says what is wrong with it.
fn checked_names(query: &str) -> Result<BTreeSet<String>, String> {
    let expr = parser::parse(query).map_err(|e| format!("{query:?} does not parse: {e}"))?;
    let mut names = BTreeSet::new();
    metric_names(&expr, &mut names).map_err(|e| format!("{query:?}: {e}"))?;
    if names.is_empty() {
        return Err(format!("{query:?} names no metric"));
    }
    let exported: BTreeSet<String> = CATALOG.iter().flat_map(|m| m.series()).collect();
    match names.iter().find(|n| !exported.contains(*n)) {
        Some(unknown) => Err(format!(
            "{query:?} names {unknown}, which the operator does not export"
        )),
        None => Ok(names),
    }
}

/// A Prometheus duration (`for:`).
fn is_duration(s: &str) -> bool {
    regex::Regex::new(r"^([0-9]+(ms|s|m|h|d|w|y))+$").is_ok_and(|r| r.is_match(s))
}

/// What is wrong with one rule of the rule file (empty: nothing).
fn rule_problems(rule: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let name = rule["alert"].as_str().unwrap_or("");
    let mut say = |what: String| problems.push(format!("{name:?}: {what}"));
    if let Some(map) = rule.as_mapping() {
        for key in map.keys() {
            let key = key.as_str().unwrap_or("");
            if ![
                "alert",
                "expr",
                "for",
                "keep_firing_for",
                "labels",
                "annotations",
            ]
            .contains(&key)
            {
                say(format!("unknown key {key:?}"));
            }
        }
    } else {
        say("not a mapping".into());
        return problems;
    }
    if !name.starts_with("TarantoolOperator") || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        say("an alert name is TarantoolOperator<CamelCase>".into());
    }
    match rule["expr"].as_str() {
        Some(expr) => {
            if let Err(e) = checked_names(expr) {
                say(e);
            }
        }
        None => say("no expr".into()),
    }
    if !rule["for"].as_str().is_some_and(is_duration) {
        say(format!("for: {:?} is not a duration", rule["for"]));
    }
    if !rule["labels"]["severity"]
        .as_str()
        .is_some_and(|s| ["critical", "warning", "info"].contains(&s))
    {
        say("labels.severity is not critical, warning or info".into());
    }
    for key in ["summary", "description"] {
        match rule["annotations"][key].as_str() {
            Some(text) if !text.trim().is_empty() => {
                if text.matches("{{").count() != text.matches("}}").count() {
                    say(format!("annotations.{key}: unbalanced template braces"));
                }
            }
            _ => say(format!("no annotations.{key}")),
        }
    }
    problems
}

/// The alert names of the rule file, after checking its structure; an
/// error lists every problem.
fn check_rules(text: &str) -> Result<Vec<String>, Vec<String>> {
    let file: Value = serde_yaml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let mut problems = Vec::new();
    let mut alerts = Vec::new();
    let groups = file["groups"].as_sequence().cloned().unwrap_or_default();
    if groups.is_empty() {
        problems.push("no groups".to_string());
    }
    let mut group_names = BTreeSet::new();
    for group in &groups {
        let name = group["name"].as_str().unwrap_or("");
        if name.is_empty() || !group_names.insert(name.to_string()) {
            problems.push(format!("group name {name:?} empty or repeated"));
        }
        let rules = group["rules"].as_sequence().cloned().unwrap_or_default();
        if rules.is_empty() {
            problems.push(format!("group {name:?} has no rules"));
        }
        for rule in &rules {
            problems.extend(rule_problems(rule));
            let alert = rule["alert"].as_str().unwrap_or("").to_string();
            if alerts.contains(&alert) {
                problems.push(format!("alert {alert:?} twice"));
            }
            alerts.push(alert);
        }
    }
    if problems.is_empty() {
        Ok(alerts)
    } else {
        Err(problems)
    }
}

/// Every `expr` of the dashboard's panels, rows' panels included.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_string());
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

#[test]
fn the_rules_are_valid_and_have_every_alert_asked_for() {
    let alerts = check_rules(RULES)
        .unwrap_or_else(|problems| panic!("the rule file has problems:\n{}", problems.join("\n")));
    for required in REQUIRED_ALERTS {
        assert!(alerts.iter().any(|a| a == required), "no alert {required}");
    }
}

#[test]
fn the_dashboard_queries_name_only_exported_metrics_and_show_them_all() {
    let dashboard: serde_json::Value =
        serde_json::from_str(DASHBOARD).unwrap_or_else(|e| panic!("the dashboard: {e}"));
    assert_eq!(dashboard["uid"], "tarantool-operator");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 10, "{} queries", queries.len());
    let mut shown = BTreeSet::new();
    for query in &queries {
        match checked_names(query) {
            Ok(names) => shown.extend(names),
            Err(e) => panic!("dashboard: {e}"),
        }
    }
    for metric in CATALOG {
        assert!(
            metric.series().iter().any(|s| shown.contains(s)),
            "the dashboard does not show {}",
            metric.family()
        );
    }
}

/// The checks fail on what they are there to catch.
#[test]
fn the_checks_refuse_broken_rules_and_unknown_metrics() {
    let cases = [
        (
            "an unknown metric",
            "tarantool_operator_nope > 0",
            "does not export",
        ),
        (
            "a counter without _total",
            "rate(tarantool_operator_reconciles[5m]) > 0",
            "does not export",
        ),
        (
            "a parse error",
            "sum by (controller (tarantool_operator_leader)",
            "does not parse",
        ),
        (
            "a regex over names",
            "{__name__=~\"tarantool_operator_.*\"}",
            "plain metric name",
        ),
        ("a constant", "vector(1) > 0", "names no metric"),
    ];
    for (name, query, expected) in cases {
        let e = checked_names(query).expect_err(name);
        assert!(e.contains(expected), "{name}: {e}");
    }
    assert!(
        checked_names("sum(rate(tarantool_operator_reconcile_duration_seconds_bucket[5m]))")
            .is_ok()
    );

    let rule = |extra: &str| {
        format!(
            "groups:\n  - name: g\n    rules:\n      - alert: TarantoolOperatorX\n        expr: tarantool_operator_leader < 1\n{extra}"
        )
    };
    let good = "        for: 5m\n        labels:\n          severity: warning\n        annotations:\n          summary: s\n          description: d {{ $value }}\n";
    assert_eq!(
        check_rules(&rule(good)),
        Ok(vec!["TarantoolOperatorX".to_string()])
    );
    let broken = [
        ("no for", good.replace("        for: 5m\n", "")),
        ("a bad duration", good.replace("5m", "five minutes")),
        ("no severity", good.replace("severity: warning", "team: x")),
        ("a severity of its own", good.replace("warning", "page")),
        (
            "no description",
            good.replace("          description: d {{ $value }}\n", ""),
        ),
        (
            "unbalanced braces",
            good.replace("{{ $value }}", "{{ $value"),
        ),
        (
            "an unknown key",
            format!("{good}        severity: warning\n"),
        ),
    ];
    for (name, extra) in broken {
        assert!(check_rules(&rule(&extra)).is_err(), "{name} accepted");
    }
    assert!(check_rules("groups: []\n").is_err());
}
