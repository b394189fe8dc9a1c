//! Only event names on the operator's list may be pushed (`--hook-var
//! ALLOWED_EVENTS=todoCreated-v1,todoCompleted-v1,chat*`; a trailing `*` matches a prefix).
//! Without a list every push is refused (fail closed).

pub fn allowed(list: &str, name: &str) -> bool {
    list.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == p,
    })
}

pub fn check<'a>(list: Option<&str>, names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let Some(list) = list else {
        return Err("event-allowlist hook: no ALLOWED_EVENTS configured".to_string());
    };
    match names.into_iter().find(|n| !allowed(list, n)) {
        Some(bad) => Err(format!("event {bad:?} is not allowed on this server")),
        None => Ok(()),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "push-gate", path: "../../wit/hooks" });

    use exports::livestore::hooks::on_push::{Context, Event, Guest};

    struct Hook;

    impl Guest for Hook {
        fn on_push(_context: Context, batch: Vec<Event>) -> Result<(), String> {
            let list = livestore::hooks::config::get("ALLOWED_EVENTS");
            super::check(list.as_deref(), batch.iter().map(|e| e.name.as_str()))
        }
    }

    export!(Hook);
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn names_must_be_listed_or_match_a_prefix() {
        let list = Some("todoCreated-v1, chat*");
        assert_eq!(check(list, ["todoCreated-v1", "chatMessage"]), Ok(()));
        assert!(check(list, ["todoCreated-v1", "dropTables"]).unwrap_err().contains("dropTables"));
        assert!(check(list, ["todoCreated-v2"]).is_err());
        assert!(check(None, ["x"]).is_err());
    }
}
