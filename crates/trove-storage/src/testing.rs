//! A throwaway S3 endpoint for tests: `scripts/s3-server` starts SeaweedFS and exports its address and
//! credentials as `TROVE_TEST_S3_*`; each test works under a bucket prefix of its own.

/// The variable that names the test endpoint.
pub const ENDPOINT_VARIABLE: &str = "TROVE_TEST_S3_ENDPOINT";

/// Whether tests run under CI, where a missing server is a failure rather than a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A test location on the S3 server: a fresh prefix URL, and the environment a process needs to reach it
/// (the AWS variables, pointing at the loopback server). `None` (said loudly) when there is no server
/// outside CI; under CI a missing server panics.
pub fn s3_location() -> Option<(String, Vec<(String, String)>)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var(ENDPOINT_VARIABLE) else {
        assert!(
            !under_ci(),
            "{ENDPOINT_VARIABLE} is not set: under CI the S3 tests must run (scripts/test starts the server)"
        );
        eprintln!(
            "\n*** SKIPPED: no S3 server for this test ({ENDPOINT_VARIABLE} is not set; scripts/test starts one) ***\n"
        );
        return None;
    };
    let bucket = var("TROVE_TEST_S3_BUCKET").unwrap_or_else(|| "trove-test".into());
    let url = format!("s3://{bucket}/t-{}", uuid::Uuid::new_v4().simple());
    let env = vec![
        ("AWS_ENDPOINT_URL".to_string(), endpoint),
        ("AWS_ACCESS_KEY_ID".to_string(), var("TROVE_TEST_S3_KEY").unwrap_or_default()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), var("TROVE_TEST_S3_SECRET").unwrap_or_default()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
    ];
    Some((url, env))
}
