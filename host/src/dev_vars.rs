//! `.dev.vars`, wrangler's local config file: `KEY=value` lines. Values from
//! it fill in environment variables that are not already set, so one file configures both
//! the native server and `wrangler dev`.

use std::path::Path;

/// Parse `.dev.vars` text: `KEY=value`, `KEY="value"`, `# comments`, blank lines.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((key.trim().to_string(), value.to_string()))
        })
        .collect()
}

/// Load `path` into the environment (without overriding); a missing file is an error only when
/// `required` (named on the command line: starting without it could start the server open).
/// Call before any thread starts.
pub fn load(path: &Path, required: bool) -> std::io::Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut applied = 0;
    for (key, value) in parse(&text) {
        if std::env::var_os(&key).is_none() {
            std::env::set_var(&key, value);
            applied += 1;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_wrangler_dev_vars() {
        let vars = super::parse("# local\nAUTH_TOKEN=\"insecure-token-change-me\"\nDEBUG=*\n\nLIVESTORE_SECRET='s3'\n");
        assert_eq!(
            vars,
            vec![
                ("AUTH_TOKEN".into(), "insecure-token-change-me".into()),
                ("DEBUG".into(), "*".into()),
                ("LIVESTORE_SECRET".into(), "s3".into())
            ]
        );
    }
}
