//! The rules both homes implement, checked against `schema/vectors.json`; the worker's
//! `cloudflare/test/rules.test.mjs` checks its JavaScript against the same file.

use crate::hooks::{scratch_limits, Scratch};
use crate::store_id::MAX_STORE_ID_BYTES;
use crate::sync_params::SyncParams;
use crate::table_names::{encoded_table_name, reference_table_name};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../schema/vectors.json")).expect("vectors.json is JSON")
}

fn each<'a>(v: &'a Value, path: &str) -> &'a Vec<Value> {
    v.pointer(path).and_then(Value::as_array).unwrap_or_else(|| panic!("vectors.json has no {path}"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn table_names() {
    let v = vectors();
    for case in each(&v, "/tableNames") {
        let id = text(case, "storeId");
        assert_eq!(reference_table_name(id), text(case, "reference"), "{id:?}");
        assert_eq!(encoded_table_name(id), text(case, "encoded"), "{id:?}");
    }
}

#[test]
fn store_ids() {
    let v = vectors();
    assert_eq!(v["storeIds"]["maxBytes"], MAX_STORE_ID_BYTES);
    for id in each(&v, "/storeIds/valid") {
        let id = id.as_str().expect("string");
        assert_eq!(crate::store_id::validate_store_id(id), Ok(()), "{id:?}");
    }
    for case in each(&v, "/storeIds/invalid") {
        let err = SyncParams::parse(Some(text(case, "query"))).store_id().expect_err("refused");
        assert_eq!(err.to_string(), text(case, "error"));
    }
    for case in each(&v, "/storeIds/decoded") {
        assert_eq!(SyncParams::parse(Some(text(case, "query"))).store_id(), Ok(text(case, "storeId")));
    }
}

#[test]
fn auth_tokens() {
    let v = vectors();
    for case in each(&v, "/authTokens") {
        let params = SyncParams::parse(Some(text(case, "query")));
        assert_eq!(params.auth_token(), case["token"].as_str(), "{case}");
    }
}

#[test]
fn scratch_limits_match() {
    let v = vectors();
    let s = &v["scratch"];
    let (key, value, keys) = scratch_limits();
    assert_eq!(
        (s["maxKeyBytes"].as_u64(), s["maxValueBytes"].as_u64(), s["maxKeys"].as_u64()),
        (Some(key as u64), Some(value as u64), Some(keys as u64))
    );
    for case in each(&v, "/scratch/keys") {
        let k = text(case, "key");
        let stored = Scratch::default().set("hook", "store", k.to_string(), Vec::new(), None);
        assert_eq!(stored.is_ok(), case["ok"] == true, "{k:?}: {stored:?}");
    }
}

#[test]
fn bearer_credentials() {
    let v = vectors();
    for case in each(&v, "/bearer") {
        let header = text(case, "authorization");
        assert_eq!(crate::auth::bearer_credentials(header), case["token"].as_str(), "{header:?}");
    }
}

#[test]
fn hook_http_allowlist() {
    let v = vectors();
    let allow: Vec<String> =
        each(&v, "/allowHosts/allow").iter().map(|e| e.as_str().expect("an entry").to_string()).collect();
    for case in each(&v, "/allowHosts/cases") {
        let (host, port) = (text(case, "host"), case["port"].as_u64().expect("a port") as u16);
        assert_eq!(crate::hooks::host_allowed(&allow, host, port), case["allowed"] == true, "{host}:{port}");
        assert!(!crate::hooks::host_allowed(&[], host, port), "an empty list allows nothing");
    }
}
