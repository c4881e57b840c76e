//! Scenarios importing modules of their own application.

mod common;

use common::*;
use switchboard_scenarios::sim::{SimCall, SimHost};
use switchboard_scenarios::Scenario;

const HELPERS: &str = r#"
import { greeting } from './words.js';
let calls = 0;
export function nextCaller() { calls += 1; return calls; }
export function greet(name) { return `${greeting}, ${name}`; }
"#;

const WORDS: &str = "export const greeting = 'Hello';\n";

const MAIN: &str = r#"
import { greet, nextCaller } from './helpers.js';
export default {
  async onCall(call) {
    await call.answer();
    await call.say(greet(`caller ${nextCaller()}`));
    await call.hangup();
  },
};
"#;

fn app_modules() -> Vec<(&'static str, &'static str)> {
    vec![
        ("helpers", HELPERS),
        ("words", WORDS),
        ("unrelated", "export const z = 0;"),
    ]
}

#[tokio::test(start_paused = true)]
async fn imported_modules_run_in_each_instance_with_their_own_state() {
    let scenario = Scenario::compile_with_modules("main.js", MAIN, app_modules()).unwrap();
    assert_eq!(scenario.imported_modules(), vec!["helpers.js", "words.js"]);
    let host = SimHost::new();
    for id in ["a", "b"] {
        let call = SimCall::builder(id).build();
        let instance = host.start_call(&scenario, call.clone()).await.unwrap();
        closed(&instance).await;
        // Module state belongs to the instance: each call is caller 1.
        assert_eq!(call.said(), vec!["Hello, caller 1"]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_module_that_throws_while_loading_fails_the_instance() {
    let modules = vec![(
        "helpers",
        "export const x = 1;\nthrow new Error('bad helper');\n",
    )];
    let source = "import { x } from './helpers';\nexport default { async onCall(call) { await call.answer(); } };";
    let scenario = Scenario::compile_with_modules("main.js", source, modules).unwrap();
    let host = SimHost::new();
    let call = SimCall::builder("c").build();
    let error = host.start_call(&scenario, call.clone()).await.unwrap_err();
    assert!(error.to_string().contains("bad helper"), "{error}");
    assert!(error.to_string().contains("helpers.js:2"), "{error}");
}

#[test]
fn nothing_outside_the_application_can_be_imported() {
    for specifier in [
        "../secret.js",
        "/etc/passwd",
        "std",
        "node:fs",
        "https://example.com/x.js",
    ] {
        let source = format!("import * as m from '{specifier}';\nexport default {{}};");
        let error = Scenario::compile_with_modules("main.js", &source, app_modules()).unwrap_err();
        assert!(
            error.message.contains("cannot import"),
            "{specifier}: {error}"
        );
        assert_eq!((error.name.as_str(), error.line), ("main.js", 1), "{error}");
    }
}

#[test]
fn a_syntax_error_in_a_helper_names_the_helper_and_line() {
    let modules = vec![("helpers", "export function ok() {}\n\nexport const = 3;\n")];
    let error =
        Scenario::compile_with_modules("main.js", "import { ok } from './helpers.js';", modules)
            .unwrap_err();
    assert_eq!(error.name, "helpers.js", "{error}");
    assert_eq!(error.line, 3, "{error}");
}
