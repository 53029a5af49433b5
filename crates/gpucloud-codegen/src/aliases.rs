//! `#[serde(alias)]` for field spellings that real responses use but the schema does not.

use syn::visit_mut::VisitMut;

/// Groups of interchangeable JSON field names, from the document's `x-gpucloud-field-aliases`
/// (an array of arrays of strings).
pub fn alias_groups(doc: &serde_json::Value) -> Result<Vec<Vec<String>>, String> {
    let Some(groups) = doc.get("x-gpucloud-field-aliases") else { return Ok(Vec::new()) };
    serde_json::from_value(groups.clone()).map_err(|e| format!("x-gpucloud-field-aliases: {e}"))
}

/// Adds `#[serde(alias = ..)]` for the other names of its group to every field of a
/// `Deserialize` struct whose JSON name is in a group, unless the struct has that name already.
pub fn add_field_aliases(file: &mut syn::File, groups: &[Vec<String>]) {
    if !groups.is_empty() {
        AliasAdder { groups }.visit_file_mut(file);
    }
}

struct AliasAdder<'a> {
    groups: &'a [Vec<String>],
}

fn derives_deserialize(item: &syn::ItemStruct) -> bool {
    item.attrs.iter().any(|attr| {
        attr.path().is_ident("derive") && quote::ToTokens::to_token_stream(attr).to_string().contains("Deserialize")
    })
}

/// The JSON name of a field: its `#[serde(rename = "..")]`, or its identifier.
fn json_name(field: &syn::Field) -> Option<String> {
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let mut renamed = None;
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: syn::LitStr = meta.value()?.parse()?;
                renamed = Some(value.value());
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        });
        if renamed.is_some() {
            return renamed;
        }
    }
    field.ident.as_ref().map(|ident| ident.to_string().trim_start_matches("r#").to_string())
}

impl VisitMut for AliasAdder<'_> {
    fn visit_item_struct_mut(&mut self, item: &mut syn::ItemStruct) {
        if !derives_deserialize(item) {
            return;
        }
        let syn::Fields::Named(fields) = &mut item.fields else { return };
        let present: Vec<String> = fields.named.iter().filter_map(json_name).collect();
        for field in fields.named.iter_mut() {
            let Some(name) = json_name(field) else { continue };
            let Some(group) = self.groups.iter().find(|g| g.contains(&name)) else { continue };
            for alias in group.iter().filter(|a| **a != name && !present.contains(a)) {
                field.attrs.push(syn::parse_quote!(#[serde(alias = #alias)]));
            }
        }
    }
}
