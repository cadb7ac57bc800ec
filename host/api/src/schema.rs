//! Schema helpers for fields whose schema is not derived as is: free-form
//! objects, and embedded Kubernetes types whose full schema would make the
//! CRDs needlessly large.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use schemars::generate::SchemaGenerator;
use schemars::{JsonSchema, Schema, json_schema};
use serde_json::{Map, Value};

/// `{type: object, x-kubernetes-preserve-unknown-fields: true}`: any JSON
/// object, kept as written (Cartridge's clusterwide config sections).
pub(crate) fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The schema of `T` (an embedded Kubernetes type) without its field
/// descriptions: the fields, types and structure stay, so the apiserver still
/// validates and prunes, but the CRD does not repeat the Kubernetes API
/// reference (a PodTemplateSpec alone is several hundred kilobytes of it).
pub(crate) fn compact<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<T>();
    strip_descriptions(&mut schema);
    schema
}

/// [`compact`] for the pod template of a replica set.
pub(crate) fn pod_template(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = compact::<PodTemplateSpec>(generator);
    describe(
        &mut schema,
        "Pod template of every instance (a core/v1 PodTemplateSpec; see the Kubernetes API reference).",
    );
    schema
}

/// [`compact`] for the volume claim templates of a replica set.
pub(crate) fn volume_claim_templates(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = compact::<Vec<PersistentVolumeClaim>>(generator);
    describe(
        &mut schema,
        "Volume claim templates of every instance (core/v1 PersistentVolumeClaims). Changing them \
         starts a migration to new StatefulSets, since a StatefulSet cannot change them in place.",
    );
    schema
}

/// Conditions in the metav1 shape, with metav1's bounds (which the derived
/// schema lacks): a message of at most
/// [`crate::text::CONDITION_MESSAGE_MAX_LENGTH`], a reason of at most 1024
/// and a type of at most 316 characters.
pub(crate) fn conditions(generator: &mut SchemaGenerator) -> Schema {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    if let Some(props) = schema
        .as_object_mut()
        .and_then(|o| o.get_mut("items"))
        .and_then(|i| i.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        for (field, max) in [
            ("message", crate::text::CONDITION_MESSAGE_MAX_LENGTH),
            ("reason", 1024),
            ("type", 316),
        ] {
            if let Some(p) = props.get_mut(field).and_then(Value::as_object_mut) {
                p.insert("maxLength".into(), Value::from(max));
            }
        }
    }
    schema
}

fn describe(schema: &mut Schema, text: &str) {
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("description".into(), Value::String(text.into()));
    }
}

/// Removes every `description` keyword below `schema`, leaving properties
/// that happen to be called "description" alone.
pub(crate) fn strip_descriptions(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        strip_object(obj);
    }
}

fn strip_object(obj: &mut Map<String, Value>) {
    obj.remove("description");
    for (key, value) in obj.iter_mut() {
        match key.as_str() {
            // Maps from names to schemas.
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Value::Object(map) = value {
                    map.values_mut().for_each(strip_value);
                }
            }
            // A schema or a list of schemas.
            "items" | "additionalProperties" | "not" | "allOf" | "anyOf" | "oneOf" => {
                strip_value(value);
            }
            _ => {}
        }
    }
}

fn strip_value(value: &mut Value) {
    match value {
        Value::Object(obj) => strip_object(obj),
        Value::Array(list) => list.iter_mut().for_each(strip_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_descriptions_but_keeps_a_property_named_description() {
        let mut schema: Schema = serde_json::from_value(json!({
            "description": "top",
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "the field"},
                "list": {"type": "array", "items": {"type": "object", "description": "x",
                         "properties": {"a": {"description": "y", "type": "string"}}}},
                "map": {"type": "object", "additionalProperties": {"description": "z", "type": "string"}}
            }
        }))
        .expect("a schema");
        strip_descriptions(&mut schema);
        let text = serde_json::to_string(&schema).expect("json");
        assert_eq!(text.matches("\"description\"").count(), 1, "{text}");
        assert!(
            schema
                .get("properties")
                .and_then(|p| p.get("description"))
                .is_some()
        );
    }
}
