//! Checks a strategy's bytes before anything is compiled: size, what it
//! declares (a census bounded by [`ShapeLimits`], so that bytes that would
//! take minutes and gigabytes to compile are refused in milliseconds), that
//! it is a valid component, that it exports the planner interface in a
//! version this host speaks, and that it imports nothing the sandbox does not
//! provide.

use wasmparser::{Operator, Parser, Payload, Validator, WasmFeatures};

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
    /// It declares more of something than a strategy may (see [`ShapeLimits`]).
    #[error("declares {found} {limit} (or more); a strategy may declare at most {max}")]
    OverLimit {
        /// Which bound.
        limit: Limit,
        /// How many were counted when the bound was passed.
        found: u64,
        /// The bound.
        max: u64,
    },
    /// It calls itself something else than the Role asked for (read from
    /// its `tarantool-strategy-name` custom section, before compiling).
    #[error("names itself {found:?} in its {NAME_SECTION} section, not {requested:?}")]
    NameMismatch {
        /// The name asked for.
        requested: String,
        /// The name it carries.
        found: String,
    },
}

/// The custom section a strategy may carry its name in, so that a wrong
/// component is refused before it is compiled (the SDK's
/// `export_strategy!(Type, "Name")` writes it).
pub const NAME_SECTION: &str = "tarantool-strategy-name";

/// What [`ShapeLimits`] bounds, as named in the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Components and modules nested inside each other.
    NestingDepth,
    /// Components and modules, nested ones included.
    NestedComponents,
    /// Core and component instances.
    Instances,
    /// Functions defined with a body, in all core modules.
    Functions,
    /// Bytes of one function body.
    FunctionBodyBytes,
    /// Bytes of all function bodies.
    CodeBytes,
    /// Locals of one function.
    Locals,
    /// Blocks, loops and ifs nested inside each other in one body.
    BlockNesting,
    /// Core and component types.
    Types,
    /// Memories defined or imported by core modules.
    Memories,
    /// Tables defined or imported by core modules.
    Tables,
    /// Every other declaration: imports, exports, aliases, canonical
    /// functions, globals, element and data segments.
    Declarations,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NestingDepth => "levels of nested components/modules",
            Self::NestedComponents => "components and modules",
            Self::Instances => "instances",
            Self::Functions => "functions",
            Self::FunctionBodyBytes => "bytes in one function body",
            Self::CodeBytes => "bytes of function bodies",
            Self::Locals => "locals in one function",
            Self::BlockNesting => "levels of nested blocks in one function",
            Self::Types => "types",
            Self::Memories => "memories",
            Self::Tables => "tables",
            Self::Declarations => "imports, exports, aliases and other declarations",
        })
    }
}

/// Bounds on what a component may declare, checked in one streaming pass
/// over its bytes before the full validator and the compiler run: each
/// costs a few comparisons per section, so a hostile component is refused
/// as soon as the bound is passed, in milliseconds and without memory.
///
/// Compile time and memory grow with what these count, not with the size of
/// the file: a 120 KB component nesting 10,000 empty components took 3.1 GB
/// to accept, 200,000 nested blocks (603 KB) took a minute to compile.
///
/// The built-ins and the example, measured (`real_strategies_pass...` in
/// `tests/shape_limits.rs` prints them; wasm-guest profile, 63-103 KB each)
/// use at most: nesting depth 1, 4 components and modules, 19 instances,
/// 270 functions, bodies of 6.6 KB (83 KB of code in all), 26 locals, 27
/// nested blocks, 65 types, 1 memory, 3 tables and 181 other declarations.
/// Each default is at least 8x that (most 40-100x), room for a strategy
/// with a few heavy dependencies (regex, serde_json) or composed from
/// several components; a ConfigMap caps a component at 1 MiB anyway, so
/// 4 MiB of code only matters for files given to the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeLimits {
    /// Components and modules nested inside each other (the outermost
    /// component is level 0).
    pub max_nesting: u64,
    /// Components and modules in all, nested ones included.
    pub max_nested: u64,
    /// Core and component instances.
    pub max_instances: u64,
    /// Functions with a body, over all core modules.
    pub max_functions: u64,
    /// Bytes of one function body.
    pub max_function_bytes: u64,
    /// Bytes of all function bodies.
    pub max_code_bytes: u64,
    /// Locals of one function.
    pub max_locals: u64,
    /// Blocks nested inside each other in one function body.
    pub max_block_nesting: u64,
    /// Core and component types.
    pub max_types: u64,
    /// Memories, over all core modules (defined or imported).
    pub max_memories: u64,
    /// Tables, over all core modules (defined or imported).
    pub max_tables: u64,
    /// Imports, exports, aliases, canonical functions, globals, segments.
    pub max_declarations: u64,
}

impl Default for ShapeLimits {
    fn default() -> Self {
        Self {
            max_nesting: 8,
            max_nested: 64,
            max_instances: 256,
            max_functions: 20_000,
            max_function_bytes: 256 << 10,
            max_code_bytes: 4 << 20,
            max_locals: 2_000,
            max_block_nesting: 1_000,
            max_types: 10_000,
            max_memories: 16,
            max_tables: 64,
            max_declarations: 20_000,
        }
    }
}

/// What a component declares, as counted by [`census`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Deepest nesting of components and modules.
    pub nesting: u64,
    /// Components and modules (the outermost excluded).
    pub nested: u64,
    /// Core and component instances.
    pub instances: u64,
    /// Functions with a body.
    pub functions: u64,
    /// Largest function body, in bytes.
    pub largest_body: u64,
    /// Bytes of all function bodies.
    pub code_bytes: u64,
    /// Most locals of one function.
    pub most_locals: u64,
    /// Deepest block nesting in one body.
    pub block_nesting: u64,
    /// Core and component types.
    pub types: u64,
    /// Memories.
    pub memories: u64,
    /// Tables.
    pub tables: u64,
    /// Other declarations.
    pub declarations: u64,
    /// The name in the [`NAME_SECTION`] custom section, when there is one.
    pub name: Option<String>,
}

impl ShapeLimits {
    /// The first bound `census` passes.
    fn check(&self, c: &Census) -> Result<(), InvalidComponent> {
        let checks = [
            (Limit::NestingDepth, c.nesting, self.max_nesting),
            (Limit::NestedComponents, c.nested, self.max_nested),
            (Limit::Instances, c.instances, self.max_instances),
            (Limit::Functions, c.functions, self.max_functions),
            (
                Limit::FunctionBodyBytes,
                c.largest_body,
                self.max_function_bytes,
            ),
            (Limit::CodeBytes, c.code_bytes, self.max_code_bytes),
            (Limit::Locals, c.most_locals, self.max_locals),
            (Limit::BlockNesting, c.block_nesting, self.max_block_nesting),
            (Limit::Types, c.types, self.max_types),
            (Limit::Memories, c.memories, self.max_memories),
            (Limit::Tables, c.tables, self.max_tables),
            (Limit::Declarations, c.declarations, self.max_declarations),
        ];
        match checks.into_iter().find(|(_, found, max)| found > max) {
            Some((limit, found, max)) => Err(InvalidComponent::OverLimit { limit, found, max }),
            None => Ok(()),
        }
    }
}

fn malformed(e: wasmparser::BinaryReaderError) -> InvalidComponent {
    InvalidComponent::Malformed(e.to_string())
}

/// Counts what `bytes` declares, stopping at the first bound of `limits` it
/// passes. Reads each function body's locals and block structure (not the
/// full validator's work): linear in the size, constant in memory.
pub fn census(bytes: &[u8], limits: &ShapeLimits) -> Result<Census, InvalidComponent> {
    let mut c = Census::default();
    let mut depth = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        let add = |n: u32, to: &mut u64| *to += u64::from(n);
        match payload.map_err(malformed)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => {
                depth += 1;
                c.nested += 1;
                c.nesting = c.nesting.max(depth);
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::TypeSection(r) => add(r.count(), &mut c.types),
            Payload::CoreTypeSection(r) => add(r.count(), &mut c.types),
            Payload::ComponentTypeSection(r) => add(r.count(), &mut c.types),
            Payload::InstanceSection(r) => add(r.count(), &mut c.instances),
            Payload::ComponentInstanceSection(r) => add(r.count(), &mut c.instances),
            Payload::FunctionSection(r) => add(r.count(), &mut c.functions),
            Payload::MemorySection(r) => add(r.count(), &mut c.memories),
            Payload::TableSection(r) => add(r.count(), &mut c.tables),
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    match import.map_err(malformed)?.ty {
                        wasmparser::TypeRef::Memory(_) => c.memories += 1,
                        wasmparser::TypeRef::Table(_) => c.tables += 1,
                        _ => c.declarations += 1,
                    }
                    limits.check(&c)?;
                }
            }
            Payload::ExportSection(r) => add(r.count(), &mut c.declarations),
            Payload::GlobalSection(r) => add(r.count(), &mut c.declarations),
            Payload::ElementSection(r) => add(r.count(), &mut c.declarations),
            Payload::DataSection(r) => add(r.count(), &mut c.declarations),
            Payload::TagSection(r) => add(r.count(), &mut c.declarations),
            Payload::ComponentImportSection(r) => add(r.count(), &mut c.declarations),
            Payload::ComponentExportSection(r) => add(r.count(), &mut c.declarations),
            Payload::ComponentAliasSection(r) => add(r.count(), &mut c.declarations),
            Payload::ComponentCanonicalSection(r) => add(r.count(), &mut c.declarations),
            Payload::CodeSectionStart { size, .. } => add(size, &mut c.code_bytes),
            Payload::CodeSectionEntry(body) => {
                c.largest_body = c.largest_body.max(body.range().len() as u64);
                limits.check(&c)?;
                let mut locals = 0u64;
                for local in body.get_locals_reader().map_err(malformed)? {
                    locals += u64::from(local.map_err(malformed)?.0);
                    c.most_locals = c.most_locals.max(locals);
                    limits.check(&c)?;
                }
                c.block_nesting = c
                    .block_nesting
                    .max(block_nesting(&body, limits.max_block_nesting)?);
            }
            Payload::CustomSection(section) if section.name() == NAME_SECTION => {
                c.name = Some(String::from_utf8_lossy(section.data()).into_owned());
            }
            _ => {}
        }
        limits.check(&c)?;
    }
    Ok(c)
}

/// The deepest block nesting in `body`, or the first depth past `max`.
fn block_nesting(body: &wasmparser::FunctionBody<'_>, max: u64) -> Result<u64, InvalidComponent> {
    let mut ops = body.get_operators_reader().map_err(malformed)?;
    let (mut depth, mut deepest) = (0u64, 0u64);
    while !ops.eof() {
        match ops.read().map_err(malformed)? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > max {
                    return Ok(deepest);
                }
            }
            Operator::End => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(deepest)
}

/// What validation learned about a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentShape {
    /// The WIT version of the exported planner.
    pub version: String,
    /// Top-level import names.
    pub imports: Vec<String>,
    /// What it declares.
    pub census: Census,
}

/// Validates `bytes` as a strategy component: the size and the census
/// first (cheap, and they bound what the full validator and the compiler
/// will be asked to do), then the validator and the world.
pub fn validate(
    bytes: &[u8],
    max_size: usize,
    limits: &ShapeLimits,
) -> Result<ComponentShape, InvalidComponent> {
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
    let census = census(bytes, limits)?;
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
    Ok(ComponentShape {
        version,
        imports,
        census,
    })
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
            validate(b"#!/bin/sh\nrm -rf /\n", 1 << 20, &ShapeLimits::default()),
            Err(InvalidComponent::NotWasm)
        );
    }

    #[test]
    fn refuses_oversized_input_before_parsing() {
        let err = validate(&[0u8; 100], 10, &ShapeLimits::default()).unwrap_err();
        assert_eq!(err, InvalidComponent::TooLarge { size: 100, max: 10 });
    }

    #[test]
    fn refuses_a_core_module() {
        // The smallest valid core module: magic + version 1.
        let module = b"\0asm\x01\0\0\0";
        assert_eq!(
            validate(module, 1 << 20, &ShapeLimits::default()),
            Err(InvalidComponent::CoreModule)
        );
    }

    #[test]
    fn refuses_a_truncated_component() {
        let truncated = b"\0asm\x0d\0\x01\0\x07";
        assert!(matches!(
            validate(truncated, 1 << 20, &ShapeLimits::default()),
            Err(InvalidComponent::Malformed(_))
        ));
    }

    #[test]
    fn an_empty_component_exports_the_wrong_world() {
        let empty = b"\0asm\x0d\0\x01\0";
        assert_eq!(
            validate(empty, 1 << 20, &ShapeLimits::default()),
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
