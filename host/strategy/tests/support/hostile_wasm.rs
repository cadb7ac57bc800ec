//! Generators of hostile components: each declares far more of one thing
//! than a strategy needs, the way the held-back cases of issue 14 did
//! (thousands of nested components, pathological function bodies, huge
//! function counts). Built in code with wasm-encoder, so the tests and the
//! `refusal` benchmark need no files.

#![allow(dead_code)]

use tarantool_operator_strategy::validate::Limit;
use wasm_encoder::{
    BlockType, CodeSection, Component, ExportKind, ExportSection, Function, FunctionSection,
    Instruction, MemorySection, MemoryType, Module, ModuleSection, TypeSection, ValType,
};

/// A component nesting `depth` empty components, each inside the last
/// (10,000 levels are 120 KB). Written directly: each level is a header and
/// a component section whose size is that of the level inside it.
pub fn nested_components(depth: usize) -> Vec<u8> {
    const HEADER: &[u8] = b"\0asm\x0d\0\x01\0";
    // Sizes from the innermost (an empty component) outwards.
    let mut sizes = vec![HEADER.len()];
    for _ in 0..depth {
        let inner = sizes[sizes.len() - 1];
        sizes.push(HEADER.len() + 1 + leb_len(inner) + inner);
    }
    let mut out = Vec::with_capacity(sizes[sizes.len() - 1]);
    for inner in sizes[..depth].iter().rev() {
        out.extend_from_slice(HEADER);
        out.push(4); // the component section
        leb(&mut out, *inner);
    }
    out.extend_from_slice(HEADER);
    out
}

fn leb_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A component holding `module`.
pub fn wrap(module: &Module) -> Vec<u8> {
    let mut component = Component::new();
    component.section(&ModuleSection(module));
    component.finish()
}

/// One function type `() -> ()`, `count` functions of it, each with
/// `body`'s instructions and `locals` i32 locals.
fn module_with(count: u32, locals: u32, body: &[Instruction<'_>]) -> Module {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut f = Function::new(if locals > 0 {
        vec![(locals, ValType::I32)]
    } else {
        vec![]
    });
    for i in body {
        f.instruction(i);
    }
    f.instruction(&Instruction::End);
    for _ in 0..count {
        functions.function(0);
        code.function(&f);
    }
    let mut module = Module::new();
    module.section(&types).section(&functions).section(&code);
    module
}

/// One function of `depth` nested empty blocks (200,000 are 603 KB).
pub fn nested_blocks(depth: usize) -> Vec<u8> {
    let mut body = vec![Instruction::Block(BlockType::Empty); depth];
    body.extend(std::iter::repeat_n(Instruction::End, depth));
    wrap(&module_with(1, 0, &body))
}

/// `count` tiny functions (150,000 are 3.2 MB with a few instructions each).
pub fn many_functions(count: u32) -> Vec<u8> {
    let body = [
        Instruction::I32Const(0),
        Instruction::Drop,
        Instruction::I32Const(1),
        Instruction::Drop,
        Instruction::I32Const(2),
        Instruction::Drop,
        Instruction::I32Const(3),
        Instruction::Drop,
        Instruction::I32Const(4),
        Instruction::Drop,
    ];
    wrap(&module_with(count, 0, &body))
}

/// One function whose body is `bytes` long (pairs of `i32.const 0; drop`).
pub fn huge_body(bytes: usize) -> Vec<u8> {
    let body: Vec<_> = (0..bytes / 3)
        .flat_map(|_| [Instruction::I32Const(0), Instruction::Drop])
        .collect();
    wrap(&module_with(1, 0, &body))
}

/// `count` functions of `each` bytes: the code in all is large, each body
/// is not.
pub fn much_code(count: u32, each: usize) -> Vec<u8> {
    let body: Vec<_> = (0..each / 3)
        .flat_map(|_| [Instruction::I32Const(0), Instruction::Drop])
        .collect();
    wrap(&module_with(count, 0, &body))
}

/// One function with `count` locals.
pub fn many_locals(count: u32) -> Vec<u8> {
    wrap(&module_with(1, count, &[]))
}

/// `count` function types.
pub fn many_types(count: u32) -> Vec<u8> {
    let mut types = TypeSection::new();
    for i in 0..count {
        // Distinct types: i params.
        types
            .ty()
            .function(std::iter::repeat_n(ValType::I32, (i % 100) as usize), []);
    }
    let mut module = Module::new();
    module.section(&types);
    wrap(&module)
}

/// `count` memories in one module.
pub fn many_memories(count: u32) -> Vec<u8> {
    let mut memories = MemorySection::new();
    for _ in 0..count {
        memories.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }
    let mut module = Module::new();
    module.section(&memories);
    wrap(&module)
}

/// `count` empty modules side by side (none nested in another).
pub fn many_modules(count: u32) -> Vec<u8> {
    let mut component = Component::new();
    let module = Module::new();
    for _ in 0..count {
        component.section(&ModuleSection(&module));
    }
    component.finish()
}

/// One empty module instantiated `count` times.
pub fn many_instances(count: u32) -> Vec<u8> {
    let mut component = Component::new();
    component.section(&ModuleSection(&Module::new()));
    let mut instances = wasm_encoder::InstanceSection::new();
    for _ in 0..count {
        instances.instantiate(0, std::iter::empty::<(&str, wasm_encoder::ModuleArg)>());
    }
    component.section(&instances);
    component.finish()
}

/// One function exported under `count` names.
pub fn many_exports(count: u32) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut functions = FunctionSection::new();
    functions.function(0);
    let mut exports = ExportSection::new();
    for i in 0..count {
        exports.export(&format!("f{i}"), ExportKind::Func, 0);
    }
    let mut code = CodeSection::new();
    let mut f = Function::new(vec![]);
    f.instruction(&Instruction::End);
    code.function(&f);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&functions)
        .section(&exports)
        .section(&code);
    wrap(&module)
}

/// Every hostile shape, with the bound that must refuse it: the held-back
/// cases of issue 14 and one past each other bound.
pub fn hostile_cases() -> Vec<(&'static str, Vec<u8>, Limit)> {
    vec![
        (
            "10,000 nested components",
            nested_components(10_000),
            Limit::NestingDepth,
        ),
        (
            "20,000 nested components",
            nested_components(20_000),
            Limit::NestingDepth,
        ),
        // 603 KB in one body: refused by its size before its blocks are read.
        (
            "200,000 nested blocks",
            nested_blocks(200_000),
            Limit::FunctionBodyBytes,
        ),
        (
            "20,000 nested blocks",
            nested_blocks(20_000),
            Limit::BlockNesting,
        ),
        (
            "150,000 tiny functions",
            many_functions(150_000),
            Limit::Functions,
        ),
        (
            "740,000 functions",
            many_functions(740_000),
            Limit::Functions,
        ),
        (
            "a 1 MiB function body",
            huge_body(1 << 20),
            Limit::FunctionBodyBytes,
        ),
        (
            "20 bodies of 250 KiB",
            much_code(20, 250 << 10),
            Limit::CodeBytes,
        ),
        ("50,000 locals", many_locals(50_000), Limit::Locals),
        ("20,000 types", many_types(20_000), Limit::Types),
        ("17 memories", many_memories(17), Limit::Memories),
        (
            "100 modules side by side",
            many_modules(100),
            Limit::NestedComponents,
        ),
        ("300 instances", many_instances(300), Limit::Instances),
        ("30,000 exports", many_exports(30_000), Limit::Declarations),
    ]
}
