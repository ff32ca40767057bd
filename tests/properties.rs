//! Property tests of bad and borderline input: lock ids, templates,
//! durations, TTLs and metadata, against oracles written here from the
//! documented rules (not from `eslock-rules`' code), and against both stores:
//! what is accepted is read back unchanged, what is refused is a typed error
//! before any request, and both stores draw the line in the same place.
//!
//! Cases run with a fixed seed so CI is deterministic; set
//! `PROPTEST_RNG_SEED` to explore others. Engine cases are few: each one
//! costs a handful of requests.


use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eslock_test_support::conformance::CountingStore;
use eslock::rules::{self, Segment};
use eslock::{Error, LockId, LockManager, LockOptions, MemoryStore};
use eslock_test_support::{engine_client, unique_name};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

/// Cases for checks that only compute.
const PURE: u32 = 2048;
/// Cases for checks against the in-memory store.
const MEMORY: u32 = 256;
/// Cases for checks against the engine.
const ENGINE: u32 = 40;

// ---------------------------------------------------------------------------
// The documented rules, as oracles.

/// 1-255 characters from `A-Z a-z 0-9 _ . : / -`, the first a letter or digit.
fn is_documented_lock_id(id: &str) -> bool {
    let allowed = |c: char| matches!(c, 'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' | ':' | '/' | '-');
    matches!(id.chars().next(), Some('A'..='Z' | 'a'..='z' | '0'..='9')) && id.chars().all(allowed) && id.chars().count() <= 255
}

/// The segments of a template as documented: literal text and `{name}`
/// placeholders, `name` an identifier; the id made by giving each placeholder
/// a one-letter value must be a valid lock id. `None`: refused.
fn documented_template(template: &str) -> Option<Vec<Segment>> {
    let is_identifier = |name: &str| {
        let mut chars = name.chars();
        matches!(chars.next(), Some('A'..='Z' | 'a'..='z' | '_')) && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
    };
    let mut segments = Vec::new();
    let mut filled = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        let literal_end = rest.find(['{', '}']).unwrap_or(rest.len());
        if literal_end > 0 {
            segments.push(Segment::Literal(rest[..literal_end].to_string()));
            filled.push_str(&rest[..literal_end]);
        }
        rest = &rest[literal_end..];
        if rest.is_empty() {
            break;
        }
        if rest.starts_with('}') {
            return None;
        }
        let close = rest.find('}')?;
        let name = &rest[1..close];
        if !is_identifier(name) {
            return None;
        }
        segments.push(Segment::Placeholder(name.to_string()));
        filled.push('a');
        rest = &rest[close + 1..];
    }
    is_documented_lock_id(&filled).then_some(segments)
}

/// How deeply objects and arrays nest: a scalar is 0, `{}` and `[]` are 1.
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON object of at most 8 KiB serialized, nested at most 32 levels, whose
/// keys are 1-256 bytes long.
fn is_documented_metadata(value: &Value) -> bool {
    let Value::Object(map) = value else { return false };
    map.keys().all(|key| (1..=256).contains(&key.len()))
        && depth(value) <= 32
        && serde_json::to_string(value).expect("serializable").len() <= 8 * 1024
}

/// From 10 ms to 100 years (36,500 days).
fn is_documented_ttl(ttl: Duration) -> bool {
    (Duration::from_millis(10)..=Duration::from_secs(36_500 * 86_400)).contains(&ttl)
}

#[test]
fn the_rules_constants_are_the_documented_ones() {
    assert_eq!(rules::MAX_LOCK_ID_LEN, 255);
    assert_eq!(rules::MAX_METADATA_BYTES, 8 * 1024);
    assert_eq!(rules::MAX_METADATA_DEPTH, 32);
    assert_eq!(rules::MAX_METADATA_KEY_LEN, 256);
    assert_eq!(rules::MIN_TTL, Duration::from_millis(10));
    assert_eq!(rules::MAX_TTL, Duration::from_secs(36_500 * 86_400));
}

// ---------------------------------------------------------------------------
// Running properties.

/// Runs `test` on `cases` values of `strategy`; fails with the smallest
/// failing value found.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: Debug,
{
    let mut config = Config::with_cases(cases);
    // Nothing is written into the source tree.
    config.failure_persistence = None;
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(0x5eed_e510c);
    }
    // Shrinking against the engine costs requests; a few hundred steps find
    // a small case without taking minutes.
    config.max_shrink_iters = 512;
    if let Err(err) = TestRunner::new(config).run(&strategy, test) {
        panic!("{err}");
    }
}

fn fail(err: impl Debug) -> TestCaseError {
    TestCaseError::fail(format!("{err:?}"))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// A manager whose store counts the calls that reach it.
struct Counted {
    name: &'static str,
    manager: LockManager,
    calls: Arc<AtomicUsize>,
}

impl Counted {
    fn memory() -> Counted {
        let (manager, calls) = CountingStore::manager(MemoryStore::new());
        Counted { name: "memory", manager, calls }
    }

    /// On the engine, in a lock index of its own.
    fn engine() -> Counted {
        let store = eslock_test_support::store_on(engine_client(), &unique_name("properties"));
        let (manager, calls) = CountingStore::manager(store);
        Counted { name: "engine", manager, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Counts accepted and refused inputs, so a test can show that its
/// strategy produced both and the property was not vacuous.
#[derive(Default)]
struct Tally {
    accepted: AtomicUsize,
    refused: AtomicUsize,
}

impl Tally {
    fn add(&self, accepted: bool) {
        let counter = if accepted { &self.accepted } else { &self.refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn assert_both(&self, what: &str) {
        let (accepted, refused) = (self.accepted.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed));
        assert!(accepted > 0 && refused > 0, "{what}: {accepted} accepted, {refused} refused; the strategy must produce both");
    }
}

// ---------------------------------------------------------------------------
// Lock ids.

fn valid_lock_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}"
}

/// Characters that break ids in interesting ways: separators, URL and path
/// syntax, look-alikes of allowed characters, and text that is not ASCII.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        select(vec![
            ' ', '\t', '\n', '\0', '{', '}', '*', '?', '#', '%', '+', ',', '\\', '"', '\'', '<', '|', '&', '=', '~', '@',
            'é', 'ß', 'Ａ', '٣', '\u{200b}', '\u{301}', '锁', '🔒', '\u{7f}', '\u{ff0f}',
        ]),
        any::<char>(),
    ]
}

fn insert_at(text: &str, at: Index, insert: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at.index(chars.len() + 1);
    chars.splice(at..at, insert.chars());
    chars.into_iter().collect()
}

/// Ids of every kind: valid, valid but for one character, around the length
/// limit, with a bad first character, empty, and anything at all.
fn any_lock_id() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => valid_lock_id(),
        3 => (valid_lock_id(), any::<Index>(), tricky_char()).prop_map(|(id, at, c)| insert_at(&id, at, &c.to_string())),
        1 => "[a-z0-9]{253,257}",
        1 => "[_.:/-][A-Za-z0-9_.:/-]{0,8}",
        1 => Just(String::new()),
        2 => any::<String>(),
    ]
}

#[test]
fn lock_ids_follow_the_documented_grammar() {
    check(PURE, any_lock_id(), |id| {
        let documented = is_documented_lock_id(&id);
        prop_assert_eq!(rules::check_lock_id(&id).is_ok(), documented, "check_lock_id({:?})", id);
        match LockId::new(&id) {
            Ok(lock_id) => prop_assert!(documented && lock_id.as_str() == id, "LockId::new({:?}) accepted it", id),
            Err(Error::InvalidLockId(err)) => prop_assert!(!documented && err.id == id, "LockId::new({:?}): {:?}", id, err),
            Err(other) => return Err(fail(other)),
        }
        Ok(())
    });
}

/// Refused ids are typed errors on every entry point, and no request is sent.
#[test]
fn refused_lock_ids_send_nothing() {
    let runtime = runtime();
    let stores = [Counted::memory(), Counted::engine()];
    let refused = any_lock_id().prop_filter("a refused id", |id| !is_documented_lock_id(id));
    check(MEMORY, refused, |id| {
        for store in &stores {
            let manager = &store.manager;
            let before = store.calls();
            let outcomes = runtime.block_on(async {
                [
                    manager.acquire(&id, LockOptions::default()).await.map(drop),
                    manager.with_lock(&id, LockOptions::default(), || async {}).await,
                    manager.get(&id).await.map(drop),
                    manager.force_release(&id).await.map(drop),
                ]
            });
            for outcome in outcomes {
                prop_assert!(matches!(&outcome, Err(Error::InvalidLockId(err)) if err.id == id), "{}: {:?}", store.name, outcome);
            }
            prop_assert_eq!(store.calls(), before, "{}: a request was sent for {:?}", store.name, id);
        }
        Ok(())
    });
}

/// Acquire, get, list, release, get, list: the id comes back as given.
async fn round_trip(manager: &LockManager, id: &str) -> Result<(), TestCaseError> {
    let metadata = json!({ "id": id });
    let lease = manager.acquire(id, LockOptions::default().metadata(metadata.clone())).await.map_err(fail)?;
    let info = manager.get(id).await.map_err(fail)?.ok_or_else(|| fail("get: no lock"))?;
    prop_assert_eq!((info.lock_id.as_str(), &info.token[..], &info.metadata), (id, lease.token(), &metadata));
    let listed = manager.list().await.map_err(fail)?;
    prop_assert!(listed.iter().any(|lock| lock.lock_id == id), "list misses {:?}", id);
    prop_assert!(listed.windows(2).all(|pair| pair[0].lock_id < pair[1].lock_id), "list is ordered by id");
    prop_assert!(lease.release().await.map_err(fail)?, "release");
    prop_assert_eq!(manager.get(id).await.map_err(fail)?, None);
    prop_assert!(!manager.list().await.map_err(fail)?.iter().any(|lock| lock.lock_id == id), "released but listed");
    Ok(())
}

#[test]
fn accepted_lock_ids_round_trip_in_memory() {
    let (runtime, store) = (runtime(), Counted::memory());
    check(MEMORY, valid_lock_id(), |id| runtime.block_on(round_trip(&store.manager, &id)));
}

#[test]
fn accepted_lock_ids_round_trip_on_the_engine() {
    let (runtime, store) = (runtime(), Counted::engine());
    check(ENGINE, valid_lock_id(), |id| runtime.block_on(round_trip(&store.manager, &id)));
}

// ---------------------------------------------------------------------------
// Templates.

fn template_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_.:/-]{1,6}",
        3 => "[A-Za-z_][A-Za-z0-9_]{0,5}".prop_map(|name| format!("{{{name}}}")),
        2 => select(vec!["{", "}", "{}", "{9x}", "{a-b}", "{ a}", "{{a}}", "{a", "a}", "{é}", "é", " ", "锁"]).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ]
}

/// Templates of every kind, including literal text around the length limit
/// with a placeholder (which counts as one character) inside.
fn any_template() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => vec(template_piece(), 0..12).prop_map(|pieces| pieces.concat()),
        1 => ("[a-z]{250,256}", any::<Index>()).prop_map(|(text, at)| insert_at(&text, at, "{p}")),
        1 => any::<String>(),
    ]
}

#[test]
fn templates_parse_as_documented() {
    check(PURE, any_template(), |template| {
        let parsed = rules::parse_template(&template);
        let documented = documented_template(&template);
        prop_assert_eq!(parsed.as_ref().ok(), documented.as_ref(), "parse_template({:?}) = {:?}", template, parsed);
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Durations.

const UNITS: [(&str, u64); 5] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// Durations of every size, with extra weight around `u64::MAX` milliseconds,
/// the largest that `parse_duration` can return.
fn any_duration() -> impl Strategy<Value = Duration> {
    let max_millis = Duration::from_millis(u64::MAX);
    prop_oneof![
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
        (0..1_000_000_000_000u64).prop_map(Duration::from_millis),
        (0..2_000_000_000u64).prop_map(move |nanos| max_millis - Duration::from_secs(1) + Duration::from_nanos(nanos)),
        Just(Duration::MAX),
        Just(Duration::ZERO),
    ]
}

/// Text that is, or nearly is, a duration.
fn duration_text() -> impl Strategy<Value = String> {
    let term = ("0{0,2}[0-9]{1,21}", select(vec!["ms", "s", "m", "h", "d", "", "w", "S", "µs", "sm", " s"]));
    prop_oneof![
        3 => (" {0,2}", vec(term, 1..5), " {0,2}").prop_map(|(lead, terms, trail)| {
            let body: String = terms.into_iter().map(|(number, unit)| format!("{number}{unit}")).collect();
            format!("{lead}{body}{trail}")
        }),
        1 => "[0-9smhd ]{0,12}",
        1 => any::<String>(),
    ]
}

#[test]
fn any_text_is_a_duration_or_an_error() {
    check(PURE, duration_text(), |text| {
        if let Ok(duration) = rules::parse_duration(&text) {
            prop_assert_eq!(rules::parse_duration(&rules::format_duration(duration)), Ok(duration), "{:?}", text);
        }
        Ok(())
    });
}

/// `1h30m` is the sum of its terms, or `Overflow` past `u64::MAX` ms.
#[test]
fn duration_terms_add_up_or_overflow() {
    let number = prop_oneof![0..1_000u64, any::<u64>(), (u64::MAX / 86_400_000 - 2)..=(u64::MAX / 86_400_000 + 2)];
    check(PURE, vec((number, 0..UNITS.len()), 1..5), |terms| {
        let text: String = terms.iter().map(|&(number, unit)| format!("{number}{}", UNITS[unit].0)).collect();
        let total = terms
            .iter()
            .try_fold(0u64, |total, &(number, unit)| number.checked_mul(UNITS[unit].1)?.checked_add(total));
        let expected = total.map(Duration::from_millis).ok_or(rules::DurationError::Overflow);
        prop_assert_eq!(rules::parse_duration(&text), expected, "{:?}", text);
        Ok(())
    });
}

/// Formatting keeps whole milliseconds; parsing the text gives them back,
/// or `Overflow` for durations no `u64` of milliseconds holds.
#[test]
fn formatted_durations_parse_back() {
    check(PURE, any_duration(), |duration| {
        let millis = duration.as_millis();
        let expected = u64::try_from(millis).map(Duration::from_millis).map_err(|_| rules::DurationError::Overflow);
        prop_assert_eq!(rules::parse_duration(&rules::format_duration(duration)), expected, "{:?}", duration);
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// TTLs.

/// TTLs of every size, with weight on both bounds, to the nanosecond.
fn any_ttl() -> impl Strategy<Value = Duration> {
    let max = Duration::from_secs(36_500 * 86_400);
    prop_oneof![
        2 => any_duration(),
        2 => (0..20_000_000u64).prop_map(Duration::from_nanos),
        2 => (0..4_000_000_000u64).prop_map(move |nanos| max - Duration::from_secs(2) + Duration::from_nanos(nanos)),
        1 => (10..3_600_000u64).prop_map(Duration::from_millis),
    ]
}

/// Acquires a fresh id with `ttl` (as an option, or as the manager's default
/// TTL): whether it was accepted. Refused: `InvalidOption("ttl")`, nothing
/// sent. Accepted: the lock reads back with that TTL (to the millisecond the
/// engine keeps).
async fn ttl_outcome(store: &Counted, ttl: Duration, as_default: bool) -> Result<bool, TestCaseError> {
    let id = unique_name("ttl");
    let before = store.calls();
    let (manager, options) = match as_default {
        false => (store.manager.clone(), LockOptions::default().ttl(ttl).renew(false)),
        true => {
            let counting = CountingStore { inner: MemoryStore::new(), calls: Arc::clone(&store.calls) };
            (LockManager::builder().store(counting).default_ttl(ttl).build(), LockOptions::default().renew(false))
        }
    };
    let lease = match manager.acquire(&id, options).await {
        Err(Error::InvalidOption(err)) if err.option == "ttl" => {
            prop_assert_eq!(store.calls(), before, "{}: refused ttl {:?} but sent a request", store.name, ttl);
            return Ok(false);
        }
        // A lease of a few milliseconds may be over before its reply is in.
        // Its give-back runs in the background: done before the next case
        // counts requests.
        Err(Error::LeaseLost(_)) if ttl < Duration::from_secs(1) => {
            manager.flush().await;
            return Ok(true);
        }
        outcome => outcome.map_err(|err| fail(format!("{}: ttl {ttl:?}: {err:?}", store.name)))?,
    };
    if ttl >= Duration::from_secs(5) {
        let info = manager.get(&id).await.map_err(fail)?.ok_or_else(|| fail(format!("{}: no lock with ttl {ttl:?}", store.name)))?;
        let read_back = info.expires_at.duration_since(info.created_at).map_err(fail)?;
        prop_assert!(read_back <= ttl && ttl - read_back < Duration::from_millis(1), "{}: ttl {:?} read back as {:?}", store.name, ttl, read_back);
    }
    lease.release().await.map_err(fail)?;
    Ok(true)
}

#[test]
fn ttls_are_accepted_within_the_bounds_in_memory() {
    let (runtime, store, tally) = (runtime(), Counted::memory(), Tally::default());
    check(MEMORY, any_ttl(), |ttl| {
        let documented = is_documented_ttl(ttl);
        prop_assert_eq!(rules::check_ttl(ttl).is_ok(), documented, "check_ttl({:?})", ttl);
        for as_default in [false, true] {
            let accepted = runtime.block_on(ttl_outcome(&store, ttl, as_default))?;
            prop_assert_eq!(accepted, documented, "ttl {:?} (as the default TTL: {})", ttl, as_default);
        }
        tally.add(documented);
        Ok(())
    });
    tally.assert_both("ttls");
}

#[test]
fn ttls_are_accepted_alike_by_both_stores() {
    let (runtime, tally) = (runtime(), Tally::default());
    let (memory, engine) = (Counted::memory(), Counted::engine());
    check(ENGINE, any_ttl(), |ttl| {
        let in_memory = runtime.block_on(ttl_outcome(&memory, ttl, false))?;
        let on_engine = runtime.block_on(ttl_outcome(&engine, ttl, false))?;
        prop_assert_eq!((in_memory, on_engine), (is_documented_ttl(ttl), is_documented_ttl(ttl)), "ttl {:?}", ttl);
        tally.add(on_engine);
        Ok(())
    });
    tally.assert_both("ttls");
}

// ---------------------------------------------------------------------------
// Metadata.

/// Strings of any characters (controls, combining marks, emoji), now and
/// then a long run of one character of one to four bytes.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => vec(any::<char>(), 0..16).prop_map(String::from_iter),
        2 => "[a-zé锁🔒\"\\\\]{0,16}",
        1 => (any::<char>(), 0..1_200usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// Keys: mostly short, sometimes empty or around the 256-byte limit.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => vec(any::<char>(), 1..10).prop_map(String::from_iter),
        1 => Just(String::new()),
        1 => (250..=260usize).prop_map(|n| "k".repeat(n)),
        1 => (84..=88usize).prop_map(|n| "锁".repeat(n)),
    ]
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        json_text().prop_map(Value::String),
    ]
}

fn object(entries: Vec<(String, Value)>) -> Value {
    Value::Object(entries.into_iter().collect())
}

/// Any JSON: a small random tree at the bottom of a chain of up to 40
/// one-entry objects and arrays, so depths reach past the limit.
fn json_value() -> impl Strategy<Value = Value> {
    let tree = json_scalar().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![vec(inner.clone(), 0..6).prop_map(Value::Array), vec((json_key(), inner), 0..6).prop_map(object)]
    });
    (tree, vec(prop::option::of("[a-z]{1,2}"), 0..40)).prop_map(|(tree, chain)| {
        chain.into_iter().fold(tree, |inner, key| match key {
            Some(key) => json!({ key: inner }),
            None => json!([inner]),
        })
    })
}

/// Metadata of every kind: mostly objects, also any JSON at all, and
/// objects right around the size and the depth limit.
fn any_metadata() -> impl Strategy<Value = Value> {
    let limit = rules::MAX_METADATA_BYTES;
    prop_oneof![
        6 => vec((json_key(), json_value()), 0..4).prop_map(object),
        2 => json_value(),
        // `{"pad":"…"}` is the padding plus 10 bytes.
        1 => (limit - 20..=limit + 20).prop_map(|bytes| json!({ "pad": "x".repeat(bytes - 10) })),
        1 => (29..=35usize).prop_map(|levels| (1..levels).fold(json!({}), |inner, _| json!({ "d": inner }))),
    ]
}

/// Acquires a fresh id with `metadata`: whether it was accepted. Refused:
/// `InvalidMetadata` naming the id, nothing sent. Accepted: `get` returns
/// the metadata unchanged.
async fn metadata_outcome(store: &Counted, metadata: &Value) -> Result<bool, TestCaseError> {
    let id = unique_name("metadata");
    let before = store.calls();
    match store.manager.acquire(&id, LockOptions::default().metadata(metadata.clone())).await {
        Ok(lease) => {
            let info = store.manager.get(&id).await.map_err(fail)?.ok_or_else(|| fail("get: no lock"))?;
            prop_assert_eq!(&info.metadata, metadata, "{}: metadata changed on the way", store.name);
            prop_assert!(lease.release().await.map_err(fail)?, "{}: release", store.name);
            Ok(true)
        }
        Err(Error::InvalidMetadata(err)) => {
            prop_assert_eq!(&err.lock_id, &id);
            prop_assert_eq!(store.calls(), before, "{}: refused metadata but sent a request", store.name);
            Ok(false)
        }
        Err(other) => Err(fail(format!("{}: {other:?}", store.name))),
    }
}

#[test]
fn metadata_is_accepted_as_documented_and_read_back_in_memory() {
    let (runtime, store, tally) = (runtime(), Counted::memory(), Tally::default());
    check(MEMORY, any_metadata(), |metadata| {
        let accepted = runtime.block_on(metadata_outcome(&store, &metadata))?;
        prop_assert_eq!(accepted, is_documented_metadata(&metadata));
        tally.add(accepted);
        Ok(())
    });
    tally.assert_both("metadata");
}

#[test]
fn metadata_is_accepted_alike_and_read_back_by_both_stores() {
    let (runtime, tally) = (runtime(), Tally::default());
    let (memory, engine) = (Counted::memory(), Counted::engine());
    check(ENGINE, any_metadata(), |metadata| {
        let in_memory = runtime.block_on(metadata_outcome(&memory, &metadata))?;
        let on_engine = runtime.block_on(metadata_outcome(&engine, &metadata))?;
        let documented = is_documented_metadata(&metadata);
        prop_assert_eq!((in_memory, on_engine), (documented, documented));
        tally.add(on_engine);
        Ok(())
    });
    tally.assert_both("metadata");
}
