//! Admission rules: the CEL rules (`x-kubernetes-validations`) the apiserver
//! evaluates on Clusters and Roles, kept as tables next to their messages.
//!
//! Simple bounds (`replicas >= 1`, `weight >= 0`, patterns, enums) are plain
//! schema keywords on the fields themselves (`#[schemars(range(...))]`); the
//! rules here are the ones that relate fields to each other. Every message
//! says what to change, because it is what `kubectl apply` prints.

use schemars::Schema;
use serde_json::{Value, json};

/// One CEL rule of a schema node (`self` is the object the rule sits on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CelRule {
    /// The CEL expression; the object is admitted when it is true.
    pub rule: &'static str,
    /// What the apiserver answers when the rule is false.
    pub message: &'static str,
    /// The field the error is reported on, relative to `self` (e.g.
    /// `.stateProvider`); `None` reports it on `self`.
    pub field_path: Option<&'static str>,
    /// `FieldValueRequired` turns the error into "Required value",
    /// `FieldValueForbidden` into "Forbidden"; `None` is "Invalid value".
    pub reason: Option<&'static str>,
}

impl CelRule {
    /// The rule as one entry of `x-kubernetes-validations`.
    pub(crate) fn to_json(self) -> Value {
        let mut v = json!({ "rule": self.rule, "message": self.message });
        if let Some(path) = self.field_path {
            v["fieldPath"] = json!(path);
        }
        if let Some(reason) = self.reason {
            v["reason"] = json!(reason);
        }
        v
    }
}

const REQUIRED: Option<&str> = Some("FieldValueRequired");
const FORBIDDEN: Option<&str> = Some("FieldValueForbidden");

/// Rules of `Cluster.spec.failover`: which modes take a state provider, and
/// that the provider's parameters come with it.
pub(crate) const FAILOVER_RULES: &[CelRule] = &[
    CelRule {
        rule: "self.mode != 'stateful' || has(self.stateProvider)",
        message: "stateful failover needs a stateProvider: stateboard or etcd2",
        field_path: Some(".stateProvider"),
        reason: REQUIRED,
    },
    CelRule {
        rule: "self.mode == 'stateful' || !has(self.stateProvider)",
        message: "only stateful failover takes a stateProvider; remove it for mode disabled, eventual or raft",
        field_path: Some(".stateProvider"),
        reason: FORBIDDEN,
    },
    CelRule {
        rule: "!has(self.stateProvider) || self.stateProvider != 'stateboard' || has(self.stateboardParams)",
        message: "stateProvider stateboard needs stateboardParams (at least uri)",
        field_path: Some(".stateboardParams"),
        reason: REQUIRED,
    },
    CelRule {
        rule: "!has(self.stateProvider) || self.stateProvider != 'etcd2' || has(self.etcd2Params)",
        message: "stateProvider etcd2 needs etcd2Params (at least endpoints)",
        field_path: Some(".etcd2Params"),
        reason: REQUIRED,
    },
    CelRule {
        rule: "!has(self.stateboardParams) || (has(self.stateProvider) && self.stateProvider == 'stateboard')",
        message: "stateboardParams is only used with stateProvider stateboard",
        field_path: Some(".stateboardParams"),
        reason: FORBIDDEN,
    },
    CelRule {
        rule: "!has(self.etcd2Params) || (has(self.stateProvider) && self.stateProvider == 'etcd2')",
        message: "etcd2Params is only used with stateProvider etcd2",
        field_path: Some(".etcd2Params"),
        reason: FORBIDDEN,
    },
    CelRule {
        rule: "!has(self.fencingEnabled) || !self.fencingEnabled || self.mode == 'stateful'",
        message: "fencing works only with stateful failover",
        field_path: Some(".fencingEnabled"),
        reason: FORBIDDEN,
    },
];

/// Rules of `Role.spec`: one replica set template, in one of its two places.
pub(crate) const ROLE_SPEC_RULES: &[CelRule] = &[
    CelRule {
        rule: "!(has(self.replicasetTemplate) && has(self.vshard) && has(self.vshard.replicasetTemplate))",
        message: "replicasetTemplate is set twice: keep spec.replicasetTemplate or spec.vshard.replicasetTemplate (the article's placement), not both",
        field_path: Some(".replicasetTemplate"),
        reason: FORBIDDEN,
    },
    CelRule {
        rule: "has(self.replicasetTemplate) || (has(self.vshard) && has(self.vshard.replicasetTemplate))",
        message: "a Role needs spec.replicasetTemplate (or spec.vshard.replicasetTemplate) with at least a podTemplate",
        field_path: Some(".replicasetTemplate"),
        reason: REQUIRED,
    },
];

/// Rules of `Role.spec.updateStrategy`.
pub(crate) const UPDATE_STRATEGY_RULES: &[CelRule] = &[
    CelRule {
        rule: "!has(self.sha256) || has(self.configMapRef)",
        message: "sha256 pins a custom component: set configMapRef too",
        field_path: Some(".sha256"),
        reason: FORBIDDEN,
    },
    CelRule {
        rule: "!has(self.params) || !('maxUnavailable' in self.params) || self.params['maxUnavailable'].matches('^[1-9][0-9]{0,5}$')",
        message: "params.maxUnavailable must be a positive whole number written as a string, e.g. \"1\"",
        field_path: Some(".params"),
        reason: None,
    },
];

/// Rule of `updateStrategy.name` (its length is bounded by the schema).
pub(crate) const STRATEGY_NAME_RULES: &[CelRule] = &[CelRule {
    rule: r"self.matches('^[A-Za-z]([A-Za-z0-9]|[-.][A-Za-z0-9])*$')",
    message: "a strategy name starts with a letter and has letters, digits, and single '-' or '.' between them, e.g. SwitchMasterUpdate or my-canary.v2",
    field_path: None,
    reason: None,
}];

/// Rule of `updateStrategy.sha256`.
pub(crate) const SHA256_RULES: &[CelRule] = &[CelRule {
    rule: r"self.matches('^[0-9a-f]{64}$')",
    message: "sha256 is 64 lowercase hex digits, as sha256sum prints them",
    field_path: None,
    reason: None,
}];

/// Appends `rules` to the `x-kubernetes-validations` of `schema`.
pub(crate) fn add_rules(schema: &mut Schema, rules: &[CelRule]) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let list = obj
        .entry("x-kubernetes-validations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        list.extend(rules.iter().copied().map(CelRule::to_json));
    }
}

/// schemars transform: the [`FAILOVER_RULES`].
pub(crate) fn failover_rules(schema: &mut Schema) {
    add_rules(schema, FAILOVER_RULES);
}

/// schemars transform: the [`ROLE_SPEC_RULES`].
pub(crate) fn role_spec_rules(schema: &mut Schema) {
    add_rules(schema, ROLE_SPEC_RULES);
}

/// schemars transform: the [`UPDATE_STRATEGY_RULES`].
pub(crate) fn update_strategy_rules(schema: &mut Schema) {
    add_rules(schema, UPDATE_STRATEGY_RULES);
}

/// schemars transform: the [`STRATEGY_NAME_RULES`].
pub(crate) fn strategy_name_rules(schema: &mut Schema) {
    add_rules(schema, STRATEGY_NAME_RULES);
}

/// schemars transform: the [`SHA256_RULES`].
pub(crate) fn sha256_rules(schema: &mut Schema) {
    add_rules(schema, SHA256_RULES);
}

/// Pattern of a strategy name: a letter, then letters, digits and single
/// dashes or dots between them (`SwitchMasterUpdate`, `my-canary.v2`). The
/// CEL rule spells it; the tests check that it does.
#[cfg(test)]
pub(crate) const STRATEGY_NAME_PATTERN: &str = r"^[A-Za-z]([A-Za-z0-9]|[-.][A-Za-z0-9])*$";

/// Pattern of a pinned component digest: 64 lowercase hex digits, as
/// `sha256sum` prints them. The CEL rule spells it; the tests check that it
/// does.
#[cfg(test)]
pub(crate) const SHA256_PATTERN: &str = r"^[0-9a-f]{64}$";

/// Pattern of a DNS-1123 label (names of Roles, ConfigMaps, Secrets).
pub(crate) const DNS_LABEL_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Pattern of a DNS-1123 subdomain (object names).
pub(crate) const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_serialize_with_their_path_and_reason() {
        let v = FAILOVER_RULES[0].to_json();
        assert_eq!(v["fieldPath"], ".stateProvider");
        assert_eq!(v["reason"], "FieldValueRequired");
        let v = UPDATE_STRATEGY_RULES[1].to_json();
        assert!(v.get("reason").is_none());
    }

    #[test]
    fn add_rules_appends() {
        let mut schema = Schema::default();
        add_rules(&mut schema, FAILOVER_RULES);
        add_rules(&mut schema, ROLE_SPEC_RULES);
        let list = schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .map(Vec::len);
        assert_eq!(list, Some(FAILOVER_RULES.len() + ROLE_SPEC_RULES.len()));
    }

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).is_ok_and(|re| re.is_match(s))
    }

    #[test]
    fn strategy_names_accept_the_builtins_and_refuse_free_text() {
        for n in [
            "OnDelete",
            "SwitchMasterUpdate",
            "ClusterPartitionUpdate",
            "my-canary.v2",
        ] {
            assert!(matches(STRATEGY_NAME_PATTERN, n), "{n}");
        }
        for n in ["Switch Master!", "-x", "x-", "1abc", "a..b", ""] {
            assert!(!matches(STRATEGY_NAME_PATTERN, n), "{n:?}");
        }
    }

    #[test]
    fn the_cel_rules_use_the_documented_patterns() {
        assert!(STRATEGY_NAME_RULES[0].rule.contains(STRATEGY_NAME_PATTERN));
        assert!(SHA256_RULES[0].rule.contains(SHA256_PATTERN));
    }

    #[test]
    fn sha256_is_64_lowercase_hex_digits() {
        let ok = "ab".repeat(32);
        assert!(matches(SHA256_PATTERN, &ok));
        assert!(!matches(SHA256_PATTERN, &ok.to_uppercase()));
        assert!(!matches(SHA256_PATTERN, &ok[1..]));
        assert!(!matches(SHA256_PATTERN, "abc"));
    }

    #[test]
    fn dns_patterns() {
        assert!(matches(DNS_LABEL_PATTERN, "router"));
        assert!(!matches(DNS_LABEL_PATTERN, "Router"));
        assert!(!matches(DNS_LABEL_PATTERN, "a.b"));
        assert!(matches(DNS_SUBDOMAIN_PATTERN, "a.b-c"));
    }
}
