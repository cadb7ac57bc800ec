//! Instance epochs: how many times each ordinal of a StatefulSet was scaled
//! away and expelled, kept in an annotation on the StatefulSet.
//!
//! Cartridge never lets an expelled instance UUID join again, and a pod
//! that comes back after a scale-down starts on a fresh volume (the
//! operator deletes an expelled instance's claims, and the StatefulSet
//! grows over its ordinal only once they are gone). So when the
//! operator expels an ordinal's instance it first bumps the ordinal's
//! epoch, and the pod that later takes the ordinal joins under a new UUID
//! (`topology::identity::instance_uuid`). The bump is written in the pass
//! that records the expel, before the expel itself (a later pass): a crash
//! between the two leaves a member whose UUID is of an older epoch, which
//! a later pass expels without bumping again.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::ResourceExt;
use serde_json::json;

/// The annotation: a JSON object from ordinal to epoch; ordinals at epoch 0
/// are left out.
pub(crate) const ANNOTATION: &str = "tarantool.io/instance-epochs";

/// The field manager of the annotation, apart from the one that applies
/// the StatefulSet so that neither apply removes the other's fields.
pub(crate) const FIELD_MANAGER: &str = "tarantool-operator-epochs";

/// The epochs of one StatefulSet's ordinals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Epochs(BTreeMap<u32, u32>);

impl Epochs {
    /// The epochs recorded on `sts`; an absent or unreadable annotation
    /// reads as every ordinal at epoch 0 (what it was before any expel).
    pub(crate) fn of(sts: &StatefulSet) -> Self {
        sts.annotations()
            .get(ANNOTATION)
            .map_or_else(Self::default, |raw| Self::parse(raw))
    }

    fn parse(raw: &str) -> Self {
        let map: BTreeMap<String, u32> = serde_json::from_str(raw).unwrap_or_default();
        Self(
            map.into_iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
                .filter(|(_, v)| *v > 0)
                .collect(),
        )
    }

    /// The epoch of `ordinal`.
    pub(crate) fn get(&self, ordinal: u32) -> u32 {
        self.0.get(&ordinal).copied().unwrap_or(0)
    }

    /// Moves `ordinal` to its next epoch.
    pub(crate) fn bump(&mut self, ordinal: u32) {
        let next = self.get(ordinal).saturating_add(1);
        self.0.insert(ordinal, next);
    }

    /// The annotation's value.
    pub(crate) fn to_annotation(&self) -> String {
        let map: BTreeMap<String, u32> = self.0.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
    }

    /// A server-side apply patch that sets the annotation on StatefulSet
    /// `name`.
    pub(crate) fn apply_patch(&self, name: &str) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {
                "name": name,
                "annotations": { ANNOTATION: self.to_annotation() },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn sts(annotation: Option<&str>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("storage-0-h".into()),
                annotations: annotation.map(|a| {
                    [(ANNOTATION.to_string(), a.to_string())]
                        .into_iter()
                        .collect()
                }),
                ..ObjectMeta::default()
            },
            ..StatefulSet::default()
        }
    }

    #[test]
    fn absent_or_garbage_reads_as_epoch_zero() {
        assert_eq!(Epochs::of(&sts(None)).get(2), 0);
        assert_eq!(Epochs::of(&sts(Some("not json"))).get(2), 0);
        assert_eq!(Epochs::of(&sts(Some(r#"{"x": 3}"#))), Epochs::default());
    }

    #[test]
    fn bump_round_trips_through_the_annotation() {
        let mut epochs = Epochs::of(&sts(Some(r#"{"2": 1}"#)));
        assert_eq!(epochs.get(2), 1);
        epochs.bump(2);
        epochs.bump(3);
        assert_eq!(epochs.to_annotation(), r#"{"2":2,"3":1}"#);
        let again = Epochs::of(&sts(Some(&epochs.to_annotation())));
        assert_eq!(again, epochs);
        let patch = epochs.apply_patch("storage-0-h");
        assert_eq!(
            patch["metadata"]["annotations"][ANNOTATION],
            r#"{"2":2,"3":1}"#
        );
    }
}
