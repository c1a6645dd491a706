use std::collections::BTreeMap;

use super::store::{self, Query};
use super::*;
use crate::health::Health;

fn seen(value: &str) -> Observed {
    Observed {
        value: Some(value.into()),
        detail: None,
        boots: Vec::new(),
    }
}

fn key(kind: Kind, stack: &str, subject: &str) -> Key {
    (kind, stack.into(), subject.into())
}

#[test]
fn a_first_sighting_a_change_and_no_change() {
    let mut recorded = Recorded::new();
    let mut now = BTreeMap::new();
    now.insert(key(Kind::Health, "prod", "broker"), seen("green"));
    let first = diff(&recorded, &now, 100.0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].from, None);
    assert_eq!(first[0].to.as_deref(), Some("green"));
    record(&mut recorded, &first);

    assert!(diff(&recorded, &now, 110.0).is_empty(), "nothing changed");

    now.insert(key(Kind::Health, "prod", "broker"), seen("red"));
    let change = diff(&recorded, &now, 120.0);
    assert_eq!(change.len(), 1);
    assert_eq!(
        (
            change[0].from.as_deref(),
            change[0].to.as_deref(),
            change[0].at
        ),
        (Some("green"), Some("red"), 120.0)
    );

    // A subject that is not observed (stale facts, not yet run) is no event.
    assert!(diff(&recorded, &BTreeMap::new(), 130.0).is_empty());
}

#[test]
fn every_boot_newer_than_the_last_recorded_is_one_event_at_its_time() {
    let mut recorded = Recorded::new();
    let mut now = BTreeMap::new();
    let boots = |b: Vec<f64>| Observed {
        value: None,
        detail: None,
        boots: b,
    };
    now.insert(key(Kind::Boot, "prod", "a"), boots(vec![10.0, 20.0]));
    let e = diff(&recorded, &now, 25.0);
    assert_eq!(e.iter().map(|e| e.at).collect::<Vec<_>>(), [10.0, 20.0]);
    record(&mut recorded, &e);
    now.insert(key(Kind::Boot, "prod", "a"), boots(vec![10.0, 20.0, 30.0]));
    let e = diff(&recorded, &now, 35.0);
    assert_eq!(e.iter().map(|e| e.at).collect::<Vec<_>>(), [30.0]);
}

#[test]
fn availability_and_strip_follow_the_transitions() {
    let mut t = Timeline::default();
    let h = 3600.0;
    t.push(0.0, Some("green"));
    t.push(10.0 * h, Some("red"));
    t.push(11.0 * h, Some("green"));
    t.push(11.0 * h, Some("green")); // no change: ignored
    t.push(20.0 * h, Some("degraded"));
    assert_eq!(t.len(), 4);
    let now = 24.0 * h;
    // One red hour out of 24.
    let a = t.availability(24.0 * h, now).unwrap();
    assert!((a - 23.0 / 24.0).abs() < 1e-9, "{a}");
    // Over 30 days only the 24 known hours count.
    let m = t.availabilities(now).month.unwrap();
    assert!((m - 23.0 / 24.0).abs() < 1e-9, "{m}");
    let strip = t.strip(now, 24, h);
    assert_eq!(strip[10], Some(Health::Red));
    assert_eq!(strip[9], Some(Health::Green));
    assert_eq!(strip[20], Some(Health::Degraded));
    assert_eq!(t.at(10.5 * h), Some(Health::Red));
    assert_eq!(t.at(-1.0), None);
    // Forgetting keeps the state in force at the cut.
    t.forget_before(10.5 * h);
    assert_eq!(t.at(10.6 * h), Some(Health::Red));
    assert_eq!(t.len(), 3);
    // Nothing known: no figure rather than 100 %.
    assert_eq!(Timeline::default().availability(h, now), None);
}

#[test]
fn a_wall_clock_set_back_keeps_the_transitions_in_order_and_the_figures_in_bounds() {
    let h = 3600.0;
    let mut t = Timeline::default();
    t.push(10.0 * h, Some("green"));
    t.push(12.0 * h, Some("red"));
    // The clock is set back two hours: the next transitions are noticed
    // "before" the last one.
    t.push(10.5 * h, Some("green"));
    t.push(11.0 * h, Some("red"));
    assert_eq!(t.at(12.0 * h + 1.0), Some(Health::Red));
    for now in [10.6 * h, 11.5 * h, 12.5 * h, 30.0 * h] {
        for window in [h, 24.0 * h, 30.0 * 86400.0] {
            let spent = t.durations(now - window, now);
            assert!(spent.iter().all(|s| *s >= 0.0), "{spent:?}");
            assert!(spent.iter().sum::<f64>() <= window + 1e-9, "{spent:?}");
            if let Some(a) = t.availability(window, now) {
                assert!((0.0..=1.0).contains(&a), "{a} at {now} over {window}");
            }
        }
        assert_eq!(t.strip(now, 24, h).len(), 24);
    }
    // And a jump forward is just a long state.
    t.push(1000.0 * h, Some("green"));
    let a = t.availability(24.0 * h, 1001.0 * h).unwrap();
    assert!((0.0..=1.0).contains(&a), "{a}");
}

fn conn() -> rusqlite::Connection {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.execute_batch(store::CREATE).unwrap();
    c
}

fn event(at: f64, stack: &str, kind: Kind, subject: &str, from: Option<&str>, to: &str) -> Event {
    Event {
        id: 0,
        at,
        stack: stack.into(),
        kind,
        subject: subject.into(),
        from: from.map(Into::into),
        to: Some(to.into()),
        detail: None,
        changes: 0,
    }
}

#[test]
fn stored_events_page_newest_first_and_pruning_keeps_counts_and_the_latest() {
    let c = conn();
    let mut evs = vec![
        event(100.0, "prod", Kind::Health, "broker", None, "green"),
        event(200.0, "prod", Kind::Health, "broker", Some("green"), "red"),
        event(300.0, "prod", Kind::Health, "broker", Some("red"), "green"),
        event(400.0, "test-1", Kind::Deploy, "broker", None, "abc"),
        event(500.0, "test-1", Kind::Deploy, "broker", Some("abc"), "def"),
    ];
    number(&mut evs, &HistoryView::default());
    assert_eq!(
        evs.iter().map(|e| e.changes).collect::<Vec<_>>(),
        [0, 1, 2, 0, 1],
        "each event carries its subject's count of changes"
    );
    store::insert(&c, &mut evs).unwrap();
    assert!(evs.windows(2).all(|w| w[0].id < w[1].id));

    let q = Query {
        limit: 2,
        ..Query::default()
    };
    let (page1, next) = store::query(&c, &q).unwrap();
    assert_eq!(
        page1.iter().map(|e| e.at).collect::<Vec<_>>(),
        [500.0, 400.0]
    );
    let (page2, next2) = store::query(
        &c,
        &Query {
            before: next,
            ..q.clone()
        },
    )
    .unwrap();
    assert_eq!(
        page2.iter().map(|e| e.at).collect::<Vec<_>>(),
        [300.0, 200.0]
    );
    let (page3, next3) = store::query(
        &c,
        &Query {
            before: next2,
            ..q.clone()
        },
    )
    .unwrap();
    assert_eq!(page3.len(), 1);
    assert_eq!(next3, None);
    // A page that holds exactly the rest is the last.
    let all = store::query(
        &c,
        &Query {
            limit: 5,
            ..Query::default()
        },
    )
    .unwrap();
    assert_eq!((all.0.len(), all.1), (5, None));
    assert_eq!(store::count(&c).unwrap(), 5);

    let only = store::query(
        &c,
        &Query {
            stack: Some("prod".into()),
            kind: Some(Kind::Health),
            since: Some(150.0),
            until: Some(300.0),
            limit: 10,
            ..Query::default()
        },
    )
    .unwrap()
    .0;
    assert_eq!(only.iter().map(|e| e.at).collect::<Vec<_>>(), [200.0]);

    // Pruning everything before 450 keeps each subject's newest event.
    assert_eq!(store::prune(&c, 450.0).unwrap(), 3);
    assert_eq!(store::count(&c).unwrap(), 2);
    let loaded = store::load(&c, 1000.0).unwrap();
    let latest: Vec<_> = loaded.latest.iter().map(|(_, at, _)| *at).collect();
    assert_eq!(latest.len(), 2);
    assert!(latest.contains(&300.0) && latest.contains(&500.0));
    // The counts survive: two health changes, one deploy (first sightings
    // are not changes).
    assert_eq!(loaded.changes[&key(Kind::Health, "prod", "broker")], 2);
    assert_eq!(loaded.changes[&key(Kind::Deploy, "test-1", "broker")], 1);
    let recorded = loaded.recorded();
    assert_eq!(
        recorded[&key(Kind::Health, "prod", "broker")].as_deref(),
        Some("green")
    );
}

#[test]
fn the_view_counts_changes_keeps_since_and_the_newest_per_stack() {
    let mut v = HistoryView {
        active: true,
        ..HistoryView::default()
    };
    let evs: Vec<Event> = (0..20)
        .map(|i| {
            let to = if i % 2 == 0 { "green" } else { "red" };
            let from = (i > 0).then_some(if i % 2 == 0 { "red" } else { "green" });
            event(i as f64 * 60.0, "prod", Kind::Health, "broker", from, to)
        })
        .collect();
    v.apply(evs.clone(), 20.0 * 60.0);
    assert_eq!(v.changes(Kind::Health, "prod", "broker"), 19);
    assert_eq!(v.since(Kind::Health, "prod", "broker"), Some(19.0 * 60.0));
    let recent: Vec<_> = v.recent("prod").collect();
    assert_eq!(recent.len(), RECENT_PER_STACK);
    assert_eq!(recent[0].at, 19.0 * 60.0, "newest first");
    // Published views share the environments no event touched.
    let published = v.clone();
    v.apply(
        vec![event(2000.0, "test-1", Kind::Deploy, "signer", None, "abc")],
        2000.0,
    );
    assert!(Arc::ptr_eq(&published.stacks["prod"], &v.stacks["prod"]));
    assert_eq!(v.since(Kind::Deploy, "test-1", "signer"), Some(2000.0));
    assert_eq!(
        v.changes(Kind::Deploy, "test-1", "signer"),
        0,
        "a first sighting"
    );
    let a = v
        .health_of("prod", "broker")
        .unwrap()
        .availability(20.0 * 60.0, 20.0 * 60.0)
        .unwrap();
    assert!((a - 0.5).abs() < 1e-9, "{a}");
}

#[test]
fn query_parameters_are_checked_and_every_problem_named() {
    let now = 10_000.0;
    let q = api::parse_query(
        Some("stack=prod&kind=deploy&since=2h&limit=5&cursor=1234.5_9"),
        now,
    )
    .unwrap();
    assert_eq!(q.stack.as_deref(), Some("prod"));
    assert_eq!(q.kind, Some(Kind::Deploy));
    assert_eq!(q.since, Some(now - 7200.0));
    assert_eq!((q.limit, q.before), (5, Some((1234.5, 9))));
    assert_eq!(api::cursor(1234.5, 9), "1234.5_9");
    let t = api::parse_query(Some("since=2026-11-26T10:00:00Z&until=1795700000"), now).unwrap();
    assert_eq!(t.since, Some(1_795_687_200.0));
    assert_eq!(t.until, Some(1_795_700_000.0));

    let bad = api::parse_query(Some("foo=1&kind=x&limit=0&since=soon&cursor=-1"), now).unwrap_err();
    assert_eq!(bad.len(), 5, "{bad:?}");
    assert!(bad[0].starts_with("foo: unknown parameter"), "{bad:?}");
    let twice = api::parse_query(Some("stack=a&stack=b"), now).unwrap_err();
    assert_eq!(twice, ["stack: given twice"]);
    let order = api::parse_query(Some("since=200&until=100"), now).unwrap_err();
    assert_eq!(order, ["since: lies after until"]);
    let empty = api::parse_query(Some("since=200&until=200"), now).unwrap();
    assert_eq!((empty.since, empty.until), (Some(200.0), Some(200.0)));
    let plain = api::parse_query(None, now).unwrap();
    assert_eq!(
        plain,
        Query {
            limit: api::DEFAULT_LIMIT,
            ..Query::default()
        }
    );
    for c in ["5_0", "5_-1", "x_1", "inf_1", "5"] {
        let bad = api::parse_query(Some(&format!("cursor={c}")), now).unwrap_err();
        assert!(bad[0].starts_with("cursor:"), "{c}: {bad:?}");
    }
}

#[test]
fn timelines_are_equal_when_their_points_are() {
    let line = |points: &[(f64, &str)]| {
        let mut t = Timeline::default();
        for (at, state) in points {
            t.push(*at, Some(state));
        }
        t
    };
    let a = line(&[(1.0, "green"), (2.0, "red")]);
    assert_eq!(a, line(&[(1.0, "green"), (2.0, "red")]));
    assert_ne!(a, line(&[(1.0, "green"), (3.0, "red")]));
    assert_ne!(a, line(&[(1.0, "green"), (2.0, "amber")]));
    assert_ne!(a, line(&[(1.0, "green")]));
    // Settled or fresh, the same points are the same timeline.
    let mut settled = a.clone();
    settled.settle();
    assert_eq!(settled, a);
}

#[test]
fn public_mode_hides_addresses_in_events() {
    let r = crate::board::Redactor::new().unwrap();
    let mut e = event(
        1.0,
        "prod",
        Kind::CertRotation,
        "10.0.0.7:443",
        Some("a"),
        "b",
    );
    e.detail = Some("see https://ci.example/run/1 on 10.0.0.7".into());
    e.redact(&r);
    assert_eq!(e.subject, crate::board::HIDDEN);
    assert!(!e.detail.as_deref().unwrap().contains("10.0.0.7"));
    assert!(!e.detail.as_deref().unwrap().contains("https://"));
    let mut named = event(
        1.0,
        "prod",
        Kind::CertRotation,
        "api.example.com:443",
        None,
        "b",
    );
    named.redact(&r);
    assert_eq!(named.subject, "api.example.com:443");
    // An endpoint with an address in it is hidden whole, even when it is
    // not an address and port.
    let mut partly = event(
        1.0,
        "prod",
        Kind::CertRotation,
        "10.0.0.7 port 443",
        None,
        "b",
    );
    partly.redact(&r);
    assert_eq!(partly.subject, crate::board::HIDDEN);
}

#[test]
fn a_time_is_rfc_3339_unix_seconds_or_a_duration_back_from_now() {
    let now = 1_000_000.0;
    let ok = [
        ("1970-01-01T00:00:10.250Z", 10.25),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("1234.5", 1234.5),
        ("0", 0.0),
        ("90s", now - 90.0),
        ("15m", now - 900.0),
        ("2h", now - 7200.0),
        ("7d", now - 604_800.0),
        ("1w", now - 604_800.0),
    ];
    for (v, want) in ok {
        assert_eq!(api::parse_time(v, now), Ok(want), "{v}");
    }
    for v in ["-5", "inf", "NaN", "5x", "s", "", "1.5h", "yesterday"] {
        let err = api::parse_time(v, now).unwrap_err();
        assert!(err.contains("is not a time"), "{v}: {err}");
    }
}

#[test]
fn changes_read_as_sentences() {
    assert_eq!(
        words(
            Kind::Health,
            "broker",
            Some("green"),
            Some("red"),
            Some("HTTP 503")
        ),
        "broker: green → red (HTTP 503)"
    );
    assert_eq!(
        words(
            Kind::Deploy,
            "broker",
            Some("4f2c9e1"),
            Some("9b1d0aa"),
            None
        ),
        "broker deployed 9b1d0aa (was 4f2c9e1)"
    );
    assert_eq!(
        words(Kind::Slot, "slot", Some("42"), Some("free"), None),
        "CI slot released by run 42"
    );
}

#[test]
fn every_kind_reads_as_a_sentence_first_seen_and_changed() {
    let cases = [
        (
            Kind::Health,
            None,
            Some("green"),
            None,
            "s: first seen green",
        ),
        (Kind::Health, Some("red"), None, None, "s: red → unknown"),
        (Kind::Deploy, None, Some("v1"), None, "s first seen on v1"),
        (
            Kind::BoxDeploy,
            Some("v1"),
            Some("v2"),
            None,
            "box s deployed v2 (was v1)",
        ),
        (
            Kind::BoxDeploy,
            None,
            Some("v1"),
            None,
            "box s first seen on v1",
        ),
        (
            Kind::CertRotation,
            Some("2026-01-01T00:00:00Z"),
            Some("2026-04-01T00:00:00Z"),
            None,
            "certificate of s rotated: expires 2026-04-01 (was 2026-01-01)",
        ),
        (
            Kind::CertRotation,
            None,
            Some("2026-04-01T00:00:00Z"),
            None,
            "certificate of s first seen, expires 2026-04-01",
        ),
        (
            Kind::CertRotation,
            None,
            Some("soon"),
            None,
            "certificate of s first seen, expires soon",
        ),
        (
            Kind::Slot,
            None,
            Some("7"),
            Some("queued 2"),
            "CI slot taken by run 7 (queued 2)",
        ),
        (
            Kind::Slot,
            None,
            Some("free"),
            None,
            "CI slot taken by run free",
        ),
        (
            Kind::Drift,
            None,
            Some("drifted"),
            Some("dns"),
            "dns a drift raised (dns)",
        ),
        (
            Kind::Drift,
            Some("drifted"),
            Some("in_sync"),
            None,
            "dns a drift cleared",
        ),
        (
            Kind::Source,
            Some("ok"),
            Some("error"),
            Some("timeout"),
            "source s error (timeout)",
        ),
        (
            Kind::Source,
            None,
            Some("ok"),
            None,
            "source s first run: ok",
        ),
        (
            Kind::Doctor,
            Some("ok"),
            Some("fail"),
            Some("disk"),
            "doctor on s: ok → fail (disk)",
        ),
        (
            Kind::Doctor,
            None,
            Some("ok"),
            None,
            "doctor on s: first seen ok",
        ),
        (
            Kind::Boot,
            None,
            Some("1"),
            Some("kernel 6.1"),
            "box s booted (kernel 6.1)",
        ),
    ];
    for (kind, from, to, detail, want) in cases {
        let subject = if kind == Kind::Drift { "dns_a" } else { "s" };
        assert_eq!(
            words(kind, subject, from, to, detail),
            want,
            "{kind:?} {from:?} → {to:?}"
        );
    }
}

#[test]
fn times_read_as_rfc_3339_to_the_second() {
    assert_eq!(fmt_time(0.0), "1970-01-01T00:00:00Z");
    assert_eq!(fmt_time(1_790_000_000.9), "2026-09-21T14:13:20Z");
    assert_eq!(fmt_time(f64::MAX), "");
}

#[test]
fn the_view_is_rebuilt_from_the_store_as_the_historian_left_it() {
    let c = conn();
    let day = 86400.0;
    let mut evs = vec![
        event(0.0, "prod", Kind::Health, "broker", None, "green"),
        event(day, "prod", Kind::Health, "broker", Some("green"), "red"),
        event(2.0 * day, "prod", Kind::Deploy, "broker", None, "abc"),
        event(
            40.0 * day,
            "prod",
            Kind::Health,
            "broker",
            Some("red"),
            "green",
        ),
        event(
            41.0 * day,
            "prod",
            Kind::Deploy,
            "broker",
            Some("abc"),
            "def",
        ),
        event(42.0 * day, "prod", Kind::Boot, "box-1", None, "42"),
        event(day, "prod", Kind::Health, "db", None, "green"),
    ];
    number(&mut evs, &HistoryView::default());
    store::insert(&c, &mut evs).unwrap();
    let now = 45.0 * day;
    let v = HistoryView::load(store::load(&c, now).unwrap());
    assert!(v.active, "a view read from a store keeps history");
    // A service's health and its commit are two subjects of one name.
    assert_eq!(v.since(Kind::Health, "prod", "broker"), Some(40.0 * day));
    assert_eq!(v.since(Kind::Deploy, "prod", "broker"), Some(41.0 * day));
    assert_eq!(v.changes(Kind::Health, "prod", "broker"), 2);
    assert_eq!(v.changes(Kind::Deploy, "prod", "broker"), 1);
    // A boot is an event, not a state that began.
    assert_eq!(v.since(Kind::Boot, "prod", "box-1"), None);
    // Over the last 30 days: red from day 15 (in force since day 1) to
    // day 40, then green: 5 of 30 days.
    let t = v.health_of("prod", "broker").unwrap();
    let a = t.availability(WINDOW_SECONDS, now).unwrap();
    assert!((a - 5.0 / 30.0).abs() < 1e-9, "{a}");
    assert_eq!(v.recent("prod").count(), 7);
    // Only the transitions since the window's start (day 15) are read back,
    // after the one in force then.
    assert_eq!(t.len(), 2);
    // A service whose last change is older than the window is in that
    // state throughout; other kinds of subject have no health timeline.
    let db = v.health_of("prod", "db").unwrap();
    assert_eq!(db.availability(WINDOW_SECONDS, now), Some(1.0));
    assert!(v.health_of("prod", "box-1").is_none());

    let loaded = store::load(&c, now).unwrap();
    // Only subjects that changed (a boot is one) have a count: not db,
    // seen once.
    assert_eq!(
        loaded.changes.keys().collect::<Vec<_>>(),
        [
            &key(Kind::Health, "prod", "broker"),
            &key(Kind::Deploy, "prod", "broker"),
            &key(Kind::Boot, "prod", "box-1")
        ]
    );
    // A box's last boot is compared by its time.
    let recorded = loaded.recorded();
    assert_eq!(
        recorded[&key(Kind::Boot, "prod", "box-1")].as_deref(),
        Some("3628800")
    );
    assert_eq!(
        recorded[&key(Kind::Deploy, "prod", "broker")].as_deref(),
        Some("def")
    );
}

#[test]
fn each_environment_gets_its_newest_events_however_old() {
    let c = conn();
    // One environment's only event lies behind 10,500 newer ones of 49
    // others: the start-up scan reads far enough back for every
    // environment's share (20 shares an environment, at least 10,000 rows).
    let mut evs = vec![event(1.0, "quiet", Kind::Deploy, "api", None, "abc")];
    for i in 0..10_500 {
        let stack = format!("busy-{}", i % 49);
        evs.push(event(
            2.0 + f64::from(i),
            &stack,
            Kind::Health,
            "api",
            None,
            "green",
        ));
    }
    store::insert(&c, &mut evs).unwrap();
    let loaded = store::load(&c, 20_000.0).unwrap();
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &loaded.recent {
        *per.entry(e.stack.as_str()).or_default() += 1;
    }
    assert_eq!(per.len(), 50, "{per:?}");
    assert_eq!(per["quiet"], 1);
    assert!(
        per.iter()
            .filter(|(s, _)| **s != "quiet")
            .all(|(_, n)| *n == RECENT_PER_STACK),
        "{per:?}"
    );
    // Newest first within each environment.
    let busy: Vec<f64> = loaded
        .recent
        .iter()
        .filter(|e| e.stack == "busy-0")
        .map(|e| e.at)
        .collect();
    assert!(busy.windows(2).all(|w| w[0] > w[1]), "{busy:?}");
}

#[test]
fn transitions_older_than_the_window_leave_memory_but_the_one_in_force() {
    let day = 86400.0;
    let mut v = HistoryView {
        active: true,
        ..HistoryView::default()
    };
    let evs = vec![
        event(0.0, "prod", Kind::Health, "broker", None, "green"),
        event(day, "prod", Kind::Health, "broker", Some("green"), "red"),
        event(
            2.0 * day,
            "prod",
            Kind::Health,
            "broker",
            Some("red"),
            "green",
        ),
        event(
            20.0 * day,
            "prod",
            Kind::Health,
            "broker",
            Some("green"),
            "red",
        ),
    ];
    v.apply(evs, 20.0 * day);
    // All within 30 days of day 20.
    assert_eq!(v.health_of("prod", "broker").unwrap().len(), 4);
    v.apply(
        vec![event(
            40.0 * day,
            "prod",
            Kind::Health,
            "broker",
            Some("red"),
            "green",
        )],
        40.0 * day,
    );
    // Day 10 is the window's start: the green of day 2 is in force then.
    let t = v.health_of("prod", "broker").unwrap();
    assert_eq!(t.len(), 3, "{t:?}");
    assert_eq!(t.at(10.0 * day), Some(crate::health::Health::Green));
}
