//! docs/operations.md lists each controller's steps in the order the code
//! runs them; this test fails when the two part.

/// Step names in the order `step!` names them in a controller's source.
fn steps_in(source: &str) -> Vec<String> {
    let pattern =
        regex::Regex::new(r#"(?:step!\(\s*p,\s*|\.yields\(\s*)"(\w+)""#).expect("a valid pattern");
    pattern
        .captures_iter(source)
        .map(|c| c[1].to_string())
        .collect()
}

/// The first column of the table under `heading` in the docs.
fn table_under(docs: &str, heading: &str) -> Vec<String> {
    docs.split_once(heading)
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .lines()
        .skip_while(|l| !l.starts_with("| step"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(|cell| cell.trim().to_string())
        .collect()
}

const DOCS: &str = include_str!("../../../docs/operations.md");

#[test]
fn the_cluster_steps_are_documented_in_order() {
    let code = steps_in(include_str!("cluster/mod.rs"));
    assert!(!code.is_empty());
    assert_eq!(
        table_under(DOCS, "## The Cluster controller"),
        code,
        "docs/operations.md's Cluster step table"
    );
}

#[test]
fn the_role_steps_are_documented_in_order() {
    let code = steps_in(include_str!("role/mod.rs"));
    // The deletion path runs up to ReleaseFinalizer, after the two steps
    // both paths share; the rest is the path of a living Role.
    let end = code
        .iter()
        .position(|s| s == "ReleaseFinalizer")
        .expect("a deletion path");
    let deleting: Vec<String> = code[..=end].to_vec();
    let living: Vec<String> = code[..2].iter().chain(&code[end + 1..]).cloned().collect();
    assert_eq!(
        table_under(DOCS, "## The Role controller"),
        living,
        "docs/operations.md's Role step table"
    );
    let chain = DOCS
        .split_once("A Role being deleted runs ")
        .map(|(_, rest)| rest.split_once(" (`").map_or(rest, |(c, _)| c))
        .unwrap_or_default();
    let documented: Vec<String> = chain
        .split("->")
        // A step may carry a remark in parentheses.
        .map(|s| s.split('(').next().unwrap_or_default().trim().to_string())
        .collect();
    assert_eq!(
        documented, deleting,
        "docs/operations.md's deletion path of a Role"
    );
}
