//! The CRDs generated from the types, rendered as the YAML files kept in
//! `crds/`, and the check that those files are current.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{Cluster, Role};

/// What regenerates the files; printed when they are stale.
pub(crate) const REGENERATE: &str =
    "make crds (or: cargo run -p tarantool-operator -- crds --write crds/)";

/// Why CRDs could not be rendered, written or checked.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A CRD did not serialize to YAML.
    #[error("cannot render the {name} CRD as YAML: {source}")]
    Render {
        /// The CRD's name.
        name: String,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Files differ from what the types generate.
    #[error("stale CRD files: {}; regenerate with {REGENERATE}", .paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Stale {
        /// The files that differ or are missing.
        paths: Vec<PathBuf>,
    },
}

/// One generated CRD file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdFile {
    /// File name inside `crds/`, e.g. `cluster.yaml`.
    pub file_name: &'static str,
    /// Its content.
    pub yaml: String,
}

/// The CRDs of the operator: Cluster, then Role.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![Cluster::crd(), Role::crd()]
}

fn render(file_name: &'static str, crd: &CustomResourceDefinition) -> Result<CrdFile, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let body = serde_yaml::to_string(crd).map_err(|source| CrdError::Render {
        name: name.clone(),
        source,
    })?;
    Ok(CrdFile {
        file_name,
        yaml: format!(
            "# {name}: generated from the Rust types in host/api; do not edit.\n\
             # Regenerate with {REGENERATE}.\n---\n{body}"
        ),
    })
}

/// The CRD files, as `crds/` should hold them.
pub fn files() -> Result<Vec<CrdFile>, CrdError> {
    Ok(vec![
        render("cluster.yaml", &Cluster::crd())?,
        render("role.yaml", &Role::crd())?,
    ])
}

/// Both CRDs as one multi-document YAML stream.
pub fn yaml_stream() -> Result<String, CrdError> {
    Ok(files()?
        .into_iter()
        .map(|f| f.yaml)
        .collect::<Vec<_>>()
        .join(""))
}

/// Writes the CRD files into `dir`; returns the paths written.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>, CrdError> {
    std::fs::create_dir_all(dir).map_err(|source| CrdError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for file in files()? {
        let path = dir.join(file.file_name);
        std::fs::write(&path, &file.yaml).map_err(|source| CrdError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Checks that the CRD files in `dir` are what the types generate.
pub fn check(dir: &Path) -> Result<(), CrdError> {
    let mut stale = Vec::new();
    for file in files()? {
        let path = dir.join(file.file_name);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.yaml => {}
            Ok(_) => stale.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => stale.push(path),
            Err(source) => return Err(CrdError::Io { path, source }),
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(CrdError::Stale { paths: stale })
    }
}
