//! Redaction of credentials in text that comes from outside (a registry's error body, a token
//! server's answer, a credential helper's message, the Docker engine's): every such text goes
//! through [`redact`] before it enters an [`Error`](crate::Error) or a log line, so a server
//! that echoes the `Authorization` header cannot make zeroimage print a secret.

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// `text` with credential-looking values replaced by `<redacted>`:
/// - the value after an HTTP auth scheme (`Basic …`, `Bearer …`);
/// - the value of a token, password or secret field (`"token": "…"`, `password=…`);
/// - each of `secrets` (the password or token in use) wherever it appears.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        // Very short "secrets" would redact ordinary words; those are caught by the rules below.
        if secret.len() >= 4 {
            out = out.replace(secret, REDACTED);
        }
    }
    let out = redact_after(&out, &["basic", "bearer"], is_scheme_gap);
    redact_after(
        &out,
        &["access_token", "refresh_token", "identitytoken", "id_token", "token", "password", "secret", "auth"],
        is_field_gap,
    )
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '+' | '/' | '=' | '-' | '%' | ':')
}

/// `Basic  ` (the scheme, then whitespace).
fn is_scheme_gap(gap: &str) -> bool {
    !gap.is_empty() && gap.chars().all(char::is_whitespace)
}

/// `": "`, `=`, `" : "` (a JSON key or a form field, then its value).
fn is_field_gap(gap: &str) -> bool {
    let trimmed: String = gap.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(trimmed.as_str(), ":" | "=" | "\":" | "\":\"" | ":\"" | "=\"" | "\"=\"" | "\"=")
}

/// Replace the token that follows any of `words` (case-insensitive, at a word start) and a
/// gap accepted by `gap_ok`.
fn redact_after(text: &str, words: &[&str], gap_ok: fn(&str) -> bool) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        let at_word_start =
            i == 0 || !text[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let word = if at_word_start { words.iter().find(|w| lower[i..].starts_with(**w)) } else { None };
        let Some(word) = word else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let after_word = i + word.len();
        let gap_len = text[after_word..]
            .char_indices()
            .find(|(_, c)| !(c.is_whitespace() || matches!(c, ':' | '=' | '"')))
            .map_or(text.len() - after_word, |(n, _)| n);
        let value_start = after_word + gap_len;
        let value_len = text[value_start..]
            .char_indices()
            .find(|(_, c)| !is_token_char(*c))
            .map_or(text.len() - value_start, |(n, _)| n);
        let value = &text[value_start..value_start + value_len];
        let gap = &text[after_word..value_start];
        // `Bearer realm="…"` is a challenge, not a credential: a value that is a parameter
        // name (ends with `=` and a quote follows) is left alone.
        let is_parameter = value.ends_with('=') && text[value_start + value_len..].starts_with('"');
        if value_len > 0 && gap_ok(gap) && !is_parameter && value != REDACTED {
            out.push_str(&text[copied..value_start]);
            out.push_str(REDACTED);
            copied = value_start + value_len;
            i = copied;
        } else {
            i = after_word;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_keeps_the_rest() {
        let cases = [
            ("Authorization: Basic dXNlcjpodW50ZXIy", "Authorization: Basic <redacted>"),
            ("authorization: bearer eyJhbGciOi.x-y_z==; next", "authorization: bearer <redacted>; next"),
            ("BEARER\tabc", "BEARER\t<redacted>"),
            (r#"{"token":"abc.def","expires_in":60}"#, r#"{"token":"<redacted>","expires_in":60}"#),
            (r#"{"access_token": "xyz"}"#, r#"{"access_token": "<redacted>"}"#),
            (
                "grant_type=refresh_token&refresh_token=r3fr3sh&client_id=z",
                "grant_type=refresh_token&refresh_token=<redacted>&client_id=z",
            ),
            ("password=hunter2 rest", "password=<redacted> rest"),
            // Not credentials: left as they are.
            (
                r#"Bearer realm="https://auth.example/token",service="r""#,
                r#"Bearer realm="https://auth.example/token",service="r""#,
            ),
            ("basically fine", "basically fine"),
            // Any word after a scheme name counts: redacting too much is the safe side.
            ("a bearer of news", "a bearer <redacted> news"),
            ("blob unknown to registry", "blob unknown to registry"),
            ("tokens expire", "tokens expire"),
            ("", ""),
            ("ünïcödé Basic ✓", "ünïcödé Basic ✓"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input, &[]), want, "{input}");
        }
        assert_eq!(redact("user me with s3cr3t-pw seen", &["s3cr3t-pw"]), "user me with <redacted> seen");
        assert_eq!(redact("a b", &["", "a"]), "a b", "empty and tiny secrets redact nothing");
    }
}
