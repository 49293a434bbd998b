//! "Did you mean …": the nearest word of a closed vocabulary, for errors that should not leave
//! a user guessing (a policy verb, a filter key, a Wireshark habit).

/// The word of `valid` closest to `given` (ignoring case), if it is close enough to be a typo:
/// at most a third of the longer word's letters differ.
pub fn nearest<'a>(given: &str, valid: &[&'a str]) -> Option<&'a str> {
    let g = given.to_ascii_lowercase();
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(&g, &v.to_ascii_lowercase()), *v))
        .filter(|(d, v)| *d > 0 && *d * 3 <= g.chars().count().max(v.chars().count()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// `" — did you mean X?"` when a valid word is near `given`, else nothing.
pub fn did_you_mean(given: &str, valid: &[&str]) -> String {
    nearest(given, valid).map(|v| format!(" — did you mean {v}?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transposition_or_a_wrong_letter_finds_its_word() {
        assert_eq!(nearest("X-ANONYMOUSTSL", &["STARTTLS", "X-ANONYMOUSTLS"]), Some("X-ANONYMOUSTLS"));
        assert_eq!(nearest("startls", &["STARTTLS", "X-ANONYMOUSTLS"]), Some("STARTTLS"));
        assert_eq!(nearest("plaintxt", &["plaintext", "tls", "any"]), Some("plaintext"));
    }

    #[test]
    fn a_word_far_from_every_valid_one_suggests_nothing() {
        assert_eq!(nearest("AUTH", &["STARTTLS", "X-ANONYMOUSTLS"]), None);
        assert_eq!(did_you_mean("banana", &["plaintext", "tls", "any"]), "");
    }
}
