//! `known_values(schema)`: the values a document lists for each open enum.
//!
//! Response enums are generated as plain strings so an added value never breaks decoding (the
//! `open_response_enums` pass of `cargo xtask regen`, which keeps the listed values in
//! `x-known-values`). What the document accepts in a request is still exactly that list, and a
//! client that sends anything else gets a 422: this function keeps the list next to the types,
//! so callers check against the document rather than a copy of it.

/// Rust source for `pub fn known_values(schema: &str) -> Option<&'static [&'static str]>`,
/// one arm per component schema with `x-known-values`, keyed by the schema's name as the
/// document spells it (`GPUType`, `Regions`).
pub fn render(doc: &serde_json::Value) -> String {
    let mut arms = String::new();
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(|s| s.as_object()) {
        for (name, schema) in schemas {
            let Some(values) = schema.get("x-known-values").and_then(|v| v.as_array()) else { continue };
            let values: Vec<String> = values.iter().filter_map(|v| v.as_str()).map(|v| format!("{v:?}")).collect();
            arms.push_str(&format!("        {name:?} => Some(&[{}]),\n", values.join(", ")));
        }
    }
    format!(
        "\n/// The values the document lists for the open enum `schema` (its component name as the\n\
         /// document spells it, e.g. `\"GPUType\"`); `None` for a schema that is not an open enum.\n\
         /// Responses may carry other values; requests outside these are refused by the API.\n\
         pub fn known_values(schema: &str) -> Option<&'static [&'static str]> {{\n    match schema {{\n{arms}        _ => None,\n    }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_one_arm_per_open_enum() {
        let doc = serde_json::json!({"components": {"schemas": {
            "GPUType": {"type": "string", "x-known-values": ["H100_80GB", "A100_80GB"]},
            "Pod": {"type": "object"}}}});
        let code = super::render(&doc);
        assert!(code.contains(r#""GPUType" => Some(&["H100_80GB", "A100_80GB"]),"#), "{code}");
        assert!(!code.contains("Pod"), "{code}");
        syn::parse_file(&code).expect("valid Rust");
    }
}
