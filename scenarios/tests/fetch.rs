//! fetch(): through the host, with scripted answers in the simulator.

mod common;

use common::*;
use switchboard_scenarios::host::FetchResponse;
use switchboard_scenarios::sim::{SimCall, SimEvent, SimHost};

async fn run_fetching(source: &str, setup: impl FnOnce(&SimHost)) -> std::sync::Arc<SimHost> {
    let host = SimHost::new();
    setup(&host);
    let call = SimCall::builder("call-1").build();
    let instance = host
        .start_call(&compile("fetch.js", source), call)
        .await
        .unwrap();
    closed(&instance).await;
    host
}

#[tokio::test(start_paused = true)]
async fn a_response_has_status_headers_text_and_json() {
    let source = r#"
export default {
  async onCall(call) {
    const r = await fetch('https://api.example.com/hours?day=mon', {
      method: 'post', headers: { 'Content-Type': 'application/json', 'X-Key': 'k' },
      body: JSON.stringify({ q: 1 }), timeoutMs: 5000,
    });
    const data = await r.json();
    console.log(`status ${r.status} ${r.ok} ${r.url} ${r.headers.get('CONTENT-TYPE')} ${r.headers.has('x-nope')} ${r.headers.get('x-nope')}`);
    console.log(`json ${data.open} ${await r.text()}`);
    const missing = await fetch('https://api.example.com/missing');
    console.log(`missing ${missing.status} ${missing.ok}`);
    try { await (await fetch('https://api.example.com/text')).json(); } catch (e) { console.log(`parse ${e.name}`); }
    await call.reject(486);
  },
};
"#;
    let host = run_fetching(source, |host| {
        host.respond_with(|request| {
            (request.url.ends_with("hours?day=mon")
                && request.method == "POST"
                && request.body.as_deref() == Some(br#"{"q":1}"#.as_slice())
                && request.headers.contains(&("X-Key".into(), "k".into()))
                && request.timeout == std::time::Duration::from_secs(5))
            .then(|| {
                Ok(FetchResponse {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: br#"{"open":true}"#.to_vec(),
                })
            })
        });
        host.respond("https://api.example.com/missing", 404, "no");
        host.respond("https://api.example.com/text", 200, "plain words");
    })
    .await;
    assert_eq!(
        line(&host, "status").message,
        "status 200 true https://api.example.com/hours?day=mon application/json false null"
    );
    assert_eq!(line(&host, "json").message, r#"json true {"open":true}"#);
    assert_eq!(line(&host, "missing").message, "missing 404 false");
    assert_eq!(line(&host, "parse").message, "parse SyntaxError");
    let timeline = host.timeline();
    assert!(timeline.saw(
        |e| matches!(&e.event, SimEvent::Fetched { method, outcome, .. }
        if method == "POST" && outcome.starts_with("200"))
    ));
}

#[tokio::test(start_paused = true)]
async fn hosts_that_are_not_allowed_and_timeouts_reject() {
    let source = r#"
export default {
  async onCall(call) {
    for (const url of ['https://evil.example.net/x', 'https://slow.example.com/x']) {
      try { await fetch(url, { timeoutMs: 2000 }); console.log('fetched'); }
      catch (e) { console.log(`failed ${e.name} ${e.code}`); }
    }
    await call.reject(486);
  },
};
"#;
    let host = run_fetching(source, |host| {
        host.respond("https://slow.example.com/", 200, "late");
        host.fetch_time(secs(10.0));
    })
    .await;
    let failures = host.logs_containing("failed FetchError");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].message, "failed FetchError NOT_ALLOWED");
    assert_eq!(failures[1].message, "failed FetchError TIMEOUT");
    assert_eq!(failures[1].at, secs(2.0));
}

#[tokio::test(start_paused = true)]
async fn bad_fetch_arguments_throw_type_errors() {
    let source = r#"
export default {
  async onCall(call) {
    for (const t of [
      () => fetch('ftp://x/y'), () => fetch(42), () => fetch('https://x', { method: 'BREW' }),
      () => fetch('https://x', { body: { a: 1 }, method: 'POST' }), () => fetch('https://x', { body: 'x' }),
      () => fetch('https://x', { headers: { Host: 'y' } }), () => fetch('https://x', { timeoutMs: 0 }),
    ]) {
      try { t(); console.log('accepted'); } catch (e) { console.log(`caught ${e.name}`); }
    }
    await call.reject(486);
  },
};
"#;
    let host = run_fetching(source, |_| {}).await;
    assert_eq!(
        host.logs_containing("caught TypeError").len(),
        7,
        "{:#?}",
        messages(&host.logs())
    );
}
