//! `.dev.vars`, wrangler's local config file, read with dotenv rules (`dotenvy`, as wrangler
//! reads it): `KEY=value`, quoted values with escapes, `# comments` (inline ones too), `export`
//! prefixes. Values fill in environment variables that are not already set, so one file
//! configures both the native server and `wrangler dev`.

use std::path::Path;

/// The `KEY=value` pairs of a `.dev.vars` text.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, dotenvy::Error> {
    dotenvy::from_read_iter(text.as_bytes()).collect()
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
    let vars = parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let mut applied = 0;
    for (key, value) in vars {
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
        let vars = super::parse(
            "# local\nAUTH_TOKEN=\"insecure-token-change-me\"\nDEBUG=* # inline comment\n\nLIVESTORE_SECRET='s3 # not a comment'\nexport EXPORTED=\"a\\nb\"\n",
        )
        .expect("parses");
        assert_eq!(
            vars,
            vec![
                ("AUTH_TOKEN".into(), "insecure-token-change-me".into()),
                ("DEBUG".into(), "*".into()),
                ("LIVESTORE_SECRET".into(), "s3 # not a comment".into()),
                ("EXPORTED".into(), "a\nb".into()),
            ]
        );
    }

    #[test]
    fn a_malformed_line_is_an_error() {
        assert!(super::parse("GOOD=1\nBAD LINE\n").is_err());
    }
}
