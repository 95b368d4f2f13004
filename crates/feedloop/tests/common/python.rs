//! The Python interop scripts of `tests/python/`, run with the virtualenv's interpreter that
//! `scripts/test` prepares (`FEEDLOOP_TEST_PYTHON`: openai, the OpenTelemetry SDK and exporters,
//! OpenInference's instrumentation).

use serde_json::Value;

fn python() -> String {
    std::env::var("FEEDLOOP_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "FEEDLOOP_TEST_PYTHON is not set: run scripts/test, which prepares a virtualenv with \
             the openai, OpenTelemetry and OpenInference packages and sets it (or set it to such a \
             python yourself)"
        )
    })
}

/// Runs a script of `tests/python/` and returns its last line as JSON.
pub async fn run_script(script: &str, args: &[&str], env: Vec<(&str, String)>) -> Value {
    let python = python();
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&path)
            .args(&args)
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the script failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON last line ({e}):\n{stdout}\n{stderr}"))
}
