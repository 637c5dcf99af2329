//! The catalog conformance suite (`trove_catalog::conformance`) on PostgreSQL. Each test thread gets a
//! database of its own; each catalog the suite asks for starts from an empty schema in it.

use std::cell::RefCell;

thread_local! {
    static DATABASE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn open() -> Option<trove_catalog::Catalog> {
    let url = DATABASE.with(|db| {
        let mut db = db.borrow_mut();
        if db.is_none() {
            *db = trove_catalog_postgres::testing::fresh_database();
        }
        db.clone()
    })?;
    let mut reset = postgres::Client::connect(&url, postgres::NoTls).expect("the test database");
    reset.batch_execute("DROP SCHEMA IF EXISTS trove CASCADE").expect("an empty schema");
    Some(trove_catalog_postgres::open(&url, None, "test-store").expect("a PostgreSQL catalog"))
}

trove_catalog::conformance_tests!(open);
