//! Alert rule files, YAML or TOML, through vigil-alert's loader: whatever
//! the text, loading returns a config or an error that names the file and
//! says what is wrong; a loaded config validates, builds an engine that
//! evaluates, and exports to Prometheus rules without panicking.

use std::time::{Duration, SystemTime};

use vigil_alert::config::{AlertConfig, Format};
use vigil_alert::{MemorySource, to_prometheus_rules};

/// The file name errors must carry.
const FILE: &str = "fuzz-rules";

/// Loads `bytes` (lossily decoded as UTF-8) as a rule file in `format`
/// and checks what comes out; `Err` says which expectation failed.
pub fn check(bytes: &[u8], format: Format) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    match AlertConfig::from_str_as(&text, FILE, format) {
        Ok(config) => check_loaded(config),
        Err(error) => check_error(&error, &text),
    }
}

fn check_error(error: &vigil_alert::ConfigError, text: &str) -> Result<(), String> {
    let message = error.to_string();
    if error.file() != FILE {
        return Err(format!(
            "the error names file {:?}: {message}",
            error.file()
        ));
    }
    let Some(rest) = message.strip_prefix(&format!("{FILE}: ")) else {
        return Err(format!("the error does not start with the file: {message}"));
    };
    if rest.trim().is_empty() {
        return Err(format!("the error says nothing: {message:?}"));
    }
    if let Some(line) = error.line() {
        let lines = line_count(text);
        if line == 0 || line > lines + 1 {
            return Err(format!(
                "the error points at line {line} of a {lines}-line text: {message}"
            ));
        }
    }
    if error.column() == Some(0) {
        return Err(format!("the error points at column 0: {message}"));
    }
    Ok(())
}

fn check_loaded(config: AlertConfig) -> Result<(), String> {
    if let Err(error) = config.validate()
        && error.to_string().trim().is_empty()
    {
        return Err("validation failed without a message".to_owned());
    }
    let export = to_prometheus_rules(config.rules());
    if !config.rules().is_empty() && export.yaml.is_empty() && export.warnings.is_empty() {
        return Err("rules exported to nothing, without a warning".to_owned());
    }
    match config.into_engine() {
        Ok(mut engine) => {
            let source = MemorySource::new();
            let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            for step in 0..3 {
                engine.evaluate(start + Duration::from_secs(60 * step), &source);
                engine.due_notifications(start + Duration::from_secs(60 * step));
            }
            Ok(())
        }
        Err(error) if error.to_string().trim().is_empty() => {
            Err("building the engine failed without a message".to_owned())
        }
        Err(_) => Ok(()),
    }
}

/// Lines as YAML counts them: a line feed, a carriage return and the pair
/// each end one (TOML allows only the first and the last).
fn line_count(text: &str) -> usize {
    let breaks =
        text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    breaks + 1
}
