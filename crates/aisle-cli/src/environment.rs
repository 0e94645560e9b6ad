//! Warns about `AISLE_*` environment variables that nothing reads: a misspelt setting would
//! otherwise be ignored in silence.

use std::ffi::OsString;

use aisle_server::config::{ENV_VARS, nearest};

/// Variables read outside clap's arguments and the server's settings.
const OTHER_VARS: &[&str] = &[
    "AISLE_LOG",
    // Encryption at rest and pseudonyms (read by the store and `aisle keys`).
    aisle_store::keys::MASTER_KEY_VAR,
    aisle_store::keys::MASTER_KEY_FILE_VAR,
    aisle_store::keys::PASSPHRASE_VAR,
    "AISLE_NEW_MASTER_KEY",
    "AISLE_NEW_MASTER_KEY_FILE",
    "AISLE_NEW_PASSPHRASE",
    // Read by the test suite and the benchmarks' scripts.
    "AISLE_REQUIRE_DATA",
    "AISLE_SHARED_DATA",
    "AISLE_ENCODER",
    "AISLE_CRASH_CHILD_DIR",
    "AISLE_CRASH_START",
    "AISLE_FUZZ_EXAMPLES",
];

/// Every `AISLE_*` name aisle reads: the arguments' `env`, the server's settings, the rest.
pub fn known(command: &clap::Command) -> Vec<String> {
    fn walk(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut names: Vec<String> = OTHER_VARS.iter().map(|s| s.to_string()).collect();
    names.extend(ENV_VARS.iter().map(|(name, _)| name.to_string()));
    walk(command, &mut names);
    names.sort();
    names.dedup();
    names
}

/// The warnings for the unknown `AISLE_*` variables in `vars`, with the likely intended name.
pub fn unknown(
    command: &clap::Command,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<String> {
    let known = known(command);
    let mut warnings: Vec<String> = vars
        .into_iter()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("AISLE_") && !known.contains(name))
        .map(|name| match nearest(&name, known.iter().map(String::as_str)) {
            Some(hint) => format!("warning: {name} is not a variable aisle reads (did you mean {hint}?); it is ignored"),
            None => format!("warning: {name} is not a variable aisle reads; it is ignored (aisle reads: {})", known.join(", ")),
        })
        .collect();
    warnings.sort();
    warnings
}

/// Prints [`unknown`]'s warnings to stderr.
pub fn warn_unknown(command: &clap::Command, vars: impl IntoIterator<Item = (OsString, OsString)>) {
    for warning in unknown(command, vars) {
        eprintln!("{warning}");
    }
}

/// The pseudonymizer `AISLE_PSEUDONYM_SECRET` keys (at least 16 bytes), if it is set: user
/// ids are then stored as keyed pseudonyms at import, ingest and lookup alike.
pub fn pseudonymizer() -> anyhow::Result<Option<aisle_privacy::pseudonym::Pseudonymizer>> {
    match std::env::var("AISLE_PSEUDONYM_SECRET") {
        Ok(secret) if !secret.is_empty() => Ok(Some(
            aisle_privacy::pseudonym::Pseudonymizer::new(secret.as_bytes())
                .map_err(|e| anyhow::anyhow!("AISLE_PSEUDONYM_SECRET: {e}"))?,
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_variables_are_named_with_the_intended_one() {
        let command = <crate::commands::Cli as clap::CommandFactory>::command();
        let vars = [
            ("AISLE_DATA_DIR", "x"),
            ("AISLE_API_KEY", "x"),
            ("AISLE_LISTN", "x"),
            ("PATH", "x"),
        ]
        .map(|(n, v)| (OsString::from(n), OsString::from(v)));
        let warnings = unknown(&command, vars);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("AISLE_API_KEY ")
                && warnings[0].contains("did you mean AISLE_API_KEYS?"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("did you mean AISLE_LISTEN?"),
            "{warnings:?}"
        );
        assert!(known(&command).contains(&"AISLE_FORMAT".to_string()));
    }
}
