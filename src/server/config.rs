//! How `ecny serve` is configured: a TOML file, `ECNY_*` environment variables and command-line
//! flags. Each source may set any setting; a flag beats the environment, the environment beats
//! the file, and the file beats the defaults.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data = "/var/lib/ecny"
//! log = "info,ecny=debug"
//! body_limit_bytes = 65536
//! auth_failures_per_minute_max = 20
//! client_timeout_ms = 10000
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use super::auth::AUTH_FAILURES_PER_MINUTE_DEFAULT;
use super::connections::Timeouts;
use super::{ServerConfig, LISTEN_DEFAULT, REQUEST_BODY_BYTES_MAX};

/// Names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "ECNY_CONFIG";
pub const LISTEN_ENV: &str = "ECNY_LISTEN";
pub const DATA_ENV: &str = "ECNY_DATA";
pub const LOG_ENV: &str = "ECNY_LOG";
pub const BODY_LIMIT_ENV: &str = "ECNY_BODY_LIMIT_BYTES";
pub const AUTH_FAILURES_ENV: &str = "ECNY_AUTH_FAILURES_PER_MINUTE_MAX";
pub const CLIENT_TIMEOUT_ENV: &str = "ECNY_CLIENT_TIMEOUT_MS";
/// Shorter client timeouts would cut off honest clients on a slow mobile network.
const CLIENT_TIMEOUT_MS_MIN: u64 = 100;
/// The conventional log filter variable, read when `ECNY_LOG` is not set.
pub const RUST_LOG_ENV: &str = "RUST_LOG";

pub const DATA_DEFAULT: &str = "ecny-data";
pub const LOG_DEFAULT: &str = "info";
/// Smallest body limit accepted: below it a signed payment no longer fits.
pub const BODY_LIMIT_BYTES_MIN: usize = 1024;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
}

/// The settings one source gives; what it leaves unset falls through to the next source.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// Address and port to listen on, e.g. "127.0.0.1:8080"; port 0 picks a free one.
    pub listen: Option<String>,
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Log filter in `RUST_LOG` syntax, e.g. "info,ecny=debug".
    pub log: Option<String>,
    #[serde(default, deserialize_with = "body_limit_from_file")]
    pub body_limit_bytes: Option<usize>,
    #[serde(default, deserialize_with = "auth_failures_from_file")]
    pub auth_failures_per_minute_max: Option<u32>,
    /// How long a client may take over a request's headers (or stay idle between requests on
    /// one connection), and over its body.
    #[serde(default, deserialize_with = "client_timeout_from_file")]
    pub client_timeout_ms: Option<u64>,
    /// Where the winners' SMS notices are POSTed, an `http://` URL.
    pub sms_gateway: Option<String>,
}

/// What `ecny serve` runs with once every source is merged.
#[derive(Debug)]
pub struct ServeConfig {
    pub server: ServerConfig,
    pub log_filter: String,
}

pub fn parse_body_limit_bytes(text: &str) -> Result<usize, String> {
    let bytes: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count"))?;
    check_body_limit(bytes)
}

pub fn parse_auth_failures_per_minute(text: &str) -> Result<u32, String> {
    let failures: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a count"))?;
    check_auth_failures(failures)
}

pub fn parse_client_timeout_ms(text: &str) -> Result<u64, String> {
    let ms: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))?;
    check_client_timeout(ms)
}

fn check_client_timeout(ms: u64) -> Result<u64, String> {
    if ms < CLIENT_TIMEOUT_MS_MIN {
        return Err(format!(
            "a client timeout of {ms} ms is below {CLIENT_TIMEOUT_MS_MIN} ms: honest clients on a slow network would be cut off"
        ));
    }
    Ok(ms)
}

fn client_timeout_from_file<'de, D: Deserializer<'de>>(input: D) -> Result<Option<u64>, D::Error> {
    check_client_timeout(u64::deserialize(input)?)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn check_body_limit(bytes: usize) -> Result<usize, String> {
    if bytes < BODY_LIMIT_BYTES_MIN {
        return Err(format!(
            "a body limit of {bytes} bytes is below {BODY_LIMIT_BYTES_MIN}: a signed payment would not fit"
        ));
    }
    Ok(bytes)
}

fn check_auth_failures(failures: u32) -> Result<u32, String> {
    if failures == 0 {
        return Err(
            "at least 1 wrong token a minute must be allowed (a typo is not an attack)".into(),
        );
    }
    Ok(failures)
}

fn body_limit_from_file<'de, D: Deserializer<'de>>(input: D) -> Result<Option<usize>, D::Error> {
    check_body_limit(usize::deserialize(input)?)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn auth_failures_from_file<'de, D: Deserializer<'de>>(input: D) -> Result<Option<u32>, D::Error> {
    check_auth_failures(u32::deserialize(input)?)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl ServeSettings {
    /// Reads a TOML config file; an error names the file, the line and the column.
    pub fn from_file(path: &Path) -> Result<ServeSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            let (line, column) = line_and_column(&text, offset);
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: error.message().trim_end().to_string(),
            }
        })
    }

    /// Reads `ECNY_*` variables through `lookup` (the process environment in the binary).
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<ServeSettings, ConfigError> {
        fn parsed<T>(
            lookup: &dyn Fn(&str) -> Option<String>,
            name: &'static str,
            parse: fn(&str) -> Result<T, String>,
        ) -> Result<Option<T>, ConfigError> {
            lookup(name)
                .map(|value| {
                    parse(&value).map_err(|message| ConfigError::Env {
                        name,
                        value,
                        message,
                    })
                })
                .transpose()
        }
        Ok(ServeSettings {
            listen: lookup(LISTEN_ENV),
            data: lookup(DATA_ENV).map(PathBuf::from),
            log: lookup(LOG_ENV).or_else(|| lookup(RUST_LOG_ENV)),
            body_limit_bytes: parsed(lookup, BODY_LIMIT_ENV, parse_body_limit_bytes)?,
            auth_failures_per_minute_max: parsed(
                lookup,
                AUTH_FAILURES_ENV,
                parse_auth_failures_per_minute,
            )?,
            client_timeout_ms: parsed(lookup, CLIENT_TIMEOUT_ENV, parse_client_timeout_ms)?,
            sms_gateway: lookup("ECNY_SMS_GATEWAY"),
        })
    }

    /// These settings, with what they leave unset taken from `fallback`.
    pub fn or(self, fallback: ServeSettings) -> ServeSettings {
        ServeSettings {
            listen: self.listen.or(fallback.listen),
            data: self.data.or(fallback.data),
            log: self.log.or(fallback.log),
            body_limit_bytes: self.body_limit_bytes.or(fallback.body_limit_bytes),
            auth_failures_per_minute_max: self
                .auth_failures_per_minute_max
                .or(fallback.auth_failures_per_minute_max),
            client_timeout_ms: self.client_timeout_ms.or(fallback.client_timeout_ms),
            sms_gateway: self.sms_gateway.or(fallback.sms_gateway),
        }
    }
}

/// Merges flags, the environment (through `lookup`) and the config file named by `config_file`
/// or by `ECNY_CONFIG`, in that order of precedence, over the defaults.
pub fn resolve(
    flags: ServeSettings,
    config_file: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ServeConfig, ConfigError> {
    let env = ServeSettings::from_env(lookup)?;
    let file_path = config_file
        .map(Path::to_path_buf)
        .or_else(|| lookup(CONFIG_ENV).map(PathBuf::from));
    let file = match file_path {
        Some(path) => ServeSettings::from_file(&path)?,
        None => ServeSettings::default(),
    };
    let merged = flags.or(env).or(file);
    Ok(ServeConfig {
        server: ServerConfig {
            data: merged.data.unwrap_or_else(|| PathBuf::from(DATA_DEFAULT)),
            listen: merged.listen.unwrap_or_else(|| LISTEN_DEFAULT.to_string()),
            stop_on_ctrl_c: true,
            body_limit_bytes: merged.body_limit_bytes.unwrap_or(REQUEST_BODY_BYTES_MAX),
            auth_failures_per_minute_max: merged
                .auth_failures_per_minute_max
                .unwrap_or(AUTH_FAILURES_PER_MINUTE_DEFAULT),
            timeouts: merged
                .client_timeout_ms
                .map_or_else(Timeouts::default, |ms| Timeouts {
                    header_read_ms: ms,
                    body_read_ms: ms,
                }),
            clock: crate::time::SharedClock::System,
            sms_gateway: merged.sms_gateway,
        },
        log_filter: merged.log.unwrap_or_else(|| LOG_DEFAULT.to_string()),
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecny.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        let config = resolve(ServeSettings::default(), None, &env(&[])).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.server.data, PathBuf::from("ecny-data"));
        assert_eq!(config.server.body_limit_bytes, REQUEST_BODY_BYTES_MAX);
        assert_eq!(
            config.server.auth_failures_per_minute_max,
            AUTH_FAILURES_PER_MINUTE_DEFAULT
        );
        assert_eq!(config.server.timeouts, Timeouts::default());
        assert_eq!(config.log_filter, "info");
    }

    #[test]
    fn the_client_timeout_covers_headers_idle_and_bodies_and_refuses_tiny_values() {
        let (_dir, path) = config_file("client_timeout_ms = 2500\n");
        let from_file = resolve(ServeSettings::default(), Some(&path), &env(&[])).unwrap();
        let expected = Timeouts {
            header_read_ms: 2500,
            body_read_ms: 2500,
        };
        assert_eq!(from_file.server.timeouts, expected);
        let from_env = resolve(
            ServeSettings::default(),
            Some(&path),
            &env(&[(CLIENT_TIMEOUT_ENV, "700")]),
        )
        .unwrap();
        assert_eq!(from_env.server.timeouts.header_read_ms, 700);
        let error = resolve(
            ServeSettings::default(),
            None,
            &env(&[(CLIENT_TIMEOUT_ENV, "5")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("below 100 ms"), "{error}");
        let (_dir, tiny) = config_file("client_timeout_ms = 0\n");
        let error = resolve(ServeSettings::default(), Some(&tiny), &env(&[])).unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let (_dir, path) = config_file(
            "listen = \"0.0.0.0:9000\"\ndata = \"/srv/file\"\nlog = \"warn\"\n\
             body_limit_bytes = 4096\nauth_failures_per_minute_max = 3\n",
        );
        let only_file = resolve(ServeSettings::default(), Some(&path), &env(&[])).unwrap();
        assert_eq!(only_file.server.listen, "0.0.0.0:9000");
        assert_eq!(only_file.server.data, PathBuf::from("/srv/file"));
        assert_eq!(only_file.log_filter, "warn");
        assert_eq!(only_file.server.body_limit_bytes, 4096);
        assert_eq!(only_file.server.auth_failures_per_minute_max, 3);

        let environment = env(&[
            (LISTEN_ENV, "127.0.0.1:9001"),
            (DATA_ENV, "/srv/env"),
            (BODY_LIMIT_ENV, "8192"),
        ]);
        let file_and_env = resolve(ServeSettings::default(), Some(&path), &environment).unwrap();
        assert_eq!(file_and_env.server.listen, "127.0.0.1:9001");
        assert_eq!(file_and_env.server.data, PathBuf::from("/srv/env"));
        assert_eq!(file_and_env.server.body_limit_bytes, 8192);
        // What the environment leaves unset still comes from the file.
        assert_eq!(file_and_env.log_filter, "warn");
        assert_eq!(file_and_env.server.auth_failures_per_minute_max, 3);

        let flags = ServeSettings {
            listen: Some("127.0.0.1:0".into()),
            auth_failures_per_minute_max: Some(7),
            ..ServeSettings::default()
        };
        let all = resolve(flags, Some(&path), &environment).unwrap();
        assert_eq!(all.server.listen, "127.0.0.1:0");
        assert_eq!(all.server.auth_failures_per_minute_max, 7);
        assert_eq!(all.server.data, PathBuf::from("/srv/env"));
        assert_eq!(all.log_filter, "warn");
    }

    #[test]
    fn the_config_file_may_be_named_by_the_environment_and_the_flag_wins() {
        let (_dir, from_env) = config_file("listen = \"127.0.0.1:7001\"\n");
        let (_other, from_flag) = config_file("listen = \"127.0.0.1:7002\"\n");
        let environment = env(&[(CONFIG_ENV, from_env.to_str().unwrap())]);
        let named_by_env = resolve(ServeSettings::default(), None, &environment).unwrap();
        assert_eq!(named_by_env.server.listen, "127.0.0.1:7001");
        let named_by_flag =
            resolve(ServeSettings::default(), Some(&from_flag), &environment).unwrap();
        assert_eq!(named_by_flag.server.listen, "127.0.0.1:7002");
    }

    #[test]
    fn ecny_log_beats_rust_log() {
        let both = env(&[(LOG_ENV, "debug"), (RUST_LOG_ENV, "trace")]);
        let config = resolve(ServeSettings::default(), None, &both).unwrap();
        assert_eq!(config.log_filter, "debug");
        let conventional = env(&[(RUST_LOG_ENV, "trace")]);
        let config = resolve(ServeSettings::default(), None, &conventional).unwrap();
        assert_eq!(config.log_filter, "trace");
    }

    #[test]
    fn a_malformed_config_file_is_named_with_its_line() {
        let (_dir, path) = config_file("listen = \"127.0.0.1:8080\"\ndata = /srv/ecny\n");
        let error = resolve(ServeSettings::default(), Some(&path), &env(&[])).unwrap_err();
        let ConfigError::Parse { line, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(*line, 2);
        let text = error.to_string();
        assert!(text.contains(path.to_str().unwrap()), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_values_in_the_file_are_refused_with_their_line() {
        let cases = [
            ("listen = \"127.0.0.1:1\"\nport = 80\n", 2, "port"),
            ("\n\nbody_limit_bytes = \"big\"\n", 3, "invalid type"),
            ("body_limit_bytes = 10\n", 1, "below 1024"),
            (
                "log = \"info\"\nauth_failures_per_minute_max = 0\n",
                2,
                "at least 1",
            ),
        ];
        for (text, expected_line, expected_words) in cases {
            let (_dir, path) = config_file(text);
            let error = ServeSettings::from_file(&path).unwrap_err();
            let ConfigError::Parse { line, message, .. } = &error else {
                panic!("{error}")
            };
            assert_eq!(*line, expected_line, "{error}");
            assert!(message.contains(expected_words), "{error}");
        }
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let error = ServeSettings::from_file(Path::new("/nonexistent/ecny.toml")).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/ecny.toml"));
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let error = resolve(
            ServeSettings::default(),
            None,
            &env(&[(AUTH_FAILURES_ENV, "many")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains(AUTH_FAILURES_ENV), "{error}");
        let error = resolve(
            ServeSettings::default(),
            None,
            &env(&[(BODY_LIMIT_ENV, "12")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("below 1024"), "{error}");
    }
}
