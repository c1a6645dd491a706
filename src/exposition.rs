//! Writing metric families with prometheus-client from plain facts: one
//! helper that takes a catalogue entry and its samples, so every family is
//! named, typed and labelled as `catalogue` says. Used by the metrics
//! renderer and by each source for its own families.

use std::fmt;

pub use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::catalogue::{Kind, MetricDef};

/// Writes one family from its samples; a family without samples is left out.
pub fn family<'a, const L: usize>(
    enc: &mut DescriptorEncoder,
    def: &MetricDef,
    samples: impl IntoIterator<Item = ([&'a str; L], f64)>,
) -> fmt::Result {
    debug_assert_eq!(def.labels.len(), L, "{}", def.name);
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let (name, metric_type) = match def.kind {
        Kind::Gauge => (def.name, MetricType::Gauge),
        Kind::Counter => (
            def.name.strip_suffix("_total").unwrap_or(def.name),
            MetricType::Counter,
        ),
    };
    let mut me = enc.encode_descriptor(name, def.help, None, metric_type)?;
    if L == 0 {
        // A family without labels has one sample, written as `name value`, not `name{} value`.
        if let Some((_, v)) = samples.next() {
            match def.kind {
                Kind::Gauge => ConstGauge::new(v).encode(me)?,
                Kind::Counter => counter(v, me)?,
            }
        }
        return Ok(());
    }
    for (values, v) in samples {
        let labels: [(&str, &str); L] = std::array::from_fn(|i| (def.labels[i], values[i]));
        let fam = me.encode_family(&labels)?;
        match def.kind {
            Kind::Gauge => ConstGauge::new(v).encode(fam)?,
            Kind::Counter => counter(v, fam)?,
        }
    }
    Ok(())
}

/// A counter's sample: whole counts (held as u64 and widened for the
/// sample) as integers, seconds of CPU as the fractions they are.
fn counter(v: f64, enc: prometheus_client::encoding::MetricEncoder<'_>) -> fmt::Result {
    if v.fract() == 0.0 {
        ConstCounter::new(v as u64).encode(enc)
    } else {
        ConstCounter::new(v).encode(enc)
    }
}

/// 1 for true, 0 for false.
pub fn b(x: bool) -> f64 {
    if x {
        1.0
    } else {
        0.0
    }
}
