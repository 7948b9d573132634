//! Fuzz body `request`: protobuf bytes through the service's whole request path — decoding
//! within the limits (`grpc::wire::authorize`, `wire::batch`), bounds, screening,
//! validation, the catalog, principal resolution and evaluation (`Service::handle`) — on a
//! snapshot of the example bundle `examples/org`. It checks that
//! - nothing panics;
//! - a request that does not decode is an error, never a decision, and one that decodes is
//!   answered with an error or with exactly one decision per item;
//! - a request is decided alike as `Authorize`, as a one-item `BatchAuthorize` with the
//!   context shared or the item's own, handed over already decoded (`warden authorize`),
//!   and by a service without the decision cache: the same response, or errors of the
//!   same kind;
//! - each item of a `BatchAuthorize` that is answered is decided as an `Authorize` of that
//!   item with the shared and the item's context merged.
//!
//! Input: the first byte chooses raw protobuf bytes (the rest of the input, read as both
//! messages) or a request built from the bundle's principals, actions and resources with
//! `arbitrary`, encoded, and perhaps damaged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use arbitrary::{Result, Unstructured};
use prost::Message;
use warden::grpc::{context_to_pb, pb, wire};
use warden::service::{Answer, Clock, Limits, Request, RequestError, Service, ServiceConfig};
use warden::snapshot::Snapshot;
use warden::source::Published;
use warden::telemetry::Telemetry;

/// Runs one input; returns how many decisions were answered (so a replay can tell that
/// its corpus reaches the engine).
pub fn run(data: &[u8]) -> usize {
    let world = world();
    let mut u = Unstructured::new(data);
    let message = match u.int_in_range(0..=3u8) {
        Ok(0) => Input::Raw(u.take_rest().to_vec()),
        Ok(1) => match batch(&mut u, &world.words) {
            Ok(b) => b,
            Err(_) => return 0,
        },
        _ => match authorize(&mut u, &world.words) {
            Ok(b) => b,
            Err(_) => return 0,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(check(world, message))
}

/// The bytes to send, and which message they were built as.
enum Input {
    Raw(Vec<u8>),
    Authorize(Vec<u8>),
    Batch(Vec<u8>),
}

/// Checks one message; returns how many decisions were answered.
async fn check(world: &World, message: Input) -> usize {
    let services = world.services();
    match message {
        Input::Raw(bytes) => {
            let single = one_authorize(&services, &bytes).await;
            let batch = one_batch(&services, &bytes).await;
            single + batch.map_or(0, |(_, a)| a.decisions.len())
        }
        Input::Authorize(bytes) => one_authorize(&services, &bytes).await,
        Input::Batch(bytes) => {
            let Some((request, answer)) = one_batch(&services, &bytes).await else {
                return 0;
            };
            // Each item is decided as an `Authorize` of it, its context merged.
            for (i, item) in request.items.iter().enumerate() {
                let mut context = request.context.clone();
                for (k, v) in item.context.iter() {
                    context.insert(k, v.clone());
                }
                let single = pb::AuthorizeRequest {
                    principal: request.caller.arn().to_owned(),
                    action: item.action.clone(),
                    resource: item.resource.clone(),
                    context: context_to_pb(&context).into_iter().collect(),
                    explain: request.explain,
                    min_revision: request.min_revision,
                    ..Default::default()
                };
                let bytes = single.encode_to_vec();
                let alone = services
                    .cached
                    .handle(|limits| wire::authorize(&bytes, limits))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("an item of an answered batch is refused alone: {e}")
                    });
                // Both without their (unique) decision ids.
                assert_eq!(
                    response(&alone, 0),
                    response(&answer, i),
                    "a batch item and the same request alone"
                );
            }
            answer.decisions.len()
        }
    }
}

/// Decodes `bytes` as an `Authorize` and checks every face decides it alike; returns
/// whether it was answered with a decision (1) or not (0).
async fn one_authorize(services: &Services, bytes: &[u8]) -> usize {
    let limits = *services.cached.limits();
    let decoded = wire::authorize(bytes, &limits);
    let answered = services
        .cached
        .handle(|limits| wire::authorize(bytes, limits))
        .await;
    let request = match decoded {
        Err(e) => {
            // Not a decision: the same error the decoder gave.
            assert_eq!(answered.err(), Some(e), "an undecodable request is refused");
            return 0;
        }
        Ok(r) => r,
    };
    if let Ok(a) = &answered {
        assert_eq!(a.decisions.len(), 1, "one decision for an `Authorize`");
    }
    // The same request as a one-item batch, its context shared, then the item's own.
    let item = request.items.first().expect("an `Authorize` has one item");
    let mut batch = pb::BatchAuthorizeRequest {
        principal: request.caller.arn().to_owned(),
        context: context_to_pb(&request.context).into_iter().collect(),
        items: vec![pb::BatchItem {
            action: item.action.clone(),
            resource: item.resource.clone(),
            context: Default::default(),
        }],
        explain: request.explain,
        min_revision: request.min_revision,
        ..Default::default()
    };
    let shared = batch.encode_to_vec();
    batch.items[0].context = std::mem::take(&mut batch.context);
    let own = batch.encode_to_vec();
    let faces = [
        (
            "a one-item batch",
            services.cached.handle(|l| wire::batch(&shared, l)).await,
        ),
        (
            "a one-item batch with its own context",
            services.cached.handle(|l| wire::batch(&own, l)).await,
        ),
        (
            "the decoded request",
            services.cached.handle(|_| Ok(request.clone())).await,
        ),
        (
            "a service without the cache",
            services.uncached.handle(|_| Ok(request.clone())).await,
        ),
    ];
    for (face, other) in faces {
        same(&answered, &other, face);
    }
    usize::from(answered.is_ok())
}

/// Decodes `bytes` as a `BatchAuthorize`; returns the request and its answer when it is
/// answered.
async fn one_batch(services: &Services, bytes: &[u8]) -> Option<(Request, Answer)> {
    let limits = *services.cached.limits();
    let decoded = wire::batch(bytes, &limits);
    let answered = services
        .cached
        .handle(|limits| wire::batch(bytes, limits))
        .await;
    let request = match decoded {
        Err(e) => {
            assert_eq!(answered.err(), Some(e), "an undecodable request is refused");
            return None;
        }
        Ok(r) => r,
    };
    let uncached = services.uncached.handle(|_| Ok(request.clone())).await;
    same(&answered, &uncached, "a service without the cache");
    let answer = answered.ok()?;
    assert_eq!(
        answer.decisions.len(),
        request.items.len(),
        "one decision per item"
    );
    Some((request, answer))
}

/// Two answers to one request: the same responses, or errors of the same kind.
fn same(
    a: &std::result::Result<Answer, RequestError>,
    b: &std::result::Result<Answer, RequestError>,
    face: &str,
) {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.decisions.len(), b.decisions.len(), "{face}: decisions");
            for i in 0..a.decisions.len() {
                assert_eq!(response(a, i), response(b, i), "{face}: decision {i}");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{face}: {a} and {b}"),
        (a, b) => panic!(
            "{face}: {:?} and {:?}",
            a.as_ref().map(|x| response(x, 0)),
            b.as_ref().map(|x| response(x, 0))
        ),
    }
}

/// The response a client sees for one decision, without its (unique) decision id.
fn response(a: &Answer, i: usize) -> pb::AuthorizeResponse {
    let mut r = warden::grpc::response(a.decisions[i].clone(), a.revision);
    r.decision_id.clear();
    r
}

// === building requests ===

/// Texts a request is made of, from the bundle, with some it does not know.
struct Words {
    principals: Vec<String>,
    actions: Vec<String>,
    resources: Vec<String>,
    keys: Vec<String>,
    values: Vec<String>,
}

fn pick(u: &mut Unstructured<'_>, list: &[String]) -> Result<String> {
    if u.ratio(1, 8u8)? {
        return u.arbitrary();
    }
    Ok(u.choose(list)?.clone())
}

fn context(u: &mut Unstructured<'_>, words: &Words) -> Result<BTreeMap<String, pb::ContextValue>> {
    use pb::context_value::Kind;
    let n = u.int_in_range(0..=4u8)?;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let key = pick(u, &words.keys)?;
        let kind = match u.int_in_range(0..=4u8)? {
            0 => None,
            1 => Some(Kind::List(pb::StringList {
                values: (0..u.int_in_range(0..=3u8)?)
                    .map(|_| pick(u, &words.values))
                    .collect::<Result<_>>()?,
            })),
            _ => Some(Kind::String(pick(u, &words.values)?)),
        };
        out.insert(key, pb::ContextValue { kind });
    }
    Ok(out)
}

fn authorize(u: &mut Unstructured<'_>, words: &Words) -> Result<Input> {
    let m = pb::AuthorizeRequest {
        principal: pick(u, &words.principals)?,
        action: pick(u, &words.actions)?,
        resource: pick(u, &words.resources)?,
        context: context(u, words)?.into_iter().collect(),
        explain: u.ratio(1, 4u8)?,
        min_revision: u.int_in_range(0..=2u8)?.into(),
        ..Default::default()
    };
    Ok(Input::Authorize(damage(u, m.encode_to_vec())?))
}

fn batch(u: &mut Unstructured<'_>, words: &Words) -> Result<Input> {
    let mut items = Vec::new();
    for _ in 0..u.int_in_range(0..=3u8)? {
        items.push(pb::BatchItem {
            action: pick(u, &words.actions)?,
            resource: pick(u, &words.resources)?,
            context: if u.arbitrary()? {
                context(u, words)?.into_iter().collect()
            } else {
                Default::default()
            },
        });
    }
    let m = pb::BatchAuthorizeRequest {
        principal: pick(u, &words.principals)?,
        context: context(u, words)?.into_iter().collect(),
        items,
        explain: u.ratio(1, 4u8)?,
        min_revision: u.int_in_range(0..=2u8)?.into(),
        ..Default::default()
    };
    Ok(Input::Batch(damage(u, m.encode_to_vec())?))
}

/// Now and then: a field added (unknown, or one given again), a byte changed, the message
/// cut short.
fn damage(u: &mut Unstructured<'_>, mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    match u.int_in_range(0..=11u8)? {
        0 => bytes.extend_from_slice(&[0x7a, 0x02, b'h', b'i']), // field 15, a string
        1 => bytes.extend_from_slice(&[0x0a, 0x01, b'x']),       // field 1 again
        2 => {
            let n = u.int_in_range(0..=8u8)?;
            bytes.extend_from_slice(u.bytes(n.into())?);
        }
        3 if !bytes.is_empty() => {
            let i = u.choose_index(bytes.len())?;
            bytes[i] ^= u.arbitrary::<u8>()?;
        }
        4 => {
            let n = u.choose_index(bytes.len() + 1)?;
            bytes.truncate(n);
        }
        _ => {}
    }
    Ok(bytes)
}

// === the bundle and the services ===

struct World {
    published: Arc<Published>,
    telemetry: Arc<Telemetry>,
    words: Words,
}

struct Services {
    cached: Service,
    uncached: Service,
}

/// The time every decision is made at, so that faces asked one after the other agree.
struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)
    }
}

impl World {
    /// Services of their own for one input (a cache that starts empty), over the one
    /// snapshot.
    fn services(&self) -> Services {
        let service = |cache_size| {
            let limits = Limits {
                revision_wait: Duration::ZERO,
                ..Limits::default()
            };
            Service::new(
                self.published.clone(),
                self.telemetry.clone(),
                None,
                ServiceConfig { cache_size, limits },
            )
            .with_clock(Arc::new(Fixed))
        };
        Services {
            cached: service(64),
            uncached: service(0),
        }
    }
}

/// The example bundle, compiled once per process, and the words of its requests.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // The repository root: this file is built from `fuzz/` and from the root.
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = if here.join("examples/org").is_dir() {
            here
        } else {
            here.parent().expect("fuzz/ has a parent")
        };
        let files =
            warden::bundle::read_dir(&root.join("examples/org")).expect("examples/org reads");
        let bundle = warden::bundle::load_files(&files).expect("examples/org loads");
        let mut principals = vec![
            "arn:aws:iam::999999999999:user/nobody".to_owned(),
            "arn:aws:iam::333333333333:root".to_owned(),
            "arn:aws:sts::333333333333:federated-user/alice".to_owned(),
            "arn:aws:iam::333333333333:user/".to_owned(),
            "arn:aws-cn:iam::333333333333:user/alice".to_owned(),
            "*".to_owned(),
        ];
        let mut resources = vec![
            "*".to_owned(),
            "arn:aws:s3:::b/k".to_owned(),
            "arn:aws:files:::bucket/key".to_owned(),
            "arn:aws:orders:us-east-1:555555555555:order/1".to_owned(),
            "arn:aws:orders:us-east-1:333333333333:order/${aws:username}".to_owned(),
            "arn:aws-cn:s3:::b".to_owned(),
            "arn:aws:s3::".to_owned(),
        ];
        for (id, account) in &bundle.accounts {
            principals.push(format!("arn:aws:iam::{id}:root"));
            for user in &account.users {
                principals.push(user.arn.clone());
            }
            for role in &account.roles {
                principals.push(role.arn.clone());
                principals.push(format!(
                    "arn:aws:sts::{id}:assumed-role/{}/session",
                    role.name
                ));
            }
            for r in &account.resources {
                resources.push(r.arn.replace('*', "x"));
                resources.push(r.arn.clone());
            }
        }
        let mut actions = vec![
            "orders:Get*".to_owned(),
            "orders:".to_owned(),
            ":GetOrder".to_owned(),
            "nosuch:Action".to_owned(),
            "orders:NoSuchAction".to_owned(),
            "sts:GetCallerIdentity".to_owned(),
        ];
        for (service, action) in bundle.catalog.actions() {
            actions.push(format!("{}:{}", service.prefix, action.name));
            for format in service.resource_types.values() {
                resources.push(
                    format
                        .replace("${Partition}", "aws")
                        .replace("${Region}", "us-east-1")
                        .replace("${Account}", "555555555555")
                        .replace("${", "")
                        .replace('}', ""),
                );
            }
        }
        actions.push("ORDERS:getorder".to_owned());
        let keys = [
            "aws:SourceIp",
            "aws:sourceip",
            "aws:SecureTransport",
            "aws:RequestedRegion",
            "aws:RequestTag/team",
            "aws:TagKeys",
            "aws:ResourceTag/owner",
            "aws:PrincipalTag/team",
            "aws:PrincipalArn",
            "aws:username",
            "aws:CurrentTime",
            "aws:MultiFactorAuthPresent",
            "aws:SourceAccount",
            "aws:VpceAccount",
            "orders:Amount",
            "orders:Currency",
            "",
        ];
        let values = [
            "10.0.0.1",
            "192.168.1.1",
            "true",
            "false",
            "us-east-1",
            "orders",
            "team-orders",
            "555555555555",
            "333333333333",
            "100",
            "5000.5",
            "EUR",
            "2026-01-15T12:00:00Z",
            "arn:aws:iam::333333333333:user/alice",
            "",
            "*",
        ];
        let published = Arc::new(Published::new());
        let telemetry = Arc::new(Telemetry::new());
        published.publish(Snapshot::compile(&bundle, 1), &telemetry.metrics);
        World {
            published,
            telemetry,
            words: Words {
                principals,
                actions,
                resources,
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                values: values.iter().map(|v| (*v).to_owned()).collect(),
            },
        }
    })
}
