//! Loading a plugin: the file read, compiled once (cranelift) on the calling thread — the
//! control thread at start and reload, `bext check` — cached by content, and checked against
//! what the host provides before any core instantiates it.

use crate::host;
use crate::settings::Settings;
use bext_ir::{ConfigError, Loc, Plugin as IrPlugin};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use wasmtime::{Config, Engine, ExternType, Module, ValType};

pub use crate::budget::EPOCH_TICK;

/// Why a plugin cannot be loaded. Each kind is a diagnostic code of `bext check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// E0801: the file cannot be read.
    Missing,
    /// E0802: not a WebAssembly module, or a module without the proxy-wasm exports.
    NotProxyWasm,
    /// E0803: the module imports functions the host does not provide.
    MissingImports,
    /// E0804: the directive's settings are unusable.
    Settings,
    /// E0805: the module failed while starting (instantiation, `proxy_on_vm_start`,
    /// `proxy_on_configure` refused its configuration, a trap or its budget).
    Start,
}

impl LoadErrorKind {
    /// The diagnostic code `bext check` shows.
    pub fn code(self) -> &'static str {
        match self {
            LoadErrorKind::Missing => "E0801",
            LoadErrorKind::NotProxyWasm => "E0802",
            LoadErrorKind::MissingImports => "E0803",
            LoadErrorKind::Settings => "E0804",
            LoadErrorKind::Start => "E0805",
        }
    }
}

/// A plugin that cannot be loaded, at its directive.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub kind: LoadErrorKind,
    pub message: String,
    pub at: Loc,
}

impl LoadError {
    fn new(kind: LoadErrorKind, message: String, at: &Loc) -> LoadError {
        LoadError {
            kind,
            message,
            at: at.clone(),
        }
    }

    /// The located error the engine's compilers return.
    pub fn into_config_error(self) -> ConfigError {
        ConfigError::new(self.message, &self.at)
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", ConfigError::new(self.message.clone(), &self.at))
    }
}

impl std::error::Error for LoadError {}

/// Which proxy-wasm ABI a module was built against (its `proxy_abi_version_*` export).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    V0_2_0,
    V0_2_1,
}

/// A compiled plugin: the module and the settings of its directive. Shared by every core;
/// each core instantiates it in its own store ([`crate::pool`]).
#[derive(Debug)]
pub struct Plugin {
    pub(crate) module: Module,
    pub(crate) abi: Abi,
    pub(crate) settings: Settings,
    /// The file as configured, for logs.
    pub(crate) name: String,
    /// The same, shared with instances for their log lines and `plugin_name`.
    pub(crate) short_name: Arc<str>,
    /// The plugin configuration, shared with instances.
    pub(crate) config: Arc<[u8]>,
    pub(crate) path: PathBuf,
    /// The content hash the compiled module is cached under.
    pub(crate) hash: u64,
}

impl Plugin {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn abi(&self) -> Abi {
        self.abi
    }

    /// The file name as written in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash of the module's bytes.
    pub fn content_hash(&self) -> u64 {
        self.hash
    }

    /// Whether the module exports `name` (a callback it implements).
    pub fn exports(&self, name: &str) -> bool {
        self.module.get_export(name).is_some()
    }
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

/// The process's wasmtime engine: cranelift, epoch interruption for budgets (advanced by the
/// clocks of [`crate::budget`]).
pub fn engine() -> &'static Engine {
    ENGINE.get_or_init(|| {
        let mut c = Config::new();
        c.epoch_interruption(true);
        // An interrupted call traps and its instance is dropped.
        match Engine::new(&c) {
            Ok(e) => e,
            // The configuration above is fixed and valid for the host's architecture; should
            // the compiler not support it, fall back to wasmtime's defaults (no budgets would
            // then be enforced, so refuse to go on instead).
            Err(e) => panic!("wasmtime engine configuration refused: {e}"),
        }
    })
}

/// The engine, if a plugin has made it (what a clock's signal handler may touch).
pub(crate) fn started_engine() -> Option<&'static Engine> {
    ENGINE.get()
}

/// Compiled modules by content (hash, then the bytes compared), and loaded plugins by module
/// and settings, so a reload with an unchanged plugin gets the same [`Plugin`] (and its
/// instances on every core) back.
struct Cache {
    modules: Vec<(u64, Arc<[u8]>, Module)>,
    plugins: Vec<Weak<Plugin>>,
}

/// Compiled modules kept for reloads; beyond that, the oldest are compiled again if needed.
const CACHED_MODULES: usize = 32;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(Cache {
            modules: Vec::new(),
            plugins: Vec::new(),
        })
    })
}

/// The loaded plugins some configuration still holds whose module has `proxy_on_tick`: their
/// root contexts start on every core without waiting for a request (see `pool::tick`).
pub(crate) fn ticking_plugins() -> Vec<Arc<Plugin>> {
    let c = cache().lock().unwrap_or_else(PoisonError::into_inner);
    c.plugins
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|p| p.exports("proxy_on_tick"))
        .collect()
}

/// The file a `plugin` directive names: a relative path is read from the configuration
/// file's folder.
pub fn resolve(p: &IrPlugin) -> PathBuf {
    let path = Path::new(&p.path);
    if path.is_absolute() || p.at.file.is_empty() {
        return path.to_path_buf();
    }
    match Path::new(&p.at.file).parent() {
        Some(dir) => dir.join(path),
        None => path.to_path_buf(),
    }
}

/// Load `p`: read, compile (or take from the cache), check, and start it once on this thread
/// (`proxy_on_vm_start`, `proxy_on_configure`), so a plugin that refuses its configuration is
/// an error now rather than on every core at its first request.
pub fn load(p: &IrPlugin) -> Result<Arc<Plugin>, LoadError> {
    let settings =
        Settings::of(p).map_err(|e| LoadError::new(LoadErrorKind::Settings, e.message, &p.at))?;
    let path = resolve(p);
    let bytes = std::fs::read(&path).map_err(|e| {
        LoadError::new(
            LoadErrorKind::Missing,
            format!("cannot read plugin {}: {e}", path.display()),
            &p.at,
        )
    })?;
    let hash = content_hash(&bytes);
    let module = compile(hash, &bytes, &p.at)?;
    let abi = check(&module, &p.at)?;
    let plugin = {
        let mut c = cache().lock().unwrap_or_else(PoisonError::into_inner);
        c.plugins.retain(|w| w.strong_count() > 0);
        let same = c.plugins.iter().filter_map(Weak::upgrade).find(|q| {
            q.hash == hash && q.settings == settings && q.name == p.path && q.path == path
        });
        match same {
            Some(q) => q,
            None => {
                let q = Arc::new(Plugin {
                    short_name: Arc::from(p.path.as_str()),
                    config: Arc::from(settings.config.as_slice()),
                    module,
                    abi,
                    settings,
                    name: p.path.clone(),
                    path,
                    hash,
                });
                c.plugins.push(Arc::downgrade(&q));
                q
            }
        }
    };
    crate::vm::Vm::start(&plugin, &crate::core::CoreShared::detached()).map_err(|e| {
        LoadError::new(
            LoadErrorKind::Start,
            format!("plugin {}: {e}", p.path),
            &p.at,
        )
    })?;
    Ok(plugin)
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn compile(hash: u64, bytes: &[u8], at: &Loc) -> Result<Module, LoadError> {
    {
        let c = cache().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, m)) = c
            .modules
            .iter()
            .find(|(h, b, _)| *h == hash && **b == *bytes)
        {
            return Ok(m.clone());
        }
    }
    // Compiled outside the lock: a large module takes a while, and `bext check` may load
    // several.
    let module = Module::new(engine(), bytes).map_err(|e| {
        LoadError::new(
            LoadErrorKind::NotProxyWasm,
            format!("not a WebAssembly module: {e:#}"),
            at,
        )
    })?;
    let mut c = cache().lock().unwrap_or_else(PoisonError::into_inner);
    if c.modules.len() >= CACHED_MODULES {
        c.modules.remove(0);
    }
    c.modules.push((hash, Arc::from(bytes), module.clone()));
    Ok(module)
}

/// The exports a proxy-wasm module must have, and the types of those it may have.
fn check(module: &Module, at: &Loc) -> Result<Abi, LoadError> {
    let not = |m: String| Err(LoadError::new(LoadErrorKind::NotProxyWasm, m, at));
    let export = |name: &str| module.exports().find(|e| e.name() == name).map(|e| e.ty());
    let abi = if export("proxy_abi_version_0_2_1").is_some() {
        Abi::V0_2_1
    } else if export("proxy_abi_version_0_2_0").is_some() {
        Abi::V0_2_0
    } else {
        return not(
            "not a proxy-wasm module: it exports neither proxy_abi_version_0_2_1 nor \
             proxy_abi_version_0_2_0"
                .into(),
        );
    };
    match export("memory") {
        Some(ExternType::Memory(_)) => {}
        _ => return not("not a proxy-wasm module: it exports no memory".into()),
    }
    if export("proxy_on_memory_allocate").is_none() && export("malloc").is_none() {
        return not(
            "not a proxy-wasm module: it exports neither proxy_on_memory_allocate nor malloc"
                .into(),
        );
    }
    let mut wrong = Vec::new();
    for e in module.exports() {
        let Some(want) = crate::vm::export_signature(e.name()) else {
            continue;
        };
        let ok = match e.ty() {
            ExternType::Func(f) => {
                let params: Vec<ValType> = f.params().collect();
                let results: Vec<ValType> = f.results().collect();
                want.iter()
                    .any(|(p, r)| same_types(&params, p) && same_types(&results, r))
            }
            _ => false,
        };
        if !ok {
            wrong.push(e.name().to_string());
        }
    }
    if !wrong.is_empty() {
        return not(format!(
            "not a proxy-wasm module: exports of the wrong type: {}",
            wrong.join(", ")
        ));
    }
    if export("proxy_on_context_create").is_none() {
        return not("not a proxy-wasm module: it exports no proxy_on_context_create".into());
    }
    let mut missing = Vec::new();
    for i in module.imports() {
        let ok = match i.ty() {
            ExternType::Func(f) => {
                let params: Vec<ValType> = f.params().collect();
                let results: Vec<ValType> = f.results().collect();
                host::provides(i.module(), i.name())
                    .is_some_and(|(p, r)| same_types(&params, p) && same_types(&results, r))
            }
            _ => false,
        };
        if !ok {
            missing.push(format!("{}::{}", i.module(), i.name()));
        }
    }
    if !missing.is_empty() {
        return Err(LoadError::new(
            LoadErrorKind::MissingImports,
            format!(
                "the plugin imports what bext does not provide: {}",
                missing.join(", ")
            ),
            at,
        ));
    }
    Ok(abi)
}

/// Value types written as `i` (i32) and `I` (i64).
fn same_types(got: &[ValType], want: &str) -> bool {
    got.len() == want.len()
        && got.iter().zip(want.bytes()).all(|(g, w)| match w {
            b'i' => matches!(g, ValType::I32),
            b'I' => matches!(g, ValType::I64),
            _ => false,
        })
}
