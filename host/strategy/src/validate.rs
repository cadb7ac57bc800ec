//! Checks a strategy's bytes before anything is compiled: size, that it is a
//! valid component, that it exports the planner interface in a version this
//! host speaks, and that it imports nothing the sandbox does not provide.

use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// The WIT package every strategy is built against.
pub(crate) const WIT_PACKAGE: &str = "tarantool:strategy";

/// WIT versions this host can load, newest first. When the WIT changes, the
/// host keeps the previous version here (and an adapter in `boundary`) so
/// components built against it keep loading.
pub(crate) const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];

/// Import namespaces a strategy may use. Everything under `wasi:` resolves to
/// the deny-all shim (see `engine`); the strategy's own package provides `log`.
const ALLOWED_IMPORT_PREFIXES: &[&str] = &["wasi:", "tarantool:strategy/"];

/// Why bytes were refused before compiling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidComponent {
    /// Over the size limit.
    #[error("component is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Does not start with the wasm magic number.
    #[error("not a WebAssembly binary (no `\\0asm` header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "a core wasm module, not a component: build for wasm32-wasip2 (or run `wasm-tools component new`)"
    )]
    CoreModule,
    /// The validator refused it.
    #[error("invalid component: {0}")]
    Malformed(String),
    /// It does not export the planner interface at all.
    #[error(
        "does not export `{WIT_PACKAGE}/planner@<version>` (exports: {exports}); was it built against wit/strategy.wit?"
    )]
    WrongWorld {
        /// What it exports instead, comma separated.
        exports: String,
    },
    /// It exports the planner in a version this host does not speak.
    #[error("built against {WIT_PACKAGE} {found}; this operator supports {supported}")]
    UnsupportedVersion {
        /// The version found.
        found: String,
        /// Supported versions, comma separated.
        supported: String,
    },
    /// It imports something the sandbox does not provide.
    #[error("imports `{0}`, which the strategy sandbox does not provide")]
    ForbiddenImport(String),
}

/// What validation learned about a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentShape {
    /// The WIT version of the exported planner.
    pub version: String,
    /// Top-level import names.
    pub imports: Vec<String>,
}

/// Validates `bytes` as a strategy component.
pub fn validate(bytes: &[u8], max_size: usize) -> Result<ComponentShape, InvalidComponent> {
    if bytes.len() > max_size {
        return Err(InvalidComponent::TooLarge {
            size: bytes.len(),
            max: max_size,
        });
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(InvalidComponent::NotWasm);
    }
    if Parser::is_core_wasm(bytes) {
        return Err(InvalidComponent::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(InvalidComponent::Malformed(
            "unknown wasm binary version".into(),
        ));
    }
    Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map_err(|e| InvalidComponent::Malformed(e.to_string()))?;

    let (imports, exports) = top_level_names(bytes)?;
    let version = planner_version(&exports)?;
    if let Some(bad) = imports
        .iter()
        .find(|name| !ALLOWED_IMPORT_PREFIXES.iter().any(|p| name.starts_with(p)))
    {
        return Err(InvalidComponent::ForbiddenImport(bad.clone()));
    }
    Ok(ComponentShape { version, imports })
}

/// Import and export names of the outermost component (nested modules and
/// components have their own, which do not matter here).
fn top_level_names(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), InvalidComponent> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InvalidComponent::Malformed(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| InvalidComponent::Malformed(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| InvalidComponent::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

fn planner_version(exports: &[String]) -> Result<String, InvalidComponent> {
    let prefix = format!("{WIT_PACKAGE}/planner@");
    let Some(version) = exports.iter().find_map(|e| e.strip_prefix(&prefix)) else {
        return Err(InvalidComponent::WrongWorld {
            exports: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        });
    };
    if SUPPORTED_VERSIONS.contains(&version) {
        Ok(version.to_string())
    } else {
        Err(InvalidComponent::UnsupportedVersion {
            found: version.to_string(),
            supported: SUPPORTED_VERSIONS.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bytes_that_are_not_wasm() {
        assert_eq!(
            validate(b"#!/bin/sh\nrm -rf /\n", 1 << 20),
            Err(InvalidComponent::NotWasm)
        );
    }

    #[test]
    fn refuses_oversized_input_before_parsing() {
        let err = validate(&[0u8; 100], 10).unwrap_err();
        assert_eq!(err, InvalidComponent::TooLarge { size: 100, max: 10 });
    }

    #[test]
    fn refuses_a_core_module() {
        // The smallest valid core module: magic + version 1.
        let module = b"\0asm\x01\0\0\0";
        assert_eq!(validate(module, 1 << 20), Err(InvalidComponent::CoreModule));
    }

    #[test]
    fn refuses_a_truncated_component() {
        let truncated = b"\0asm\x0d\0\x01\0\x07";
        assert!(matches!(
            validate(truncated, 1 << 20),
            Err(InvalidComponent::Malformed(_))
        ));
    }

    #[test]
    fn an_empty_component_exports_the_wrong_world() {
        let empty = b"\0asm\x0d\0\x01\0";
        assert_eq!(
            validate(empty, 1 << 20),
            Err(InvalidComponent::WrongWorld {
                exports: "nothing".into()
            })
        );
    }

    #[test]
    fn planner_version_must_be_supported() {
        let exports = vec!["tarantool:strategy/planner@9.0.0".to_string()];
        assert!(matches!(
            planner_version(&exports),
            Err(InvalidComponent::UnsupportedVersion { .. })
        ));
        let exports = vec!["tarantool:strategy/planner@0.1.0".to_string()];
        assert_eq!(planner_version(&exports).as_deref(), Ok("0.1.0"));
    }
}
