//! The component's log lines as fields. The component writes one convention everywhere:
//! `<event words> key=value key="quoted" … result=<rest of line>`, quoting what clients chose
//! with Rust's `{:?}` escapes. With `--log-format json` the host splits such a line so that
//! collectors get `store`, `conn`, `events`, … as JSON fields instead of one string.

/// A parsed line: the event (`push`, `simple pull`, …) and its fields in order.
#[derive(Debug, PartialEq)]
pub struct LogLine {
    pub event: String,
    pub fields: Vec<(String, String)>,
}

impl LogLine {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Split `line`; `None` when it does not follow the convention (then it is logged as it is).
pub fn parse(line: &str) -> Option<LogLine> {
    let first_key = line.find('=')?;
    let event_end = line[..first_key].rfind(' ')?;
    let event = line[..event_end].to_string();
    let mut rest = &line[event_end + 1..];
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        let (value, remaining) = if after.starts_with('"') {
            unquote(after)?
        } else if key == "result" {
            // The outcome comes last and may contain spaces ("invalid: …").
            (after.to_string(), "")
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.push((key.to_string(), value));
        rest = remaining.strip_prefix(' ').unwrap_or(remaining);
        if !remaining.is_empty() && !remaining.starts_with(' ') {
            return None;
        }
    }
    Some(LogLine { event, fields })
}

/// The string a `{:?}`-quoted value at the start of `s` stands for, and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'u' => {
                    if chars.next()?.1 != '{' {
                        return None;
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next()?.1 {
                            '}' => break,
                            h => hex.push(h),
                        }
                    }
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &LogLine) -> Vec<(&str, &str)> {
        line.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn the_components_lines_split_into_fields() {
        let store = "team/abc: \"Zoë\"\nforged=1";
        let client = "c 1";
        let line = format!(
            "push store={store:?} conn=3 request={:?} client={client:?} events=20 head=40 result=invalid: seqNum 5 is not after 7",
            "1"
        );
        let parsed = parse(&line).expect("parses");
        assert_eq!(parsed.event, "push");
        assert_eq!(
            fields(&parsed),
            [
                ("store", store),
                ("conn", "3"),
                ("request", "1"),
                ("client", client),
                ("events", "20"),
                ("head", "40"),
                ("result", "invalid: seqNum 5 is not after 7")
            ]
        );
        let simple = parse("simple pull store=\"s\" conn=2 events=0 result=ok").expect("parses");
        assert_eq!(simple.event, "simple pull");
        assert_eq!(simple.get("result"), Some("ok"));
        let escaped = parse(&format!("pull store={:?} live=true", "\u{7}\t\\")).expect("parses");
        assert_eq!(escaped.get("store"), Some("\u{7}\t\\"));
    }

    #[test]
    fn other_lines_are_left_alone() {
        for line in ["no fields here", "=x", "push store=\"unterminated", "push Store=1", "push store=\"a\"b=1"] {
            assert_eq!(parse(line), None, "{line}");
        }
    }
}
