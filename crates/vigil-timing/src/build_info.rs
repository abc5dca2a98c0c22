//! The service name on every function metric and the `build_info` series,
//! resolved as autometrics resolves them, so that its dashboards' joins
//! (`* on (instance, job) group_left (version, commit) build_info`) and its
//! rules' `service_name` grouping read vigil's series the same way.

use std::sync::OnceLock;

/// The label naming the service on every function metric and on
/// `build_info`.
pub const SERVICE_NAME: &str = "service_name";

/// The info metric carrying the build's version, commit and branch (one
/// series per process, value 1).
pub const BUILD_INFO: &str = "build_info";

/// The version of the autometrics specification vigil's metrics follow
/// (the `autometrics_version` label of `build_info`).
pub const AUTOMETRICS_SPEC_VERSION: &str = "1.0.0";

/// The build a process runs: the labels of `build_info`.
///
/// [`build_info!`](crate::build_info!) captures them at compile time in the
/// calling crate, exactly as autometrics does; without it, vigil reads the
/// same variables from the process environment when `build_info` is first
/// needed.
///
/// ```
/// let info = vigil_timing::build_info!();
/// assert_eq!(info.package(), Some(env!("CARGO_PKG_NAME")));
/// assert_eq!(info.labels()[6], ("autometrics_version", "1.0.0"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    version: String,
    commit: String,
    branch: String,
    package: Option<String>,
    repository_url: String,
    repository_provider: String,
}

impl BuildInfo {
    /// A build with these labels; `package` is the crate name used as the
    /// service name when neither `AUTOMETRICS_SERVICE_NAME` nor
    /// `OTEL_SERVICE_NAME` is set. [`build_info!`](crate::build_info!)
    /// fills them from the calling crate's build environment.
    #[must_use]
    pub fn new(
        version: impl Into<String>,
        commit: impl Into<String>,
        branch: impl Into<String>,
        package: Option<&str>,
    ) -> Self {
        BuildInfo {
            version: version.into(),
            commit: commit.into(),
            branch: branch.into(),
            package: package.map(str::to_owned),
            repository_url: String::new(),
            repository_provider: String::new(),
        }
    }

    /// The repository the build comes from (`repository_url`), and its
    /// provider (`repository_provider`: `github`, `gitlab` or `bitbucket`
    /// when the address tells, else empty), unless
    /// `AUTOMETRICS_REPOSITORY_URL` / `AUTOMETRICS_REPOSITORY_PROVIDER`
    /// are set at run time, which win as in autometrics.
    #[must_use]
    pub fn repository(mut self, url: &str) -> Self {
        self.repository_url = url.to_owned();
        self
    }

    /// The build read from the process environment: `AUTOMETRICS_VERSION`,
    /// `AUTOMETRICS_COMMIT`, `AUTOMETRICS_BRANCH` (each empty when unset),
    /// no package name.
    #[must_use]
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        BuildInfo::new(
            var("AUTOMETRICS_VERSION"),
            var("AUTOMETRICS_COMMIT"),
            var("AUTOMETRICS_BRANCH"),
            None,
        )
    }

    /// Makes this the process's build: [`build_info`] returns it and the
    /// service name falls back to its package. Call it first thing in
    /// `main`: once either was read (the first call of an instrumented
    /// function reads the service name), the build is fixed and this
    /// returns `self` back.
    ///
    /// # Errors
    ///
    /// `self`, when the build or the service name was already read.
    pub fn install(self) -> Result<(), Box<BuildInfo>> {
        if SERVICE.get().is_some() {
            return Err(Box::new(self));
        }
        let mut installed = Some(self);
        let _ = BUILD.get_or_init(|| {
            let build = installed.take().unwrap_or_default();
            build.resolved()
        });
        match installed {
            Some(refused) => Err(Box::new(refused)),
            None => Ok(()),
        }
    }

    /// The `version` label.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The `commit` label.
    #[must_use]
    pub fn commit(&self) -> &str {
        &self.commit
    }

    /// The `branch` label.
    #[must_use]
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The crate name the service name falls back to, if known.
    #[must_use]
    pub fn package(&self) -> Option<&str> {
        self.package.as_deref()
    }

    /// The `repository_url` label.
    #[must_use]
    pub fn repository_url(&self) -> &str {
        &self.repository_url
    }

    /// The `repository_provider` label.
    #[must_use]
    pub fn repository_provider(&self) -> &str {
        &self.repository_provider
    }

    /// Every label of the `build_info` series, in autometrics' order:
    /// `commit`, `version`, `branch`, `service_name`, `repository_url`,
    /// `repository_provider`, `autometrics_version`.
    #[must_use]
    pub fn labels(&self) -> [(&'static str, &str); 7] {
        [
            ("commit", &self.commit),
            ("version", &self.version),
            ("branch", &self.branch),
            (SERVICE_NAME, service_name()),
            ("repository_url", &self.repository_url),
            ("repository_provider", &self.repository_provider),
            ("autometrics_version", AUTOMETRICS_SPEC_VERSION),
        ]
    }

    /// Applies the run-time repository variables and derives the provider.
    fn resolved(mut self) -> Self {
        if let Ok(url) = std::env::var("AUTOMETRICS_REPOSITORY_URL") {
            self.repository_url = url;
        }
        self.repository_provider = std::env::var("AUTOMETRICS_REPOSITORY_PROVIDER")
            .unwrap_or_else(|_| provider_of(&self.repository_url).to_owned());
        self
    }
}

/// The provider a repository address names, as autometrics derives it.
fn provider_of(url: &str) -> &'static str {
    let url = url.to_lowercase();
    if url.contains("github.com") {
        "github"
    } else if url.contains("gitlab.com") {
        "gitlab"
    } else if url.contains("bitbucket.org") {
        "bitbucket"
    } else {
        ""
    }
}

static BUILD: OnceLock<BuildInfo> = OnceLock::new();
static SERVICE: OnceLock<String> = OnceLock::new();

/// The process's build: the one [`install`](BuildInfo::install)ed, else
/// [`BuildInfo::from_env`].
pub fn build_info() -> &'static BuildInfo {
    BUILD.get_or_init(|| BuildInfo::from_env().resolved())
}

/// The `service_name` label of every function metric and of `build_info`,
/// resolved once per process in autometrics' order:
/// `AUTOMETRICS_SERVICE_NAME`, then `OTEL_SERVICE_NAME` (both at run time),
/// then the package of the installed [`BuildInfo`]
/// ([`build_info!`](crate::build_info!): the crate's `CARGO_PKG_NAME`),
/// then the name of the running executable (a Cargo binary is named after
/// its package; the hash Cargo adds to test binaries is left out).
pub fn service_name() -> &'static str {
    SERVICE.get_or_init(|| {
        let set = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        set("AUTOMETRICS_SERVICE_NAME")
            .or_else(|| set("OTEL_SERVICE_NAME"))
            .or_else(|| build_info().package().map(str::to_owned))
            .or_else(executable_name)
            .unwrap_or_else(|| "unknown_service".to_owned())
    })
}

/// The running executable's file name without extension, and without the
/// `-<16 hex digits>` Cargo appends to the binaries it builds under
/// `target/*/deps` (tests, benches).
fn executable_name() -> Option<String> {
    let path = std::env::current_exe().ok()?;
    Some(package_of_binary(&path.file_stem()?.to_string_lossy()).to_owned())
}

/// `stem` without a trailing `-<16 lowercase hex digits>`.
fn package_of_binary(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((package, hash))
            if !package.is_empty()
                && hash.len() == 16
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            package
        }
        _ => stem,
    }
}

/// The build of the calling crate, captured at compile time as autometrics
/// captures it: `version` from `AUTOMETRICS_VERSION`, else
/// `CARGO_PKG_VERSION`; `commit` from `AUTOMETRICS_COMMIT`, else
/// `VERGEN_GIT_SHA`; `branch` from `AUTOMETRICS_BRANCH`, else
/// `VERGEN_GIT_BRANCH` (empty when unset); the package `CARGO_PKG_NAME`
/// and the repository `CARGO_PKG_REPOSITORY`. Install it first thing in
/// `main`:
///
/// ```
/// vigil_timing::build_info!().install().expect("nothing was timed yet");
/// assert_eq!(vigil_timing::build_info().package(), Some(env!("CARGO_PKG_NAME")));
/// // Without AUTOMETRICS_SERVICE_NAME or OTEL_SERVICE_NAME, the package
/// // names the service.
/// # if std::env::var_os("AUTOMETRICS_SERVICE_NAME").is_none()
/// #     && std::env::var_os("OTEL_SERVICE_NAME").is_none() {
/// assert_eq!(vigil_timing::service_name(), env!("CARGO_PKG_NAME"));
/// # }
/// ```
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::BuildInfo::new(
            ::core::option_env!("AUTOMETRICS_VERSION")
                .or(::core::option_env!("CARGO_PKG_VERSION"))
                .unwrap_or_default(),
            ::core::option_env!("AUTOMETRICS_COMMIT")
                .or(::core::option_env!("VERGEN_GIT_SHA"))
                .unwrap_or_default(),
            ::core::option_env!("AUTOMETRICS_BRANCH")
                .or(::core::option_env!("VERGEN_GIT_BRANCH"))
                .unwrap_or_default(),
            ::core::option_env!("CARGO_PKG_NAME"),
        )
        .repository(::core::option_env!("CARGO_PKG_REPOSITORY").unwrap_or_default())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_derived_from_the_address() {
        assert_eq!(provider_of("https://github.com/o/r"), "github");
        assert_eq!(provider_of("https://GitLab.com/o/r"), "gitlab");
        assert_eq!(provider_of("https://bitbucket.org/o/r"), "bitbucket");
        assert_eq!(provider_of("https://example.com/o/r"), "");
        assert_eq!(provider_of(""), "");
    }

    #[test]
    fn cargo_hashes_are_left_out_of_binary_names() {
        assert_eq!(package_of_binary("timer-3b369d831f42b51d"), "timer");
        assert_eq!(
            package_of_binary("my-service-3b369d831f42b51d"),
            "my-service"
        );
        assert_eq!(package_of_binary("my-service"), "my-service");
        assert_eq!(
            package_of_binary("svc-3B369D831F42B51D"),
            "svc-3B369D831F42B51D"
        );
        assert_eq!(package_of_binary("-3b369d831f42b51d"), "-3b369d831f42b51d");
    }
}
