//! Deny-all WASI. A component built for `wasm32-wasip2` imports WASI
//! interfaces because Rust's std links them, but a strategy needs none: files,
//! sockets, environment, clocks and stdio all trap with [`DeniedCall`] when
//! called. The one exception is randomness, which std's `HashMap` asks for on
//! creation: it gets a fixed, deterministic sequence, so a plan depends only
//! on its view.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};

use super::sandbox::HostState;

/// A strategy called a WASI function the sandbox denies.
#[derive(Debug, Clone, thiserror::Error)]
#[error("called `{0}`, which the strategy sandbox denies")]
pub(crate) struct DeniedCall(pub String);

/// Marker type for WASI resources (streams, descriptors) that can never be
/// created in the sandbox.
struct DeniedResource;

/// Largest buffer of random bytes handed out in one call.
const MAX_RANDOM_BYTES: u64 = 1 << 16;

/// Defines every WASI import of `component` in `linker`.
pub(crate) fn define(
    linker: &mut Linker<HostState>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    let ty = component.component_type();
    for (name, import) in ty.imports(engine) {
        if !name.starts_with("wasi:") {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        let interface = name.split('@').next().unwrap_or(name);
        let mut linker = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_)
                    if !define_random(&mut linker, interface, export)? =>
                {
                    let what = format!("{name}#{export}");
                    linker.func_new(export, move |_, _, _, _| {
                        Err(DeniedCall(what.clone()).into())
                    })?;
                }
                ComponentItem::Resource(_) => {
                    linker.resource(export, ResourceType::host::<DeniedResource>(), |_, _| {
                        Ok(())
                    })?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Defines the deterministic randomness functions; false if `export` is not one.
fn define_random(
    linker: &mut LinkerInstance<'_, HostState>,
    interface: &str,
    export: &str,
) -> wasmtime::Result<bool> {
    match (interface, export) {
        ("wasi:random/random", "get-random-bytes")
        | ("wasi:random/insecure", "get-insecure-random-bytes") => {
            linker.func_wrap(export, |_, (len,): (u64,)| {
                if len > MAX_RANDOM_BYTES {
                    return Err(DeniedCall(format!("{len} random bytes at once")).into());
                }
                Ok((deterministic_bytes(len as usize),))
            })?;
        }
        ("wasi:random/random", "get-random-u64")
        | ("wasi:random/insecure", "get-insecure-random-u64") => {
            linker.func_wrap(export, |_, (): ()| Ok((splitmix64(1),)))?;
        }
        ("wasi:random/insecure-seed", "insecure-seed") => {
            linker.func_wrap(export, |_, (): ()| Ok(((splitmix64(2), splitmix64(3)),)))?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn deterministic_bytes(len: usize) -> Vec<u8> {
    (0..len.div_ceil(8) as u64)
        .flat_map(|i| splitmix64(i).to_le_bytes())
        .take(len)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_deterministic_and_sized() {
        assert_eq!(deterministic_bytes(13), deterministic_bytes(13));
        assert_eq!(deterministic_bytes(13).len(), 13);
        assert_ne!(deterministic_bytes(8), vec![0; 8]);
    }
}
