//! Compiling a scenario: parse the ES module once, keep its QuickJS bytecode,
//! and let every instance load the bytecode instead of parsing again.

use rquickjs::{CatchResultExt, CaughtError, Context, Module, Runtime, WriteOptions};

use crate::CompileError;

/// A compiled scenario module.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub name: String,
    pub bytecode: Vec<u8>,
}

/// Parsing needs memory proportional to the source; this bounds a hostile one.
const COMPILE_MEMORY_LIMIT: usize = 256 * 1024 * 1024;

pub(crate) fn compile(name: &str, source: &str) -> Result<Compiled, CompileError> {
    let internal = |message: String| CompileError {
        name: name.to_string(),
        message,
        line: 0,
        column: 0,
    };
    if name.contains('\0') {
        return Err(internal("the scenario name contains a NUL byte".into()));
    }
    let runtime = Runtime::new().map_err(|e| internal(format!("cannot create a runtime: {e}")))?;
    runtime.set_memory_limit(COMPILE_MEMORY_LIMIT);
    let context =
        Context::full(&runtime).map_err(|e| internal(format!("cannot create a context: {e}")))?;
    let bytecode = context.with(|ctx| {
        let module = Module::declare(ctx.clone(), name, source)
            .catch(&ctx)
            .map_err(|e| caught_to_error(name, source, e))?;
        module
            .write(WriteOptions {
                // Function.prototype.toString is not worth the memory in every instance.
                strip_source: true,
                ..WriteOptions::default()
            })
            .map_err(|e| internal(format!("cannot write bytecode: {e}")))
    })?;
    Ok(Compiled {
        name: name.to_string(),
        bytecode,
    })
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
        // Compiling resolves imports; helper modules are not supported yet.
        Some(module) => format!("cannot import {module}: scenarios cannot import modules yet"),
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
/// QuickJS names the module normalised (`./x.js` becomes `x.js`).
fn import_location(source: &str, message: &str) -> Option<(u32, u32)> {
    let module = message
        .strip_prefix("could not load module ")?
        .trim_matches('\'');
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

    #[test]
    fn valid_module_compiles_to_bytecode() {
        let compiled = compile("ok.js", "export default { async onCall(call) {} };").unwrap();
        assert_eq!(compiled.name, "ok.js");
        assert!(!compiled.bytecode.is_empty());
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let source = "export default {\n  async onCall(call) {\n    let x = ;\n  }\n};\n";
        let err = compile("bad.js", source).unwrap_err();
        assert_eq!(err.name, "bad.js");
        assert_eq!((err.line, err.column), (3, 13), "{err}");
        assert!(err.message.contains("unexpected token"), "{err}");
        assert!(err.to_string().starts_with("bad.js:3:13: "), "{err}");
    }

    #[test]
    fn import_error_points_at_the_import() {
        let source = "// helpers\nimport { x } from './helpers.js';\nexport default {};\n";
        let err = compile("imp.js", source).unwrap_err();
        assert_eq!((err.line, err.column), (2, 19), "{err}");
        assert!(err.message.contains("helpers.js"), "{err}");
    }

    #[test]
    fn stack_location_parsing() {
        assert_eq!(location_in_stack("    at a.js:3:13\n"), Some((3, 13)));
        assert_eq!(location_in_stack("    at f (a.js:10:2)\n"), Some((10, 2)));
        assert_eq!(location_in_stack(""), None);
    }
}
