//! Compiling a scenario: parse the ES module once (with the helper modules
//! of its application it imports), keep their QuickJS bytecode, and let
//! every instance load the bytecode instead of parsing again.
//!
//! Imports resolve only within the application: `import {x} from
//! "./helpers.js"` (or `"./helpers"`) names the application's `helpers.js`.
//! Anything else (other paths, packages, URLs) cannot be imported.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Module, Runtime, WriteOptions};

use crate::CompileError;

/// A compiled scenario module and the helper modules it imports.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub name: String,
    pub bytecode: Vec<u8>,
    /// Bytecode of the imported modules by module name (`helpers.js`).
    pub modules: Arc<HashMap<String, Vec<u8>>>,
}

/// Parsing needs memory proportional to the source; this bounds a hostile one.
const COMPILE_MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// `helpers` → `helpers.js`.
pub(crate) fn module_name(stem: &str) -> String {
    if stem.ends_with(".js") {
        stem.to_string()
    } else {
        format!("{stem}.js")
    }
}

/// Normalises an import specifier to a module name of the application, or
/// says why it cannot be imported.
pub(crate) fn resolve_specifier(
    specifier: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<String, String> {
    let Some(rest) = specifier.strip_prefix("./") else {
        return Err(format!(
            "cannot import {specifier:?}: scenarios import only modules of their own \
             application, as \"./name.js\""
        ));
    };
    let valid = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !rest.starts_with('.');
    if !valid {
        return Err(format!(
            "cannot import {specifier:?}: only modules of the application itself (\"./name.js\") \
             can be imported"
        ));
    }
    let name = module_name(rest);
    if known(&name) {
        Ok(name)
    } else {
        Err(format!(
            "cannot import {specifier:?}: the application has no module {name}"
        ))
    }
}

pub(crate) fn compile(
    name: &str,
    source: &str,
    modules: HashMap<String, String>,
) -> Result<Compiled, CompileError> {
    let internal = |message: String| CompileError {
        name: name.to_string(),
        message,
        line: 0,
        column: 0,
    };
    if name.contains('\0') || modules.keys().any(|k| k.contains('\0')) {
        return Err(internal("a module name contains a NUL byte".into()));
    }
    let runtime = Runtime::new().map_err(|e| internal(format!("cannot create a runtime: {e}")))?;
    runtime.set_memory_limit(COMPILE_MEMORY_LIMIT);
    let sources = Rc::new(SourceModules {
        main: name.to_string(),
        sources: modules,
        written: RefCell::new(HashMap::new()),
        failure: RefCell::new(None),
    });
    runtime.set_loader(
        SourceResolver(sources.clone()),
        SourceLoader(sources.clone()),
    );
    let context =
        Context::full(&runtime).map_err(|e| internal(format!("cannot create a context: {e}")))?;
    let bytecode = context.with(|ctx| {
        let declared = Module::declare(ctx.clone(), name, source).catch(&ctx);
        let module = match declared {
            Ok(module) => module,
            Err(caught) => {
                // An error inside an imported module is that module's.
                if let Some(error) = sources.failure.borrow_mut().take() {
                    return Err(error);
                }
                return Err(caught_to_error(name, source, caught));
            }
        };
        write(&module).map_err(|e| internal(format!("cannot write bytecode: {e}")))
    })?;
    let modules = sources.written.take();
    Ok(Compiled {
        name: name.to_string(),
        bytecode,
        modules: Arc::new(modules),
    })
}

fn write(module: &Module<'_>) -> rquickjs::Result<Vec<u8>> {
    module.write(WriteOptions {
        // Function.prototype.toString is not worth the memory in every instance.
        strip_source: true,
        ..WriteOptions::default()
    })
}

/// The application's modules while one scenario compiles.
struct SourceModules {
    main: String,
    /// Sources by module name (`helpers.js`).
    sources: HashMap<String, String>,
    /// Bytecode of the modules imported so far.
    written: RefCell<HashMap<String, Vec<u8>>>,
    /// The first compile error inside an imported module.
    failure: RefCell<Option<CompileError>>,
}

struct SourceResolver(Rc<SourceModules>);
struct SourceLoader(Rc<SourceModules>);

impl Resolver for SourceResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let modules = &self.0;
        let known = |n: &str| n == modules.main || modules.sources.contains_key(n);
        resolve_specifier(name, &known)
            .map_err(|message| rquickjs::Error::new_resolving_message(base, name, message))
    }
}

impl Loader for SourceLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        let modules = &self.0;
        let Some(source) = modules.sources.get(name) else {
            return Err(rquickjs::Error::new_loading(name));
        };
        let module = match Module::declare(ctx.clone(), name, source.as_str()).catch(ctx) {
            Ok(module) => module,
            Err(caught) => {
                let error = caught_to_error(name, source, caught);
                let message = error.to_string();
                modules.failure.borrow_mut().get_or_insert(error);
                return Err(rquickjs::Error::new_loading_message(name, message));
            }
        };
        let bytecode = write(&module)?;
        modules
            .written
            .borrow_mut()
            .insert(name.to_string(), bytecode);
        Ok(module)
    }
}

/// Loads the compiled helper modules into an instance.
pub(crate) struct BytecodeResolver {
    pub main: String,
    pub modules: Arc<HashMap<String, Vec<u8>>>,
}

pub(crate) struct BytecodeLoader(pub Arc<HashMap<String, Vec<u8>>>);

impl Resolver for BytecodeResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let known = |n: &str| n == self.main || self.modules.contains_key(n);
        resolve_specifier(name, &known)
            .map_err(|message| rquickjs::Error::new_resolving_message(base, name, message))
    }
}

impl Loader for BytecodeLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        let Some(bytecode) = self.0.get(name) else {
            return Err(rquickjs::Error::new_loading(name));
        };
        // SAFETY: the bytecode was written by `compile` with this same QuickJS.
        unsafe { Module::load(ctx.clone(), bytecode) }
    }
}

fn caught_to_error(name: &str, source: &str, caught: CaughtError<'_>) -> CompileError {
    let (message, stack) = match &caught {
        CaughtError::Exception(exception) => (
            exception
                .message()
                .unwrap_or_else(|| "syntax error".to_string()),
            exception.stack().unwrap_or_default(),
        ),
        CaughtError::Value(value) => (format!("{value:?}"), String::new()),
        CaughtError::Error(error) => (error.to_string(), String::new()),
    };
    let (line, column) = location_in_stack(&stack)
        .or_else(|| import_location(source, &message))
        .unwrap_or((1, 1));
    let message = match message.strip_prefix("could not load module ") {
        Some(module) => format!("cannot import {module}"),
        None => message,
    };
    CompileError {
        name: name.to_string(),
        message,
        line,
        column,
    }
}

/// QuickJS reports a syntax error's place as the stack line `    at name:LINE:COL`.
fn location_in_stack(stack: &str) -> Option<(u32, u32)> {
    let frame = stack
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("at "))?;
    let frame = frame.trim_end_matches(')');
    let mut parts = frame.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((line, column))
}

/// An unresolvable import has no position; point at the line importing it.
fn import_location(source: &str, message: &str) -> Option<(u32, u32)> {
    let quoted = message.split(['\'', '"']).nth(1)?;
    let module = quoted.trim_start_matches("./");
    source.lines().enumerate().find_map(|(index, text)| {
        if !text.contains("import") && !text.contains("from") {
            return None;
        }
        let at = text.find(module)?;
        // The specifier's opening quote.
        let column = text[..at].rfind(['\'', '"', '`']).unwrap_or(at);
        Some(((index + 1) as u32, (column + 1) as u32))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_modules() -> HashMap<String, String> {
        HashMap::new()
    }

    #[test]
    fn valid_module_compiles_to_bytecode() {
        let compiled = compile(
            "ok.js",
            "export default { async onCall(call) {} };",
            no_modules(),
        )
        .unwrap();
        assert_eq!(compiled.name, "ok.js");
        assert!(!compiled.bytecode.is_empty());
        assert!(compiled.modules.is_empty());
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let source = "export default {\n  async onCall(call) {\n    let x = ;\n  }\n};\n";
        let err = compile("bad.js", source, no_modules()).unwrap_err();
        assert_eq!(err.name, "bad.js");
        assert_eq!((err.line, err.column), (3, 13), "{err}");
        assert!(err.message.contains("unexpected token"), "{err}");
        assert!(err.to_string().starts_with("bad.js:3:13: "), "{err}");
    }

    #[test]
    fn a_missing_import_points_at_the_import() {
        let source = "// helpers\nimport { x } from './helpers.js';\nexport default {};\n";
        let err = compile("imp.js", source, no_modules()).unwrap_err();
        assert_eq!((err.line, err.column), (2, 19), "{err}");
        assert!(err.message.contains("no module helpers.js"), "{err}");
    }

    #[test]
    fn imports_resolve_within_the_application_only() {
        let modules: HashMap<String, String> = [
            ("helpers.js".to_string(), "export const x = 1;".to_string()),
            ("unused.js".to_string(), "export const y = 2;".to_string()),
        ]
        .into();
        let compiled = compile(
            "main.js",
            "import { x } from './helpers';\nexport default { x };",
            modules.clone(),
        )
        .unwrap();
        assert_eq!(
            compiled.modules.keys().collect::<Vec<_>>(),
            vec!["helpers.js"],
            "only what is imported is kept"
        );
        for bad in [
            "../etc/x.js",
            "/abs.js",
            "node:fs",
            "https://x/y.js",
            "helpers",
            "./a/b.js",
        ] {
            let source = format!("import {{ x }} from '{bad}';\nexport default {{}};");
            let err = compile("main.js", &source, modules.clone()).unwrap_err();
            assert!(err.message.contains("cannot import"), "{bad}: {err}");
            assert_eq!(err.line, 1, "{bad}: {err}");
        }
    }

    #[test]
    fn an_error_in_an_imported_module_names_that_module() {
        let modules: HashMap<String, String> = [(
            "helpers.js".to_string(),
            "export const x = 1;\nlet y = ;\n".to_string(),
        )]
        .into();
        let err = compile(
            "main.js",
            "import { x } from './helpers.js';\nexport default {};",
            modules,
        )
        .unwrap_err();
        assert_eq!(err.name, "helpers.js", "{err}");
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn stack_location_parsing() {
        assert_eq!(location_in_stack("    at a.js:3:13\n"), Some((3, 13)));
        assert_eq!(location_in_stack("    at f (a.js:10:2)\n"), Some((10, 2)));
        assert_eq!(location_in_stack(""), None);
    }
}
