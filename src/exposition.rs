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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::metric;
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    metric!(UP, "t_up", Gauge, ["stack"], "Up.");
    metric!(RUNS, "t_runs_total", Counter, ["stack"], "Runs.");
    metric!(CPU, "t_cpu_seconds_total", Counter, [], "CPU.");
    metric!(ONE, "t_one", Gauge, [], "One.");

    #[derive(Debug)]
    struct Writes(fn(&mut DescriptorEncoder) -> fmt::Result);

    impl Collector for Writes {
        fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
            (self.0)(&mut enc)
        }
    }

    fn text(f: fn(&mut DescriptorEncoder) -> fmt::Result) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Writes(f)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn families_are_named_typed_and_labelled_by_their_definition() {
        let out = text(|enc| {
            family(enc, &UP, [(["prod"], b(true)), (["staging"], b(false))])?;
            family(enc, &RUNS, [(["prod"], 3.0)])?;
            family(enc, &CPU, [([], 1.5)])?;
            family(enc, &ONE, [([], 7.0), ([], 8.0)])?;
            // No samples: no family at all, not even its HELP.
            family(enc, &UP, std::iter::empty::<([&str; 1], f64)>())
        });
        assert_eq!(
            out,
            "# HELP t_up Up.\n# TYPE t_up gauge\nt_up{stack=\"prod\"} 1.0\nt_up{stack=\"staging\"} 0.0\n\
             # HELP t_runs Runs.\n# TYPE t_runs counter\nt_runs_total{stack=\"prod\"} 3\n\
             # HELP t_cpu_seconds CPU.\n# TYPE t_cpu_seconds counter\nt_cpu_seconds_total 1.5\n\
             # HELP t_one One.\n# TYPE t_one gauge\nt_one 7.0\n# EOF\n"
        );
    }
}
