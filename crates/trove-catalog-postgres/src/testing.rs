//! Throwaway databases for tests: `scripts/postgres-server` starts a server and exports its address as
//! `TROVE_TEST_POSTGRES`; each test makes databases of its own there.

use postgres::{Client, NoTls};

/// The variable that names the test server.
pub const SERVER_VARIABLE: &str = "TROVE_TEST_POSTGRES";

/// Whether tests run under CI, where a missing server is a failure rather than a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The test server's URL, or `None` (after saying so loudly) when there is none; under CI a missing server
/// panics.
pub fn server() -> Option<String> {
    match std::env::var(SERVER_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !under_ci(),
                "{SERVER_VARIABLE} is not set: under CI the PostgreSQL tests must run (scripts/test starts the server)"
            );
            eprintln!(
                "\n*** SKIPPED: no PostgreSQL server for this test ({SERVER_VARIABLE} is not set; scripts/test starts one) ***\n"
            );
            None
        }
    }
}

/// A new, empty database on the test server, by URL; `None` when there is no server (see [`server`]).
pub fn fresh_database() -> Option<String> {
    let server = server()?;
    let name = format!("trove_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin =
        Client::connect(&server, NoTls).unwrap_or_else(|e| panic!("cannot reach {SERVER_VARIABLE} ({server}): {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"))
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    let base = match server.rfind('/') {
        Some(i) if server[..i].contains("://") && server[..i].ends_with(|c: char| c != '/') => &server[..i],
        _ => server.trim_end_matches('/'),
    };
    let base = base.split('?').next().unwrap_or(base);
    Some(format!("{base}/{name}"))
}
