//! The decision cache: quick_cache (what `warden::cache` uses) against a size-bounded
//! sharded dashmap, on hits, on churn (misses that insert and evict), and on hits from two
//! threads at once; and what a hit saves over evaluating against the example snapshot.
//!
//! Run: `cargo bench --bench cache`.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use dashmap::DashMap;
use quick_cache::{DefaultHashBuilder, Equivalent};
use warden::cache::{CacheCounters, DecisionCache, Identity, Key, Lookup};
use warden::caller::Caller;
use warden::context::{CallerContext, Context, ContextValue};
use warden::eval::{Decision, Outcome, Reason};
use warden::service::{Item, Limits, Request, Service, ServiceConfig, Shape};
use warden::snapshot::Snapshot;

/// The alternative: dashmap keyed by the request's hash (with the hasher quick_cache
/// uses, so both pay the same for hashing), the full key kept to check a hit, bounded by
/// evicting an arbitrary entry when full.
struct DashCache {
    map: DashMap<u64, (Key, Arc<Outcome>), DefaultHashBuilder>,
    len: AtomicUsize,
    capacity: usize,
    hasher: DefaultHashBuilder,
}

impl DashCache {
    fn new(capacity: usize) -> DashCache {
        DashCache {
            map: DashMap::with_capacity_and_hasher(capacity, DefaultHashBuilder::default()),
            len: AtomicUsize::new(0),
            capacity,
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn get(&self, l: &Lookup<'_>) -> Option<Arc<Outcome>> {
        let h = self.hasher.hash_one(l);
        let e = self.map.get(&h)?;
        l.equivalent(&e.0).then(|| e.1.clone())
    }

    fn insert(&self, l: &Lookup<'_>, o: Arc<Outcome>) {
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            let victim = self.map.iter().next().map(|e| *e.key());
            if let Some(v) = victim
                && self.map.remove(&v).is_some()
            {
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if self
            .map
            .insert(self.hasher.hash_one(l), (l.to_key(), o))
            .is_none()
        {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }
}

trait Cache: Sync {
    fn get(&self, l: &Lookup<'_>) -> Option<Arc<Outcome>>;
    fn insert(&self, l: &Lookup<'_>, o: Arc<Outcome>);
}

impl Cache for DashCache {
    fn get(&self, l: &Lookup<'_>) -> Option<Arc<Outcome>> {
        DashCache::get(self, l)
    }
    fn insert(&self, l: &Lookup<'_>, o: Arc<Outcome>) {
        DashCache::insert(self, l, o)
    }
}

impl Cache for DecisionCache {
    fn get(&self, l: &Lookup<'_>) -> Option<Arc<Outcome>> {
        DecisionCache::get(self, l)
    }
    fn insert(&self, l: &Lookup<'_>, o: Arc<Outcome>) {
        DecisionCache::insert(self, l, o)
    }
}

/// Requests that differ by resource, with a two-key context as a service would send.
fn resources(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("arn:aws:orders:us-east-1:333333333333:order/{i}"))
        .collect()
}

fn raw_context() -> Context {
    let mut c = Context::new();
    c.insert("aws:SourceVpc", ContextValue::Single("vpc-0a1b2c".into()));
    c.insert(
        "aws:TagKeys",
        ContextValue::Multi(vec!["team".into(), "env".into()]),
    );
    c
}

fn context() -> Context {
    raw_context()
}

const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
static NO_CONTEXT: Context = Context::new();

fn lookup<'a>(resource: &'a str, context: &'a Context) -> Lookup<'a> {
    Lookup {
        revision: 1,
        identity: Identity::Principal(ALICE),
        action: "orders:GetOrder",
        resource,
        shared: context,
        own: &NO_CONTEXT,
    }
}

fn outcome() -> Arc<Outcome> {
    Arc::new(Outcome {
        decision: Decision::Allow,
        reason: Reason::IdentityAllow,
        denied_by: None,
        statements: Vec::new(),
    })
}

fn hits(c: &mut Criterion, name: &str, cache: &dyn Cache) {
    let ctx = context();
    let res = resources(1024);
    for r in &res {
        cache.insert(&lookup(r, &ctx), outcome());
    }
    let mut i = 0usize;
    c.bench_function(&format!("cache/{name}/hit"), |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let r = res.get(i).map_or("", String::as_str);
            black_box(cache.get(&lookup(r, &ctx)))
        })
    });
}

fn churn(c: &mut Criterion, name: &str, cache: &dyn Cache) {
    // Ten times more distinct requests than room: most lookups miss, insert and evict.
    let ctx = context();
    let res = resources(10_000);
    let mut i = 0usize;
    c.bench_function(&format!("cache/{name}/miss_insert_evict"), |b| {
        b.iter(|| {
            i = (i + 1) % 10_000;
            let r = res.get(i).map_or("", String::as_str);
            let l = lookup(r, &ctx);
            if cache.get(&l).is_none() {
                cache.insert(&l, outcome());
            }
        })
    });
}

fn parallel_hits(c: &mut Criterion, name: &str, cache: &dyn Cache) {
    let ctx = context();
    let res = resources(1024);
    for r in &res {
        cache.insert(&lookup(r, &ctx), outcome());
    }
    c.bench_function(&format!("cache/{name}/hit_2_threads"), |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2usize {
                    let (res, ctx) = (&res, &ctx);
                    s.spawn(move || {
                        for n in 0..iters {
                            let i = (n as usize + t * 512) & 1023;
                            let r = res.get(i).map_or("", String::as_str);
                            black_box(cache.get(&lookup(r, ctx)));
                        }
                    });
                }
            });
            // Time per lookup per thread, comparable with the one-thread figure.
            started.elapsed()
        })
    });
}

fn caches(c: &mut Criterion) {
    let quick = DecisionCache::new(1000, CacheCounters::default());
    let dash = DashCache::new(1000);
    for (name, cache) in [
        ("quick_cache", &quick as &dyn Cache),
        ("dashmap", &dash as &dyn Cache),
    ] {
        churn(c, name, cache);
    }
    let quick = DecisionCache::new(4096, CacheCounters::default());
    let dash = DashCache::new(4096);
    for (name, cache) in [
        ("quick_cache", &quick as &dyn Cache),
        ("dashmap", &dash as &dyn Cache),
    ] {
        hits(c, name, cache);
        parallel_hits(c, name, cache);
    }
}

/// What a hit saves: evaluating the same request against the example organization.
fn evaluation(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let Ok(snapshot) = Snapshot::load_dir(&dir, 1) else {
        eprintln!("examples/org does not load; skipping the evaluation bench");
        return;
    };
    let screened = CallerContext::screen(context(), |_| {});
    let resource = "arn:aws:orders:us-east-1:333333333333:order/42";
    let now = SystemTime::now();
    c.bench_function("evaluate/example_org/allow", |b| {
        b.iter(|| {
            black_box(snapshot.ask(
                ALICE,
                "orders:GetOrder",
                black_box(resource),
                &screened,
                now,
            ))
        })
    });

    // The whole request path around it, as a face hands a request over: answered from
    // the cache, and evaluated each time (no cache).
    let request = Request {
        caller: Caller::Asserted(ALICE.into()),
        context: raw_context(),
        items: vec![Item {
            action: "orders:GetOrder".into(),
            resource: resource.into(),
            context: Context::new(),
        }],
        min_revision: 0,
        explain: false,
        shape: Shape::One,
        face: warden::telemetry::Face::Authorize,
        snapshot: None,
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        eprintln!("no runtime; skipping the service benches");
        return;
    };
    for (name, cache_size) in [
        ("service/handle_cache_hit", 1000),
        ("service/handle_no_cache", 0),
    ] {
        let Ok(s) = Snapshot::load_dir(&dir, 1) else {
            return;
        };
        let service = Service::serving(
            s,
            ServiceConfig {
                cache_size,
                limits: Limits::default(),
            },
        );
        c.bench_function(name, |b| {
            b.iter(|| {
                let r = black_box(request.clone());
                black_box(runtime.block_on(service.handle(|_| Ok(r))))
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = caches, evaluation
}
criterion_main!(benches);
