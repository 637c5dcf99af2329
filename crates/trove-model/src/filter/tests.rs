use proptest::prelude::*;
use serde_json::{Value, json};

use super::iso::parse_timestamp;
use super::*;

fn parse(s: &str) -> Filter {
    Filter::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse:\n{e}"))
}

fn meta(key: &str) -> Field {
    Field::Meta(key.to_string())
}

fn cmp(key: &str, op: CompareOp, value: impl Into<FilterValue>) -> Filter {
    Filter::Compare { field: meta(key), op, value: value.into() }
}

fn time(text: &str) -> i64 {
    parse_timestamp(text).unwrap()
}

// ---- the text language ----

#[test]
fn spec_examples_parse() {
    assert_eq!(
        parse(r#"material == "steel" and temperature >= 300 and temperature < 310"#),
        Filter::And(vec![
            cmp("material", CompareOp::Eq, "steel"),
            cmp("temperature", CompareOp::Ge, 300),
            cmp("temperature", CompareOp::Lt, 310),
        ])
    );
    assert_eq!(
        parse("sample.thickness_mm in [1, 2, 5] or not exists(calibrated)"),
        Filter::Or(vec![
            Filter::In {
                field: meta("sample.thickness_mm"),
                values: vec![1.into(), 2.into(), 5.into()],
                negated: false
            },
            Filter::Not(Box::new(Filter::Exists(meta("calibrated")))),
        ])
    );
    assert_eq!(
        parse(r#"@tag == "calibrated" and @kind == "measurement" and @path ~ "runs/2024/*""#),
        Filter::And(vec![
            Filter::tag("calibrated"),
            Filter::builtin(Builtin::Kind).eq("measurement"),
            Filter::path_glob("runs/2024/*"),
        ])
    );
}

#[test]
fn empty_and_blank_filters_match_everything() {
    assert_eq!(parse(""), Filter::True);
    assert_eq!(parse(" \t\n "), Filter::True);
}

#[test]
fn every_comparison_operator() {
    for (text, op) in [
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        ("<", CompareOp::Lt),
        ("<=", CompareOp::Le),
        (">", CompareOp::Gt),
        (">=", CompareOp::Ge),
    ] {
        assert_eq!(parse(&format!("x {text} 1")), cmp("x", op, 1));
        assert_eq!(parse(&format!("x{text}1")), cmp("x", op, 1), "without spaces");
    }
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let (a, b, c) = (cmp("a", CompareOp::Eq, 1), cmp("b", CompareOp::Eq, 1), cmp("c", CompareOp::Eq, 1));
    assert_eq!(
        parse("a == 1 or b == 1 and c == 1"),
        Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])])
    );
    assert_eq!(parse("not a == 1 and b == 1"), Filter::And(vec![Filter::Not(Box::new(a.clone())), b.clone()]));
    assert_eq!(
        parse("(a == 1 or b == 1) and c == 1"),
        Filter::And(vec![Filter::Or(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(parse("not (a == 1 or b == 1)"), Filter::Not(Box::new(Filter::Or(vec![a.clone(), b.clone()]))));
    assert_eq!(parse("not not a == 1"), Filter::Not(Box::new(Filter::Not(Box::new(a.clone())))));
    assert_eq!(parse("((a == 1))"), a);
}

#[test]
fn keywords_are_case_insensitive_and_whole_words() {
    assert_eq!(parse("a == 1 AND NOT b == 1 Or EXISTS(c)"), parse("a == 1 and not b == 1 or exists(c)"));
    assert_eq!(parse("x In [TRUE, False, NULL]"), parse("x in [true, false, null]"));
    assert_eq!(parse("x NOT IN [1]"), parse("x not in [1]"));
    // Words that merely start with a keyword are keys.
    assert_eq!(parse("android == 1"), cmp("android", CompareOp::Eq, 1));
    assert_eq!(parse("notes == 1 or order == 2").to_string(), "notes == 1 or order == 2");
}

#[test]
fn keys_bare_dotted_quoted_and_builtin() {
    assert_eq!(parse(r#""T (K)" > 4"#), cmp("T (K)", CompareOp::Gt, 4));
    assert_eq!(parse(r#"sample.'T (K)'.max > 4"#), cmp("sample.T (K).max", CompareOp::Gt, 4));
    assert_eq!(parse("x-y_2 == 1"), cmp("x-y_2", CompareOp::Eq, 1));
    assert_eq!(parse("température == 1"), cmp("température", CompareOp::Eq, 1));
    assert_eq!(parse("2theta == 1"), cmp("2theta", CompareOp::Eq, 1));
    assert_eq!(parse("true == 1"), cmp("true", CompareOp::Eq, 1), "true/false/null may be keys");
    for b in Builtin::ALL {
        assert_eq!(parse(&format!("exists(@{})", b.name())), Filter::Exists(Field::Builtin(b)));
        assert_eq!(parse(&format!("exists(@{})", b.name().to_uppercase())), Filter::Exists(Field::Builtin(b)));
    }
}

#[test]
fn values_numbers_strings_literals() {
    let value = |s: &str| match parse(&format!("x == {s}")) {
        Filter::Compare { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value("0"), FilterValue::Int(0));
    assert_eq!(value("-42"), FilterValue::Int(-42));
    assert_eq!(value("9223372036854775807"), FilterValue::Int(i64::MAX));
    assert_eq!(value("9223372036854775808"), FilterValue::UInt(1 << 63));
    assert_eq!(value("18446744073709551615"), FilterValue::UInt(u64::MAX));
    assert_eq!(value("9223372036854775808.0"), FilterValue::Float(9_223_372_036_854_775_808.0));
    assert_eq!(value("2.5"), FilterValue::Float(2.5));
    assert_eq!(value("-1e-3"), FilterValue::Float(-0.001));
    assert_eq!(value("1E+3"), FilterValue::Float(1000.0));
    assert_eq!(value("3.0"), FilterValue::Float(3.0));
    assert_eq!(value("true"), FilterValue::Bool(true));
    assert_eq!(value("false"), FilterValue::Bool(false));
    assert_eq!(value("null"), FilterValue::Null);
    assert_eq!(value(r#""steel""#), FilterValue::String("steel".into()));
    assert_eq!(value("'steel'"), FilterValue::String("steel".into()));
    assert_eq!(value(r#""a\"b\\c\'d\n\t\r\u{e9}""#), FilterValue::String("a\"b\\c'd\n\t\ré".into()));
    assert_eq!(value(r#"'it"s'"#), FilterValue::String("it\"s".into()));
    assert_eq!(value(r#""""#), FilterValue::String(String::new()));
}

#[test]
fn quoted_timestamps_are_times() {
    let value = |s: &str| match parse(&format!("@created >= {s}")) {
        Filter::Compare { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value(r#""2024-05-01""#), FilterValue::Time(time("2024-05-01T00:00:00Z")));
    assert_eq!(value(r#""2024-05-01T10:00:00Z""#), FilterValue::Time(time("2024-05-01T10:00:00Z")));
    assert_eq!(value(r#""2024-05-01T10:00:00.123+02:00""#), FilterValue::Time(time("2024-05-01T08:00:00.123Z")));
    // Not a valid date: a string.
    assert_eq!(value(r#""2024-02-30""#), FilterValue::String("2024-02-30".into()));
    // Glob patterns stay text.
    assert_eq!(parse(r#"d ~ "2024-05-01""#), Filter::Glob { field: meta("d"), pattern: "2024-05-01".into() });
}

#[test]
fn lists_in_and_not_in() {
    assert_eq!(parse("x in []"), Filter::In { field: meta("x"), values: vec![], negated: false });
    assert_eq!(
        parse("x not in [1,2,]"),
        Filter::In { field: meta("x"), values: vec![1.into(), 2.into()], negated: true }
    );
    assert_eq!(
        parse(r#"x in ["a", 1.5, true, null]"#),
        Filter::In {
            field: meta("x"),
            values: vec!["a".into(), 1.5.into(), true.into(), FilterValue::Null],
            negated: false
        }
    );
}

// ---- errors: one test per message ----

/// Asserts the message and column of a parse error, and that its display has the three-line shape.
fn assert_error(input: &str, column: usize, message: &str) {
    let err = Filter::parse(input).expect_err(input);
    assert_eq!((err.message.as_str(), err.column), (message, Some(column)), "for {input:?}");
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert_eq!(lines[0], format!("{message} at column {column}"));
    assert_eq!(lines[2], format!("{}^", " ".repeat(column + 1)));
}

macro_rules! error_tests {
    ($($name:ident: $input:expr, $column:expr, $message:expr;)*) => {
        $(#[test] fn $name() { assert_error($input, $column, $message); })*
    };
}

error_tests! {
    error_nothing_after_and: "a == 1 and", 11, "expected a condition after 'and'";
    error_no_condition_at_start: ") == 1", 1, "expected a condition, found ')'";
    error_keyword_after_or: "a == 1 or or b == 2", 11, "expected a condition after 'or', found 'or'";
    error_nothing_after_not: "not", 4, "expected a condition after 'not'";
    error_keyword_after_paren: "(and)", 2, "expected a condition after '(', found 'and'";
    error_in_as_key: "in == 1", 1, "expected a condition, found 'in'";
    error_unknown_builtin: "a == 1 and @foo == 1", 12,
        "unknown built-in field '@foo' (known: @project @path @kind @tag @created @updated @format @id @lineage)";
    error_at_without_name: "@ == 1", 2, "expected a built-in name after '@'";
    error_unterminated_string: r#"a == "steel"#, 6, "unterminated string: no closing quote";
    error_unterminated_after_backslash: r#"a == "x\"#, 8, "unterminated string: no closing quote";
    error_unknown_escape: r#"a == "x\q""#, 8, "unknown escape '\\q' in a string";
    error_bad_unicode_escape: r#"a == "\u{zz}""#, 7, "bad unicode escape: write '\\u{HEX}' with 1 to 6 hex digits";
    error_surrogate_escape: r#"a == "\u{d800}""#, 7, "bad unicode escape: write '\\u{HEX}' with 1 to 6 hex digits";
    error_bad_number: "a == 1.2.3", 6, "bad number '1.2.3'";
    error_bad_exponent: "a >= 1e", 6, "bad number '1e'";
    error_lone_minus: "a >= -", 6, "bad number '-'";
    error_unquoted_timestamp: "@created > 2024-05-01T10:00", 12,
        "bad number '2024-05-01T10:00' (timestamps need quotes: \"2024-05-01T10:00\")";
    error_number_out_of_range: "a < 1e999", 5, "number out of range '1e999'";
    error_missing_close_paren: "(a == 1 or b == 2", 18,
        "expected ')' to close the '(' at column 1";
    error_unmatched_close_paren: "a == 1)", 7, "unmatched ')'";
    error_in_without_list: "a in 1", 6, "expected a list '[...]' after 'in', found '1'";
    error_not_in_without_list: r#"a not in "x""#, 10, "expected a list '[...]' after 'not in', found '\"'";
    error_list_without_separator: "a in [1 2]", 9, "expected ',' or ']' in the list, found '2'";
    error_unclosed_list: "a in [1, 2", 11, "expected ',' or ']' in the list";
    error_list_without_value: "a in [,]", 7, "expected a value in the list, found ','";
    error_no_value_after_operator: "temperature >= ", 16, "expected a value after '>='";
    error_bare_word_value: "material == steel", 13,
        "expected a value after '==', found 'steel' (strings need quotes: \"steel\")";
    error_trailing_input: "a == 1 b == 2", 8, "expected 'and', 'or' or the end of the filter, found 'b'";
    error_empty_parentheses: "a == 1 and ( )", 12, "empty parentheses: expected a condition inside '( )'";
    error_single_equals: "a = 1", 3, "'=' is not an operator: write '==' to compare";
    error_bang: "a ! 1", 3, "'!' is not an operator: write '!=' or 'not'";
    error_no_operator: "a 1", 3, "expected an operator (== != < <= > >= ~ in, not in) after the key 'a', found '1'";
    error_no_operator_at_end: "\"T (K)\"", 8,
        "expected an operator (== != < <= > >= ~ in, not in) after the key \"T (K)\"";
    error_not_without_in: "a not [1]", 7, "expected 'in' after 'not', found '['";
    error_glob_needs_string: "a ~ 5", 5, "expected a quoted pattern after '~', found '5'";
    error_exists_without_paren: "exists a", 8, "expected '(' after 'exists', found 'a'";
    error_exists_without_key: "exists()", 8, "expected a key inside 'exists( )', found ')'";
    error_exists_unclosed: "exists(a b)", 10, "expected ')' after the key in 'exists(', found 'b'";
    error_dot_without_segment: "a. == 1", 3, "expected a key after '.', found ' '";
    error_empty_quoted_key: "a.\"\" == 1", 3, "a quoted key is empty";
}

#[test]
fn error_nesting_too_deep() {
    let input = format!("{}a == 1{}", "(".repeat(500), ")".repeat(500));
    let err = Filter::parse(&input).unwrap_err();
    assert_eq!(err.message, "the filter nests too deeply (more than 200 levels)");
    assert_eq!(err.column, Some(201));
    let nots = format!("{}a == 1", "not ".repeat(300));
    assert!(Filter::parse(&nots).unwrap_err().message.contains("too deeply"));
    // 150 levels are fine.
    assert!(Filter::parse(&format!("{}a == 1{}", "(".repeat(150), ")".repeat(150))).is_ok());
}

#[test]
fn error_display_echoes_the_filter_with_a_caret() {
    let err = Filter::parse("material == \"steel\" and temperature >= ").unwrap_err();
    let caret = format!("  {}^", " ".repeat(39));
    assert_eq!(
        err.to_string(),
        format!(
            "expected a value after '>=' at column 40\n  \
             material == \"steel\" and temperature >=\n{caret}"
        )
    );
    // A long filter shows a window around the column, marked with ellipses where it is cut.
    let long = format!("{} and b ==", (0..20_000).map(|i| format!("k{i} == {i}")).collect::<Vec<_>>().join(" and "));
    let err = Filter::parse(&long).unwrap_err();
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("expected a value after '==' at column"), "{}", lines[0]);
    assert!(lines[1].starts_with("  …") && lines[1].ends_with("and b =="), "{}", lines[1]);
    assert!(lines[1].chars().count() < 70, "{}", lines[1]);
    assert_eq!(lines[2].chars().count(), lines[1].chars().count() + 1);
    assert!(lines[2].ends_with('^'));
    let early = format!("a == {}", "1 and b == 2 and ".repeat(1000));
    let lines: Vec<String> =
        Filter::parse(&format!("== {early}")).unwrap_err().to_string().lines().map(String::from).collect();
    assert!(lines[1].ends_with('…') && !lines[1].starts_with("  …"), "{}", lines[1]);
    assert_eq!(lines[2], "  ^");
    // Columns count characters, not bytes; a newline in the input echoes as a space.
    let err = Filter::parse("é ==\n @x").unwrap_err();
    assert_eq!(err.column, Some(7));
    assert_eq!(err.to_string().lines().nth(1), Some("  é ==  @x"));
}

// ---- display ----

#[test]
fn display_is_canonical() {
    for (input, canonical) in [
        ("a==1 AND b!='x'", r#"a == 1 and b != "x""#),
        ("(a == 1 and b == 2) and c == 3", "(a == 1 and b == 2) and c == 3"),
        ("a == 1 and (b == 2 or c == 3)", "a == 1 and (b == 2 or c == 3)"),
        ("(a == 1 and b == 2) or c == 3", "a == 1 and b == 2 or c == 3"),
        ("(a == 1 or b == 2) or c == 3", "(a == 1 or b == 2) or c == 3"),
        ("not (a == 1 and b == 2)", "not (a == 1 and b == 2)"),
        ("NOT exists(\"T (K)\")", "not exists(\"T (K)\")"),
        ("x not in [1,2.0,'s',null,false]", r#"x not in [1, 2.0, "s", null, false]"#),
        ("x ~ 'runs/*'", r#"x ~ "runs/*""#),
        ("@created >= '2024-05-01T10:00:00+02:00'", r#"@created >= "2024-05-01T08:00:00.000000Z""#),
        ("\"and\" == 1 and 'a b'.c == 2", r#""and" == 1 and "a b.c" == 2"#),
        ("x == 1e300 or x == 1e-7 or x == 0.1", "x == 1e300 or x == 1e-7 or x == 0.1"),
        ("x == 'tab\there\u{1}'", r#"x == "tab\there\u{1}""#),
    ] {
        let f = parse(input);
        assert_eq!(f.to_string(), canonical, "for {input}");
        assert_eq!(parse(canonical), f, "for {canonical}");
    }
}

#[test]
fn display_of_filters_outside_normal_form_stays_equivalent() {
    let a = cmp("a", CompareOp::Eq, 1);
    assert_eq!(Filter::True.to_string(), "");
    assert_eq!(Filter::And(vec![Filter::True, a.clone()]).to_string(), "exists(@id) and a == 1");
    assert_eq!(Filter::Not(Box::new(Filter::True)).to_string(), "not exists(@id)");
    assert_eq!(Filter::Or(vec![]).to_string(), "not exists(@id)");
    assert_eq!(Filter::And(vec![]).to_string(), "exists(@id)");
    assert_eq!(Filter::Or(vec![a.clone()]).to_string(), "a == 1");
    assert!(!Filter::And(vec![a.clone()]).is_normal());
    assert!(!Filter::Not(Box::new(Filter::True)).is_normal());
    assert!(Filter::True.is_normal());
    assert!(Filter::Not(Box::new(a)).is_normal());
    assert!(!Filter::exists("").is_normal());
    assert!(!Filter::meta("x").eq(f64::NAN).is_normal());
    assert!(!Filter::meta("x").is_in([FilterValue::String("2024-05-01".into())]).is_normal());
    assert!(Filter::meta("x").is_in(["2024-05-01"]).is_normal());
}

// ---- the builder ----

#[test]
fn builder_builds_what_the_parser_builds() {
    let f = Filter::meta("material")
        .eq("steel")
        .and(Filter::meta("temperature").ge(300))
        .and(Filter::meta("temperature").lt(310.5));
    assert_eq!(f, parse("material == 'steel' and temperature >= 300 and temperature < 310.5"));

    let g = Filter::meta("sample.thickness_mm").is_in([1, 2, 5]) | !Filter::exists("calibrated");
    assert_eq!(g, parse("sample.thickness_mm in [1, 2, 5] or not exists(calibrated)"));

    let h = Filter::tag("calibrated") & Filter::builtin(Builtin::Kind).eq("measurement") & Filter::path_glob("runs/*");
    assert_eq!(h, parse("@tag == 'calibrated' and @kind == 'measurement' and @path ~ 'runs/*'"));

    assert_eq!(Filter::meta("x").not_in(["a", "b"]), parse("x not in ['a', 'b']"));
    assert_eq!(Filter::meta("x").ne(true).not(), parse("not x != true"));
    assert_eq!(Filter::meta("x").le(String::from("q")), parse("x <= 'q'"));
    assert_eq!(Filter::meta("x").gt(-1i64), parse("x > -1"));
    assert_eq!(Filter::meta("x").glob("a*"), parse("x ~ 'a*'"));
    assert_eq!(Filter::builtin(Builtin::Created).ge("2024-05-01"), parse("@created >= '2024-05-01'"));
    assert_eq!(Filter::builtin(Builtin::Lineage).exists(), parse("exists(@lineage)"));
}

#[test]
fn builder_keeps_normal_form() {
    let a = || cmp("a", CompareOp::Eq, 1);
    let b = || cmp("b", CompareOp::Eq, 1);
    assert_eq!(Filter::True.and(a()), a());
    assert_eq!(a().and(Filter::True), a());
    assert_eq!(Filter::True.or(a()), Filter::True);
    assert_eq!(a().and(b()).and(a().and(b())), Filter::And(vec![a(), b(), a(), b()]));
    assert_eq!(a().or(b()).or(a()), Filter::Or(vec![a(), b(), a()]));
    assert_eq!(a().or(b()).and(a()), Filter::And(vec![Filter::Or(vec![a(), b()]), a()]));
    assert!(a().or(b()).and(a()).not().is_normal());
}

// ---- MongoDB-style JSON ----

fn mongo(json: Value) -> Filter {
    Filter::from_mongo(&json).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn mongo_forms() {
    assert_eq!(mongo(json!({})), Filter::True);
    // A comparison on a metadata key also holds for an element of an array, as in MongoDB.
    assert_eq!(mongo(json!({"material": "steel"})), parse("material == 'steel' or material contains 'steel'"));
    assert_eq!(
        mongo(json!({"temperature": {"$gte": 300, "$lt": 310}})),
        parse(
            "(x >= 300 or x contains (>= 300)) and (x < 310 or x contains (< 310))"
                .replace('x', "temperature")
                .as_str()
        )
    );
    assert_eq!(
        mongo(json!({"$or": [{"a": {"$in": [1, 2]}}, {"b": {"$nin": ["x"]}}], "c": {"$ne": null}})),
        parse(
            "((a in [1, 2] or a contains 1 or a contains 2) or (b not in ['x'] and not b contains 'x')) \
             and (c != null and not c contains null)"
        )
    );
    assert_eq!(mongo(json!({"$and": [{"@kind": "a"}, {"@path": "b"}]})), parse("@kind == 'a' and @path == 'b'"));
    assert_eq!(mongo(json!({"a": {"$exists": true}, "b": {"$exists": false}})), parse("exists(a) and not exists(b)"));
    assert_eq!(mongo(json!({"$not": {"@kind": "x"}})), parse("not @kind == 'x'"));
    // Keys combine in the order serde_json keeps them (sorted): the AND is the same either way.
    assert_eq!(mongo(json!({"@tag": "calibrated", "@Kind": "m"})), parse("@kind == 'm' and @tag == 'calibrated'"));
    assert_eq!(mongo(json!({"@created": {"$gte": "2024-05-01"}})), parse("@created >= '2024-05-01'"));
    assert_eq!(mongo(json!({"a": {"$regex": "^runs/2024/.*$", "$options": ""}})), parse("a =~ '^runs/2024/.*$'"));
    assert_eq!(mongo(json!({"a": {"$regex": "x", "$options": "im"}})), parse("a =~ '(?im)x'"));
    assert_eq!(mongo(json!({"a": {"$glob": "runs/*"}})), parse("a ~ 'runs/*'"));
    assert_eq!(mongo(json!({"$or": [{"@kind": "a"}]})), parse("@kind == 'a'"));
    assert_eq!(Filter::from_mongo_str(r#"{"@kind": {"$lte": 1e3}}"#).unwrap(), parse("@kind <= 1000.0"));
    // Arrays and objects compare whole; element operators.
    assert_eq!(mongo(json!({"dims": [10, 10]})), parse("dims == [10, 10] or dims contains [10, 10]"));
    assert_eq!(
        mongo(json!({"s": {"b": 1, "a": [true]}})),
        parse("s == {'a': [true], 'b': 1} or s contains {'b': 1, 'a': [true]}")
    );
    assert_eq!(mongo(json!({"c": {"$elemMatch": {"$gte": 1, "$lt": 5}}})), parse("c contains (>= 1 and < 5)"));
    assert_eq!(mongo(json!({"c": {"$elemMatch": {"$in": ["B", "G"]}}})), parse("c contains 'B' or c contains 'G'"));
    assert_eq!(
        mongo(json!({"c": {"$all": ["B", "G"]}})),
        parse("(c == 'B' or c contains 'B') and (c == 'G' or c contains 'G')")
    );
    assert_eq!(mongo(json!({"c": {"$size": 3}})), parse("size(c) == 3"));
    assert_eq!(mongo(json!({"c": {"$size": {"$gt": 1}}})), parse("size(c) > 1"));
    assert_eq!(
        mongo(json!({"seed": 12345678901234567891u64})).to_string(),
        "seed == 12345678901234567891 or seed contains 12345678901234567891"
    );
}

#[test]
fn regexes_read_as_mongodb_reads_them() {
    let d = |s: &str| doc(json!({ "s": s }));
    let hit = |re: &str, s: &str| parse(&format!("s =~ {}", FilterValue::String(re.into()))).matches(&d(s));
    // `$` is the end or just before a final newline; `.` is anything but a newline; no anchor: anywhere.
    assert!(hit("c$", "abc\n"));
    assert!(hit("c$", "abc"));
    assert!(!hit("c$", "abc\n\n"));
    assert!(!hit("^a.c$", "a\nc"));
    assert!(hit("(?s)^a.c$", "a\nc"));
    assert!(hit("(?m)^c$", "ab\nc\nd"));
    assert!(!hit("^c$", "ab\nc\nd"));
    assert!(hit("b", "abc"));
    assert!(hit("[$]", "a$"));
    assert!(hit("a\\$", "a$"));
    // A NUL is a character like any other, on either side.
    assert!(hit("b\u{0}c", "ab\u{0}cd"));
    assert!(hit("^ab.cd$", "ab\u{0}cd"));
    assert!(!hit("^ab$", "ab\u{0}cd"));
    assert!(parse("s ~ 'ab'").matches(&d("ab")) && !parse("s ~ 'ab'").matches(&d("ab\u{0}cd")));
    assert!(parse("s ~ 'ab*'").matches(&d("ab\u{0}cd")));
    let err = Filter::parse("s =~ 'a('").unwrap_err();
    assert!(err.message.starts_with("bad regular expression"), "{}", err.message);
    assert_eq!(err.column, Some(6));
}

#[test]
fn arrays_and_objects_compare_whole_and_by_element() {
    let d =
        doc(json!({"dims": [10, 10.0], "c": ["R", "G", "B", 5, "2024-05-01"], "o": {"b": 1, "a": {"x": []}}, "e": []}));
    for (text, want) in [
        ("dims == [10, 10]", true),
        ("dims == [10]", false),
        ("dims in [[1], [10, 10]]", true),
        ("dims != [10, 10]", false),
        ("dims != [10]", true),
        ("o == {'a': {'x': []}, 'b': 1.0}", true),
        ("o == {'a': {'x': []}}", false),
        ("o.a == {'x': []}", true),
        ("c contains 'B'", true),
        ("c contains 'Y'", false),
        ("c == 'B'", false),
        ("c contains (> 4 and < 6)", true),
        ("c contains (> 5)", false),
        ("c contains '2024-05-01T00:00:00Z'", true),
        ("size(c) == 5", true),
        ("size(c) > 5", false),
        ("size(e) == 0", true),
        ("size(o) == 0", false),
        ("not size(o) == 0", true),
        ("e contains 1", false),
        ("o contains 1", false),
    ] {
        assert_eq!(parse(text).matches(&d), want, "{text}");
    }
    assert_eq!(
        Filter::parse("dims < [1]").unwrap_err().message,
        "arrays and objects compare only with == and !=, not '<'"
    );
    assert!(Filter::parse("c contains (!= 1)").is_err());
    assert!(Filter::parse("c contains (> 1 and > 2)").is_err());
    assert!(Filter::parse("size(c) == -1").is_err());
    assert!(Filter::parse("x == 123456789012345678901").unwrap_err().message.contains("beyond 64 bits"));
    // `size` and `contains` are keys where no function or operator can be.
    assert_eq!(parse("size > 3 and contains contains 1").meta_keys(), ["size", "contains"]);
}

fn assert_mongo_error(json: Value, message: &str) {
    let err = Filter::from_mongo(&json).expect_err(&json.to_string());
    assert_eq!(err.message, message, "for {json}");
    assert_eq!(err.column, None);
    assert_eq!(err.to_string(), format!("{message} in the JSON filter {json}"));
}

#[test]
fn mongo_errors() {
    assert_mongo_error(json!([1]), "a filter must be a JSON object, found an array");
    assert_mongo_error(json!({"$nor": []}), "unknown operator '$nor' where a key or $and, $or, $not was expected");
    assert_mongo_error(json!({"$and": {}}), "$and needs a non-empty array of filters, found an object");
    assert_mongo_error(json!({"$or": []}), "$or needs a non-empty array of filters, found an array");
    assert_mongo_error(json!({"$or": [1]}), "a filter must be a JSON object, found a number");
    assert_mongo_error(
        json!({"@foo": 1}),
        "unknown built-in field '@foo' (known: @project @path @kind @tag @created @updated @format @id @lineage)",
    );
    assert_mongo_error(json!({"": 1}), "a key is empty");
    assert_mongo_error(
        json!({"a": {"b": 1, "$gt": 1}}),
        "in \"a\": an object mixes operators ($...) with keys: write operators alone, or an object to compare whole",
    );
    assert_mongo_error(json!({"a": {"$size": -1}}), "in \"a\": '$size' needs a whole number of elements, found -1");
    assert_mongo_error(json!({"a": {"$exists": 1}}), "in \"a\": '$exists' needs true or false, found a number");
    assert_mongo_error(json!({"a": {"$regex": 1}}), "in \"a\": '$regex' needs a string, found a number");
    assert!(
        Filter::from_mongo(&json!({"a": {"$regex": "a("}})).unwrap_err().message.contains("bad regular expression")
    );
    assert_mongo_error(
        json!({"a": {"$regex": "x", "$options": "u"}}),
        "in \"a\": '$options' flag 'u' is not supported (i m s x are)",
    );
    assert_mongo_error(json!({"a": {"$options": "i"}}), "in \"a\": '$options' needs a '$regex' beside it");
    assert_mongo_error(json!({"a": {"$not": 1}}), "in \"a\": '$not' needs an object of operators, found a number");
    assert_mongo_error(json!({"a": {"$in": 1}}), "in \"a\": '$in' needs an array, found a number");
    assert_mongo_error(
        json!({"a": {"$gt": {"x": 1}}}),
        "in \"a\": '$gt' needs a number, string or time, found an object",
    );
    assert_mongo_error(
        json!({"a": {"$elemMatch": {"$ne": 1}}}),
        "in \"a\": '$elemMatch' takes $eq $lt $lte $gt $gte or $in alone, not '$ne'",
    );
    assert_mongo_error(
        json!({"a": {"$elemMatch": {"$gt": 1, "$gte": 2}}}),
        "in \"a\": in '$elemMatch': an element condition is one comparison, or a lower and an upper bound",
    );
    let err = Filter::from_mongo_str("{\"a\": ").unwrap_err();
    assert!(err.message.starts_with("invalid JSON ("), "{}", err.message);
}

#[test]
fn to_mongo_shapes() {
    assert_eq!(
        parse("a >= 1 and not (@tag == 'x' or b ~ 'r*.c')").to_mongo(),
        json!({"$and": [
            {"a": {"$gte": 1, "$not": {"$elemMatch": {"$gte": 1}}}},
            {"$not": {"$or": [{"@tag": {"$eq": "x"}}, {"b": {"$glob": "r*.c"}}]}},
        ]})
    );
    assert_eq!(
        parse("@created < '2024-05-01'").to_mongo(),
        json!({"@created": {"$lt": "2024-05-01T00:00:00.000000Z"}})
    );
    assert_eq!(parse("c contains (> 1 and <= 2)").to_mongo(), json!({"c": {"$elemMatch": {"$gt": 1, "$lte": 2}}}));
    assert_eq!(Filter::True.to_mongo(), json!({}));
    assert_eq!(Filter::Or(vec![]).to_mongo(), json!({"$not": {}}));
}

// ---- the evaluator ----

fn doc(metadata: Value) -> Doc {
    let Value::Object(metadata) = metadata else { panic!("metadata must be an object") };
    Doc {
        id: "0190f0e0-0000-7000-8000-000000000001".into(),
        project: "lab".into(),
        path: "runs/2024/r17".into(),
        kind: Some("measurement".into()),
        tags: vec!["calibrated".into(), "good".into()],
        created: time("2024-05-01T10:00:00Z"),
        updated: time("2024-06-01T00:00:00Z"),
        formats: vec!["csv".into()],
        lineage: None,
        metadata,
    }
}

fn check(filter: &str, d: &Doc) -> bool {
    parse(filter).matches(d)
}

#[test]
fn missing_keys_make_every_comparison_false() {
    let d = doc(json!({"a": 1}));
    for f in ["x == 1", "x != 1", "x < 1", "x >= 1", "x in [1]", "x not in [1]", "x ~ '*'", "x == null", "x != null"] {
        assert!(!check(f, &d), "{f}");
    }
    assert!(check("not x == 1", &d));
    assert!(check("not x != 1", &d));
    assert!(!check("exists(x)", &d));
    assert!(!check("a.b == 1", &d), "a path through a non-object does not resolve");
}

#[test]
fn exists_sees_null_objects_and_arrays() {
    let d = doc(json!({"n": null, "o": {"p": {}}, "arr": [1, 2]}));
    for f in ["exists(n)", "exists(o)", "exists(o.p)", "exists(arr)"] {
        assert!(check(f, &d), "{f}");
    }
    assert!(!check("exists(o.q)", &d));
}

#[test]
fn types_compare_only_with_their_own_kind() {
    // `big` is u64::MAX; the float 18446744073709551615.0 is 2^64, one more.
    let d = doc(json!({"i": 3, "f": 2.5, "s": "steel", "b": true, "n": null, "big": 18_446_744_073_709_551_615u64}));
    let yes = [
        "i == 3",
        "i == 3.0",
        "i < 3.5",
        "i >= 3",
        "f > 2",
        "f == 2.5",
        "f < 3",
        "s == 'steel'",
        "s < 't'",
        "s >= 's'",
        "b == true",
        "b != false",
        "n == null",
        "i != null",
        "s != 3",
        "i != 's'",
        "big > 9223372036854775807",
        "big < 18446744073709551615.0",
        "i in ['3', 3.0]",
        "s ~ 'st*'",
        "s ~ '?teel'",
        "s not in ['iron']",
    ];
    let no = [
        "i == '3'",
        "i < 's'",
        "s > 3",
        "s == 3",
        "b > false",
        "b < true",
        "b == 1",
        "n == 0",
        "n < 1",
        "n != null",
        "i == null",
        "i == true",
        "i ~ '3'",
        "b ~ '*'",
        "s != 'steel'",
        "i in ['3', true]",
        "s not in ['steel']",
        "big < 9223372036854775807",
        "i == 3.000001",
    ];
    for f in yes {
        assert!(check(f, &d), "{f} should match");
    }
    for f in no {
        assert!(!check(f, &d), "{f} should not match");
    }
}

#[test]
fn integers_and_floats_compare_exactly() {
    let d = doc(json!({"i": 9_007_199_254_740_993i64, "neg": -3}));
    // 2^53 + 1 is not a float; a cast would make it equal to 2^53.
    assert!(check("i > 9007199254740992.0", &d));
    assert!(!check("i == 9007199254740992.0", &d));
    assert!(check("neg < -2.5 and neg > -3.5 and neg == -3.0", &d));
    assert!(check("neg > -1e300 and neg < 1e300", &d));
}

#[test]
fn arrays_and_objects_are_opaque() {
    let d = doc(json!({"arr": [1, 2], "obj": {"x": 1}}));
    for f in ["arr == 1", "arr in [1, 2]", "arr ~ '*'", "obj == 1", "arr > 0"] {
        assert!(!check(f, &d), "{f}");
    }
    assert!(check("arr != 1 and obj != 1", &d), "present, and not equal");
    assert!(check("obj.x == 1", &d));
}

#[test]
fn times_compare_with_times() {
    let d = doc(json!({"date": "2024-05-01", "stamp": "2024-05-01T12:00:00+02:00", "word": "hello"}));
    for f in [
        "@created >= '2024-05-01' and @created < '2024-05-02'",
        "@created == '2024-05-01T12:00:00+02:00'",
        "@updated > @created == false or @updated > '2024-05-31T23:59:59.999999Z'",
        "date == '2024-05-01T00:00:00Z'",
        "stamp == '2024-05-01T10:00:00Z'",
        "stamp < '2024-05-02'",
        "word != '2024-05-01'",
        "date ~ '2024-*'",
    ] {
        assert!(Filter::parse(f).map(|f| f.matches(&d)).unwrap_or(false) || f.contains("@updated >"), "{f}");
    }
    assert!(check("@updated > '2024-05-31T23:59:59.999999Z'", &d));
    for f in ["@created == 'x'", "@created > 0", "word < '2024-05-01'", "@created ~ '*'"] {
        assert!(!check(f, &d), "{f}");
    }
}

#[test]
fn builtins() {
    let d = doc(json!({}));
    let yes = [
        "@project == 'lab'",
        "@path == 'runs/2024/r17'",
        "@path ~ 'runs/2024/*'",
        "@path ~ 'runs/*/r1?'",
        "@id ~ '0190*'",
        "@kind == 'measurement'",
        "@tag == 'calibrated'",
        "@tag != 'bad'",
        "@tag in ['x', 'good']",
        "@tag not in ['x', 'y']",
        "@tag ~ 'cal*'",
        "@format == 'csv'",
        "exists(@tag) and exists(@format) and exists(@kind) and exists(@id) and exists(@created)",
        "not exists(@lineage)",
    ];
    let no = [
        "@path ~ 'runs/2023/*'",
        "@path ~ 'runs/2024'",
        "@tag == 'bad'",
        "@tag != 'good'",
        "@tag not in ['good']",
        "@lineage == 'x'",
        "@lineage != 'x'",
        "@format == 'hdf5'",
    ];
    for f in yes {
        assert!(check(f, &d), "{f} should match");
    }
    for f in no {
        assert!(!check(f, &d), "{f} should not match");
    }
    let bare = Doc { tags: vec![], formats: vec![], kind: None, ..d };
    assert!(check("@tag != 'x' and @tag not in ['x'] and not exists(@tag) and not exists(@format)", &bare));
    assert!(!check("@kind != 'x'", &bare), "an unset kind is missing");
}

#[test]
fn not_or_and_semantics() {
    let d = doc(json!({"a": 1, "b": "x"}));
    assert!(check("a == 2 or b == 'x'", &d));
    assert!(!check("a == 2 and b == 'x'", &d));
    assert!(check("not (a == 2 or missing == 1)", &d));
    assert!(check("not missing in [1]", &d));
    assert!(!check("missing not in [1]", &d));
    assert!(check("a not in [2, 3] and a in [1]", &d));
    assert!(!check("a in []", &d));
    assert!(check("a not in []", &d));
    assert!(Filter::True.matches(&d));
}

#[test]
fn glob_matching() {
    use super::eval::glob;
    for (p, t) in [("*", ""), ("*", "a/b/c"), ("a*", "a"), ("a*c", "abbbc"), ("?", "é"), ("*b*b", "abab"), ("", "")] {
        assert!(glob(p, t), "{p} ~ {t}");
    }
    for (p, t) in [("?", ""), ("a", "A"), ("a*c", "abcd"), ("*b*b", "abba"), ("", "a"), ("a?", "a")] {
        assert!(!glob(p, t), "{p} !~ {t}");
    }
}

// ---- properties ----

/// Any filter in normal form, with arbitrary keys, strings and numbers: for the round trips.
fn any_filter() -> impl Strategy<Value = Filter> {
    let key = prop_oneof![
        "[a-z_][a-z0-9_-]{0,5}(\\.[a-z0-9_][a-z0-9_-]{0,3}){0,2}",
        Just("and".to_string()),
        Just("T (K)".to_string()),
        "[^@$][^\\.]{0,6}",
    ];
    let field = prop_oneof![
        3 => key.prop_map(Field::Meta),
        1 => proptest::sample::select(Builtin::ALL.to_vec()).prop_map(Field::Builtin),
    ];
    let value = prop_oneof![
        Just(FilterValue::Null),
        any::<bool>().prop_map(FilterValue::Bool),
        any::<i64>().prop_map(FilterValue::Int),
        (proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL)
            .prop_map(FilterValue::Float),
        ".{0,8}".prop_map(|s| FilterValue::from_text(&s)),
        (0i64..253_402_300_800_000_000).prop_map(FilterValue::Time),
        (9_223_372_036_854_775_808u64..).prop_map(FilterValue::UInt),
        Just(FilterValue::Json(json!([1, "a", [2.5, null], {"k": true}]))),
        Just(FilterValue::Json(json!({"b": {}, "a": [], "c": "2024-05-01"}))),
    ];
    filter_from(field, value, ".{0,8}".boxed())
}

fn filter_from(
    field: impl Strategy<Value = Field> + Clone + 'static,
    value: impl Strategy<Value = FilterValue> + Clone + 'static,
    pattern: BoxedStrategy<String>,
) -> impl Strategy<Value = Filter> {
    let op = proptest::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    let leaf = prop_oneof![
        3 => (field.clone(), op.clone(), value.clone()).prop_map(|(field, op, value)| {
            // Arrays and objects only compare by equality.
            let op = if matches!(value, FilterValue::Json(_)) && op != CompareOp::Ne { CompareOp::Eq } else { op };
            Filter::Compare { field, op, value }
        }),
        1 => (field.clone(), proptest::collection::vec(value.clone(), 0..4), any::<bool>())
            .prop_map(|(field, values, negated)| Filter::In { field, values, negated }),
        1 => (field.clone(), pattern).prop_map(|(field, pattern)| Filter::Glob { field, pattern }),
        1 => field.clone().prop_map(Filter::Exists),
        1 => (field.clone(), value.clone()).prop_map(|(field, v)| Filter::Element { field, conds: vec![(CompareOp::Eq, v)] }),
        1 => (field.clone(), value.clone(), value.clone()).prop_map(|(field, lo, hi)| {
            let scalar = |v: FilterValue| if matches!(v, FilterValue::Json(_)) { FilterValue::Int(1) } else { v };
            Filter::Element { field, conds: vec![(CompareOp::Ge, scalar(lo)), (CompareOp::Lt, scalar(hi))] }
        }),
        1 => (field.clone(), op, 0u64..4).prop_map(|(field, op, len)| Filter::Size { field, op, len }),
        1 => (field, proptest::sample::select(vec!["a", "^a.c$", "l$", "(?i)S", "^runs/[0-9]", ""]))
            .prop_map(|(field, p)| Filter::Regex { field, pattern: p.to_string() }),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// Filters over a small vocabulary, so that they often hit the random documents below.
fn small_filter() -> impl Strategy<Value = Filter> {
    let field = prop_oneof![
        3 => proptest::sample::select(vec!["a", "b", "n", "n.x", "T (K)"]).prop_map(|k| Field::Meta(k.to_string())),
        1 => proptest::sample::select(Builtin::ALL.to_vec()).prop_map(Field::Builtin),
    ];
    let value = proptest::sample::select(vec![
        FilterValue::Null,
        FilterValue::Bool(true),
        FilterValue::Bool(false),
        FilterValue::Int(-1),
        FilterValue::Int(0),
        FilterValue::Int(2),
        FilterValue::Float(2.0),
        FilterValue::Float(2.5),
        FilterValue::String("a".into()),
        FilterValue::String("steel".into()),
        FilterValue::String("runs/1".into()),
        FilterValue::String("calibrated".into()),
        FilterValue::Time(1_714_521_600_000_000), // 2024-05-01
        FilterValue::Time(1_717_200_000_000_000), // 2024-06-01
        FilterValue::Json(json!([2, "a"])),
        FilterValue::Json(json!({"x": 2})),
        FilterValue::Json(json!({})),
    ]);
    let pattern = proptest::sample::select(vec!["*", "a*", "runs/*", "?", "*l", "s*l", "runs/?"])
        .prop_map(str::to_string)
        .boxed();
    filter_from(field, value, pattern)
}

fn small_doc() -> impl Strategy<Value = Doc> {
    let json = proptest::sample::select(vec![
        json!(null),
        json!(true),
        json!(false),
        json!(-1),
        json!(0),
        json!(2),
        json!(2.0),
        json!(2.5),
        json!("a"),
        json!("steel"),
        json!("runs/1"),
        json!("2024-05-01"),
        json!("2024-05-01T00:00:00Z"),
        json!([2, "a"]),
        json!({}),
        json!({"x": 2}),
        json!({"x": "a", "y": null}),
    ]);
    let meta = proptest::collection::btree_map(proptest::sample::select(vec!["a", "b", "n", "T (K)"]), json, 0..4);
    let words = || proptest::sample::select(vec!["a", "steel", "calibrated", "runs/1"]);
    let times = || proptest::sample::select(vec![1_714_521_600_000_000i64, 1_717_200_000_000_000, 0]);
    (
        meta,
        proptest::sample::select(vec!["runs/1", "runs/2/x", "a"]),
        proptest::option::of(words()),
        proptest::collection::vec(words(), 0..3),
        times(),
        times(),
        proptest::collection::vec(words(), 0..2),
        proptest::option::of(words()),
    )
        .prop_map(|(meta, path, kind, tags, created, updated, formats, lineage)| Doc {
            id: "a".into(),
            project: "steel".into(),
            path: path.into(),
            kind: kind.map(Into::into),
            tags: tags.into_iter().map(Into::into).collect(),
            created,
            updated,
            formats: formats.into_iter().map(Into::into).collect(),
            lineage: lineage.map(Into::into),
            metadata: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn display_parses_back_to_the_same_filter(f in any_filter()) {
        prop_assert!(f.is_normal());
        let text = f.to_string();
        prop_assert_eq!(Filter::parse(&text).map_err(|e| e.to_string()), Ok(f), "text: {}", text);
    }

    #[test]
    fn text_and_mongo_forms_evaluate_alike(f in small_filter(), docs in proptest::collection::vec(small_doc(), 8)) {
        let text = Filter::parse(&f.to_string()).unwrap();
        let mongo = Filter::from_mongo_str(&f.to_mongo().to_string()).unwrap();
        for d in &docs {
            let want = f.matches(d);
            prop_assert_eq!(text.matches(d), want);
            prop_assert_eq!(mongo.matches(d), want);
        }
    }

    #[test]
    fn not_is_the_complement_and_ne_is_eq_negated_among_present(
        f in small_filter(),
        d in small_doc(),
        key in proptest::sample::select(vec!["a", "b", "n", "n.x", "T (K)"]),
        v in proptest::sample::select(vec![FilterValue::Int(2), FilterValue::String("a".into()), FilterValue::Null]),
    ) {
        prop_assert_eq!(f.clone().not().matches(&d), !f.matches(&d));
        let eq = Filter::meta(key).eq(v.clone()).matches(&d);
        let ne = Filter::meta(key).ne(v.clone()).matches(&d);
        let present = Filter::exists(key).matches(&d);
        prop_assert_eq!(ne, present && !eq);
        prop_assert_eq!(Filter::meta(key).not_in([v.clone()]).matches(&d), ne);
        prop_assert_eq!(Filter::meta(key).is_in([v]).matches(&d), eq);
    }

    #[test]
    fn mongo_shorthands_mean_what_the_text_says(
        d in small_doc(),
        key in proptest::sample::select(vec!["a", "b", "n.x", "@tag", "@kind", "@created"]),
        v in proptest::sample::select(vec![json!(2), json!(2.5), json!("a"), json!(null), json!(true), json!("2024-05-01")]),
        lo in proptest::sample::select(vec![json!(0), json!("a"), json!("2024-05-01")]),
        hi in proptest::sample::select(vec![json!(3), json!(2.5), json!("z"), json!("2024-06-01")]),
    ) {
        let field = match key.strip_prefix('@') {
            Some(name) => Field::Builtin(Builtin::from_name(name).unwrap()),
            None => meta(key),
        };
        // The JSON scalars here print as their text-language literals, strings aside.
        let text_value = |v: &Value| match v {
            Value::String(s) => FilterValue::from(s.as_str()).to_string(),
            other => other.to_string(),
        };
        let implicit = Filter::from_mongo(&json!({ key: v.clone() })).unwrap();
        let meta = matches!(field, Field::Meta(_));
        let either = |op: &str, v: &str| {
            if meta { format!("({field} {op} {v} or {field} contains ({op} {v}))") } else { format!("{field} {op} {v}") }
        };
        let text = Filter::parse(&either("==", &text_value(&v))).unwrap();
        prop_assert_eq!(implicit.matches(&d), text.matches(&d));
        let range = Filter::from_mongo(&json!({ key: {"$gte": lo.clone(), "$lt": hi.clone()} })).unwrap();
        let text = Filter::parse(&format!("{} and {}", either(">=", &text_value(&lo)), either("<", &text_value(&hi)))).unwrap();
        prop_assert_eq!(range.matches(&d), text.matches(&d));
    }

    #[test]
    fn random_input_never_panics(input in ".{0,60}") {
        check_no_panic(&input);
    }

    #[test]
    fn filter_like_input_never_panics(input in "[a-z@\"'\\\\()\\[\\],.=!<>~ 0-9eE+-]{0,40}") {
        check_no_panic(&input);
    }

    #[test]
    fn garbage_around_valid_filters_never_panics(
        f in any_filter(),
        before in ".{0,4}",
        after in ".{0,4}",
        cut in any::<proptest::sample::Index>(),
    ) {
        let text = f.to_string();
        let chars: Vec<char> = text.chars().collect();
        let at = cut.index(chars.len() + 1);
        let (head, tail): (String, String) = (chars[..at].iter().collect(), chars[at..].iter().collect());
        check_no_panic(&format!("{before}{text}{after}"));
        check_no_panic(&format!("{head}{before}{tail}"));
        check_no_panic(&head);
    }
}

/// Parsing returns (rather than panics), and an error's column lies within the input or just past it.
fn check_no_panic(input: &str) {
    if let Err(e) = Filter::parse(input) {
        let column = e.column.unwrap();
        assert!(column >= 1 && column <= input.chars().count() + 1, "column {column} for {input:?}");
        let _ = e.to_string();
    }
}
