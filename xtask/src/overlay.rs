//! Overlays: the deliberate local changes we make to an upstream document.
//!
//! An overlay is a JSON file beside the upstream document:
//!
//! ```json
//! {
//!   "operation_ids": { "reason": "why we rename", "ids": { "GET /api/v1/pods/": "list_pods" } },
//!   "patches": [
//!     { "op": "append", "path": "/components/schemas/GPUType/enum", "value": ["GB200"],
//!       "reason": "the live API lists GB200; the 2026-02-28 copy does not" }
//!   ]
//! }
//! ```
//!
//! `op` is `add` (set, creating the key), `replace` (set, the target must exist), `remove`, or
//! `append` (extend an array). `path` is a JSON pointer into the upstream document. Every patch
//! must carry a `reason`: an overlay is a list of decisions, not a scratch pad.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    /// Free text for readers of the file; not interpreted.
    #[serde(default, rename = "$comment")]
    #[allow(dead_code, reason = "kept so that deny_unknown_fields accepts the documented key")]
    pub comment: Option<String>,
    #[serde(default)]
    pub operation_ids: Option<OperationIds>,
    #[serde(default)]
    pub patches: Vec<Patch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationIds {
    pub reason: String,
    /// `"METHOD /path"` -> new operationId.
    pub ids: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub op: PatchOp,
    pub path: String,
    #[serde(default)]
    pub value: Option<Value>,
    pub reason: String,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Replace,
    Remove,
    Append,
}

const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

impl Overlay {
    pub fn parse(text: &str) -> Result<Overlay, String> {
        let overlay: Overlay = serde_json::from_str(text).map_err(|e| format!("overlay: {e}"))?;
        if let Some(renames) = &overlay.operation_ids
            && renames.reason.trim().is_empty()
        {
            return Err("overlay operation_ids has no reason".into());
        }
        for patch in &overlay.patches {
            if patch.reason.trim().is_empty() {
                return Err(format!("overlay patch at {} has no reason", patch.path));
            }
        }
        Ok(overlay)
    }

    /// Applies the overlay; fails on a patch or rename whose target does not exist, so an
    /// upstream change that makes a patch obsolete is noticed instead of silently skipped.
    pub fn apply(&self, doc: &mut Value) -> Result<(), String> {
        if let Some(renames) = &self.operation_ids {
            for (operation, new_id) in &renames.ids {
                let (method, path) = operation
                    .split_once(' ')
                    .ok_or_else(|| format!("operation key {operation:?} is not \"METHOD /path\""))?;
                let method = method.to_ascii_lowercase();
                if !HTTP_METHODS.contains(&method.as_str()) {
                    return Err(format!("operation key {operation:?}: unknown method"));
                }
                let op = doc
                    .get_mut("paths")
                    .and_then(|paths| paths.get_mut(path))
                    .and_then(|item| item.get_mut(&method))
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| format!("overlay renames {operation}, which the document lacks"))?;
                op.insert("operationId".into(), Value::String(new_id.clone()));
            }
        }
        for patch in &self.patches {
            apply_patch(doc, patch)?;
        }
        Ok(())
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn apply_patch(doc: &mut Value, patch: &Patch) -> Result<(), String> {
    let missing = || format!("overlay patch target {} does not exist", patch.path);
    let value = || patch.value.clone().ok_or_else(|| format!("overlay patch at {} needs a value", patch.path));
    match patch.op {
        PatchOp::Replace => *doc.pointer_mut(&patch.path).ok_or_else(missing)? = value()?,
        PatchOp::Append => {
            let target = doc.pointer_mut(&patch.path).ok_or_else(missing)?;
            let array = target.as_array_mut().ok_or_else(|| format!("{} is not an array", patch.path))?;
            match value()? {
                Value::Array(items) => array.extend(items),
                item => array.push(item),
            }
        }
        PatchOp::Add | PatchOp::Remove => {
            let (parent, last) = patch.path.rsplit_once('/').ok_or_else(missing)?;
            let key = unescape(last);
            let parent = doc.pointer_mut(parent).ok_or_else(missing)?;
            let object = parent.as_object_mut().ok_or_else(|| format!("parent of {} is not an object", patch.path))?;
            if patch.op == PatchOp::Add {
                object.insert(key, value()?);
            } else if object.shift_remove(&key).is_none() {
                return Err(missing());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renames_operations_and_applies_patches() {
        let mut doc = json!({
            "paths": {"/a": {"get": {"operationId": "get_a_api_a_get"}}},
            "components": {"schemas": {"E": {"enum": ["X"]}, "S": {"properties": {"p": {}}}}}
        });
        let overlay = Overlay::parse(
            r#"{"operation_ids": {"reason": "short", "ids": {"GET /a": "get_a"}},
                "patches": [
                  {"op": "append", "path": "/components/schemas/E/enum", "value": ["Y"], "reason": "r"},
                  {"op": "add", "path": "/components/schemas/S/properties/q", "value": {}, "reason": "r"},
                  {"op": "remove", "path": "/components/schemas/S/properties/p", "reason": "r"}
                ]}"#,
        )
        .unwrap();
        overlay.apply(&mut doc).unwrap();
        assert_eq!(doc["paths"]["/a"]["get"]["operationId"], "get_a");
        assert_eq!(doc["components"]["schemas"]["E"]["enum"], json!(["X", "Y"]));
        assert_eq!(doc["components"]["schemas"]["S"]["properties"], json!({"q": {}}));
    }

    #[test]
    fn stale_targets_are_errors() {
        let mut doc = json!({"paths": {}});
        let overlay = Overlay::parse(r#"{"operation_ids": {"reason": "r", "ids": {"GET /gone": "x"}}}"#).unwrap();
        assert!(overlay.apply(&mut doc).unwrap_err().contains("GET /gone"));
        let overlay = Overlay::parse(r#"{"patches": [{"op": "remove", "path": "/nope/x", "reason": "r"}]}"#).unwrap();
        assert!(overlay.apply(&mut doc).is_err());
    }

    #[test]
    fn a_patch_without_reason_is_rejected() {
        assert!(Overlay::parse(r#"{"patches": [{"op": "remove", "path": "/a", "reason": " "}]}"#).is_err());
    }
}
